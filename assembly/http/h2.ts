// HTTP/2 framing (RFC 9113 sections 4 and 6) for the client role: writers for the frames the role
// sends (it never resets a stream or sends GOAWAY: it closes the connection), and a reader for what a server (Envoy's HCM, nghttp2) sends back, cut from a byte stream
// that arrives in arbitrary chunks. No flow control or stream state here: the role keeps those.
import { ByteWriter, peekU32 } from "../core/bytes";

export const enum FrameType {
  DATA = 0,
  HEADERS = 1,
  PRIORITY = 2,
  RST_STREAM = 3,
  SETTINGS = 4,
  PUSH_PROMISE = 5,
  PING = 6,
  GOAWAY = 7,
  WINDOW_UPDATE = 8,
  CONTINUATION = 9,
}

export const enum Flag {
  END_STREAM = 0x1,
  ACK = 0x1,
  END_HEADERS = 0x4,
  PADDED = 0x8,
  PRIORITY = 0x20,
}

export const enum SettingId {
  HEADER_TABLE_SIZE = 1,
  ENABLE_PUSH = 2,
  MAX_CONCURRENT_STREAMS = 3,
  INITIAL_WINDOW_SIZE = 4,
  MAX_FRAME_SIZE = 5,
  MAX_HEADER_LIST_SIZE = 6,
}

export const enum H2Error {
  NO_ERROR = 0x0,
  PROTOCOL_ERROR = 0x1,
  INTERNAL_ERROR = 0x2,
  FLOW_CONTROL_ERROR = 0x3,
  SETTINGS_TIMEOUT = 0x4,
  STREAM_CLOSED = 0x5,
  FRAME_SIZE_ERROR = 0x6,
  REFUSED_STREAM = 0x7,
  CANCEL = 0x8,
  COMPRESSION_ERROR = 0x9,
  CONNECT_ERROR = 0xa,
  ENHANCE_YOUR_CALM = 0xb,
  INADEQUATE_SECURITY = 0xc,
  HTTP_1_1_REQUIRED = 0xd,
}

/** The 24 octets a client sends first (section 3.4), before its SETTINGS. */
export const CLIENT_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
export const FRAME_HEADER_SIZE: i32 = 9;
/** SETTINGS_MAX_FRAME_SIZE until a peer says otherwise, and its smallest legal value. */
export const DEFAULT_MAX_FRAME_SIZE: i32 = 16384;
/** The largest SETTINGS_MAX_FRAME_SIZE (2^24 - 1). */
export const MAX_FRAME_SIZE_LIMIT: i32 = 16777215;
export const DEFAULT_WINDOW_SIZE: i32 = 65535;
/** Default bound on one header block assembled from HEADERS and CONTINUATIONs. */
export const DEFAULT_MAX_HEADER_BLOCK: i32 = 256 * 1024;

const STREAM_MASK: u32 = 0x7fffffff;

/** Appends a frame header. */
export function writeFrameHeader(w: ByteWriter, length: i32, type: i32, flags: i32, streamId: u32): void {
  w.u8((<u32>length >> 16) & 0xff);
  w.u16(<u32>length & 0xffff);
  w.u8(<u32>type);
  w.u8(<u32>flags);
  w.u32(streamId & STREAM_MASK);
}

export function writePreface(w: ByteWriter): void {
  w.utf8(CLIENT_PREFACE);
}

/** Appends a SETTINGS frame with `ids[i] = values[i]` (the lists have equal length). */
export function writeSettings(w: ByteWriter, ids: u16[], values: u32[]): void {
  const n = min(ids.length, values.length);
  writeFrameHeader(w, n * 6, FrameType.SETTINGS, 0, 0);
  for (let i = 0; i < n; i++) {
    w.u16(<u32>unchecked(ids[i]));
    w.u32(unchecked(values[i]));
  }
}

export function writeSettingsAck(w: ByteWriter): void {
  writeFrameHeader(w, 0, FrameType.SETTINGS, Flag.ACK, 0);
}

/** Appends a WINDOW_UPDATE; stream 0 is the connection window. `increment` is 1..2^31-1. */
export function writeWindowUpdate(w: ByteWriter, streamId: u32, increment: u32): void {
  writeFrameHeader(w, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  w.u32(increment & STREAM_MASK);
}

/** A frame payload bound: the peer's SETTINGS_MAX_FRAME_SIZE, the default when not positive. */
@inline function frameLimit(maxFrameSize: i32): i32 {
  return maxFrameSize > 0 ? min(maxFrameSize, MAX_FRAME_SIZE_LIMIT) : DEFAULT_MAX_FRAME_SIZE;
}

/**
 * Appends `block` as one HEADERS frame, or HEADERS then CONTINUATIONs when it exceeds
 * `maxFrameSize`; END_HEADERS on the last, END_STREAM (on the HEADERS) when `endStream`.
 */
export function writeHeaders(w: ByteWriter, streamId: u32, block: Uint8Array, endStream: bool, maxFrameSize: i32): void {
  const limit = frameLimit(maxFrameSize);
  const total = block.length;
  let off = 0;
  let type = <i32>FrameType.HEADERS;
  let flags = endStream ? <i32>Flag.END_STREAM : 0;
  do {
    const n = min(limit, total - off);
    const last = off + n == total;
    writeFrameHeader(w, n, type, last ? flags | Flag.END_HEADERS : flags, streamId);
    if (n > 0) w.bytes(block.subarray(off, off + n));
    off += n;
    type = FrameType.CONTINUATION;
    flags = 0;
  } while (off < total);
}

/**
 * Appends `data` as DATA frames of at most `maxFrameSize` bytes, END_STREAM on the last when
 * `endStream`; empty data writes one empty frame (with END_STREAM, or nothing when not endStream).
 * Flow control is the caller's: it passes only what the windows allow.
 */
export function writeData(w: ByteWriter, streamId: u32, data: Uint8Array, endStream: bool, maxFrameSize: i32): void {
  const limit = frameLimit(maxFrameSize);
  const total = data.length;
  if (total == 0) {
    if (endStream) writeFrameHeader(w, 0, FrameType.DATA, Flag.END_STREAM, streamId);
    return;
  }
  for (let off = 0; off < total; ) {
    const n = min(limit, total - off);
    const last = off + n == total;
    writeFrameHeader(w, n, FrameType.DATA, last && endStream ? Flag.END_STREAM : 0, streamId);
    w.bytes(data.subarray(off, off + n));
    off += n;
  }
}

export function writePing(w: ByteWriter, ack: bool, opaque: u64): void {
  writeFrameHeader(w, 8, FrameType.PING, ack ? Flag.ACK : 0, 0);
  w.u64(opaque);
}

// Payload accessors for frames the reader delivered (it checked their lengths); a payload too
// short for a field reads as 0.

/** Entries in a SETTINGS payload. */
export function settingsCount(payload: Uint8Array): i32 {
  return payload.length / 6;
}

/** Identifier of SETTINGS entry `i`, or 0 when out of range. */
export function settingId(payload: Uint8Array, i: i32): u32 {
  if (<u32>i >= <u32>settingsCount(payload)) return 0;
  return <u32>bswap<u16>(load<u16>(payload.dataStart + <usize>(i * 6)));
}

/** Value of SETTINGS entry `i`, or 0 when out of range. */
export function settingValue(payload: Uint8Array, i: i32): u32 {
  if (<u32>i >= <u32>settingsCount(payload)) return 0;
  return peekU32(payload, i * 6 + 2);
}

/** A WINDOW_UPDATE's increment (31 bits; 0 is the caller's PROTOCOL_ERROR to raise). */
export function windowIncrement(payload: Uint8Array): u32 {
  return payload.length >= 4 ? peekU32(payload, 0) & STREAM_MASK : 0;
}

export function rstErrorCode(payload: Uint8Array): u32 {
  return payload.length >= 4 ? peekU32(payload, 0) : 0;
}

export function goawayLastStreamId(payload: Uint8Array): u32 {
  return payload.length >= 8 ? peekU32(payload, 0) & STREAM_MASK : 0;
}

export function goawayErrorCode(payload: Uint8Array): u32 {
  return payload.length >= 8 ? peekU32(payload, 4) : 0;
}

/** A GOAWAY's debug data (a view). */
export function goawayDebug(payload: Uint8Array): Uint8Array {
  return payload.subarray(min(8, payload.length));
}

/** What the reader holds between chunks: nothing of the caller's (see begin()). */
const NO_CHUNK = new Uint8Array(0);

/**
 * Cuts frames from the bytes a server writes. Call begin() with each chunk, then next() until
 * it returns 0; bytes of an incomplete frame are carried to the next chunk (copied only then).
 *
 * Delivered frames are validated as RFC 9113 section 6 requires of their length and stream:
 * padding and HEADERS priority fields are stripped (PADDED and PRIORITY cleared), HEADERS plus
 * CONTINUATIONs come out as one HEADERS with END_HEADERS, unknown types come out as they are.
 * PUSH_PROMISE is an error (a client that sets SETTINGS_ENABLE_PUSH 0 must not receive one).
 * Every error is a connection error: `errorCode` is its HTTP/2 error code (the role closes the connection), and next()
 * keeps returning -1.
 */
export class H2FrameReader {
  /** The delivered frame. `payload` is a view, valid until the next next() or begin(). */
  type: i32 = 0;
  flags: i32 = 0;
  streamId: u32 = 0;
  payload: Uint8Array = new Uint8Array(0);
  /** Why next() returned -1, prefixed "h2: ", and the error code for GOAWAY. */
  error: string = "";
  errorCode: u32 = H2Error.NO_ERROR;
  /** The SETTINGS_MAX_FRAME_SIZE this side advertised: longer frames are refused unread. */
  maxFrameSize: i32;
  /** Bound on one assembled header block. */
  maxHeaderBlock: i32;

  private chunk: Uint8Array = NO_CHUNK;
  private pos: i32 = 0;
  /** Bytes carried from earlier chunks: [carryStart, carryEnd) of `carry`. */
  private carry: Uint8Array = new Uint8Array(0);
  private carryStart: i32 = 0;
  private carryEnd: i32 = 0;
  /** A header block awaiting CONTINUATION: its stream, its HEADERS flags, its fragments so far. */
  private assembling: bool = false;
  private blockStream: u32 = 0;
  private blockFlags: i32 = 0;
  private block: ByteWriter = new ByteWriter(256);
  private failed: bool = false;

  constructor(maxFrameSize: i32 = DEFAULT_MAX_FRAME_SIZE, maxHeaderBlock: i32 = DEFAULT_MAX_HEADER_BLOCK) {
    this.maxFrameSize = maxFrameSize;
    this.maxHeaderBlock = maxHeaderBlock;
  }

  /**
   * Starts on the next chunk. Bytes of the previous chunk that next() did not reach are kept
   * first, so a chunk the caller owns may be left early. abi.getDataBuffer's chunks may not: they
   * are one view, which the next read moves onto its own bytes. Read those until next() returns 0,
   * when the reader lets go of the chunk (what is left of it is carried in the reader's memory).
   */
  begin(chunk: Uint8Array): void {
    if (this.pos < this.chunk.length) this.stash();
    this.chunk = chunk;
    this.pos = 0;
  }

  /** Bytes received but not yet delivered (carried, or in the chunk beyond the last frame cut). */
  carried(): i32 {
    return this.carryEnd - this.carryStart + (this.chunk.length - this.pos);
  }

  /** True while a HEADERS frame's block awaits CONTINUATION frames. */
  inHeaderBlock(): bool {
    return this.assembling;
  }

  /** 1 when a frame is ready in the public fields, 0 when more bytes are needed, -1 on an error. */
  next(): i32 {
    if (this.failed) return -1;
    while (true) {
      const cut = this.cut();
      if (cut == 0) {
        // Every byte of the chunk is cut or carried: let go of it (see begin()).
        this.chunk = NO_CHUNK;
        this.pos = 0;
        return 0;
      }
      if (cut < 0) return cut;
      const r = this.accept();
      if (r != 0) return r;
    }
    return 0;
  }

  /** Cuts the next whole frame into the public fields: 1, or 0 (bytes carried), or -1. */
  private cut(): i32 {
    if (this.carryEnd > this.carryStart) {
      let have = this.carryEnd - this.carryStart;
      if (have < FRAME_HEADER_SIZE) {
        this.topUp(FRAME_HEADER_SIZE - have);
        have = this.carryEnd - this.carryStart;
        if (have < FRAME_HEADER_SIZE) return 0;
      }
      const len = this.frameLength(this.carry, this.carryStart);
      if (len < 0) return -1;
      const size = FRAME_HEADER_SIZE + len;
      if (have < size) {
        this.topUp(size - have);
        if (this.carryEnd - this.carryStart < size) return 0;
      }
      this.header(this.carry, this.carryStart, len);
      this.carryStart += size;
      if (this.carryStart == this.carryEnd) {
        this.carryStart = 0;
        this.carryEnd = 0;
      }
      return 1;
    }
    const rest = this.chunk.length - this.pos;
    if (rest == 0) return 0;
    if (rest < FRAME_HEADER_SIZE) {
      this.stash();
      return 0;
    }
    const len = this.frameLength(this.chunk, this.pos);
    if (len < 0) return -1;
    if (rest < FRAME_HEADER_SIZE + len) {
      this.stash();
      return 0;
    }
    this.header(this.chunk, this.pos, len);
    this.pos += FRAME_HEADER_SIZE + len;
    return 1;
  }

  /** The length field of the frame header at `at`, or -1 when it exceeds maxFrameSize. */
  private frameLength(buf: Uint8Array, at: i32): i32 {
    const p = buf.dataStart + <usize>at;
    const len = (<i32>load<u8>(p) << 16) | (<i32>load<u8>(p, 1) << 8) | <i32>load<u8>(p, 2);
    if (len > this.maxFrameSize) {
      return this.fail("h2: frame length " + len.toString() + " exceeds max frame size " + this.maxFrameSize.toString(), H2Error.FRAME_SIZE_ERROR);
    }
    return len;
  }

  private header(buf: Uint8Array, at: i32, len: i32): void {
    const p = buf.dataStart + <usize>at;
    this.type = <i32>load<u8>(p, 3);
    this.flags = <i32>load<u8>(p, 4);
    this.streamId = bswap<u32>(load<u32>(p, 5)) & STREAM_MASK;
    this.payload = buf.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + len);
  }

  /** Moves up to `n` bytes from the chunk to the end of the carry. */
  private topUp(n: i32): void {
    const take = min(n, this.chunk.length - this.pos);
    if (take <= 0) return;
    this.appendCarry(this.chunk, this.pos, take);
    this.pos += take;
  }

  /** Carries the rest of the chunk. */
  private stash(): void {
    const n = this.chunk.length - this.pos;
    this.appendCarry(this.chunk, this.pos, n);
    this.pos = this.chunk.length;
  }

  private appendCarry(src: Uint8Array, at: i32, n: i32): void {
    // Views into the carry are stale by now (the contract ends them at next()/begin()).
    const held = this.carryEnd - this.carryStart;
    if (this.carryStart > 0) {
      this.carry.copyWithin(0, this.carryStart, this.carryEnd);
      this.carryStart = 0;
      this.carryEnd = held;
    }
    const need = held + n;
    if (need > this.carry.length) {
      let cap = max(this.carry.length << 1, 256);
      while (cap < need) cap <<= 1;
      const next = new Uint8Array(cap);
      memory.copy(next.dataStart, this.carry.dataStart, <usize>held);
      this.carry = next;
    }
    memory.copy(this.carry.dataStart + <usize>held, src.dataStart + <usize>at, <usize>n);
    this.carryEnd = need;
  }

  /** Validates the cut frame: 1 to deliver it, 0 when it was absorbed (header block in progress), -1. */
  private accept(): i32 {
    const type = this.type;
    const sid = this.streamId;
    const len = this.payload.length;
    if (this.assembling) {
      if (type != FrameType.CONTINUATION || sid != this.blockStream) {
        return this.fail("h2: frame type " + type.toString() + " on stream " + sid.toString() + " interrupts the header block of stream " +
          this.blockStream.toString(), H2Error.PROTOCOL_ERROR);
      }
      if (!this.appendBlock(this.payload)) return -1;
      if ((this.flags & Flag.END_HEADERS) == 0) return 0;
      this.assembling = false;
      this.type = FrameType.HEADERS;
      this.flags = this.blockFlags | Flag.END_HEADERS;
      this.payload = this.block.buf.subarray(0, this.block.len);
      return 1;
    }
    switch (type) {
      case FrameType.DATA: {
        if (sid == 0) return this.onStreamZero("DATA");
        if (this.flags & Flag.PADDED) {
          if (len < 1) return this.fail("h2: padded DATA frame has no pad length", H2Error.FRAME_SIZE_ERROR);
          const pad = <i32>unchecked(this.payload[0]);
          if (pad >= len) return this.badPad("DATA", pad, len);
          this.payload = this.payload.subarray(1, len - pad);
          this.flags &= ~Flag.PADDED;
        }
        return 1;
      }
      case FrameType.HEADERS: {
        if (sid == 0) return this.onStreamZero("HEADERS");
        const padded = (this.flags & Flag.PADDED) != 0;
        const prefix = (padded ? 1 : 0) + (this.flags & Flag.PRIORITY ? 5 : 0);
        if (len < prefix) {
          return this.fail("h2: HEADERS payload of " + len.toString() + " bytes is shorter than its pad length and priority fields (" +
            prefix.toString() + " bytes)", H2Error.FRAME_SIZE_ERROR);
        }
        const pad = padded ? <i32>unchecked(this.payload[0]) : 0;
        if (pad > len - prefix) return this.badPad("HEADERS", pad, len);
        const fragment = this.payload.subarray(prefix, len - pad);
        this.flags &= ~(Flag.PADDED | Flag.PRIORITY);
        if (this.flags & Flag.END_HEADERS) {
          this.payload = fragment;
          return 1;
        }
        this.block.clear();
        this.assembling = true;
        this.blockStream = sid;
        this.blockFlags = this.flags;
        return this.appendBlock(fragment) ? 0 : -1;
      }
      case FrameType.CONTINUATION:
        return this.fail("h2: CONTINUATION on stream " + sid.toString() + " without a header block in progress", H2Error.PROTOCOL_ERROR);
      case FrameType.PUSH_PROMISE:
        return this.fail("h2: PUSH_PROMISE on stream " + sid.toString() + ", but push is disabled", H2Error.PROTOCOL_ERROR);
      case FrameType.SETTINGS: {
        if (sid != 0) return this.offStreamZero("SETTINGS");
        if (this.flags & Flag.ACK) {
          if (len != 0) return this.fail("h2: SETTINGS ACK with a payload of " + len.toString() + " bytes", H2Error.FRAME_SIZE_ERROR);
        } else if (len % 6 != 0) {
          return this.fail("h2: SETTINGS payload of " + len.toString() + " bytes is not a multiple of 6", H2Error.FRAME_SIZE_ERROR);
        }
        return 1;
      }
      case FrameType.PING:
        if (sid != 0) return this.offStreamZero("PING");
        return this.fixed("PING", 8);
      case FrameType.GOAWAY:
        if (sid != 0) return this.offStreamZero("GOAWAY");
        if (len < 8) return this.fail("h2: GOAWAY payload of " + len.toString() + " bytes is shorter than 8", H2Error.FRAME_SIZE_ERROR);
        return 1;
      case FrameType.WINDOW_UPDATE:
        return this.fixed("WINDOW_UPDATE", 4);
      case FrameType.RST_STREAM:
        if (sid == 0) return this.onStreamZero("RST_STREAM");
        return this.fixed("RST_STREAM", 4);
      case FrameType.PRIORITY:
        if (sid == 0) return this.onStreamZero("PRIORITY");
        return this.fixed("PRIORITY", 5);
      default:
        return 1; // unknown types are the caller's to ignore (section 5.5)
    }
  }

  private appendBlock(fragment: Uint8Array): bool {
    if (this.block.len + fragment.length > this.maxHeaderBlock) {
      this.fail("h2: header block of stream " + this.blockStream.toString() + " exceeds " + this.maxHeaderBlock.toString() + " bytes",
        H2Error.PROTOCOL_ERROR);
      return false;
    }
    this.block.bytes(fragment);
    return true;
  }

  private fixed(name: string, size: i32): i32 {
    const len = this.payload.length;
    if (len == size) return 1;
    return this.fail("h2: " + name + " payload of " + len.toString() + " bytes, expected " + size.toString(), H2Error.FRAME_SIZE_ERROR);
  }

  private badPad(name: string, pad: i32, len: i32): i32 {
    return this.fail("h2: " + name + " pad length " + pad.toString() + " does not fit a payload of " + len.toString() + " bytes",
      H2Error.PROTOCOL_ERROR);
  }

  private onStreamZero(name: string): i32 {
    return this.fail("h2: " + name + " frame on stream 0", H2Error.PROTOCOL_ERROR);
  }

  private offStreamZero(name: string): i32 {
    return this.fail("h2: " + name + " frame on stream " + this.streamId.toString() + ", not 0", H2Error.PROTOCOL_ERROR);
  }

  private fail(message: string, code: u32): i32 {
    this.error = message;
    this.errorCode = code;
    this.failed = true;
    return -1;
  }
}
