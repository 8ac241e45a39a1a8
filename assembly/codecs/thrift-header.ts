// Thrift's THeader transport (fbthrift's default; Apache Thrift's THeaderTransport in Go, C++,
// Java, Python): a framed message whose frame starts with a header of string key/values, which
// Meltemi routes on like Dubbo attachments. Envoy's thrift_proxy knows it as transport "header".
//
//   u32 frame length (what follows)
//   u16 0x0fff magic, u16 flags, u32 sequence number, u16 header length in 4-byte words
//   header: varint protocol id (0 binary, 2 compact), varint transform count, transform ids,
//           then info blocks: varint type (1 key/values, 2 persistent key/values), varint count,
//           count x (varint length, key bytes, varint length, value bytes); zeros pad to 4 bytes
//   the message, in the protocol the header names
//
// Transforms (zlib) change the message's bytes, which routing reads: refused with a clear error.
import { ByteReader, ByteWriter, Window } from "../core/bytes";
import { Metadata, KeyValue } from "../core/metadata";

export const HEADER_MAGIC: u32 = 0x0fff;
/** Bytes from the frame's start to its header: length, magic, flags, sequence number, header length. */
export const HEADER_START: i32 = 14;
export const HEADER_PROTOCOL_BINARY: u32 = 0;
export const HEADER_PROTOCOL_COMPACT: u32 = 2;
const INFO_KEYVALUE: u32 = 1;
const INFO_PERSISTENT_KEYVALUE: u32 = 2;
/** Header key/values one frame may carry into the metadata. */
const MAX_HEADERS: i32 = 64;

/**
 * Reads THeader frames of one connection; one per codec, its readers reused frame after frame.
 * After read(): the frame's protocol and where its message starts, or why it could not be read.
 */
export class THeaderReader {
  /** 0 binary, 2 compact. */
  protocolId: u32 = 0;
  /** Where the message starts in the frame. */
  payloadStart: i32 = 0;
  /** Why read() failed: one sentence naming the bad value. */
  error: string = "";
  /** The keys anything reads (Codec.readsOnly), as UTF-8; null: every key. */
  private wanted: Uint8Array[] | null = null;
  private readonly prefix: ByteReader = new ByteReader(new Uint8Array(0));
  private readonly header: ByteReader = new ByteReader(new Uint8Array(0));
  /** The header's bytes, so that its reader cannot run into the message. */
  private readonly headerView: Window = new Window();

  /** Only these keys become metadata (null: all); the others are skipped without a string. */
  readsOnly(keys: string[] | null): void {
    if (keys == null) {
      this.wanted = null;
      return;
    }
    const wanted: Uint8Array[] = [];
    for (let i = 0; i < keys.length; i++) wanted.push(Uint8Array.wrap(String.UTF8.encode(keys[i])));
    this.wanted = wanted;
  }

  /**
   * Reads the header of `frame` (a whole frame, its length first), putting the key/values
   * anything reads into `meta`. False, with `error`, when the bytes are not a THeader frame
   * Meltemi can read.
   */
  read(frame: Uint8Array, meta: Metadata): bool {
    return this.walk(frame, meta, null);
  }

  /**
   * The frame with `mutation` written into its header: its key/values in their order with the
   * ones `mutation` names overwritten, new keys after them in `mutation`'s order, then its
   * persistent key/values; the sequence number, flags and the message are copied untouched. Null
   * when the frame's header cannot be read, or would outgrow what THeader's 16-bit length can say.
   */
  rewrite(frame: Uint8Array, mutation: KeyValue[]): Uint8Array | null {
    const pairs = new HeaderPairs();
    if (!this.walk(frame, null, pairs)) return null;
    for (let i = 0; i < mutation.length; i++) pairs.set(mutation[i].key, mutation[i].value);
    const head = new ByteWriter(64);
    head.varint(this.protocolId);
    head.varint(0); // no transforms
    pairs.write(head, false);
    pairs.write(head, true);
    while ((head.len & 3) != 0) head.u8(0);
    if (head.len > 0xffff * 4) return null;
    const payload = frame.subarray(this.payloadStart);
    const w = new ByteWriter(HEADER_START + head.len + payload.length);
    w.u32(<u32>(HEADER_START - 4 + head.len + payload.length));
    w.bytes(frame.subarray(4, HEADER_START - 2)); // magic, flags, sequence number
    w.u16(<u32>(head.len >> 2));
    w.bytes(head.written());
    w.bytes(payload);
    return w.written(); // a fresh writer: the frame is its own, uncopied
  }

  /** Reads the header: wanted key/values into `meta` (when given), every one into `pairs` (when given). */
  private walk(frame: Uint8Array, meta: Metadata | null, pairs: HeaderPairs | null): bool {
    const r = this.prefix;
    r.reset(frame, 4);
    const magic = r.u16();
    r.u16(); // flags
    r.u32(); // sequence number (the message carries the seqid replies answer)
    const words = <i32>r.u16();
    if (r.failed) return this.fail("frame shorter than its THeader prefix");
    if (magic != HEADER_MAGIC) return this.fail("frame without the THeader magic 0x0fff (0x" + magic.toString(16) + ")");
    const end = HEADER_START + words * 4;
    if (end > frame.length) return this.fail("header of " + (words * 4).toString() + " bytes is longer than the frame");
    const h = this.header;
    h.reset(this.headerView.moveTo(frame, 0, end), HEADER_START);
    const protocolId = <u32>h.varint(5);
    if (h.failed) return this.fail("header without a protocol id");
    if (protocolId != HEADER_PROTOCOL_BINARY && protocolId != HEADER_PROTOCOL_COMPACT) {
      return this.fail("protocol id " + protocolId.toString() + " (binary is 0, compact 2)");
    }
    const transforms = <u32>h.varint(5);
    if (h.failed) return this.fail("header without a transform count");
    if (transforms != 0) return this.fail("transforms (zlib, ...) are not supported: the frame says " + transforms.toString());
    let kept = 0;
    while (h.remaining() > 0) {
      const type = <u32>h.varint(5);
      // Zeros pad the header; an info type this reader does not know ends it, as in Apache Thrift.
      if (h.failed || (type != INFO_KEYVALUE && type != INFO_PERSISTENT_KEYVALUE)) break;
      const count = <i32>h.varint(5);
      if (h.failed || count < 0) return this.fail("header key/value count");
      for (let i = 0; i < count; i++) {
        if (kept++ >= MAX_HEADERS) return this.fail("more than " + MAX_HEADERS.toString() + " header key/values");
        const keyLength = stringLength(h);
        const keyAt = h.pos;
        if (keyLength < 0 || !h.skip(keyLength)) return this.runsPast(i, count);
        const valueLength = stringLength(h);
        const valueAt = h.pos;
        if (valueLength < 0 || !h.skip(valueLength)) return this.runsPast(i, count);
        const keep = meta != null && keyLength > 0 && this.wants(h.data, keyAt, keyLength);
        if (!keep && pairs == null) continue;
        const key = utf8At(h.data, keyAt, keyLength);
        const value = utf8At(h.data, valueAt, valueLength);
        if (keep) meta!.set(key, value);
        if (pairs != null) pairs.add(key, value, type == INFO_PERSISTENT_KEYVALUE);
      }
    }
    this.protocolId = protocolId;
    this.payloadStart = end;
    return true;
  }

  /** Whether the `n` bytes at `at` of `data` are a key something reads. */
  private wants(data: Uint8Array, at: i32, n: i32): bool {
    const wanted = this.wanted;
    if (wanted == null) return true;
    for (let k = 0; k < wanted.length; k++) {
      const w = unchecked(wanted[k]);
      if (w.length == n && memory.compare(w.dataStart, data.dataStart + <usize>at, <usize>n) == 0) return true;
    }
    return false;
  }

  private runsPast(i: i32, count: i32): bool {
    return this.fail("header key/value " + i.toString() + " of " + count.toString() + " runs past the header");
  }

  private fail(why: string): bool {
    this.error = "thrift: THeader " + why;
    return false;
  }
}

/** A string's varint length, or -1 when the varint is bad. */
function stringLength(r: ByteReader): i32 {
  const n = <i32>r.varint(5);
  return r.failed ? -1 : n;
}

function utf8At(data: Uint8Array, at: i32, n: i32): string {
  return String.UTF8.decodeUnsafe(data.dataStart + <usize>at, <usize>n);
}

/**
 * Starts a THeader frame in `w` for a message in protocol `protocolId` with sequence number
 * `seqid`: no transforms, no key/values. The caller writes the message, then patches the frame's
 * length at 0 (w.patchU32(0, w.len - 4)).
 */
export function beginTHeaderFrame(w: ByteWriter, protocolId: u32, seqid: u32): void {
  w.u32(0); // frame length, patched by the caller
  w.u16(HEADER_MAGIC);
  w.u16(0); // flags
  w.u32(seqid);
  w.u16(1); // header length: one word
  w.u8(protocolId);
  w.u8(0); // no transforms
  w.u8(0); // padding to the word
  w.u8(0);
}

/** A header's key/values in their order, persistent ones apart (as their own info block). */
class HeaderPairs {
  keys: string[] = [];
  values: string[] = [];
  persistent: bool[] = [];

  add(key: string, value: string, persistent: bool): void {
    this.keys.push(key);
    this.values.push(value);
    this.persistent.push(persistent);
  }

  /** Sets `key` to `value`: in place where the header has it, else as a new key/value. */
  set(key: string, value: string): void {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) {
        this.values[i] = value;
        return;
      }
    }
    this.add(key, value, false);
  }

  /** Writes the info block of the pairs whose persistence is `persistent`, if there are any. */
  write(w: ByteWriter, persistent: bool): void {
    let n = 0;
    for (let i = 0; i < this.keys.length; i++) if (this.persistent[i] == persistent) n++;
    if (n == 0) return;
    w.varint(persistent ? INFO_PERSISTENT_KEYVALUE : INFO_KEYVALUE);
    w.varint(<u64>n);
    for (let i = 0; i < this.keys.length; i++) {
      if (this.persistent[i] != persistent) continue;
      writeString(w, this.keys[i]);
      writeString(w, this.values[i]);
    }
  }
}

function writeString(w: ByteWriter, s: string): void {
  w.varint(<u64>String.UTF8.byteLength(s));
  w.utf8(s);
}
