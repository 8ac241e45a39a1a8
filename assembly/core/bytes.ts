// Bounds-checked big-endian reads over a frame. One unsigned compare per read, then a raw load:
// a read past the end returns false/0 and sets `failed` rather than trapping, so codecs can read
// a whole header and check once.

export class ByteReader {
  data: Uint8Array;
  pos: i32;
  failed: bool = false;

  constructor(data: Uint8Array, pos: i32 = 0) {
    this.data = data;
    this.pos = pos;
  }

  reset(data: Uint8Array, pos: i32 = 0): void {
    this.data = data;
    this.pos = pos;
    this.failed = false;
  }

  @inline remaining(): i32 {
    return this.data.length - this.pos;
  }

  /** True when `n` more bytes are available; marks the reader failed otherwise. */
  @inline has(n: i32): bool {
    if (<u32>n > <u32>this.remaining()) {
      this.failed = true;
      return false;
    }
    return true;
  }

  u8(): u32 {
    if (!this.has(1)) return 0;
    return <u32>load<u8>(this.data.dataStart + <usize>(this.pos++));
  }

  i8(): i32 {
    return <i32><i8>this.u8();
  }

  u16(): u32 {
    if (!this.has(2)) return 0;
    const v = bswap<u16>(load<u16>(this.data.dataStart + <usize>this.pos));
    this.pos += 2;
    return <u32>v;
  }

  i16(): i32 {
    return <i32><i16>this.u16();
  }

  u32(): u32 {
    if (!this.has(4)) return 0;
    const v = bswap<u32>(load<u32>(this.data.dataStart + <usize>this.pos));
    this.pos += 4;
    return v;
  }

  i32(): i32 {
    return <i32>this.u32();
  }

  u64(): u64 {
    if (!this.has(8)) return 0;
    const v = bswap<u64>(load<u64>(this.data.dataStart + <usize>this.pos));
    this.pos += 8;
    return v;
  }

  skip(n: i32): bool {
    if (n < 0 || !this.has(n)) {
      this.failed = true;
      return false;
    }
    this.pos += n;
    return true;
  }

  /** `n` bytes as a UTF-8 string; empty and failed when out of range. */
  utf8(n: i32): string {
    if (n < 0 || !this.has(n)) {
      this.failed = true;
      return "";
    }
    const s = String.UTF8.decodeUnsafe(this.data.dataStart + <usize>this.pos, <usize>n);
    this.pos += n;
    return s;
  }

  /** Unsigned LEB128 varint of at most `maxBytes` bytes (Thrift compact, protobuf). */
  varint(maxBytes: i32 = 10): u64 {
    let result: u64 = 0;
    let shift: u64 = 0;
    for (let i = 0; i < maxBytes; i++) {
      if (!this.has(1)) return 0;
      const b = <u64>load<u8>(this.data.dataStart + <usize>(this.pos++));
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) == 0) return result;
      shift += 7;
    }
    this.failed = true;
    return 0;
  }
}

/** Byte `pos` of `data`: a plain load, no bounds check (the caller keeps `pos` in bounds). */
@inline export function peekU8(data: Uint8Array, pos: i32): u32 {
  return <u32>load<u8>(data.dataStart + <usize>pos);
}

/** Peeks a big-endian u32 at `pos` without bounds check; callers check length first. */
@inline export function peekU32(data: Uint8Array, pos: i32): u32 {
  return bswap<u32>(load<u32>(data.dataStart + <usize>pos));
}

/** Writes a big-endian u32 at `pos`; callers check length first. */
@inline export function pokeU32(data: Uint8Array, pos: i32, v: u32): void {
  store<u32>(data.dataStart + <usize>pos, bswap<u32>(v));
}

/** A growable byte buffer for building frames: the only place frames are assembled. */
export class ByteWriter {
  buf: Uint8Array;
  len: i32 = 0;

  constructor(capacity: i32 = 64) {
    this.buf = new Uint8Array(max(capacity, 16));
  }

  clear(): void {
    this.len = 0;
  }

  private reserve(n: i32): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length << 1;
    while (cap < need) cap <<= 1;
    const next = new Uint8Array(cap);
    memory.copy(next.dataStart, this.buf.dataStart, <usize>this.len);
    this.buf = next;
  }

  u8(v: u32): void {
    this.reserve(1);
    store<u8>(this.buf.dataStart + <usize>this.len, <u8>v);
    this.len += 1;
  }

  u16(v: u32): void {
    this.reserve(2);
    store<u16>(this.buf.dataStart + <usize>this.len, bswap<u16>(<u16>v));
    this.len += 2;
  }

  u32(v: u32): void {
    this.reserve(4);
    store<u32>(this.buf.dataStart + <usize>this.len, bswap<u32>(v));
    this.len += 4;
  }

  u64(v: u64): void {
    this.reserve(8);
    store<u64>(this.buf.dataStart + <usize>this.len, bswap<u64>(v));
    this.len += 8;
  }

  varint(v: u64): void {
    while (v >= 0x80) {
      this.u8(<u32>(v & 0x7f) | 0x80);
      v >>= 7;
    }
    this.u8(<u32>v);
  }

  bytes(src: Uint8Array): void {
    this.reserve(src.length);
    memory.copy(this.buf.dataStart + <usize>this.len, src.dataStart, <usize>src.length);
    this.len += src.length;
  }

  /** Appends the UTF-8 encoding of `s`; returns its byte length. */
  utf8(s: string): i32 {
    const n = String.UTF8.byteLength(s);
    this.reserve(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.buf.dataStart + <usize>this.len);
    this.len += n;
    return n;
  }

  /** Overwrites a big-endian u32 already written at `pos` (length fields patched after the fact). */
  patchU32(pos: i32, v: u32): void {
    store<u32>(this.buf.dataStart + <usize>pos, bswap<u32>(v));
  }

  /**
   * What was written, without a copy: valid until the writer is written to again (clear() alone
   * leaves the bytes), for bytes handed straight to the host or to a writer nobody writes again.
   */
  written(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** A copy of what was written. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** `a` followed by `b`, as a new array. */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * A window that is moved over other bytes instead of allocating a new view per frame (subarray()
 * allocates one each time, and the hot path cuts several views per request). Whoever holds the
 * window must treat what it shows as valid only until the next moveTo().
 */
export class Window {
  readonly view: Uint8Array = new Uint8Array(0);

  /** Shows bytes [start, start + length) of `source` (within its bounds: the caller's contract). */
  moveTo(source: Uint8Array, start: i32, length: i32): Uint8Array {
    const v = changetype<usize>(this.view);
    const buffer = changetype<usize>(source.buffer);
    // ArrayBufferView's fields are read-only to the language, not to memory: set them in place.
    // The buffer reference is stored with the collector's write barrier, as a field store would
    // (a no-op under the minimal runtime the module uses; the call keeps this right under either).
    store<usize>(v, buffer, offsetof<Uint8Array>("buffer"));
    __link(v, buffer, false);
    store<usize>(v, source.dataStart + <usize>start, offsetof<Uint8Array>("dataStart"));
    store<i32>(v, length, offsetof<Uint8Array>("byteLength"));
    return this.view;
  }
}
