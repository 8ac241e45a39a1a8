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
    /** Its half of the access line (engine/access-log.ts), null when the log is off. */
    public note: Uint8Array | null,
    /** Operation index for per-operation stats, -1 for none. */
    public op: i32,
    /** Stats target (route and cluster, Stats.target) its answer is counted on, -1 for none. */
    public target: i32,
  ) {}
}

/** Most reusable entries kept: enough for a deep pipeline without pinning a burst's worth. */
const SPARE_LIMIT: i32 = 256;

export class InFlight {
  private entries: Pending[] = [];
  // Entries are reused rather than allocated per request: take() hands out an entry that stays
  // valid until the next take(), after which it joins `spare` for add() to refill.
  private spare: Pending[] = [];
  private taken: Pending | null = null;

  constructor(private limit: i32) {}

  get size(): i32 {
    return this.entries.length;
  }

  /** Records a request; false, recording nothing, when `limit` requests are waiting. */
  add(id: u64, route: i32, start: u64, reply: Uint8Array | null = null, note: Uint8Array | null = null, op: i32 = -1, target: i32 = -1): bool {
    if (this.entries.length >= this.limit) return false;
    const spare = this.spare;
    if (spare.length == 0) {
      this.entries.push(new Pending(id, route, start, reply, note, op, target));
      return true;
    }
    const e = spare.pop();
    e.id = id;
    e.route = route;
    e.start = start;
    e.reply = reply;
    e.note = note;
    e.op = op;
    e.target = target;
    this.entries.push(e);
    return true;
  }

  /**
   * Removes and returns the request with `id`; null when no such request is waiting. The entry
   * is valid until the next take() (it is then reused).
   */
  take(id: u64): Pending | null {
    const entries = this.entries;
    for (let i = 0, n = entries.length; i < n; i++) {
      const e = unchecked(entries[i]);
      if (e.id == id) {
        // Not splice(): it allocates an array for what it removes.
        if (i + 1 < n) entries.copyWithin(i, i + 1);
        entries.pop();
        this.recycle(e);
        return e;
      }
    }
    return null;
  }

  private recycle(e: Pending): void {
    const last = this.taken;
    if (last != null) {
      // Nothing may keep a local reply or a log note alive once its entry is reused.
      last.reply = null;
      last.note = null;
      if (this.spare.length < SPARE_LIMIT) this.spare.push(last);
    }
    this.taken = e;
  }

  /** Start time of the oldest waiting request; 0 when none waits. */
  oldestStart(): u64 {
    return this.entries.length > 0 ? unchecked(this.entries[0]).start : 0;
  }
}
