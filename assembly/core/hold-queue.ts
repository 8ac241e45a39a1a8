// Request bytes held back by injected delays (fault `fixedDelayMs`), in the order they came, each
// with the time it may pass. A read never passes before the reads queued ahead of it, so release
// times never decrease along the queue. Pure: the role that owns it schedules the timer and hands
// what is released to Envoy.

export class HoldQueue {
  private reads: Uint8Array[] = [];
  private until: u64[] = [];
  /** Bytes held in all. */
  bytes: i32 = 0;

  @inline get length(): i32 {
    return this.reads.length;
  }

  /**
   * Queues `read`, which may pass at `at` (ns; 0 when none of its requests was delayed) but not
   * before the read ahead of it. An empty read is queued only into an empty queue (it still marks
   * the hold). Returns the time it may pass.
   */
  push(read: Uint8Array, at: u64): u64 {
    const n = this.reads.length;
    if (n > 0 && unchecked(this.until[n - 1]) > at) at = unchecked(this.until[n - 1]);
    if (read.length > 0 || n == 0) {
      this.reads.push(read);
      this.until.push(at);
      this.bytes += read.length;
    }
    return at;
  }

  /** Every held read waits for the last one (nothing may pass after the client's end of stream). */
  holdAllUntilLast(): void {
    const n = this.until.length;
    for (let i = 0; i < n - 1; i++) unchecked((this.until[i] = this.until[n - 1]));
  }

  /** When the first held read may pass (ns); the queue must not be empty. */
  nextDue(): u64 {
    return this.until[0];
  }

  /** How many reads from the front may pass at `now`. */
  dueCount(now: u64): i32 {
    let n = 0;
    while (n < this.until.length && unchecked(this.until[n]) <= now) n++;
    return n;
  }

  /** Removes the first `n` reads and returns their bytes, joined. */
  take(n: i32): Uint8Array {
    let total = 0;
    for (let i = 0; i < n; i++) total += this.reads[i].length;
    const out = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < n; i++) {
      out.set(this.reads[i], at);
      at += this.reads[i].length;
    }
    this.reads.splice(0, n);
    this.until.splice(0, n);
    this.bytes -= total;
    return out;
  }
}
