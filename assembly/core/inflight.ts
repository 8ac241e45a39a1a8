// Requests sent upstream and not yet answered, keyed by correlation id. Responses usually come
// back in order, so the oldest entry is checked first, and entries stay in send order (the first
// is the oldest, which is what request timeouts look at).

export class InFlight {
  private ids: u64[] = [];
  private routes: i32[] = [];
  private starts: u64[] = [];
  private replies: Array<Uint8Array | null> = [];
  private notes: string[] = [];
  private ops: i32[] = [];
  /** Route, start time (host clock, ns) and local reply of the entry the last take() removed. */
  route: i32 = -1;
  start: u64 = 0;
  reply: Uint8Array | null = null;
  note: string = "";
  op: i32 = -1;

  constructor(private limit: i32) {}

  get size(): i32 {
    return this.ids.length;
  }

  /**
   * Records a request. `reply`, when set, replaces whatever the server answers (a local reply
   * sent through a probe request); `note` (access log) and `op` (per-operation stats) describe the request. False, recording nothing, when `limit` requests are waiting.
   */
  add(id: u64, route: i32, start: u64, reply: Uint8Array | null = null, note: string = "", op: i32 = -1): bool {
    if (this.ids.length >= this.limit) return false;
    this.ids.push(id);
    this.routes.push(route);
    this.starts.push(start);
    this.replies.push(reply);
    this.notes.push(note);
    this.ops.push(op);
    return true;
  }

  /** Removes the request with `id`; false when no such request is waiting. */
  take(id: u64): bool {
    const ids = this.ids;
    for (let i = 0, n = ids.length; i < n; i++) {
      if (unchecked(ids[i]) == id) {
        this.route = unchecked(this.routes[i]);
        this.start = unchecked(this.starts[i]);
        this.reply = unchecked(this.replies[i]);
        this.note = unchecked(this.notes[i]);
        this.op = unchecked(this.ops[i]);
        ids.splice(i, 1);
        this.routes.splice(i, 1);
        this.starts.splice(i, 1);
        this.replies.splice(i, 1);
        this.notes.splice(i, 1);
        this.ops.splice(i, 1);
        return true;
      }
    }
    return false;
  }

  /** Start time of the oldest waiting request; 0 when none waits. */
  oldestStart(): u64 {
    return this.ids.length > 0 ? unchecked(this.starts[0]) : 0;
  }
}
