// Strings kept in numbered slots with the bytes they were decoded from, so that a codec meeting
// the same bytes again takes the strings instead of decoding and allocating them anew. The
// storage and the byte compare are here; which slot to ask is the user's policy (util/name-memo.ts:
// the last few names, searched; the Hessian reader: the n-th string of the previous frame).
// Each slot holds up to two strings (a service and a method, or just one).

/** Longest encoding a slot keeps, in bytes; longer ones are never kept. */
export const SLOT_BYTES: i32 = 128;

export class StringSlots {
  /**
   * Per slot, its kept bytes, sized to the longest encoding that slot kept so far: a codec of each
   * of thousands of connections holds these, so short names cost short buffers (null until kept).
   */
  private readonly bytes: StaticArray<Uint8Array | null>;
  /** Bytes kept per slot; 0: empty (every encoding kept is at least one byte). */
  private readonly lengths: StaticArray<i32>;
  private readonly firsts: StaticArray<string | null>;
  private readonly seconds: StaticArray<string>;

  constructor(readonly count: i32) {
    this.bytes = new StaticArray<Uint8Array | null>(count);
    this.lengths = new StaticArray<i32>(count);
    this.firsts = new StaticArray<string | null>(count);
    this.seconds = new StaticArray<string>(count);
  }

  /**
   * The length of slot `i`'s bytes when the `available` bytes at `src` start with them, else 0.
   * (A caller that knows the encoding's length compares it with the result.)
   */
  prefixOf(i: i32, src: usize, available: i32): i32 {
    const n = unchecked(this.lengths[i]);
    if (n == 0 || n > available) return 0;
    return memory.compare(src, unchecked(this.bytes[i])!.dataStart, <usize>n) == 0 ? n : 0;
  }

  @inline first(i: i32): string | null {
    return unchecked(this.firsts[i]);
  }

  @inline second(i: i32): string {
    return unchecked(this.seconds[i]);
  }

  /** Keeps the `n` bytes at `src` and their strings in slot `i`; an encoding over SLOT_BYTES empties it. */
  keep(i: i32, src: usize, n: i32, first: string | null, second: string): void {
    if (n <= 0 || n > SLOT_BYTES) {
      unchecked((this.lengths[i] = 0));
      return;
    }
    let kept = unchecked(this.bytes[i]);
    if (kept == null || kept.length < n) {
      kept = new Uint8Array(n);
      unchecked((this.bytes[i] = kept));
    }
    memory.copy(kept.dataStart, src, <usize>n);
    unchecked((this.lengths[i] = n));
    unchecked((this.firsts[i] = first));
    unchecked((this.seconds[i] = second));
  }
}
