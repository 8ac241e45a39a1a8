// Byte helpers shared by the unit specs and the generated fixtures (not a spec itself).

/** Bytes from a hex string; spaces are ignored so hand-written fixtures can be annotated. */
export function bytes(hex: string): Uint8Array {
  const clean = hex.replaceAll(" ", "");
  const out = new Uint8Array(clean.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = <u8>I32.parseInt(clean.substr(i * 2, 2), 16);
  return out;
}

/** Lower-case hex of `b`, for readable byte comparisons. */
export function hexOf(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + (<u32>b[i]).toString(16);
  return s;
}

/** `a` followed by `b`, as a new array. */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
