// The codec contract: the heart of Meltemi. A protocol is one class implementing Codec and one
// CodecFactory registered in codecs/registry.ts. Everything else (framing across reads,
// routing, mutation policy, correlation, metrics, local replies) is shared.
import { Metadata, KeyValue } from "./metadata";

/** frameSize result: more bytes are needed before the frame's size is known. */
export const NEED_MORE: i32 = 0;
/** frameSize result: the bytes are not a valid frame; `Codec.error` says why. */
export const FRAME_ERROR: i32 = -1;

/** The closed set of reasons Meltemi answers a request itself. Each codec maps them to its protocol. */
export const enum ErrorCode {
  NoRoute = 0,
  Unauthorized = 1,
  RateLimited = 2,
  FaultAbort = 3,
  Timeout = 4,
  BadRequest = 5,
  /** Per-request mode: no upstream could take the call (no healthy host, overflow, reset). */
  Unavailable = 6,
}

/**
 * Per-request mode: how a request relates to the server connection it lands on (callScope).
 * Most are plain calls; some protocols (Redis) have requests that set state living on one
 * connection, or that must reach one connection together.
 */
export const enum CallScope {
  /** An ordinary call: any server connection may take it. */
  Call = 0,
  /** Sets connection state (Redis AUTH, HELLO, SELECT, CLIENT SETNAME): replayed before later calls. */
  Session = 1,
  /** Opens a transaction: the calls up to its commit travel together to one connection (MULTI). */
  BeginBatch = 2,
  /** Commits the open transaction (EXEC). */
  CommitBatch = 3,
  /** Drops the open transaction (DISCARD). */
  DiscardBatch = 4,
}

/** The answers a role gives itself to batch requests (batchAnswer). */
export const enum BatchAnswer {
  /** The transaction opened or was discarded (Redis +OK). */
  Ok = 0,
  /** A call was queued in the open transaction (Redis +QUEUED). */
  Queued = 1,
  /** The commit of a transaction that a refused call aborted (Redis -EXECABORT). */
  Aborted = 2,
}

export abstract class Codec {
  /** Why the last frameSize or decode failed: one precise sentence naming the bad value. */
  error: string = "";
  /** True when the last FRAME_ERROR was a frame over maxFrameBytes (counted apart: frame_too_large). */
  oversize: bool = false;

  /** Reports a frame over the limit: `error` becomes "<what> exceeds maxFrameBytes <max>". */
  frameTooLarge(what: string, maxFrame: i32): i32 {
    this.error = what + " exceeds maxFrameBytes " + maxFrame.toString();
    this.oversize = true;
    return FRAME_ERROR;
  }

  /**
   * True on the codec that reads the server-to-client direction. The connection sets it once,
   * before the first frame; protocols whose frames do not say which way they travel (Redis) need it.
   */
  readsResponses: bool = false;

  /**
   * Size of the frame at the start of `data`, including any length prefix. Returns NEED_MORE
   * (reading nothing) when `data` is too short to tell, FRAME_ERROR when the bytes cannot start a
   * frame or the frame would exceed `maxFrame`. Never reads past `data.length`.
   */
  abstract frameSize(data: Uint8Array, maxFrame: i32): i32;

  /**
   * Decodes one complete frame (exactly the bytes frameSize measured) into `meta`, which the
   * caller has reset. Decodes only what routing, correlation and mutation need. Returns false
   * with `error` set when the frame is malformed. Each direction's codec decodes every frame of
   * its stream exactly once, in order, so a codec may number frames (Redis has no ids).
   */
  abstract decode(frame: Uint8Array, meta: Metadata): bool;

  /**
   * How many leading bytes of a frame decode() needs when that can be less than the whole frame;
   * 0 (the default) when decode() needs every byte. With a prefix, a connection forwarding frames
   * unchanged fetches only that many bytes of each frame from the host and lets the rest pass
   * unread. decode() then gets at most this prefix and must return false when it is too short
   * (the connection falls back to the whole frame and may decode that frame again, so such a
   * codec must keep no per-frame state).
   */
  decodePrefix(): i32 {
    return 0;
  }

  /**
   * The next frame starts a new stream on this connection: a codec that fixed its transport or
   * protocol from earlier bytes detects them again. Per-request mode's server role calls it before
   * each call, since one server connection carries the calls of many client connections, each in
   * its own transport (a framed client's, then a THeader client's). What options pin stays.
   */
  restartStream(): void {}

  /**
   * A hint, given once before the first frame: the only metadata keys anything will read (besides
   * the codec's own service and method keys, always read), or null for every key. A codec may
   * then leave the others out of decode(), or decode requests from a prefix (decodePrefix) when
   * the keys read all lie in it. Logs describe what was decoded.
   */
  readsOnly(keys: string[] | null): void {}

  /** True when this codec can carry key/values in its frames (request and response mutation). */
  canMutate(): bool {
    return false;
  }

  /**
   * The frame (a request, for requestMutation, or a response, for responseMutation) with `mutation`
   * added or overwritten, reusing the untouched bytes; null when the frame cannot be changed (the
   * caller forwards it unchanged and counts that).
   */
  mutate(frame: Uint8Array, meta: Metadata, mutation: KeyValue[]): Uint8Array | null {
    return null;
  }

  /** The protocol's own error reply to the request described by `meta`. */
  abstract errorReply(meta: Metadata, code: ErrorCode, message: string): Uint8Array;

  /**
   * A request the server answers at once, with the same correlation id as `meta` and no side
   * effects: the local-reply probe. A network filter cannot write to the client on its own, so
   * Meltemi answers a request itself by sending this in its place and swapping the server's
   * answer for errorReply(). null when the protocol has no such request (Meltemi then closes the
   * connection instead).
   */
  localReplyProbe(meta: Metadata): Uint8Array | null {
    return null;
  }

  /**
   * The answer to the client's keep-alive request `meta` (kind Heartbeat, expecting a reply),
   * for roles that answer keep-alives themselves instead of sending them to one server (the
   * per-request client role: its calls have no single server). null when the protocol has none.
   */
  keepAliveReply(meta: Metadata): Uint8Array | null {
    return null;
  }

  /**
   * Per-request mode: why this request cannot be sent on its own (it changes state that lives on
   * one server connection, as Redis SELECT does), or null when it can. The client role answers
   * a refused request with errorReply(BadRequest, reason).
   */
  perRequestRefusal(meta: Metadata): string | null {
    return null;
  }

  /** Per-request mode: the request's relation to the server connection (see CallScope). */
  callScope(meta: Metadata): CallScope {
    return CallScope.Call;
  }

  /**
   * For a Session request: which piece of state it sets, 0 to SESSION_SLOTS - 1, in the order
   * they must be replayed (a later request for the same slot replaces the earlier one).
   */
  sessionSlot(meta: Metadata): i32 {
    return 0;
  }

  /** A request that clears a server connection's session state (Redis RESET), or null. */
  sessionReset(): Uint8Array | null {
    return null;
  }

  /**
   * A request that makes the server drop the open transaction (Redis DISCARD), sent in place of
   * the commit of a transaction Meltemi refused a request of; null when the protocol has none.
   */
  batchDiscard(): Uint8Array | null {
    return null;
  }

  /** The protocol's bytes for a batch answer the role gives itself (see BatchAnswer). */
  batchAnswer(answer: BatchAnswer): Uint8Array {
    return new Uint8Array(0);
  }
}

/** Session slots a codec may use (sessionSlot). */
export const SESSION_SLOTS: i32 = 4;

/** Creates codecs of one protocol. Options come from the plugin config's `codecOptions`. */
export abstract class CodecFactory {
  abstract name(): string;

  /** null when the option is valid; otherwise the message for `codecOptions.<key>`. */
  checkOption(key: string, value: string): string | null {
    return "unknown option for codec " + this.name();
  }

  /** Ends the config error for a mutation this codec's frames cannot carry: how they could, if at all. */
  mutationHint(): string {
    return "";
  }

  /**
   * The metadata keys that name an operation for per-operation stats: the service (or interface)
   * and the method (or command). "" when the protocol has no such key.
   */
  serviceKey(): string {
    return "service";
  }

  methodKey(): string {
    return "method";
  }

  /**
   * True when replies pair with requests by position only (Redis): a role that may receive them
   * out of order must hand them to the client in request order.
   */
  repliesInOrder(): bool {
    return false;
  }

  /** One codec per connection direction: codecs may keep per-stream state (detected transport). */
  abstract create(options: Map<string, string>): Codec;
}
