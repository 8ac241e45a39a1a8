// Hessian 2.0's type bytes (the spec's grammar, http://hessian.caucho.com/doc/hessian-serialization.html),
// shared by the reader (hessian2.ts) and the writer (hessian2-writer.ts).

// Type bytes with a name in the spec.
export const T_BINARY_CHUNK: u32 = 0x41; // 'A'
export const T_BINARY_FINAL: u32 = 0x42; // 'B'
export const T_CLASS_DEF: u32 = 0x43; // 'C'
export const T_DOUBLE: u32 = 0x44; // 'D'
export const T_FALSE: u32 = 0x46; // 'F'
export const T_MAP: u32 = 0x48; // 'H' untyped map
export const T_INT: u32 = 0x49; // 'I'
export const T_DATE_MS: u32 = 0x4a; // 'J'
export const T_DATE_MIN: u32 = 0x4b; // 'K'
export const T_LONG: u32 = 0x4c; // 'L'
export const T_TYPED_MAP: u32 = 0x4d; // 'M'
export const T_NULL: u32 = 0x4e; // 'N'
export const T_OBJECT: u32 = 0x4f; // 'O'
export const T_REF: u32 = 0x51; // 'Q'
export const T_STRING_CHUNK: u32 = 0x52; // 'R'
export const T_STRING_FINAL: u32 = 0x53; // 'S'
export const T_TRUE: u32 = 0x54; // 'T'
export const T_TYPED_LIST: u32 = 0x55; // 'U' variable length
export const T_TYPED_FIXED_LIST: u32 = 0x56; // 'V'
export const T_LIST: u32 = 0x57; // 'W' variable length
export const T_FIXED_LIST: u32 = 0x58; // 'X'
export const T_LONG_INT: u32 = 0x59; // 'Y' long as 32-bit int
export const T_END: u32 = 0x5a; // 'Z'

/** Whether `t` starts a string: compact (0x00-0x1f), medium (0x30-0x33), or chunked ('R', 'S'). */
@inline export function isStringTag(t: u32): bool {
  return t < 0x20 || (t >= 0x30 && t <= 0x33) || t == T_STRING_CHUNK || t == T_STRING_FINAL;
}
