// The last few names a codec decoded, by their bytes: a connection's frames repeat a handful of
// method names (Thrift's `Service:method`), and comparing a few bytes costs less than decoding
// UTF-8 into a new string and cutting it at the colon again. Each name keeps two strings (for
// Thrift, the service and the method), decided once when the name is first seen. Oldest out first.

export const NAME_MEMO_SIZE: i32 = 4;
/** Longest name remembered, in bytes; longer ones are decoded every time. */
export const NAME_MEMO_BYTES: i32 = 128;

export class NameMemo {
  private bytes: Uint8Array = new Uint8Array(NAME_MEMO_SIZE * NAME_MEMO_BYTES);
  private lengths: StaticArray<i32> = new StaticArray<i32>(NAME_MEMO_SIZE);
  private firsts: StaticArray<string | null> = new StaticArray<string | null>(NAME_MEMO_SIZE);
  private seconds: StaticArray<string> = new StaticArray<string>(NAME_MEMO_SIZE);
  private used: i32 = 0;
  private next: i32 = 0;
  /** The strings of the last find() that returned true, or of the last remember(). */
  first: string | null = null;
  second: string = "";

  /** Whether the `n` bytes at `src` are a remembered name; if so, its strings are in first and second. */
  find(src: usize, n: i32): bool {
    for (let i = 0; i < this.used; i++) {
      if (unchecked(this.lengths[i]) != n) continue;
      if (memory.compare(src, this.bytes.dataStart + <usize>(i * NAME_MEMO_BYTES), <usize>n) != 0) continue;
      this.first = unchecked(this.firsts[i]);
      this.second = unchecked(this.seconds[i]);
      return true;
    }
    return false;
  }

  /** Remembers the `n` bytes at `src` with their strings (not when longer than NAME_MEMO_BYTES). */
  remember(src: usize, n: i32, first: string | null, second: string): void {
    this.first = first;
    this.second = second;
    if (n > NAME_MEMO_BYTES) return;
    const slot = this.next;
    memory.copy(this.bytes.dataStart + <usize>(slot * NAME_MEMO_BYTES), src, <usize>n);
    unchecked((this.lengths[slot] = n));
    unchecked((this.firsts[slot] = first));
    unchecked((this.seconds[slot] = second));
    this.next = (slot + 1) % NAME_MEMO_SIZE;
    if (this.used < NAME_MEMO_SIZE) this.used++;
  }
}
