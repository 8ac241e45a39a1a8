// Requests sent upstream and not yet answered, keyed by correlation id. Responses usually come
// back in order, so the oldest entry is checked first, and entries stay in send order (the first
// is the oldest, which is what request timeouts look at).

/** One request waiting for its answer. */
export class Pending {
  constructor(
    public id: u64,
    /** Route index it was counted on. */
    public route: i32,
    /** When it was forwarded (host clock, ns). */
    public start: u64,
    /** The local reply that replaces whatever the server answers (sent through a probe), or null. */
    public reply: Uint8Array | null,
    /** Its metadata as `key=value` text, for the access log ("" when the log is off). */
    public note: string,
    /** Operation index for per-operation stats, -1 for none. */
    public op: i32,
    /** Stats target (route and cluster, Stats.target) its answer is counted on, -1 for none. */
    public target: i32,
  ) {}
}

export class InFlight {
  private entries: Pending[] = [];

  constructor(private limit: i32) {}

  get size(): i32 {
    return this.entries.length;
  }

  /** Records a request; false, recording nothing, when `limit` requests are waiting. */
  add(id: u64, route: i32, start: u64, reply: Uint8Array | null = null, note: string = "", op: i32 = -1, target: i32 = -1): bool {
    if (this.entries.length >= this.limit) return false;
    this.entries.push(new Pending(id, route, start, reply, note, op, target));
    return true;
  }

  /** Removes and returns the request with `id`; null when no such request is waiting. */
  take(id: u64): Pending | null {
    const entries = this.entries;
    for (let i = 0, n = entries.length; i < n; i++) {
      const e = unchecked(entries[i]);
      if (e.id == id) {
        entries.splice(i, 1);
        return e;
      }
    }
    return null;
  }

  /** Start time of the oldest waiting request; 0 when none waits. */
  oldestStart(): u64 {
    return this.entries.length > 0 ? unchecked(this.entries[0]).start : 0;
  }
}
