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
 * SETNAME): the frame that set each slot, and the header value that carries them all.
 */
export class Session {
  private readonly slots: Array<Uint8Array | null> = new Array<Uint8Array | null>(SESSION_SLOTS);
  /** base64 of the frames, slot order; "" while nothing is set. */
  value: string = "";

  /** Replaces one slot with `frame` (copied). */
  set(slot: i32, frame: Uint8Array): void {
    this.slots[slot] = frame.slice();
    const w = new ByteWriter(64);
    for (let i = 0; i < SESSION_SLOTS; i++) {
      const f = this.slots[i];
      if (f != null) w.bytes(f);
    }
    this.value = base64Encode(w.toBytes());
  }
}

export /** The first line of an Envoy local reply body, bounded, for the protocol's error message. */
function firstLine(body: Uint8Array): string {
  let n = 0;
  while (n < body.length && n < 200 && body[n] != 0x0a && body[n] != 0x0d) n++;
  return n > 0 ? String.UTF8.decodeUnsafe(body.dataStart, <usize>n) : "(no body)";
}
