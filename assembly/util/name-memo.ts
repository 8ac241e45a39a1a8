// The last few names a codec decoded, by their bytes: a connection's frames repeat a handful of
// method names (Thrift's `Service:method`), and comparing a few bytes costs less than decoding
// UTF-8 into a new string and cutting it at the colon again. Each name keeps two strings (for
// Thrift, the service and the method), decided once when the name is first seen. Oldest out first.
import { StringSlots, SLOT_BYTES } from "./string-slots";

export const NAME_MEMO_SIZE: i32 = 4;
/** Longest name remembered, in bytes; longer ones are decoded every time. */
export const NAME_MEMO_BYTES: i32 = SLOT_BYTES;

export class NameMemo {
  private readonly slots: StringSlots = new StringSlots(NAME_MEMO_SIZE);
  private next: i32 = 0;
  /** The strings of the last find() that returned true, or of the last remember(). */
  first: string | null = null;
  second: string = "";

  /** Whether the `n` bytes at `src` are a remembered name; if so, its strings are in first and second. */
  find(src: usize, n: i32): bool {
    if (n <= 0) return false; // an empty name is cheap to decode, and empty slots hold nothing
    const slots = this.slots;
    for (let i = 0; i < NAME_MEMO_SIZE; i++) {
      if (slots.prefixOf(i, src, n) != n) continue;
      this.first = slots.first(i);
      this.second = slots.second(i);
      return true;
    }
    return false;
  }

  /** Remembers the `n` bytes at `src` with their strings (not when longer than NAME_MEMO_BYTES). */
  remember(src: usize, n: i32, first: string | null, second: string): void {
    this.first = first;
    this.second = second;
    if (n > NAME_MEMO_BYTES) return;
    this.slots.keep(this.next, src, n, first, second);
    this.next = (this.next + 1) % NAME_MEMO_SIZE;
  }
}
