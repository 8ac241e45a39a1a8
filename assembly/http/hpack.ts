// HPACK (RFC 7541) for the HTTP/2 client role. The decoder keeps the dynamic table the peer's
// encoder builds; the encoder never indexes (literals without indexing, static-table references
// only), so the peer's decoder table stays empty and nothing has to track it.
import { ByteWriter } from "../core/bytes";
import { HeaderList } from "./headers";
import { HuffmanDecoder } from "./huffman";

/** RFC 7541 Appendix A: name, value of static index i at [2(i-1)], [2(i-1)+1]. */
const STATIC: StaticArray<string> = [
  ":authority", "", // 1
  ":method", "GET", // 2
  ":method", "POST", // 3
  ":path", "/", // 4
  ":path", "/index.html", // 5
  ":scheme", "http", // 6
  ":scheme", "https", // 7
  ":status", "200", // 8
  ":status", "204", // 9
  ":status", "206", // 10
  ":status", "304", // 11
  ":status", "400", // 12
  ":status", "404", // 13
  ":status", "500", // 14
  "accept-charset", "", // 15
  "accept-encoding", "gzip, deflate", // 16
  "accept-language", "", // 17
  "accept-ranges", "", // 18
  "accept", "", // 19
  "access-control-allow-origin", "", // 20
  "age", "", // 21
  "allow", "", // 22
  "authorization", "", // 23
  "cache-control", "", // 24
  "content-disposition", "", // 25
  "content-encoding", "", // 26
  "content-language", "", // 27
  "content-length", "", // 28
  "content-location", "", // 29
  "content-range", "", // 30
  "content-type", "", // 31
  "cookie", "", // 32
  "date", "", // 33
  "etag", "", // 34
  "expect", "", // 35
  "expires", "", // 36
  "from", "", // 37
  "host", "", // 38
  "if-match", "", // 39
  "if-modified-since", "", // 40
  "if-none-match", "", // 41
  "if-range", "", // 42
  "if-unmodified-since", "", // 43
  "last-modified", "", // 44
  "link", "", // 45
  "location", "", // 46
  "max-forwards", "", // 47
  "proxy-authenticate", "", // 48
  "proxy-authorization", "", // 49
  "range", "", // 50
  "referer", "", // 51
  "refresh", "", // 52
  "retry-after", "", // 53
  "server", "", // 54
  "set-cookie", "", // 55
  "strict-transport-security", "", // 56
  "transfer-encoding", "", // 57
  "user-agent", "", // 58
  "vary", "", // 59
  "via", "", // 60
  "www-authenticate", "", // 61
];
export const STATIC_COUNT: i32 = 61;
/** RFC 7541 section 4.1: an entry's size is its name and value octets plus 32. */
const ENTRY_OVERHEAD: i32 = 32;
/** Integers above this are rejected (nothing legitimate in a header block comes close). */
const MAX_INT: u64 = 1 << 28;
/** Continuation bytes that can carry an integer up to MAX_INT past a full prefix. */
const MAX_CONTINUATION: i32 = 5;
export const DEFAULT_TABLE_SIZE: i32 = 4096;
/** Default bound on a decoded header list (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE accounting). */
export const DEFAULT_MAX_HEADER_LIST: i32 = 65536;

@inline function staticName(index: i32): string {
  return unchecked(STATIC[(index - 1) << 1]);
}

@inline function staticValue(index: i32): string {
  return unchecked(STATIC[((index - 1) << 1) + 1]);
}

/**
 * The decoder's dynamic table: a ring of at most `maxSize / 32` entries, newest first. Entry
 * sizes are counted in wire octets (the strings may differ after UTF-8 replacement).
 */
class DynamicTable {
  private names: StaticArray<string>;
  private values: StaticArray<string>;
  /** Name octets and entry size (name + value octets + 32) of each slot. */
  private nameLens: StaticArray<i32>;
  private sizes: StaticArray<i32>;
  /** Slot the next entry goes to; the newest entry is in the slot before it. */
  private head: i32 = 0;
  count: i32 = 0;
  size: i32 = 0;
  maxSize: i32;

  constructor(limit: i32) {
    const cap = max(limit / ENTRY_OVERHEAD, 1);
    const names = new StaticArray<string>(cap);
    const values = new StaticArray<string>(cap);
    for (let i = 0; i < cap; i++) {
      names[i] = "";
      values[i] = "";
    }
    this.names = names;
    this.values = values;
    this.nameLens = new StaticArray<i32>(cap);
    this.sizes = new StaticArray<i32>(cap);
    this.maxSize = limit;
  }

  /** Slot of entry `k` (0 = newest); the caller checks k < count. */
  @inline private slot(k: i32): i32 {
    const cap = this.sizes.length;
    const s = this.head - 1 - k;
    return s < 0 ? s + cap : s;
  }

  @inline name(k: i32): string {
    return unchecked(this.names[this.slot(k)]);
  }

  @inline value(k: i32): string {
    return unchecked(this.values[this.slot(k)]);
  }

  @inline nameLen(k: i32): i32 {
    return unchecked(this.nameLens[this.slot(k)]);
  }

  /** Name plus value octets of entry `k`. */
  @inline fieldLen(k: i32): i32 {
    return unchecked(this.sizes[this.slot(k)]) - ENTRY_OVERHEAD;
  }

  /** Adds an entry, evicting the oldest; one larger than the table empties it (section 4.4). */
  add(name: string, value: string, nameLen: i32, valueLen: i32): void {
    const size = nameLen + valueLen + ENTRY_OVERHEAD;
    if (size > this.maxSize) {
      this.count = 0;
      this.size = 0;
      return;
    }
    this.evictTo(this.maxSize - size);
    const h = this.head;
    unchecked((this.names[h] = name));
    unchecked((this.values[h] = value));
    unchecked((this.nameLens[h] = nameLen));
    unchecked((this.sizes[h] = size));
    this.head = h + 1 == this.sizes.length ? 0 : h + 1;
    this.count++;
    this.size += size;
  }

  /** Sets the maximum size (at most the constructor's limit), evicting what no longer fits. */
  resize(maxSize: i32): void {
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  private evictTo(target: i32): void {
    while (this.size > target && this.count > 0) {
      const k = this.count - 1;
      const s = this.slot(k);
      this.size -= unchecked(this.sizes[s]);
      unchecked((this.names[s] = ""));
      unchecked((this.values[s] = ""));
      this.count--;
    }
  }
}

/**
 * Decodes header blocks of one connection direction. Any failure is a connection error
 * (COMPRESSION_ERROR): the table may be left half-updated, so nothing more should be decoded.
 */
export class HpackDecoder {
  /** Why the last decode() failed, prefixed "hpack: ". */
  error: string = "";
  /** The SETTINGS_HEADER_TABLE_SIZE this side advertised: the most a size update may ask for. */
  readonly maxTableSize: i32;
  /** Bound on one block's decoded list, counted as name + value octets + 32 per field. */
  maxHeaderListSize: i32;
  /**
   * When set, only fields with these names reach the list: the others are still decoded and
   * checked (bounds, Huffman), but no string is made of their values (the client role reads
   * :status alone, of the four or five fields HCM answers with).
   */
  keepOnly: string[] | null = null;
  private table: DynamicTable;
  private huffman: HuffmanDecoder = new HuffmanDecoder();
  private scratch: ByteWriter = new ByteWriter(256);
  private buf: Uint8Array = new Uint8Array(0);
  private pos: i32 = 0;
  // The last string literal read: its text and its octet length on the wire (after Huffman).
  private str: string = "";
  private strLen: i32 = 0;

  constructor(maxTableSize: i32 = DEFAULT_TABLE_SIZE, maxHeaderListSize: i32 = DEFAULT_MAX_HEADER_LIST) {
    const limit = max(maxTableSize, 0);
    this.maxTableSize = limit;
    this.maxHeaderListSize = maxHeaderListSize;
    this.table = new DynamicTable(limit);
  }

  /** Entries in the dynamic table. */
  get dynamicCount(): i32 {
    return this.table.count;
  }

  /** Size of the dynamic table (section 4.1). */
  get dynamicSize(): i32 {
    return this.table.size;
  }

  /** Current maximum size of the dynamic table (the last size update, else the advertised limit). */
  get dynamicMaxSize(): i32 {
    return this.table.maxSize;
  }

  /** Name of dynamic entry `k` (0 = newest, index 62); "" when out of range. */
  dynamicName(k: i32): string {
    return <u32>k < <u32>this.table.count ? this.table.name(k) : "";
  }

  /** Value of dynamic entry `k` (0 = newest); "" when out of range. */
  dynamicValue(k: i32): string {
    return <u32>k < <u32>this.table.count ? this.table.value(k) : "";
  }

  /**
   * Decodes one complete header block (HEADERS plus CONTINUATIONs), appending its fields to
   * `out` in order. Returns false with `error` set on a malformed block; `out` then holds the
   * fields decoded before the fault.
   */
  decode(block: Uint8Array, out: HeaderList): bool {
    this.buf = block;
    this.pos = 0;
    const n = block.length;
    let fieldSeen = false;
    let listSize = 0;
    while (this.pos < n) {
      const at = this.pos;
      const b = <u32>unchecked(block[at]);
      let name: string;
      let value: string;
      let nameLen: i32;
      let valueLen: i32;
      /** Whether the field goes to `out` (keepOnly). */
      let listed: bool;
      if (b & 0x80) {
        // Indexed header field (section 6.1).
        const index = this.int(7);
        if (index < 0 || !this.checkIndex(index)) return false;
        if (index <= STATIC_COUNT) {
          name = staticName(index);
          value = staticValue(index);
          nameLen = name.length;
          valueLen = value.length;
        } else {
          const k = index - STATIC_COUNT - 1;
          name = this.table.name(k);
          value = this.table.value(k);
          nameLen = this.table.nameLen(k);
          valueLen = this.table.fieldLen(k) - nameLen;
        }
        listed = this.lists(name);
      } else if ((b & 0xe0) == 0x20) {
        // Dynamic table size update (section 6.3): only before the block's first field.
        if (fieldSeen) {
          this.error = "hpack: dynamic table size update after a header field, at offset " + at.toString();
          return false;
        }
        const size = this.int(5);
        if (size < 0) return false;
        if (size > this.maxTableSize) {
          this.error = "hpack: dynamic table size update to " + size.toString() + " exceeds the advertised limit " + this.maxTableSize.toString();
          return false;
        }
        this.table.resize(size);
        continue;
      } else {
        // Literal with incremental indexing (01, 6-bit prefix), without (0000) or never (0001).
        const indexing = (b & 0x40) != 0;
        const index = this.int(indexing ? 6 : 4);
        if (index < 0) return false;
        if (index == 0) {
          if (!this.string()) return false;
          name = this.str;
          nameLen = this.strLen;
        } else {
          if (!this.checkIndex(index)) return false;
          if (index <= STATIC_COUNT) {
            name = staticName(index);
            nameLen = name.length;
          } else {
            const k = index - STATIC_COUNT - 1;
            name = this.table.name(k);
            nameLen = this.table.nameLen(k);
          }
        }
        // A value nobody reads is checked, not made a string (unless a table keeps it).
        listed = this.lists(name);
        const wanted = listed || (indexing && this.table.maxSize > 0);
        if (!this.string(wanted)) return false;
        value = wanted ? this.str : "";
        valueLen = this.strLen;
        if (indexing) this.table.add(name, value, nameLen, valueLen);
      }
      fieldSeen = true;
      listSize += nameLen + valueLen + ENTRY_OVERHEAD;
      if (listSize > this.maxHeaderListSize) {
        this.error = "hpack: header list size " + listSize.toString() + " exceeds the limit " + this.maxHeaderListSize.toString();
        return false;
      }
      if (listed) out.add(name, value);
    }
    return true;
  }

  /** Whether a field named `name` goes to the list (keepOnly). */
  private lists(name: string): bool {
    const only = this.keepOnly;
    return only == null || only.includes(name);
  }

  /** True when `index` names a static or dynamic entry; sets `error` otherwise. */
  private checkIndex(index: i32): bool {
    if (index == 0) {
      this.error = "hpack: header index 0 is invalid";
      return false;
    }
    if (index > STATIC_COUNT + this.table.count) {
      this.error = "hpack: header index " + index.toString() + " is beyond the " + STATIC_COUNT.toString() +
        " static and " + this.table.count.toString() + " dynamic entries";
      return false;
    }
    return true;
  }

  /**
   * Reads an integer with an N-bit prefix (section 5.1) at `pos`, whose first byte exists.
   * Returns it (at most 2^28), or -1 with `error` set when truncated or too large.
   */
  private int(prefixBits: i32): i32 {
    const block = this.buf;
    const start = this.pos;
    const limit: u32 = (1 << prefixBits) - 1;
    let v = <u64>(<u32>unchecked(block[start]) & limit);
    let p = start + 1;
    if (v == <u64>limit) {
      let shift: u64 = 0;
      let i = 0;
      while (true) {
        if (i == MAX_CONTINUATION) {
          this.error = "hpack: integer at offset " + start.toString() + " has more than " + MAX_CONTINUATION.toString() + " continuation bytes";
          return -1;
        }
        if (p >= block.length) {
          this.error = "hpack: integer at offset " + start.toString() + " is truncated";
          return -1;
        }
        const c = <u64>unchecked(block[p++]);
        v += (c & 0x7f) << shift;
        shift += 7;
        i++;
        if ((c & 0x80) == 0) break;
      }
    }
    if (v > MAX_INT) {
      this.error = "hpack: integer " + v.toString() + " at offset " + start.toString() + " exceeds 2^28";
      return -1;
    }
    this.pos = p;
    return <i32>v;
  }

  /**
   * Reads a string literal (section 5.2) into `str`/`strLen`; with `keep` false, only checks it
   * (`str` is left alone). False with `error` set on a fault.
   */
  private string(keep: bool = true): bool {
    const block = this.buf;
    const at = this.pos;
    if (at >= block.length) {
      this.error = "hpack: string literal missing at offset " + at.toString();
      return false;
    }
    const huffman = (<u32>unchecked(block[at]) & 0x80) != 0;
    const len = this.int(7);
    if (len < 0) return false;
    const p = this.pos;
    const left = block.length - p;
    if (len > left) {
      this.error = "hpack: string length " + len.toString() + " at offset " + at.toString() + " exceeds the " + left.toString() + " bytes remaining";
      return false;
    }
    if (huffman) {
      const s = this.scratch;
      s.clear();
      if (!this.huffman.decode(block, p, p + len, s)) {
        this.error = this.huffman.error + ", at offset " + at.toString();
        return false;
      }
      if (keep) this.str = String.UTF8.decodeUnsafe(s.buf.dataStart, <usize>s.len);
      this.strLen = s.len;
    } else {
      if (keep) this.str = String.UTF8.decodeUnsafe(block.dataStart + <usize>p, <usize>len);
      this.strLen = len;
    }
    this.pos = p + len;
    return true;
  }
}

/** Appends an integer with an N-bit prefix (section 5.1); `first` holds the pattern bits above the prefix. */
export function writeHpackInt(w: ByteWriter, first: u32, prefixBits: i32, value: u32): void {
  const limit: u32 = (1 << prefixBits) - 1;
  if (value < limit) {
    w.u8(first | value);
    return;
  }
  w.u8(first | limit);
  value -= limit;
  while (value >= 0x80) {
    w.u8((value & 0x7f) | 0x80);
    value >>= 7;
  }
  w.u8(value);
}

/** Appends a string literal without Huffman coding. */
function writeString(w: ByteWriter, s: string): void {
  writeHpackInt(w, 0x00, 7, <u32>String.UTF8.byteLength(s));
  w.utf8(s);
}

/** Static index of each name's first entry, built on first use. */
let staticByName: Map<string, i32> | null = null;

/** First static index whose name is `name`, or 0. */
export function staticNameIndex(name: string): i32 {
  let m = staticByName;
  if (m == null) {
    m = new Map<string, i32>();
    for (let i = STATIC_COUNT; i >= 1; i--) m.set(staticName(i), i);
    staticByName = m;
  }
  return m.has(name) ? m.get(name) : 0;
}

/** Static index whose name and value are exactly these, or 0. */
export function staticFieldIndex(name: string, value: string): i32 {
  const first = staticNameIndex(name);
  if (first == 0) return 0;
  // Entries sharing a name are adjacent in the static table.
  for (let i = first; i <= STATIC_COUNT && staticName(i) == name; i++) {
    if (staticValue(i) == value) return i;
  }
  return 0;
}

/**
 * Encodes header lists without touching any dynamic table: a static index when name and value
 * match an entry exactly, else a literal without indexing (static name index when the name is
 * in the table), never Huffman-coded. Names must already be lower case (RFC 9113 section 8.2).
 */
export class HpackEncoder {
  /** A dynamic table size update to put at the start of the next block, or -1. */
  private pendingSizeUpdate: i32 = -1;
  private tableLimit: u32 = <u32>DEFAULT_TABLE_SIZE;

  /**
   * Takes the peer's SETTINGS_HEADER_TABLE_SIZE. A limit below the table size in force is
   * signalled by a size update at the start of the next block, as the peer's decoder may demand
   * (section 4.2) even though this encoder's table is always empty.
   */
  peerTableSize(limit: u32): void {
    if (limit < this.tableLimit) {
      this.tableLimit = limit;
      this.pendingSizeUpdate = <i32>min(limit, <u32>i32.MAX_VALUE);
    }
  }

  /** Appends the block for `names[i]: values[i]` to `w` (the lists have equal length). */
  encode(names: string[], values: string[], w: ByteWriter): void {
    if (this.pendingSizeUpdate >= 0) {
      writeHpackInt(w, 0x20, 5, <u32>this.pendingSizeUpdate);
      this.pendingSizeUpdate = -1;
    }
    const n = min(names.length, values.length);
    for (let i = 0; i < n; i++) {
      const name = unchecked(names[i]);
      const value = unchecked(values[i]);
      const full = staticFieldIndex(name, value);
      if (full != 0) {
        writeHpackInt(w, 0x80, 7, <u32>full);
        continue;
      }
      const nameIndex = staticNameIndex(name);
      writeHpackInt(w, 0x00, 4, <u32>nameIndex);
      if (nameIndex == 0) writeString(w, name);
      writeString(w, value);
    }
  }
}
