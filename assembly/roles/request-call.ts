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
  /** For a call that changes session state, what Session.propose recorded (null: none, or settled). */
  session: SessionChange | null = null;

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
/** A session frame sent and not yet settled: its slot, the order the client sent it in, its bytes. */
export class SessionChange {
  constructor(public slot: i32, public seq: u32, public frame: Uint8Array) {}
}

export class Session {
  private readonly confirmed: Array<Uint8Array | null> = new Array<Uint8Array | null>(SESSION_SLOTS);
  /** Per slot, the order number of the confirmed frame (0: none). */
  private readonly confirmedSeq: StaticArray<u32> = new StaticArray<u32>(SESSION_SLOTS);
  private readonly pending: Array<Array<SessionChange>> = new Array<Array<SessionChange>>(SESSION_SLOTS);
  /** Order numbers of proposed frames, from 1: of two that took, the one the client sent later wins. */
  private proposed: u32 = 0;
  /** base64 of the frames, slot order; "" while nothing is set. */
  value: string = "";

  constructor() {
    for (let i = 0; i < SESSION_SLOTS; i++) this.pending[i] = new Array<SessionChange>();
  }

  /**
   * A call that changes `slot` is about to be sent: its frame (copied) joins the slot until its
   * reply settles it, so the call's own header already carries it (the server role then records
   * the state the call leaves its connection in). At most MAX_PENDING wait per slot; beyond that
   * the oldest stops being replayed (its reply can still settle it, as the slot's state).
   */
  propose(slot: i32, frame: Uint8Array): SessionChange {
    const change = new SessionChange(slot, ++this.proposed, frame.slice());
    const waiting = this.pending[slot];
    if (waiting.length >= MAX_PENDING) waiting.shift();
    waiting.push(change);
    this.render();
    return change;
  }

  /**
   * The reply to `change` came: `took` makes its frame the slot's state, unless a frame the
   * client sent after it already took (replies from different servers may come in either
   * order), and drops what was proposed before it; otherwise it leaves the slot.
   */
  settle(change: SessionChange, took: bool): void {
    const slot = change.slot;
    const waiting = this.pending[slot];
    if (took) {
      const newer = change.seq > unchecked(this.confirmedSeq[slot]);
      if (newer) {
        this.confirmed[slot] = change.frame;
        unchecked((this.confirmedSeq[slot] = change.seq));
      }
      let n = 0;
      while (n < waiting.length && waiting[n].seq <= change.seq) n++;
      if (!newer && n == 0) return;
      waiting.splice(0, n);
    } else {
      const at = waiting.indexOf(change);
      if (at < 0) return;
      waiting.splice(at, 1);
    }
    this.render();
  }

  private render(): void {
    const w = new ByteWriter(64);
    for (let i = 0; i < SESSION_SLOTS; i++) {
      const f = this.confirmed[i];
      if (f != null) w.bytes(f);
      const waiting = this.pending[i];
      for (let k = 0; k < waiting.length; k++) w.bytes(waiting[k].frame);
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
