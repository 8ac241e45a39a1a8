// Apache Thrift: binary and compact protocols over framed, unframed (buffered) or THeader
// transports (thrift-header.ts: its key/values become metadata), with multiplexed `Service:method`
// names. Transport and protocol are detected from the first bytes of each stream, as Envoy's
// thrift_proxy does, unless the config pins them; under THeader each frame names its protocol.
import { Codec, CodecFactory, ErrorCode, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { Metadata, MessageKind, KeyValue } from "../core/metadata";
import { ByteReader, ByteWriter, peekU32 } from "../core/bytes";
import { NameMemo } from "../util/name-memo";
import { THeaderReader, beginTHeaderFrame, HEADER_MAGIC, HEADER_PROTOCOL_BINARY, HEADER_PROTOCOL_COMPACT } from "./thrift-header";

export const enum Transport { Auto = 0, Framed = 1, Unframed = 2, Header = 3 }
export const enum Protocol { Auto = 0, Binary = 1, Compact = 2 }

const BINARY_VERSION_1: u32 = 0x80010000;
const BINARY_VERSION_MASK: u32 = 0xffff0000;
const COMPACT_PROTOCOL_ID: u32 = 0x82;
const COMPACT_VERSION: u32 = 1;
/** Nesting deeper than this is treated as hostile. */
const MAX_DEPTH: i32 = 64;

// Message types on the wire.
const T_CALL: u32 = 1;
const T_REPLY: u32 = 2;
const T_EXCEPTION: u32 = 3;
const T_ONEWAY: u32 = 4;

// TApplicationException types Meltemi replies with.
const TAPP_UNKNOWN: i32 = 0;
const TAPP_INTERNAL_ERROR: i32 = 6;

/** The method the local-reply probe calls: no service defines it. */
const PROBE_METHOD = "__meltemi_local_reply__";

/** Bytes of a framed message that decode() reads: length, header with the name, first field. */
const DECODE_PREFIX: i32 = 256;

// skip() outcomes besides "ok".
const SKIP_OK: i32 = 0;
const SKIP_MORE: i32 = 1;
const SKIP_BAD: i32 = 2;

export class ThriftCodec extends Codec {
  transport: Transport;
  protocol: Protocol;
  private r: ByteReader = new ByteReader(new Uint8Array(0));
  private w: ByteWriter = new ByteWriter(128);
  /** Message names seen lately, split into service and method once (util/name-memo.ts). */
  private names: NameMemo = new NameMemo();
  /** Reads each frame's THeader; made when the transport turns out THeader (most connections never need one). */
  private headerReader: THeaderReader | null = null;
  /** readsOnly's keys, for the THeader reader once there is one. */
  private keysRead: string[] | null = null;

  constructor(private readonly givenTransport: Transport, private readonly givenProtocol: Protocol) {
    super();
    this.transport = givenTransport;
    this.protocol = givenProtocol;
  }

  restartStream(): void {
    this.transport = this.givenTransport;
    this.protocol = this.givenProtocol;
  }

  /** Framed messages say their length up front and carry the name and seqid first. */
  decodePrefix(): i32 {
    return this.transport == Transport.Framed && this.protocol != Protocol.Auto ? DECODE_PREFIX : 0;
  }

  frameSize(data: Uint8Array, maxFrame: i32): i32 {
    if (this.transport == Transport.Auto || (this.protocol == Protocol.Auto && this.transport != Transport.Header)) {
      const detected = this.detect(data);
      if (detected != 1) return detected;
    }
    if (this.transport == Transport.Framed || this.transport == Transport.Header) {
      if (data.length < 4) return NEED_MORE;
      const len = peekU32(data, 0);
      if (len > <u32>(maxFrame - 4)) {
        return this.frameTooLarge("thrift: frame length " + len.toString(), maxFrame);
      }
      if (len < 4) {
        this.error = "thrift: frame length " + len.toString() + " is too short for a message";
        return FRAME_ERROR;
      }
      return <i32>len + 4;
    }
    // Unframed: the message's end is known only by walking it.
    const r = this.r;
    r.reset(data, 0);
    const outcome = this.skipMessage(r);
    if (outcome == SKIP_OK) {
      if (r.pos > maxFrame) return this.tooLarge(r.pos, maxFrame);
      return r.pos;
    }
    if (outcome == SKIP_BAD) return FRAME_ERROR;
    if (data.length > maxFrame) return this.tooLarge(data.length, maxFrame);
    return NEED_MORE;
  }

  private tooLarge(size: i32, maxFrame: i32): i32 {
    return this.frameTooLarge("thrift: unframed message of at least " + size.toString() + " bytes", maxFrame);
  }

  /** Fixes transport and protocol from the first bytes: 1 when known, else NEED_MORE or FRAME_ERROR. */
  private detect(data: Uint8Array): i32 {
    if (data.length < 1) return NEED_MORE;
    const b0 = <u32>data[0];
    if (this.transport != Transport.Framed && (b0 == 0x80 || b0 == COMPACT_PROTOCOL_ID)) {
      this.transport = Transport.Unframed;
      if (this.protocol == Protocol.Auto) this.protocol = b0 == 0x80 ? Protocol.Binary : Protocol.Compact;
      return 1;
    }
    if (this.transport == Transport.Unframed) {
      this.error = "thrift: unframed stream does not start with a binary or compact message, first byte 0x" + hex(data, 1);
      return FRAME_ERROR;
    }
    if (data.length < 6) return NEED_MORE;
    const b4 = <u32>data[4];
    if (b4 == 0x80 || b4 == COMPACT_PROTOCOL_ID) {
      this.transport = Transport.Framed;
      if (this.protocol == Protocol.Auto) this.protocol = b4 == 0x80 ? Protocol.Binary : Protocol.Compact;
      return 1;
    }
    if (((b4 << 8) | <u32>data[5]) == HEADER_MAGIC) {
      this.transport = Transport.Header; // each frame's header names its protocol
      return 1;
    }
    this.error = "thrift: unknown transport or protocol, first bytes 0x" + hex(data, 6);
    return FRAME_ERROR;
  }

  decode(frame: Uint8Array, meta: Metadata): bool {
    const r = this.r;
    if (this.transport == Transport.Header) {
      const header = this.header();
      if (!header.read(frame, meta)) {
        this.error = header.error;
        return false;
      }
      this.protocol = header.protocolId == HEADER_PROTOCOL_COMPACT ? Protocol.Compact : Protocol.Binary;
      r.reset(frame, header.payloadStart);
    } else {
      r.reset(frame, this.transport == Transport.Framed ? 4 : 0);
    }
    let type: u32 = 0;
    let seqid: u32 = 0;
    if (this.protocol == Protocol.Binary) {
      const version = r.u32();
      if ((version & BINARY_VERSION_MASK) != BINARY_VERSION_1) {
        this.error = "thrift: bad binary protocol version 0x" + version.toString(16);
        return false;
      }
      type = version & 0xff;
      const nameLen = r.i32();
      if (nameLen < 0 || nameLen > r.remaining()) return this.fail("method name length " + nameLen.toString());
      this.readName(r, nameLen);
      seqid = r.u32();
    } else {
      if (r.u8() != COMPACT_PROTOCOL_ID) return this.fail("compact protocol id");
      const vt = r.u8();
      if ((vt & 0x1f) != COMPACT_VERSION) {
        this.error = "thrift: bad compact protocol version " + (vt & 0x1f).toString();
        return false;
      }
      type = (vt >> 5) & 0x07;
      seqid = <u32>r.varint(5);
      const nameLen = <i32>r.varint(5);
      if (nameLen < 0 || nameLen > r.remaining()) return this.fail("method name length " + nameLen.toString());
      this.readName(r, nameLen);
    }
    if (r.failed) return this.fail("message header");

    meta.requestId = <u64>seqid;
    if (type == T_CALL) {
      meta.kind = MessageKind.Call;
    } else if (type == T_ONEWAY) {
      meta.kind = MessageKind.Oneway;
      meta.expectsReply = false;
    } else if (type == T_REPLY) {
      meta.isRequest = false;
      meta.expectsReply = false;
      // A reply whose result struct starts with a field other than 0 carries a declared exception.
      meta.kind = this.firstFieldId(r) == 0 ? MessageKind.Reply : MessageKind.Exception;
    } else if (type == T_EXCEPTION) {
      meta.isRequest = false;
      meta.expectsReply = false;
      meta.kind = MessageKind.Exception;
    } else {
      this.error = "thrift: unknown message type " + type.toString();
      return false;
    }
    const names = this.names;
    if (names.first != null) meta.set("service", names.first!);
    meta.set("method", names.second);
    return true;
  }

  /**
   * Reads the message name (`n` bytes, checked in range) into names.first (the service of a
   * multiplexed `Service:method`, else null) and names.second (the method).
   */
  private readName(r: ByteReader, n: i32): void {
    const names = this.names;
    const at = r.data.dataStart + <usize>r.pos;
    if (names.find(at, n)) {
      r.pos += n;
      return;
    }
    const name = r.utf8(n);
    const colon = name.indexOf(":");
    if (colon >= 0) names.remember(at, n, name.substring(0, colon), name.substring(colon + 1));
    else names.remember(at, n, null, name);
  }

  private fail(what: string): bool {
    this.error = "thrift: truncated or invalid " + what;
    return false;
  }

  /** Id of the first field of the struct at the reader, or -1 for an empty struct or bad bytes. */
  private firstFieldId(r: ByteReader): i32 {
    const b = r.u8();
    if (r.failed) return -1;
    if (this.protocol == Protocol.Binary) {
      if (b == 0) return -1;
      return r.i16();
    }
    if ((b & 0x0f) == 0) return -1;
    const delta = <i32>(b >> 4);
    if (delta != 0) return delta;
    return zigzag32(<u32>r.varint(3));
  }

  errorReply(meta: Metadata, code: ErrorCode, message: string): Uint8Array {
    const method = meta.get("method");
    const name = method != null ? method : "";
    const w = this.w;
    const framed = this.begin(w, meta);
    const tappType = code == ErrorCode.BadRequest ? TAPP_UNKNOWN : TAPP_INTERNAL_ERROR;
    if (this.protocol == Protocol.Compact) {
      w.u8(COMPACT_PROTOCOL_ID);
      w.u8(COMPACT_VERSION | (T_EXCEPTION << 5));
      w.varint(<u64>(<u32>meta.requestId));
      w.varint(<u64>String.UTF8.byteLength(name));
      w.utf8(name);
      w.u8(0x18); // field 1, binary
      w.varint(<u64>String.UTF8.byteLength(message));
      w.utf8(message);
      w.u8(0x15); // field 2 (delta 1), i32
      w.varint(<u64>((tappType << 1) ^ (tappType >> 31)));
      w.u8(0); // stop
    } else {
      w.u32(BINARY_VERSION_1 | T_EXCEPTION);
      w.u32(<u32>String.UTF8.byteLength(name));
      w.utf8(name);
      w.u32(<u32>meta.requestId);
      w.u8(11); // string
      w.u16(1);
      w.u32(<u32>String.UTF8.byteLength(message));
      w.utf8(message);
      w.u8(8); // i32
      w.u16(2);
      w.u32(<u32>tappType);
      w.u8(0); // stop
    }
    if (framed) w.patchU32(0, <u32>(w.len - 4));
    return w.toBytes();
  }

  /** Under THeader, only the key/values something reads become metadata. */
  readsOnly(keys: string[] | null): void {
    this.keysRead = keys;
    const reader = this.headerReader;
    if (reader != null) reader.readsOnly(keys);
  }

  private header(): THeaderReader {
    let reader = this.headerReader;
    if (reader == null) {
      reader = new THeaderReader();
      reader.readsOnly(this.keysRead);
      this.headerReader = reader;
    }
    return reader;
  }

  /** Only THeader frames carry key/values: a config must pin codecOptions.transport: header to mutate. */
  canMutate(): bool {
    return this.transport == Transport.Header;
  }

  /** The frame with `mutation` in its THeader key/values (thrift-header.ts), the message untouched. */
  mutate(frame: Uint8Array, meta: Metadata, mutation: KeyValue[]): Uint8Array | null {
    if (this.transport != Transport.Header) return null;
    return this.header().rewrite(frame, mutation);
  }

  /**
   * Starts a message of this connection's transport in `w`: a length to patch (framed, THeader
   * with the request's seqid and protocol) or nothing (unframed). True when the length follows.
   */
  private begin(w: ByteWriter, meta: Metadata): bool {
    w.clear();
    if (this.transport == Transport.Header) {
      beginTHeaderFrame(w, this.protocol == Protocol.Compact ? HEADER_PROTOCOL_COMPACT : HEADER_PROTOCOL_BINARY, <u32>meta.requestId);
      return true;
    }
    if (this.transport != Transport.Framed) return false;
    w.u32(0);
    return true;
  }

  /**
   * A call to a method no server has, with the request's seqid: Apache Thrift servers answer it at
   * once with TApplicationException UNKNOWN_METHOD (multiplexed ones, under the same service).
   */
  localReplyProbe(meta: Metadata): Uint8Array | null {
    const service = meta.get("service");
    const name = service != null ? service + ":" + PROBE_METHOD : PROBE_METHOD;
    const w = this.w;
    const framed = this.begin(w, meta);
    if (this.protocol == Protocol.Compact) {
      w.u8(COMPACT_PROTOCOL_ID);
      w.u8(COMPACT_VERSION | (T_CALL << 5));
      w.varint(<u64>(<u32>meta.requestId));
      w.varint(<u64>String.UTF8.byteLength(name));
      w.utf8(name);
    } else {
      w.u32(BINARY_VERSION_1 | T_CALL);
      w.u32(<u32>String.UTF8.byteLength(name));
      w.utf8(name);
      w.u32(<u32>meta.requestId);
    }
    w.u8(0); // empty argument struct
    if (framed) w.patchU32(0, <u32>(w.len - 4));
    return w.toBytes();
  }

  // ---- walking unframed messages ----

  private skipMessage(r: ByteReader): i32 {
    if (this.protocol == Protocol.Binary) {
      const version = r.u32();
      if (r.failed) return SKIP_MORE;
      if ((version & BINARY_VERSION_MASK) != BINARY_VERSION_1) {
        this.error = "thrift: bad binary protocol version 0x" + version.toString(16);
        return SKIP_BAD;
      }
      const nameLen = r.i32();
      if (r.failed) return SKIP_MORE;
      if (nameLen < 0) return this.bad("negative method name length " + nameLen.toString());
      r.skip(nameLen);
      r.skip(4); // seqid
      if (r.failed) return SKIP_MORE;
      return this.skipBinary(r, 12, 0);
    }
    if (r.u8() != COMPACT_PROTOCOL_ID) return r.failed ? SKIP_MORE : this.bad("compact protocol id");
    const vt = r.u8();
    r.varint(5); // seqid
    const nameLen = <i64>r.varint(5);
    if (r.failed) return SKIP_MORE;
    if ((vt & 0x1f) != COMPACT_VERSION) return this.bad("compact protocol version " + (vt & 0x1f).toString());
    if (nameLen > <i64>i32.MAX_VALUE) return this.bad("method name length " + nameLen.toString());
    if (!r.skip(<i32>nameLen)) return SKIP_MORE;
    return this.skipCompact(r, 12, 0);
  }

  private bad(what: string): i32 {
    this.error = "thrift: " + what;
    return SKIP_BAD;
  }

  /** Skips one binary-protocol value of wire type `t`. Every element consumes at least one byte. */
  private skipBinary(r: ByteReader, t: u32, depth: i32): i32 {
    if (depth > MAX_DEPTH) return this.bad("nesting deeper than " + MAX_DEPTH.toString());
    switch (t) {
      case 2: case 3: r.skip(1); break; // bool, byte
      case 6: r.skip(2); break; // i16
      case 8: r.skip(4); break; // i32
      case 4: case 10: r.skip(8); break; // double, i64
      case 16: r.skip(16); break; // uuid
      case 11: { // string / binary
        const n = r.i32();
        if (r.failed) return SKIP_MORE;
        if (n < 0) return this.bad("negative string length " + n.toString());
        r.skip(n);
        break;
      }
      case 12: { // struct
        while (true) {
          const ft = r.u8();
          if (r.failed) return SKIP_MORE;
          if (ft == 0) break;
          r.skip(2);
          const s = this.skipBinary(r, ft, depth + 1);
          if (s != SKIP_OK) return s;
        }
        break;
      }
      case 13: { // map
        const kt = r.u8();
        const vt = r.u8();
        const n = r.i32();
        if (r.failed) return SKIP_MORE;
        if (n < 0) return this.bad("negative map size " + n.toString());
        for (let i = 0; i < n; i++) {
          let s = this.skipBinary(r, kt, depth + 1);
          if (s != SKIP_OK) return s;
          s = this.skipBinary(r, vt, depth + 1);
          if (s != SKIP_OK) return s;
        }
        break;
      }
      case 14: case 15: { // set, list
        const et = r.u8();
        const n = r.i32();
        if (r.failed) return SKIP_MORE;
        if (n < 0) return this.bad("negative list size " + n.toString());
        for (let i = 0; i < n; i++) {
          const s = this.skipBinary(r, et, depth + 1);
          if (s != SKIP_OK) return s;
        }
        break;
      }
      default:
        return this.bad("unknown binary field type " + t.toString());
    }
    return r.failed ? SKIP_MORE : SKIP_OK;
  }

  /** Skips one compact-protocol value of compact type `t` (inside a collection when `inList`). */
  private skipCompact(r: ByteReader, t: u32, depth: i32, inList: bool = false): i32 {
    if (depth > MAX_DEPTH) return this.bad("nesting deeper than " + MAX_DEPTH.toString());
    switch (t) {
      case 1: case 2: if (inList) r.skip(1); break; // bool: in a field header, else one byte
      case 3: r.skip(1); break; // byte
      case 4: case 5: case 6: r.varint(10); break; // i16, i32, i64
      case 7: r.skip(8); break; // double
      case 13: r.skip(16); break; // uuid
      case 8: { // binary
        const n = r.varint(5);
        if (r.failed) return SKIP_MORE;
        if (n > <u64>i32.MAX_VALUE) return this.bad("string length " + n.toString());
        r.skip(<i32>n);
        break;
      }
      case 12: { // struct
        while (true) {
          const h = r.u8();
          if (r.failed) return SKIP_MORE;
          if (h == 0) break;
          if ((h >> 4) == 0) r.varint(3); // long-form field id
          const s = this.skipCompact(r, h & 0x0f, depth + 1);
          if (s != SKIP_OK) return s;
        }
        break;
      }
      case 9: case 10: { // list, set
        const h = r.u8();
        let n: u64 = <u64>(h >> 4);
        if (n == 15) n = r.varint(5);
        if (r.failed) return SKIP_MORE;
        if (n > <u64>i32.MAX_VALUE) return this.bad("list size " + n.toString());
        const et = h & 0x0f;
        for (let i: u64 = 0; i < n; i++) {
          const s = this.skipCompact(r, et, depth + 1, true);
          if (s != SKIP_OK) return s;
        }
        break;
      }
      case 11: { // map
        const n = r.varint(5);
        if (r.failed) return SKIP_MORE;
        if (n > <u64>i32.MAX_VALUE) return this.bad("map size " + n.toString());
        if (n == 0) break;
        const kv = r.u8();
        if (r.failed) return SKIP_MORE;
        for (let i: u64 = 0; i < n; i++) {
          let s = this.skipCompact(r, kv >> 4, depth + 1, true);
          if (s != SKIP_OK) return s;
          s = this.skipCompact(r, kv & 0x0f, depth + 1, true);
          if (s != SKIP_OK) return s;
        }
        break;
      }
      default:
        return this.bad("unknown compact field type " + t.toString());
    }
    return r.failed ? SKIP_MORE : SKIP_OK;
  }
}

function zigzag32(n: u32): i32 {
  return <i32>(n >>> 1) ^ -(<i32>(n & 1));
}

function hex(data: Uint8Array, n: i32): string {
  let s = "";
  const m = min(n, data.length);
  for (let i = 0; i < m; i++) {
    const b = <u32>data[i];
    if (b < 16) s += "0";
    s += b.toString(16);
  }
  return s;
}

export class ThriftCodecFactory extends CodecFactory {
  name(): string {
    return "thrift";
  }

  mutationHint(): string {
    return " unless codecOptions.transport is header (THeader key/values)";
  }

  checkOption(key: string, value: string): string | null {
    if (key == "transport") {
      if (value == "auto" || value == "framed" || value == "unframed" || value == "buffered" || value == "header") return null;
      return "expected auto, framed, unframed or header, got \"" + value + "\"";
    }
    if (key == "protocol") {
      if (value == "auto" || value == "binary" || value == "compact") return null;
      return "expected auto, binary or compact, got \"" + value + "\"";
    }
    return "unknown option for codec thrift (known: transport, protocol)";
  }

  create(options: Map<string, string>): Codec {
    let transport = Transport.Auto;
    let protocol = Protocol.Auto;
    if (options.has("transport")) {
      const t = options.get("transport");
      if (t == "framed") transport = Transport.Framed;
      else if (t == "unframed" || t == "buffered") transport = Transport.Unframed;
      else if (t == "header") transport = Transport.Header;
    }
    if (options.has("protocol")) {
      const p = options.get("protocol");
      if (p == "binary") protocol = Protocol.Binary;
      else if (p == "compact") protocol = Protocol.Compact;
    }
    return new ThriftCodec(transport, protocol);
  }
}
