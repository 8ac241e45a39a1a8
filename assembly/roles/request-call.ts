// The client role's per-call state: a call (its request toward HCM, its stream, its answer), an
// open transaction, and the connection's session state that every later call carries.
import { ByteWriter } from "../core/bytes";
import { Metadata } from "../core/metadata";
import { SESSION_SLOTS } from "../core/codec";
import { base64Encode } from "../util/base64";

/** One call: its request toward HCM and, once answered, the bytes for the client. */
export class Call {
  stream: u32 = 0;
  /** Send window of the stream toward HCM. */
  window: i64 = 0;
  headSent: bool = false;
  sent: i32 = 0;
  status: i32 = 0;
  reset: bool = false;
  /** HCM never took it (a GOAWAY's last stream id is below its stream, or it got none): it did not run. */
  notTaken: bool = false;
  answer: ByteWriter | null = null;
  /** The answer outgrew the link's bound: what came of it is not the reply. */
  tooLarge: bool = false;
  /** The answer holds several replies; the client gets the last (see RequestClient.send). */
  keepLast: bool = false;
  /** What the client gets, once known; EMPTY for a oneway call. */
  out: Uint8Array | null = null;
  /** A call that changes session state: its slot (-1: none) and the frame Session.propose kept. */
  sessionSlot: i32 = -1;
  sessionFrame: Uint8Array | null = null;

  constructor(
    public meta: Metadata,
    public head: Uint8Array,
    public body: Uint8Array,
    public op: i32,
  ) {}

  get oneway(): bool {
    return !this.meta.expectsReply;
  }
}

/** An open transaction (MULTI): its frames so far, and whether a refused call aborted it. */
export class Batch {
  readonly frames: ByteWriter = new ByteWriter(256);
  first: Metadata | null = null;
  aborted: bool = false;

  constructor(begin: Uint8Array) {
    this.frames.bytes(begin);
  }
}

/**
 * The client connection's session state (codec.sessionSlot: Redis AUTH, HELLO, SELECT, CLIENT
 * SETNAME) and the header value that carries it with every call. A slot holds the last frame
 * whose reply said it took, then the frames sent since whose replies have not come yet: replayed
 * in that order, one the server refuses leaves the state as it was (a refused SELECT keeps the
 * database, a refused AUTH the user), as on the client's own connection. When its reply comes a
 * frame becomes the slot's state (settled, took) or is dropped (refused, or no reply at all: the
 * client was told it failed).
 */
export class Session {
  private readonly confirmed: Array<Uint8Array | null> = new Array<Uint8Array | null>(SESSION_SLOTS);
  private readonly pending: Array<Array<Uint8Array>> = new Array<Array<Uint8Array>>(SESSION_SLOTS);
  /** base64 of the frames, slot order; "" while nothing is set. */
  value: string = "";

  constructor() {
    for (let i = 0; i < SESSION_SLOTS; i++) this.pending[i] = new Array<Uint8Array>();
  }

  /**
   * A call that changes `slot` is being sent: its frame (copied) joins the slot until its reply
   * settles it. Returns the copy, which names it to settle(). At most MAX_PENDING wait per slot;
   * beyond that the oldest is dropped (its reply can still settle it, as the slot's state).
   */
  propose(slot: i32, frame: Uint8Array): Uint8Array {
    const copy = frame.slice();
    const waiting = this.pending[slot];
    if (waiting.length >= MAX_PENDING) waiting.shift();
    waiting.push(copy);
    this.render();
    return copy;
  }

  /**
   * The reply to the call that proposed `frame` came: `took` makes it the slot's state (with what
   * was proposed before it, now moot), otherwise it leaves the slot.
   */
  settle(slot: i32, frame: Uint8Array, took: bool): void {
    const waiting = this.pending[slot];
    const at = waiting.indexOf(frame);
    if (took) {
      this.confirmed[slot] = frame;
      if (at >= 0) waiting.splice(0, at + 1);
    } else if (at >= 0) {
      waiting.splice(at, 1);
    } else {
      return;
    }
    this.render();
  }

  private render(): void {
    const w = new ByteWriter(64);
    for (let i = 0; i < SESSION_SLOTS; i++) {
      const f = this.confirmed[i];
      if (f != null) w.bytes(f);
      const waiting = this.pending[i];
      for (let k = 0; k < waiting.length; k++) w.bytes(waiting[k]);
    }
    this.value = w.len > 0 ? base64Encode(w.written()) : "";
  }
}

/** Session frames per slot sent and not yet answered (a client pipelining SELECTs). */
const MAX_PENDING = 4;

export /** The first line of an Envoy local reply body, bounded, for the protocol's error message. */
function firstLine(body: Uint8Array): string {
  let n = 0;
  while (n < body.length && n < 200 && body[n] != 0x0a && body[n] != 0x0d) n++;
  return n > 0 ? String.UTF8.decodeUnsafe(body.dataStart, <usize>n) : "(no body)";
}
