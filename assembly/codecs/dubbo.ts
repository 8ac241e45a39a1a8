// Apache Dubbo 2 wire protocol (the `dubbo://` protocol) with hessian2 bodies.
//
// A frame is a 16-byte header and a body:
//   0  magic 0xdabb
//   2  flag: 0x80 request, 0x40 two-way, 0x20 event, low 5 bits the serialization id (hessian2: 2)
//   3  status (responses): 20 OK, 30/31 client/server timeout, 40 bad request, ... (Status)
//   4  request id, 8 bytes
//   12 body length, 4 bytes
// A request body is a sequence of hessian2 values: dubbo version, service path, service version,
// method name, parameter type descriptor, one value per parameter, then the attachments map. A
// response body starts with a response type int (ResponseType); a non-OK status carries an error
// message string instead. Events (heartbeats, the read-only notice) carry one value, `N` for a
// heartbeat; they are passed through, never routed.
import { Codec, CodecFactory, ErrorCode, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { Metadata, MessageKind, KeyValue } from "../core/metadata";
import { ByteWriter, peekU32 } from "../core/bytes";
import { Hessian2Reader, hex2 } from "./hessian2";
import { writeString, writeNull } from "./hessian2-writer";

export const MAGIC: u32 = 0xdabb;
export const HEADER_SIZE: i32 = 16;
export const FLAG_REQUEST: u32 = 0x80;
export const FLAG_TWO_WAY: u32 = 0x40;
export const FLAG_EVENT: u32 = 0x20;
export const SERIALIZATION_MASK: u32 = 0x1f;
export const HESSIAN2: u32 = 2;

/** The header's status byte (responses). */
export const enum Status {
  Ok = 20,
  ClientTimeout = 30,
  ServerTimeout = 31,
  BadRequest = 40,
  BadResponse = 50,
  ServiceNotFound = 60,
  ServiceError = 70,
  ServerError = 80,
  ClientError = 90,
  ServerThreadpoolExhausted = 100,
}

/** The int that starts an OK response body. */
export const enum ResponseType {
  WithException = 0,
  Value = 1,
  NullValue = 2,
  WithExceptionWithAttachments = 3,
  ValueWithAttachments = 4,
  NullValueWithAttachments = 5,
}

/** The status Meltemi answers each ErrorCode with (a Dubbo client raises RemotingException, or TimeoutException for 30/31). */
export function statusFor(code: ErrorCode): u32 {
  switch (code) {
    case ErrorCode.NoRoute: return Status.ServiceNotFound;
    case ErrorCode.RateLimited: return Status.ServerThreadpoolExhausted;
    case ErrorCode.Timeout: return Status.ServerTimeout;
    case ErrorCode.BadRequest: return Status.BadRequest;
    case ErrorCode.Unavailable: return Status.ServerError;
    default: return Status.ServiceError; // Unauthorized, FaultAbort
  }
}

/**
 * Bytes of a frame enough to decode it without its arguments: the header, then a request's
 * dubbo version, service path, service version and method name, or a response's type.
 */
const DECODE_PREFIX: i32 = 256;
/** The request keys that lie before the arguments: what a prefix decode yields. */
const PREFIX_KEYS: string[] = ["interface", "method", "version"];

export class DubboCodec extends Codec {
  private h: Hessian2Reader = new Hessian2Reader();
  private w: ByteWriter = new ByteWriter(256);
  /** Requests may be decoded from their prefix: nothing reads an attachment (readsOnly). */
  private requestsByPrefix: bool = false;

  /**
   * Responses always decode from their first bytes; requests only when nothing reads their
   * attachments, which lie after the arguments.
   */
  decodePrefix(): i32 {
    return this.readsResponses || this.requestsByPrefix ? DECODE_PREFIX : 0;
  }

  readsOnly(keys: string[] | null): void {
    let prefix = keys != null;
    if (keys != null) {
      for (let i = 0; i < keys.length; i++) {
        if (!PREFIX_KEYS.includes(keys[i])) prefix = false;
      }
    }
    this.requestsByPrefix = prefix;
  }

  frameSize(data: Uint8Array, maxFrame: i32): i32 {
    if (data.length < 2) return NEED_MORE;
    const magic = (<u32>data[0] << 8) | <u32>data[1];
    if (magic != MAGIC) {
      this.error = "dubbo: bad magic 0x" + hex2(magic >> 8) + hex2(magic);
      return FRAME_ERROR;
    }
    if (data.length < HEADER_SIZE) return NEED_MORE;
    const len = peekU32(data, 12);
    if (len > <u32>(maxFrame - HEADER_SIZE)) {
      return this.frameTooLarge("dubbo: body length " + len.toString(), maxFrame);
    }
    return <i32>len + HEADER_SIZE;
  }

  /**
   * Requests: kind Call or Oneway, `interface`, `method`, `version`, `group` and every string
   * attachment; mark0/mark1 bound the attachments map, mark2 is 1 when walking that map needs the
   * class definitions or values before it (see mutate). Responses: kind Reply or Exception.
   * Events: kind Heartbeat, body not read.
   */
  decode(frame: Uint8Array, meta: Metadata): bool {
    if (frame.length < HEADER_SIZE) {
      this.error = "dubbo: frame of " + frame.length.toString() + " bytes is shorter than the header";
      return false;
    }
    const flag = <u32>frame[2];
    meta.requestId = bswap<u64>(load<u64>(frame.dataStart + 4));
    const bodyLen = peekU32(frame, 12);
    // A prefix (decodePrefix): what decodes from the first bytes does, the rest fails as truncated.
    const prefix = <u64>bodyLen > <u64>(frame.length - HEADER_SIZE) && this.decodePrefix() > 0;
    if (<u64>bodyLen != <u64>(frame.length - HEADER_SIZE) && !prefix) {
      this.error = "dubbo: body length " + bodyLen.toString() + " does not match the frame's " + (frame.length - HEADER_SIZE).toString() + " body bytes";
      return false;
    }
    const isRequest = (flag & FLAG_REQUEST) != 0;
    meta.isRequest = isRequest;
    if ((flag & FLAG_EVENT) != 0) {
      meta.kind = MessageKind.Heartbeat;
      meta.expectsReply = isRequest && (flag & FLAG_TWO_WAY) != 0;
      return true;
    }
    if (!isRequest) {
      meta.expectsReply = false;
      const status = <u32>frame[3];
      if (status != Status.Ok) {
        meta.kind = MessageKind.Exception;
        return true;
      }
      if (!this.hessian2(flag)) return false;
      const h = this.h;
      h.reset(frame, HEADER_SIZE);
      if (!h.readInt()) return this.bad("response type");
      const type = h.int;
      if (type == ResponseType.WithException || type == ResponseType.WithExceptionWithAttachments) {
        meta.kind = MessageKind.Exception;
      } else if (type >= ResponseType.Value && type <= ResponseType.NullValueWithAttachments) {
        meta.kind = MessageKind.Reply;
      } else {
        this.error = "dubbo: unknown response type " + type.toString();
        return false;
      }
      return true;
    }
    if ((flag & FLAG_TWO_WAY) != 0) {
      meta.kind = MessageKind.Call;
    } else {
      meta.kind = MessageKind.Oneway;
      meta.expectsReply = false;
    }
    if (!this.hessian2(flag)) return false;
    return prefix ? this.decodeCallName(frame, meta) : this.decodeInvocation(frame, meta);
  }

  /**
   * The fields before the arguments (PREFIX_KEYS): all a prefix decodes, and how a whole request
   * starts; leaves the reader after the method name.
   */
  private decodeCallName(frame: Uint8Array, meta: Metadata): bool {
    const h = this.h;
    h.reset(frame, HEADER_SIZE);
    if (!h.readString()) return this.bad("dubbo version");
    if (!h.readString()) return this.bad("service path");
    const path = h.str;
    if (!h.readString()) return this.bad("service version");
    const version = h.str;
    if (!h.readString()) return this.bad("method name");
    meta.set("interface", path);
    meta.set("method", h.str);
    meta.set("version", version);
    return true;
  }

  private hessian2(flag: u32): bool {
    const id = flag & SERIALIZATION_MASK;
    if (id == HESSIAN2) return true;
    this.error = "dubbo: serialization id " + id.toString() + " is not supported (only hessian2, 2)";
    return false;
  }

  /** A whole request: its call name (decodeCallName), then past the arguments to the attachments. */
  private decodeInvocation(frame: Uint8Array, meta: Metadata): bool {
    if (!this.decodeCallName(frame, meta)) return false;
    const path = meta.get("interface")!;
    const method = meta.get("method")!;
    const h = this.h;
    if (!h.readString()) return this.bad("parameter types");
    const args = countParameters(h.str);
    if (args < 0) {
      this.error = "dubbo: bad parameter type descriptor \"" + h.str + "\"";
      return false;
    }
    for (let i = 0; i < args; i++) {
      if (!h.skip()) return this.bad("argument " + (i + 1).toString() + " of " + args.toString());
    }
    meta.mark0 = h.pos;
    h.usedContext = false;
    if (!h.atEnd()) {
      if (!h.beginMap()) return this.bad("attachments");
      while (!h.endOfContainer()) {
        if (h.atEnd()) {
          this.error = "dubbo: bad attachments: hessian2: truncated map at offset " + meta.mark0.toString();
          return false;
        }
        if (!h.nextIsString()) {
          if (!h.skip() || !h.skip()) return this.bad("attachments");
          continue;
        }
        if (!h.readString()) return this.bad("attachments");
        const key = h.str;
        if (h.nextIsString()) {
          if (!h.readString()) return this.bad("attachment " + key);
          meta.set(key, h.str);
        } else if (!h.skip()) {
          return this.bad("attachment " + key);
        }
      }
    }
    meta.mark1 = h.pos;
    meta.mark2 = h.usedContext ? 1 : 0;
    // The frame's own fields name the call; attachments cannot rename it.
    meta.set("interface", path);
    meta.set("method", method);
    return true;
  }

  private bad(what: string): bool {
    this.error = "dubbo: bad " + what + ": " + this.h.error;
    return false;
  }

  canMutate(): bool {
    return true;
  }

  /**
   * The frame with `mutation` written into its attachments: the header and every byte before the
   * attachments (arguments, or a response's value) are copied untouched, existing attachments are
   * copied verbatim in their order except those `mutation` overwrites, new keys follow in
   * `mutation`'s order, the map is closed and the body length patched. A response without
   * attachments (types 0-2) becomes its *_WITH_ATTACHMENTS type. Null for events, non-OK
   * responses, and when an overwritten value defined class definitions or values that later
   * bytes may refer to.
   */
  mutate(frame: Uint8Array, meta: Metadata, mutation: KeyValue[]): Uint8Array | null {
    if (meta.kind == MessageKind.Heartbeat) return null;
    if (meta.isRequest) {
      const start = meta.mark0;
      const end = meta.mark1;
      if (start < HEADER_SIZE || start > end || end > frame.length) return null;
      // Walking the map from its own offset is exact unless it refers back into the arguments
      // (mark2): then re-walk the whole body so class definitions and refs line up.
      if (start != end) {
        if (meta.mark2 != 0) {
          if (!this.rewalkTo(frame, start)) return null;
        } else {
          this.h.reset(frame, start);
        }
      }
      return this.rewriteAttachments(frame, start, end, meta.mark2 != 0, -1, mutation);
    }
    if (frame.length <= HEADER_SIZE || <u32>frame[3] != Status.Ok) return null;
    // Responses are walked only here, when a route mutates them: the value is skipped to find
    // where the attachments start.
    const h = this.h;
    h.reset(frame, HEADER_SIZE);
    h.usedContext = false;
    if (!h.readInt()) return null;
    const type = h.int;
    if (type < ResponseType.WithException || type > ResponseType.NullValueWithAttachments) return null;
    const typeAt = HEADER_SIZE;
    if (h.pos != typeAt + 1) return null; // types 0-5 are one byte in hessian2
    if (type != ResponseType.NullValue && type != ResponseType.NullValueWithAttachments) {
      if (!h.skip()) return null;
    }
    const start = h.pos;
    if (type < ResponseType.WithExceptionWithAttachments) {
      if (start != frame.length) return null;
      return this.rewriteAttachments(frame, start, start, false, typeAt, mutation);
    }
    return this.rewriteAttachments(frame, start, frame.length, h.usedContext, -1, mutation);
  }

  /**
   * Writes frame[0, start), the attachments map at [start, end) with `mutation` applied (the
   * reader must stand at `start` when the map is not empty), then frame[end, ...). `typeAt`, when
   * not -1, is a one-byte response type to move to its *_WITH_ATTACHMENTS form.
   */
  private rewriteAttachments(frame: Uint8Array, start: i32, end: i32, contextual: bool, typeAt: i32, mutation: KeyValue[]): Uint8Array | null {
    const h = this.h;
    const w = this.w;
    w.clear();
    w.bytes(frame.subarray(0, start));
    if (typeAt >= 0) store<u8>(w.buf.dataStart + <usize>typeAt, <u8>(<u32>frame[typeAt] + 3));
    const written = new StaticArray<bool>(mutation.length);
    if (start == end) {
      w.u8(0x48); // 'H'
    } else {
      if (!h.beginMap()) return null;
      w.bytes(frame.subarray(start, h.pos)); // 'H', or 'M' and its type
      while (!h.endOfContainer()) {
        if (h.atEnd()) return null;
        const entry = h.pos;
        let index = -1;
        if (h.nextIsString()) {
          if (!h.readString()) return null;
          index = lastIndexOf(mutation, h.str);
        } else if (!h.skip()) {
          return null;
        }
        const tables = h.tableSize();
        if (!h.skip()) return null;
        if (index < 0) {
          w.bytes(frame.subarray(entry, h.pos));
          continue;
        }
        if (contextual && h.tableSize() != tables) return null;
        const kv = unchecked(mutation[index]);
        writeString(w, kv.key);
        writeString(w, kv.value);
        unchecked((written[index] = true));
      }
      if (h.pos != end) return null;
    }
    for (let i = 0, n = mutation.length; i < n; i++) {
      const kv = unchecked(mutation[i]);
      if (unchecked(written[i]) || lastIndexOf(mutation, kv.key) != i) continue;
      writeString(w, kv.key);
      writeString(w, kv.value);
    }
    w.u8(0x5a); // 'Z'
    w.bytes(frame.subarray(end));
    w.patchU32(12, <u32>(w.len - HEADER_SIZE));
    return w.toBytes();
  }

  /** Re-reads the body up to the attachments at `start`, filling the per-frame tables. */
  private rewalkTo(frame: Uint8Array, start: i32): bool {
    const h = this.h;
    h.reset(frame, HEADER_SIZE);
    for (let i = 0; i < 5; i++) {
      if (!h.readString()) return false;
    }
    const args = countParameters(h.str);
    for (let i = 0; i < args; i++) {
      if (!h.skip()) return false;
    }
    return h.pos == start;
  }

  /** A two-way heartbeat with the request's id: every Dubbo server answers it at once. */
  localReplyProbe(meta: Metadata): Uint8Array | null {
    return heartbeatRequest(meta.requestId);
  }

  /** The heartbeat response a server would give to the client's two-way heartbeat `meta`. */
  keepAliveReply(meta: Metadata): Uint8Array | null {
    return meta.expectsReply ? heartbeatResponse(meta.requestId) : null;
  }

  /** A response to `meta`'s request with the status `code` maps to and `message` as its body. */
  errorReply(meta: Metadata, code: ErrorCode, message: string): Uint8Array {
    const w = this.w;
    w.clear();
    writeHeader(w, HESSIAN2, statusFor(code), meta.requestId);
    writeString(w, message);
    w.patchU32(12, <u32>(w.len - HEADER_SIZE));
    return w.toBytes();
  }
}

/**
 * A two-way heartbeat request with id `id`. Sent upstream in place of a request Meltemi rejects
 * (localReplyProbe), it makes the server answer with that id (heartbeatResponse); the exchange
 * pairs that answer with the rejected request by id and swaps it for the errorReply.
 */
export function heartbeatRequest(id: u64): Uint8Array {
  return event(FLAG_REQUEST | FLAG_TWO_WAY | FLAG_EVENT | HESSIAN2, 0, id);
}

/** The answer a server gives to the heartbeat request `id`. */
export function heartbeatResponse(id: u64): Uint8Array {
  return event(FLAG_EVENT | HESSIAN2, Status.Ok, id);
}

function event(flag: u32, status: u32, id: u64): Uint8Array {
  const w = new ByteWriter(HEADER_SIZE + 1);
  writeHeader(w, flag, status, id);
  writeNull(w);
  w.patchU32(12, 1);
  return w.toBytes();
}

/** A header with body length 0: callers patch it once the body is written. */
function writeHeader(w: ByteWriter, flag: u32, status: u32, id: u64): void {
  w.u16(MAGIC);
  w.u8(flag);
  w.u8(status);
  w.u64(id);
  w.u32(0);
}

/**
 * Parameters in a JVM method descriptor list (`Ljava/lang/String;I[J`), or -1 when it is not one.
 * Accepts what Dubbo's ReflectUtils.desc2classArray accepts.
 */
export function countParameters(desc: string): i32 {
  let n = 0;
  let i = 0;
  const len = desc.length;
  while (i < len) {
    while (i < len && desc.charCodeAt(i) == 0x5b) i++; // '['
    if (i >= len) return -1;
    const c = desc.charCodeAt(i);
    if (c == 0x4c) { // 'L' class name ';'
      const semi = desc.indexOf(";", i + 1);
      if (semi <= i + 1) return -1;
      i = semi + 1;
    } else if (c == 0x56 || c == 0x5a || c == 0x42 || c == 0x43 || c == 0x44 || c == 0x46 || c == 0x49 || c == 0x4a || c == 0x53) {
      i++; // V Z B C D F I J S
    } else {
      return -1;
    }
    n++;
  }
  return n;
}

/** Index of the last entry of `kvs` with key `key`, or -1. */
function lastIndexOf(kvs: KeyValue[], key: string): i32 {
  for (let i = kvs.length - 1; i >= 0; i--) {
    if (unchecked(kvs[i]).key == key) return i;
  }
  return -1;
}

export class DubboCodecFactory extends CodecFactory {
  serviceKey(): string {
    return "interface";
  }

  name(): string {
    return "dubbo";
  }

  create(options: Map<string, string>): Codec {
    return new DubboCodec();
  }
}
