// A few remembered (a, b) -> value results, for lookups that mostly repeat a handful of keys on the
// hot path (a request's service and method: Redis GET and SET, a service's few methods). Two
// string compares, a pointer check when the strings are interned, cost less than hashing into
// maps. Oldest out first.

export const PAIR_MEMO_SIZE: i32 = 4;

export class PairMemo {
  private a: StaticArray<string | null> = new StaticArray<string | null>(PAIR_MEMO_SIZE);
  private b: StaticArray<string | null> = new StaticArray<string | null>(PAIR_MEMO_SIZE);
  private values: StaticArray<i32> = new StaticArray<i32>(PAIR_MEMO_SIZE);
  private next: i32 = 0;

  /** The value remembered for (a, b), or -1. */
  find(a: string, b: string): i32 {
    for (let i = 0; i < PAIR_MEMO_SIZE; i++) {
      const kb = unchecked(this.b[i]);
      if (kb != null && kb == b && unchecked(this.a[i]) == a) return unchecked(this.values[i]);
    }
    return -1;
  }

  /** Remembers `value` (>= 0) for (a, b) in place of the oldest entry. */
  remember(a: string, b: string, value: i32): void {
    const slot = this.next;
    unchecked((this.a[slot] = a));
    unchecked((this.b[slot] = b));
    unchecked((this.values[slot] = value));
    this.next = (slot + 1) % PAIR_MEMO_SIZE;
  }
}
