// Requests sent upstream and not yet answered, keyed by correlation id. Responses usually come
// back in order, so the oldest entry is checked first.

export class InFlight {
  private ids: u64[] = [];
  private routes: i32[] = [];
  private starts: u64[] = [];
  /** Route and start time of the entry the last take() removed. */
  route: i32 = -1;
  start: u64 = 0;

  constructor(private limit: i32) {}

  get size(): i32 {
    return this.ids.length;
  }

  /** Records a request; false (and nothing recorded) when `limit` requests are already waiting. */
  add(id: u64, route: i32, start: u64): bool {
    if (this.ids.length >= this.limit) return false;
    this.ids.push(id);
    this.routes.push(route);
    this.starts.push(start);
    return true;
  }

  /** Removes the request with `id`; false when no such request is waiting. */
  take(id: u64): bool {
    const ids = this.ids;
    for (let i = 0, n = ids.length; i < n; i++) {
      if (unchecked(ids[i]) == id) {
        this.route = unchecked(this.routes[i]);
        this.start = unchecked(this.starts[i]);
        ids.splice(i, 1);
        this.routes.splice(i, 1);
        this.starts.splice(i, 1);
        return true;
      }
    }
    return false;
  }
}
