// Hessian 2.0 reading, as far as a proxy needs it: skip any value without building it, and read
// the strings and ints Dubbo routes on. Type bytes are in hessian2-tags.ts, writing in
// hessian2-writer.ts.
//
// The reader works on one complete frame. Every length, count, reference and nesting level is
// checked against what the frame can hold before it is used, so hostile bytes end in `error`
// (one sentence naming the value and its frame offset), never in a trap or a long loop: each value
// consumes at least one byte, counts larger than the bytes left are refused up front.
//
// Strings: Hessian counts UTF-16 code units and encodes each as 1 to 3 UTF-8 bytes (a surrogate
// pair is two 3-byte sequences, as Java writes it). 4-byte UTF-8 sequences are accepted as two
// units. Strings are decoded by hand for that reason, not with String.UTF8.
import { StringSlots } from "../util/string-slots";
import {
  T_BINARY_CHUNK, T_BINARY_FINAL, T_CLASS_DEF, T_DOUBLE, T_FALSE, T_MAP, T_INT, T_DATE_MS, T_DATE_MIN,
  T_LONG, T_TYPED_MAP, T_NULL, T_OBJECT, T_REF, T_STRING_CHUNK, T_STRING_FINAL, T_TRUE, T_TYPED_LIST,
  T_TYPED_FIXED_LIST, T_LIST, T_FIXED_LIST, T_LONG_INT, T_END, isStringTag,
} from "./hessian2-tags";

/** Containers nested deeper than this are treated as hostile. */
export const MAX_DEPTH: i32 = 64;
/** Class definitions one frame may carry. */
export const MAX_CLASS_DEFS: i32 = 4096;

/** Strings of a frame that readString() remembers by position (see readString). */
const RECALL_SLOTS: i32 = 16;

/** Scratch UTF-16 units kept between frames; more is released on reset(). */
const MAX_KEPT_UNITS: i32 = 1 << 16;

export class Hessian2Reader {
  data: Uint8Array = new Uint8Array(0);
  pos: i32 = 0;
  /** Why the last call failed: empty after a success. */
  error: string = "";
  /** The last value readString() or readInt() produced. */
  str: string = "";
  wasNull: bool = false;
  int: i32 = 0;
  /**
   * Set once a value read since reset() depended on earlier values of the frame (an object
   * instance, a value ref or a type ref): such bytes cannot be walked again from their own offset.
   */
  usedContext: bool = false;

  // Per-frame tables: field count of each class definition, counts of types and of ref-able values.
  private classFields: i32[] = [];
  private types: i32 = 0;
  private refs: i32 = 0;
  /** Scratch UTF-16 units for readString. */
  private units: Uint16Array = new Uint16Array(64);
  private unitCount: i32 = 0;
  // The n-th string of the previous frame, by its encoding (slot n): see readString.
  private stringsRead: i32 = 0;
  private readonly recall: StringSlots = new StringSlots(RECALL_SLOTS);

  /** Starts reading `data` at `pos` with empty per-frame tables. */
  reset(data: Uint8Array, pos: i32): void {
    this.data = data;
    this.pos = pos;
    this.error = "";
    this.usedContext = false;
    this.classFields.length = 0;
    this.types = 0;
    this.refs = 0;
    this.stringsRead = 0;
    // One huge string must not pin its scratch for the connection's lifetime.
    if (this.units.length > MAX_KEPT_UNITS) this.units = new Uint16Array(64);
  }

  @inline remaining(): i32 {
    return this.data.length - this.pos;
  }

  @inline atEnd(): bool {
    return this.pos >= this.data.length;
  }

  /** The next type byte without consuming it, or -1 at the end. */
  peek(): i32 {
    if (this.pos >= this.data.length) return -1;
    return <i32>load<u8>(this.data.dataStart + <usize>this.pos);
  }

  /** Class definitions and ref-able values seen so far (what a dropped value may have defined). */
  tableSize(): i32 {
    return this.classFields.length + this.types + this.refs;
  }

  /** True when the next value is a string (any form). */
  nextIsString(): bool {
    const t = this.peek();
    return t >= 0 && isStringTag(<u32>t);
  }

  // ---- reading what Dubbo routes on ----

  /**
   * Reads a string (any form) into `str`, or null ('N') as "" with `wasNull` set. False with
   * `error` set for anything else.
   */
  readString(): bool {
    const start = this.pos;
    this.wasNull = false;
    // Frames of one connection repeat their strings in the same places (a Dubbo call's version,
    // service, method and parameter types): the n-th string of a frame is compared, by its bytes,
    // with the n-th string of the previous one, and taken from it when they match. The same bytes
    // decode to the same string and consume the same length, so this changes nothing but the cost
    // (strings do not enter Hessian's reference table).
    const slot = this.stringsRead++;
    if (slot < RECALL_SLOTS && this.recalls(slot, start)) return true;
    if (this.atEnd()) return this.truncated("string", start);
    const t = this.byte();
    if (t == T_NULL) {
      this.str = "";
      this.wasNull = true;
      return true;
    }
    if (!isStringTag(t)) return this.expected("a string", t, start);
    this.unitCount = 0;
    if (!this.stringBody(t, start, true)) return false;
    this.str = String.UTF16.decodeUnsafe(this.units.dataStart, <usize>this.unitCount << 1);
    if (slot < RECALL_SLOTS) this.remember(slot, start);
    return true;
  }

  /** Whether the string at `start` is encoded as slot `slot` remembers; if so, reads it from there. */
  private recalls(slot: i32, start: i32): bool {
    const n = this.recall.prefixOf(slot, this.data.dataStart + <usize>start, this.data.length - start);
    if (n == 0) return false;
    this.str = this.recall.second(slot);
    this.pos = start + n;
    return true;
  }

  /** Remembers the string just read from `start` (up to this.pos) in `slot` (util/string-slots.ts). */
  private remember(slot: i32, start: i32): void {
    this.recall.keep(slot, this.data.dataStart + <usize>start, this.pos - start, null, this.str);
  }

  /** Reads an int (any int form) into `int`; false with `error` set for anything else. */
  readInt(): bool {
    const start = this.pos;
    if (this.atEnd()) return this.truncated("int", start);
    const t = this.byte();
    if (t >= 0x80 && t <= 0xbf) {
      this.int = <i32>t - 0x90;
      return true;
    }
    if (t >= 0xc0 && t <= 0xcf) {
      if (!this.has(1)) return this.truncated("int", start);
      this.int = ((<i32>t - 0xc8) << 8) | <i32>this.byte();
      return true;
    }
    if (t >= 0xd0 && t <= 0xd7) {
      if (!this.has(2)) return this.truncated("int", start);
      this.int = ((<i32>t - 0xd4) << 16) | (<i32>this.byte() << 8) | <i32>this.byte();
      return true;
    }
    if (t == T_INT) {
      if (!this.has(4)) return this.truncated("int", start);
      this.int = <i32>bswap<u32>(load<u32>(this.data.dataStart + <usize>this.pos));
      this.pos += 4;
      return true;
    }
    return this.expected("an int", t, start);
  }

  /**
   * Consumes the start of a map ('H', or 'M' and its type) and counts it as a ref-able value.
   * False with `error` set when the next value is not a map.
   */
  beginMap(): bool {
    const start = this.pos;
    if (this.atEnd()) return this.truncated("map", start);
    const t = this.byte();
    if (t == T_TYPED_MAP) {
      if (!this.skipType(start)) return false;
    } else if (t != T_MAP) {
      return this.expected("a map", t, start);
    }
    this.refs++;
    return true;
  }

  /** Consumes the 'Z' that ends a map or list; false (consuming nothing) when another entry follows. */
  endOfContainer(): bool {
    if (this.peek() != <i32>T_END) return false;
    this.pos++;
    return true;
  }

  // ---- skipping ----

  /** Skips one value of any type; false with `error` set when the bytes are not a valid value. */
  skip(): bool {
    return this.skipValue(0);
  }

  private skipValue(depth: i32): bool {
    let start = this.pos;
    if (this.atEnd()) return this.truncated("value", start);
    let t = this.byte();
    // Class definitions come just before the first instance that uses them.
    while (t == T_CLASS_DEF) {
      if (!this.classDef(start)) return false;
      start = this.pos;
      if (this.atEnd()) return this.truncated("value", start);
      t = this.byte();
    }
    if (t < 0x20) return this.skipChars(<i32>t, start); // compact string
    if (t < 0x30) return this.skipBytes(<i32>t - 0x20, "binary", start); // compact binary
    if (t < 0x34 || t == T_STRING_CHUNK || t == T_STRING_FINAL) return this.stringBody(t, start, false);
    if (t < 0x38) { // binary of up to 1023 bytes
      if (!this.has(1)) return this.truncated("binary", start);
      return this.skipBytes(((<i32>t - 0x34) << 8) | <i32>this.byte(), "binary", start);
    }
    if (t < 0x40) return this.skipBytes(2, "long", start); // three-octet long
    if (t >= 0x80) {
      if (t <= 0xbf || (t >= 0xd8 && t <= 0xef)) return true; // one-octet int or long
      if (t <= 0xcf || t >= 0xf0) return this.skipBytes(1, t <= 0xcf ? "int" : "long", start);
      return this.skipBytes(2, "int", start); // 0xd0..0xd7: three-octet int
    }
    if (t >= 0x60 && t <= 0x6f) return this.instance(<i32>t - 0x60, depth, start);
    if (t >= 0x70 && t <= 0x77) {
      if (!this.skipType(start)) return false;
      return this.items(<i32>t - 0x70, depth, start);
    }
    if (t >= 0x78 && t <= 0x7f) return this.items(<i32>t - 0x78, depth, start);
    switch (t) {
      case T_NULL: case T_TRUE: case T_FALSE: case 0x5b: case 0x5c: return true; // 0x5b/0x5c: 0.0 and 1.0
      case 0x5d: return this.skipBytes(1, "double", start);
      case 0x5e: return this.skipBytes(2, "double", start);
      case 0x5f: return this.skipBytes(4, "double", start);
      case T_DOUBLE: return this.skipBytes(8, "double", start);
      case T_INT: return this.skipBytes(4, "int", start);
      case T_LONG_INT: return this.skipBytes(4, "long", start);
      case T_LONG: return this.skipBytes(8, "long", start);
      case T_DATE_MS: return this.skipBytes(8, "date", start);
      case T_DATE_MIN: return this.skipBytes(4, "date", start);
      case T_BINARY_CHUNK: case T_BINARY_FINAL: return this.binaryChunks(t, start);
      case T_MAP: return this.entries(depth, start);
      case T_TYPED_MAP: {
        if (!this.skipType(start)) return false;
        return this.entries(depth, start);
      }
      case T_LIST: return this.items(-1, depth, start);
      case T_TYPED_LIST: {
        if (!this.skipType(start)) return false;
        return this.items(-1, depth, start);
      }
      case T_FIXED_LIST: case T_TYPED_FIXED_LIST: {
        if (t == T_TYPED_FIXED_LIST && !this.skipType(start)) return false;
        if (!this.readInt()) return false;
        if (this.int < 0) return this.fail("negative list length " + this.int.toString(), start);
        return this.items(this.int, depth, start);
      }
      case T_OBJECT: {
        if (!this.readInt()) return false;
        return this.instance(this.int, depth, start);
      }
      case T_REF: {
        if (!this.readInt()) return false;
        this.usedContext = true;
        const ref = this.int;
        if (ref < 0 || ref >= this.refs) {
          return this.fail("ref " + ref.toString() + " but only " + this.refs.toString() + " values to refer to", start);
        }
        return true;
      }
    }
    return this.fail("unknown type byte 0x" + hex2(t), start);
  }

  /** `count` values (or values up to 'Z' when count is -1): the items of a list that starts at `start`. */
  private items(count: i32, depth: i32, start: i32): bool {
    if (depth >= MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString(), start);
    this.refs++;
    if (count < 0) {
      while (!this.endOfContainer()) {
        if (this.atEnd()) return this.truncated("list", start);
        if (!this.skipValue(depth + 1)) return false;
      }
      return true;
    }
    if (count > this.remaining()) return this.tooLong("list length", count, start);
    for (let i = 0; i < count; i++) {
      if (!this.skipValue(depth + 1)) return false;
    }
    return true;
  }

  /** Key/value pairs up to 'Z': the entries of a map that starts at `start`. */
  private entries(depth: i32, start: i32): bool {
    if (depth >= MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString(), start);
    this.refs++;
    while (!this.endOfContainer()) {
      if (this.atEnd()) return this.truncated("map", start);
      if (!this.skipValue(depth + 1)) return false;
      if (!this.skipValue(depth + 1)) return false;
    }
    return true;
  }

  /** The fields of an instance of class definition `def`. */
  private instance(def: i32, depth: i32, start: i32): bool {
    this.usedContext = true;
    const defined = this.classFields.length;
    if (def < 0 || def >= defined) {
      return this.fail("object of class definition " + def.toString() + " but only " + defined.toString() + " defined", start);
    }
    if (depth >= MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString(), start);
    this.refs++;
    const fields = unchecked(this.classFields[def]);
    for (let i = 0; i < fields; i++) {
      if (!this.skipValue(depth + 1)) return false;
    }
    return true;
  }

  /** A class definition after its 'C': name, field count, field names. */
  private classDef(start: i32): bool {
    if (this.classFields.length >= MAX_CLASS_DEFS) {
      return this.fail("more than " + MAX_CLASS_DEFS.toString() + " class definitions", start);
    }
    if (!this.skipString("class name")) return false;
    if (!this.readInt()) return false;
    const fields = this.int;
    if (fields < 0) return this.fail("class definition with " + fields.toString() + " fields", start);
    if (fields > this.remaining()) return this.tooLong("class field count", fields, start);
    for (let i = 0; i < fields; i++) {
      if (!this.skipString("field name")) return false;
    }
    this.classFields.push(fields);
    return true;
  }

  /** The type of a typed list or map: a type name (a string) or a ref to an earlier one (an int). */
  private skipType(start: i32): bool {
    if (this.nextIsString()) {
      this.types++;
      return this.skipString("type name");
    }
    if (!this.readInt()) return false;
    this.usedContext = true;
    const ref = this.int;
    if (ref < 0 || ref >= this.types) {
      return this.fail("type ref " + ref.toString() + " but only " + this.types.toString() + " types defined", start);
    }
    return true;
  }

  /** Skips a value that must be a string (class, type and field names). */
  private skipString(what: string): bool {
    const start = this.pos;
    if (this.atEnd()) return this.truncated(what, start);
    const t = this.byte();
    if (!isStringTag(t)) return this.expected("a string " + what, t, start);
    return this.stringBody(t, start, false);
  }

  /**
   * The chunks of a string whose first type byte `t` was just consumed; appends the UTF-16 units to
   * `units` when `keep`.
   */
  private stringBody(t: u32, start: i32, keep: bool): bool {
    while (true) {
      let n: i32;
      let last = true;
      if (t < 0x20) {
        n = <i32>t;
      } else if (t >= 0x30 && t <= 0x33) {
        if (!this.has(1)) return this.truncated("string", start);
        n = ((<i32>t - 0x30) << 8) | <i32>this.byte();
      } else if (t == T_STRING_CHUNK || t == T_STRING_FINAL) {
        if (!this.has(2)) return this.truncated("string", start);
        n = (<i32>this.byte() << 8) | <i32>this.byte();
        last = t == T_STRING_FINAL;
      } else {
        return this.fail("string chunk followed by type byte 0x" + hex2(t), start);
      }
      if (!(keep ? this.keepChars(n, start) : this.skipChars(n, start))) return false;
      if (last) return true;
      if (this.atEnd()) return this.truncated("string", start);
      t = this.byte();
    }
  }

  /** Skips `n` UTF-16 units of UTF-8. */
  private skipChars(n: i32, start: i32): bool {
    if (n > this.remaining()) return this.tooLong("string length", n, start);
    const data = this.data;
    const end = data.length;
    let p = this.pos;
    let i = 0;
    while (i < n) {
      if (p >= end) return this.truncated("string", start);
      const b = <u32>load<u8>(data.dataStart + <usize>p);
      const size = utf8Size(b);
      if (size == 0 || (size == 4 && i + 2 > n)) return this.badUtf8(b, start);
      p += size;
      i += size == 4 ? 2 : 1;
    }
    if (p > end) return this.truncated("string", start);
    this.pos = p;
    return true;
  }

  /** Decodes `n` UTF-16 units of UTF-8 onto `units`. */
  private keepChars(n: i32, start: i32): bool {
    if (n > this.remaining()) return this.tooLong("string length", n, start);
    const need = this.unitCount + n;
    if (need > this.units.length) {
      let cap = this.units.length << 1;
      while (cap < need) cap <<= 1;
      const next = new Uint16Array(cap);
      memory.copy(next.dataStart, this.units.dataStart, <usize>this.unitCount << 1);
      this.units = next;
    }
    const data = this.data;
    const base = data.dataStart;
    const end = data.length;
    const out = this.units.dataStart;
    let u = this.unitCount;
    let p = this.pos;
    let i = 0;
    while (i < n) {
      if (p >= end) return this.truncated("string", start);
      const b = <u32>load<u8>(base + <usize>p);
      const size = utf8Size(b);
      if (size == 0 || (size == 4 && i + 2 > n)) return this.badUtf8(b, start);
      if (p + size > end) return this.truncated("string", start);
      let c: u32 = b;
      if (size == 2) {
        c = ((b & 0x1f) << 6) | (<u32>load<u8>(base + <usize>(p + 1)) & 0x3f);
      } else if (size == 3) {
        c = ((b & 0x0f) << 12) | ((<u32>load<u8>(base + <usize>(p + 1)) & 0x3f) << 6) | (<u32>load<u8>(base + <usize>(p + 2)) & 0x3f);
      } else if (size == 4) {
        const cp = ((b & 0x07) << 18) | ((<u32>load<u8>(base + <usize>(p + 1)) & 0x3f) << 12) |
          ((<u32>load<u8>(base + <usize>(p + 2)) & 0x3f) << 6) | (<u32>load<u8>(base + <usize>(p + 3)) & 0x3f);
        const v = cp - 0x10000;
        store<u16>(out + (<usize>u << 1), <u16>(0xd800 | ((v >> 10) & 0x3ff)));
        u++;
        c = 0xdc00 | (v & 0x3ff);
      }
      store<u16>(out + (<usize>u << 1), <u16>c);
      u++;
      p += size;
      i += size == 4 ? 2 : 1;
    }
    this.unitCount = u;
    this.pos = p;
    return true;
  }

  /** The chunks of a binary whose first type byte ('A' or 'B') was just consumed. */
  private binaryChunks(t: u32, start: i32): bool {
    while (true) {
      let n: i32;
      let last = true;
      if (t == T_BINARY_CHUNK || t == T_BINARY_FINAL) {
        if (!this.has(2)) return this.truncated("binary", start);
        n = (<i32>this.byte() << 8) | <i32>this.byte();
        last = t == T_BINARY_FINAL;
      } else if (t >= 0x20 && t <= 0x2f) {
        n = <i32>t - 0x20;
      } else if (t >= 0x34 && t <= 0x37) {
        if (!this.has(1)) return this.truncated("binary", start);
        n = ((<i32>t - 0x34) << 8) | <i32>this.byte();
      } else {
        return this.fail("binary chunk followed by type byte 0x" + hex2(t), start);
      }
      if (!this.skipBytes(n, "binary", start)) return false;
      if (last) return true;
      if (this.atEnd()) return this.truncated("binary", start);
      t = this.byte();
    }
  }

  // ---- bytes and failures ----

  @inline private has(n: i32): bool {
    return <u32>n <= <u32>this.remaining();
  }

  /** The next byte; callers check has() or atEnd() first. */
  @inline private byte(): u32 {
    return <u32>load<u8>(this.data.dataStart + <usize>(this.pos++));
  }

  private skipBytes(n: i32, what: string, start: i32): bool {
    if (!this.has(n)) return what == "binary" ? this.tooLong("binary length", n, start) : this.truncated(what, start);
    this.pos += n;
    return true;
  }

  private fail(what: string, start: i32): bool {
    this.error = "hessian2: " + what + " at offset " + start.toString();
    return false;
  }

  private truncated(what: string, start: i32): bool {
    return this.fail("truncated " + what, start);
  }

  private tooLong(what: string, n: i32, start: i32): bool {
    return this.fail(what + " " + n.toString() + " exceeds the " + this.remaining().toString() + " bytes left", start);
  }

  private expected(what: string, t: u32, start: i32): bool {
    return this.fail("expected " + what + ", got type byte 0x" + hex2(t), start);
  }

  private badUtf8(b: u32, start: i32): bool {
    return this.fail("bad UTF-8 byte 0x" + hex2(b) + " in string", start);
  }
}

/** Bytes of the UTF-8 sequence a lead byte starts; 0 for a byte that cannot start one. */
@inline function utf8Size(b: u32): i32 {
  if (b < 0x80) return 1;
  if ((b & 0xe0) == 0xc0) return 2;
  if ((b & 0xf0) == 0xe0) return 3;
  if ((b & 0xf8) == 0xf0) return 4;
  return 0;
}

/** Two lowercase hex digits. */
export function hex2(b: u32): string {
  const s = (b & 0xff).toString(16);
  return s.length < 2 ? "0" + s : s;
}
