// IP addresses and CIDR ranges for authorization rules. Addresses are kept as 16 bytes (IPv4 as
// IPv4-mapped IPv6), so one comparison serves both families.

export class Cidr {
  constructor(public addr: Uint8Array, public prefixBits: i32) {}

  contains(ip: Uint8Array): bool {
    let bits = this.prefixBits;
    for (let i = 0; i < 16 && bits > 0; i++) {
      const mask: u32 = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      if ((<u32>ip[i] & mask) != (<u32>this.addr[i] & mask)) return false;
      bits -= 8;
    }
    return true;
  }
}

/**
 * "10.0.0.0/8", "::1/128" or a bare address; null when malformed. Socket forms with a port
 * ("10.0.0.1:80", "[::1]:80") are not ranges: a rule cannot restrict ports, so they are refused
 * rather than silently read as the bare address.
 */
export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf("/");
  const text = slash < 0 ? s : s.substring(0, slash);
  if (text.startsWith("[") || countOf(text, 0x3a) == 1) return null;
  const ip = parseIp(text);
  if (ip == null) return null;
  // The prefix counts bits of the family as written: "::ffff:a00:0/104" is IPv6 notation.
  const v4 = countOf(text, 0x3a) == 0;
  let bits = v4 ? 32 : 128;
  if (slash >= 0) {
    const n = parseDecimal(s.substring(slash + 1), bits);
    if (n < 0) return null;
    bits = n;
  }
  return new Cidr(ip, v4 ? bits + 96 : bits);
}

/**
 * An address from "1.2.3.4", "1.2.3.4:5678", "::1", "[::1]:5678" (Envoy's source.address
 * property); null when malformed.
 */
export function parseIp(s: string): Uint8Array | null {
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0) return null;
    return parseV6(s.substring(1, end));
  }
  const colons = countOf(s, 0x3a);
  if (colons == 1) return parseV4(s.substring(0, s.indexOf(":")));
  if (colons == 0) return parseV4(s);
  return parseV6(s);
}

function parseV4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length != 4) return null;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  for (let i = 0; i < 4; i++) {
    const n = parseDecimal(parts[i], 255);
    if (n < 0) return null;
    out[12 + i] = <u8>n;
  }
  return out;
}

function parseV6(text: string): Uint8Array | null {
  const hex = embeddedV4AsHex(text);
  if (hex == null) return null;
  const s = hex!;
  const out = new Uint8Array(16);
  const dbl = s.indexOf("::");
  if (dbl >= 0 && s.indexOf("::", dbl + 1) >= 0) return null;
  const head = dbl >= 0 ? s.substring(0, dbl) : s;
  const tail = dbl >= 0 ? s.substring(dbl + 2) : "";
  const h = head.length > 0 ? head.split(":") : new Array<string>();
  const t = tail.length > 0 ? tail.split(":") : new Array<string>();
  if (h.length + t.length > 8 || (dbl < 0 && h.length != 8)) return null;
  for (let i = 0; i < h.length; i++) {
    const n = parseHex16(h[i]);
    if (n < 0) return null;
    out[i * 2] = <u8>(n >> 8);
    out[i * 2 + 1] = <u8>n;
  }
  for (let i = 0; i < t.length; i++) {
    const n = parseHex16(t[i]);
    if (n < 0) return null;
    const at = 16 - (t.length - i) * 2;
    out[at] = <u8>(n >> 8);
    out[at + 1] = <u8>n;
  }
  return out;
}

/**
 * "::ffff:127.0.0.1" → "::ffff:7f00:1": a dual-stack listener reports IPv4 clients this way.
 * The text unchanged when it has no dotted tail; null when the tail is not an IPv4 address.
 */
function embeddedV4AsHex(s: string): string | null {
  const colon = s.lastIndexOf(":");
  if (colon < 0 || s.indexOf(".", colon) < 0) return s;
  const v4 = parseV4(s.substring(colon + 1));
  if (v4 == null) return null;
  const hi = (<u32>v4[12] << 8) | <u32>v4[13];
  const lo = (<u32>v4[14] << 8) | <u32>v4[15];
  return s.substring(0, colon + 1) + hi.toString(16) + ":" + lo.toString(16);
}

function parseDecimal(s: string, maxValue: i32): i32 {
  if (s.length == 0 || s.length > 3) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n <= maxValue ? n : -1;
}

function parseHex16(s: string): i32 {
  if (s.length == 0 || s.length > 4) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let d = -1;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    if (d < 0) return -1;
    n = (n << 4) | d;
  }
  return n;
}

function countOf(s: string, ch: i32): i32 {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) == ch) n++;
  return n;
}
