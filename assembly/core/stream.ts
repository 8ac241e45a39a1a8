// One direction of a connection, cut into frames across TCP reads. Bytes of an incomplete frame
// are carried in VM memory to the next read (the write path cannot pause, so both directions
// carry the same way). When every byte of a read is forwarded unchanged, finish() says so and the
// host buffer is left alone: the common case costs no copy.
import { Codec, NEED_MORE, FRAME_ERROR } from "./codec";
import { ByteWriter, Window } from "./bytes";

export const enum Finish {
  /** Keep an incomplete trailing frame for the next read. */
  Carry = 0,
  /** Forward everything, incomplete trailing bytes too (end of stream: never swallow bytes). */
  Flush = 1,
  /** Forward only the frames already cut; drop the rest (the connection is being closed). */
  Discard = 2,
}

/** What `work` holds between reads: nothing, without an allocation per read. */
const NOTHING = new Uint8Array(0);

export class FrameStream {
  /** Bytes carried from earlier reads, then this read's bytes when there was a carry. */
  private carry: Uint8Array = new Uint8Array(0);
  private carryLen: i32 = 0;
  /** The bytes being cut in this read: `chunk` itself, or a view of `carry`. */
  private work: Uint8Array = new Uint8Array(0);
  private carriedIn: bool = false;
  /** Start of the next frame in `work`. */
  pos: i32 = 0;
  frameStart: i32 = 0;
  // Output splicing: bytes [0, copied) of `work` are already in `out`, or nothing changed yet.
  private out: ByteWriter = new ByteWriter(256);
  private copied: i32 = 0;
  private changed: bool = false;
  /** What next() hands the codec and what frame() returns: moved, not allocated, per frame. */
  private rest: Window = new Window();
  private cut: Window = new Window();

  /** Starts a read of `chunk`, the host buffer's bytes. */
  begin(chunk: Uint8Array): void {
    this.pos = 0;
    this.copied = 0;
    this.changed = false;
    this.out.clear();
    if (this.carryLen == 0) {
      this.carriedIn = false;
      this.work = chunk;
      return;
    }
    this.carriedIn = true;
    this.ensureCarry(this.carryLen + chunk.length);
    memory.copy(this.carry.dataStart + <usize>this.carryLen, chunk.dataStart, <usize>chunk.length);
    this.carryLen += chunk.length;
    this.work = this.carry.subarray(0, this.carryLen);
  }

  /** Bytes not yet cut into frames. */
  @inline remaining(): i32 {
    return this.work.length - this.pos;
  }

  /**
   * Cuts the next frame: its size when a whole frame is available (see frame()), NEED_MORE when
   * the rest is incomplete, FRAME_ERROR when the codec rejects the bytes (codec.error says why).
   */
  next(codec: Codec, maxFrame: i32): i32 {
    if (this.pos >= this.work.length) return NEED_MORE;
    const rest = this.rest.moveTo(this.work, this.pos, this.work.length - this.pos);
    const size = codec.frameSize(rest, maxFrame);
    if (size == FRAME_ERROR) return FRAME_ERROR;
    if (size == NEED_MORE || size > rest.length) return NEED_MORE;
    this.frameStart = this.pos;
    this.pos += size;
    return size;
  }

  /** The frame that next() just cut: a view, valid until the next next() or frame(). */
  frame(): Uint8Array {
    return this.cut.moveTo(this.work, this.frameStart, this.pos - this.frameStart);
  }

  /** Forwards `bytes` in place of the frame just cut; null drops the frame. */
  replaceFrame(bytes: Uint8Array | null): void {
    this.out.bytes(this.work.subarray(this.copied, this.frameStart));
    if (bytes != null) this.out.bytes(bytes);
    this.copied = this.pos;
    this.changed = true;
  }

  /**
   * Ends the read. Returns what must replace the host buffer, or null when the host buffer can be
   * forwarded exactly as it is.
   */
  finish(mode: Finish): Uint8Array | null {
    const end = mode == Finish.Flush ? this.work.length : this.pos;
    const left = this.work.length - this.pos;
    const keep = mode == Finish.Carry ? left : 0;
    let result: Uint8Array | null = null;
    if (this.changed || this.carriedIn || end != this.work.length) {
      this.out.bytes(this.work.subarray(this.copied, end));
      result = this.out.toBytes();
    }
    if (keep > 0) {
      if (this.carriedIn) {
        this.carry.copyWithin(0, this.pos, this.work.length);
      } else {
        this.ensureCarry(keep);
        memory.copy(this.carry.dataStart, this.work.dataStart + <usize>this.pos, <usize>keep);
      }
    }
    this.carryLen = keep;
    this.work = NOTHING;
    return result;
  }

  /** Bytes held in VM memory between reads. */
  carried(): i32 {
    return this.carryLen;
  }

  private ensureCarry(n: i32): void {
    if (n <= this.carry.length) return;
    let cap = max(this.carry.length << 1, 256);
    while (cap < n) cap <<= 1;
    const next = new Uint8Array(cap);
    memory.copy(next.dataStart, this.carry.dataStart, <usize>this.carryLen);
    this.carry = next;
  }
}
