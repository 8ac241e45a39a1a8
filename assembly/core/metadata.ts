// What a codec extracts from one frame: enough to route, correlate and count it. Routable values
// are strings; everything else stays in the frame bytes.

/** The closed set of message kinds every codec maps its frames onto. */
export const enum MessageKind {
  Call = 0,      // a request that expects a reply
  Oneway = 1,    // a request with no reply
  Reply = 2,     // a successful response
  Exception = 3, // a response carrying an error (application or protocol level)
  Heartbeat = 4, // a keep-alive in either direction; never routed
}
export const MESSAGE_KIND_COUNT = 5;

const KIND_NAMES: string[] = ["call", "oneway", "reply", "exception", "heartbeat"];

export function kindName(kind: MessageKind): string {
  return KIND_NAMES[<i32>kind];
}

export class Metadata {
  kind: MessageKind = MessageKind.Call;
  /** Thrift seqid, Dubbo request id: pairs a response with its request. */
  requestId: u64 = 0;
  /** True for frames that travel client to server (requests, heartbeat requests). */
  isRequest: bool = true;
  /** True when the peer must answer this frame (calls, two-way heartbeats). */
  expectsReply: bool = true;
  /** Routable attributes, in the order the codec found them. */
  keys: string[] = [];
  values: string[] = [];
  /** Positions inside the frame that only the codec that decoded it interprets (for mutation). */
  mark0: i32 = 0;
  mark1: i32 = 0;
  mark2: i32 = 0;

  reset(): void {
    this.kind = MessageKind.Call;
    this.requestId = 0;
    this.isRequest = true;
    this.expectsReply = true;
    this.keys.length = 0;
    this.values.length = 0;
    this.mark0 = 0;
    this.mark1 = 0;
    this.mark2 = 0;
  }

  /** A copy that outlives the next reset() (the per-request client role keeps one per call). */
  clone(): Metadata {
    const m = new Metadata();
    m.kind = this.kind;
    m.requestId = this.requestId;
    m.isRequest = this.isRequest;
    m.expectsReply = this.expectsReply;
    m.keys = this.keys.slice(0);
    m.values = this.values.slice(0);
    m.mark0 = this.mark0;
    m.mark1 = this.mark1;
    m.mark2 = this.mark2;
    return m;
  }

  set(key: string, value: string): void {
    for (let i = 0, n = this.keys.length; i < n; i++) {
      if (unchecked(this.keys[i]) == key) {
        unchecked((this.values[i] = value));
        return;
      }
    }
    this.keys.push(key);
    this.values.push(value);
  }

  /** The value of `key`, or null when the frame does not carry it. */
  get(key: string): string | null {
    for (let i = 0, n = this.keys.length; i < n; i++) {
      if (unchecked(this.keys[i]) == key) return unchecked(this.values[i]);
    }
    return null;
  }

  isRoutable(): bool {
    return this.kind == MessageKind.Call || this.kind == MessageKind.Oneway;
  }
}

/** A key/value written into frames by a route's requestMutation or responseMutation. */
export class KeyValue {
  constructor(public key: string, public value: string) {}
}
