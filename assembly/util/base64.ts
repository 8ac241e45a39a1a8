// Standard base64 (RFC 4648, with padding), for bytes that must travel in an HTTP header value:
// the per-request session replay (see roles/request-server.ts).

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

export function base64Encode(data: Uint8Array): string {
  // Written into one buffer of the exact size: appending to a string copies it each time, which
  // for a large session frame is quadratic.
  const n = data.length;
  const out = new Uint8Array(((n + 2) / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (<u32>data[i] << 16) | (<u32>data[i + 1] << 8) | <u32>data[i + 2];
    out[o++] = sextetChar(v >> 18);
    out[o++] = sextetChar((v >> 12) & 63);
    out[o++] = sextetChar((v >> 6) & 63);
    out[o++] = sextetChar(v & 63);
  }
  if (i < n) {
    const two = i + 1 < n;
    const v = (<u32>data[i] << 16) | (two ? <u32>data[i + 1] << 8 : 0);
    out[o++] = sextetChar(v >> 18);
    out[o++] = sextetChar((v >> 12) & 63);
    out[o++] = two ? sextetChar((v >> 6) & 63) : 0x3d;
    out[o++] = 0x3d;
  }
  return String.UTF8.decodeUnsafe(out.dataStart, <usize>o);
}

@inline function sextetChar(v: u32): u8 {
  return <u8>ALPHABET.charCodeAt(<i32>v);
}

function sextet(c: i32): i32 {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (c == 0x2b) return 62;
  if (c == 0x2f) return 63;
  return -1;
}

/** The bytes of padded base64 text `s`, or null when `s` is not valid base64. */
export function base64Decode(s: string): Uint8Array | null {
  const n = s.length;
  if (n % 4 != 0) return null;
  let pad = 0;
  if (n > 0 && s.charCodeAt(n - 1) == 0x3d) pad++;
  if (n > 1 && s.charCodeAt(n - 2) == 0x3d) pad++;
  const out = new Uint8Array((n / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < n; i += 4) {
    const last = i + 4 == n;
    const a = sextet(s.charCodeAt(i));
    const b = sextet(s.charCodeAt(i + 1));
    const c = last && pad >= 2 ? 0 : sextet(s.charCodeAt(i + 2));
    const d = last && pad >= 1 ? 0 : sextet(s.charCodeAt(i + 3));
    if (a < 0 || b < 0 || c < 0 || d < 0) return null;
    const v = (<u32>a << 18) | (<u32>b << 12) | (<u32>c << 6) | <u32>d;
    out[o++] = <u8>(v >> 16);
    if (o < out.length) out[o++] = <u8>(v >> 8);
    if (o < out.length) out[o++] = <u8>v;
  }
  return out;
}
