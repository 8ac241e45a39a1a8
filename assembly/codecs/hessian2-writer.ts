// Hessian 2.0 writing, as far as Dubbo's mutation and error replies need it: compact strings
// (chunked as Java's Hessian2Output chunks them), ints and null, each in its shortest form.
import { ByteWriter } from "../core/bytes";
import { T_INT, T_NULL, T_STRING_CHUNK, T_STRING_FINAL } from "./hessian2-tags";

/** Largest chunk the writer emits, as Java's Hessian2Output does. */
const WRITE_CHUNK: i32 = 0x8000;

/** Writes `s` in the shortest Hessian 2 string form, chunked as Java's Hessian2Output chunks it. */
export function writeString(w: ByteWriter, s: string): void {
  let offset = 0;
  let length = s.length;
  while (length > WRITE_CHUNK) {
    let sub = WRITE_CHUNK;
    // A chunk must not end between the halves of a surrogate pair.
    const tail = <u32>s.charCodeAt(offset + sub - 1);
    if (tail >= 0xd800 && tail <= 0xdbff) sub--;
    w.u8(T_STRING_CHUNK);
    w.u16(<u32>sub);
    writeUnits(w, s, offset, sub);
    length -= sub;
    offset += sub;
  }
  if (length <= 31) {
    w.u8(<u32>length);
  } else if (length <= 1023) {
    w.u8(0x30 + (<u32>length >> 8));
    w.u8(<u32>length & 0xff);
  } else {
    w.u8(T_STRING_FINAL);
    w.u16(<u32>length);
  }
  writeUnits(w, s, offset, length);
}

/** Each UTF-16 unit as 1 to 3 bytes of UTF-8 (surrogates separately, as Java writes them). */
function writeUnits(w: ByteWriter, s: string, offset: i32, n: i32): void {
  for (let i = offset, end = offset + n; i < end; i++) {
    const c = <u32>s.charCodeAt(i);
    if (c < 0x80) {
      w.u8(c);
    } else if (c < 0x800) {
      w.u8(0xc0 | (c >> 6));
      w.u8(0x80 | (c & 0x3f));
    } else {
      w.u8(0xe0 | (c >> 12));
      w.u8(0x80 | ((c >> 6) & 0x3f));
      w.u8(0x80 | (c & 0x3f));
    }
  }
}

/** Writes `v` in the shortest Hessian 2 int form. */
export function writeInt(w: ByteWriter, v: i32): void {
  if (v >= -16 && v <= 47) {
    w.u8(<u32>(v + 0x90));
  } else if (v >= -2048 && v <= 2047) {
    w.u8(<u32>((v >> 8) + 0xc8));
    w.u8(<u32>v & 0xff);
  } else if (v >= -262144 && v <= 262143) {
    w.u8(<u32>((v >> 16) + 0xd4));
    w.u8((<u32>v >> 8) & 0xff);
    w.u8(<u32>v & 0xff);
  } else {
    w.u8(T_INT);
    w.u32(<u32>v);
  }
}

export function writeNull(w: ByteWriter): void {
  w.u8(T_NULL);
}
