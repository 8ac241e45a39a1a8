// RESP, the Redis serialization protocol: measuring one value (a command, a reply) in a byte
// stream that has no length prefix. A RESP frame's size is only known by walking it: every
// aggregate's element count and every bulk's length is read in turn. The walk is resumable: when a
// frame is incomplete, it remembers the last whole element, so that more bytes of the same frame
// are not walked again (what FrameStream does as reads add up).
//
// Bounds: a simple line (`+`, `-`, `:`, inline command, ...) is at most maxLine bytes, a bulk at
// most maxFrameBytes, an aggregate at most MAX_COUNT elements, nesting at most MAX_DEPTH deep.
// Errors go to the codec the scanner measures for (its `error`, or frameTooLarge).
import { Codec, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { peekU8 } from "../core/bytes";

/** Most elements in one array, set, map (pairs count twice) or push; redis-server's limit for a command. */
export const MAX_COUNT: i64 = 1024 * 1024;
/** Deepest aggregate nesting in a reply (Lua tables nest deep; each level costs 8 bytes here). */
export const MAX_DEPTH: i32 = 128;
/** Most decimal digits in a length or integer (keeps i64 arithmetic exact). */
const MAX_DIGITS: i32 = 18;

export const CR: u32 = 0x0d;
export const LF: u32 = 0x0a;

// Type bytes.
export const T_ARRAY: u32 = 0x2a; // *
export const T_BULK: u32 = 0x24; // $
export const T_SIMPLE: u32 = 0x2b; // +
export const T_ERROR: u32 = 0x2d; // -
export const T_INTEGER: u32 = 0x3a; // :
export const T_NULL: u32 = 0x5f; // _  RESP3
export const T_BOOLEAN: u32 = 0x23; // #  RESP3
export const T_DOUBLE: u32 = 0x2c; // ,  RESP3
export const T_BIGNUM: u32 = 0x28; // (  RESP3
export const T_BULK_ERROR: u32 = 0x21; // !  RESP3
export const T_VERBATIM: u32 = 0x3d; // =  RESP3
export const T_MAP: u32 = 0x25; // %  RESP3
export const T_SET: u32 = 0x7e; // ~  RESP3
export const T_PUSH: u32 = 0x3e; // >  RESP3
export const T_ATTRIBUTE: u32 = 0x7c; // |  RESP3

// Scan outcomes (lengths are returned as themselves, > 0).
export const MORE: i32 = 0;
export const BAD: i32 = -1;

/** Byte `i` of `d` (core/bytes.ts peekU8: no bounds check; RESP's walk checks its own). */
@inline export function at(d: Uint8Array, i: i32): u32 {
  return peekU8(d, i);
}

export class RespScanner {
  /** Longest line accepted, type byte to CR. */
  maxLine: i32;
  /** Result of numberLine/textLine: the value, and the offset after the line's LF. */
  num: i64 = 0;
  next: i32 = 0;
  // Resumable measuring: where scan stopped (an element boundary) when it returned MORE, the
  // elements still owed at each open nesting level, and how to recognise the same frame again.
  private stack: StaticArray<i64> = new StaticArray<i64>(MAX_DEPTH + 2);
  private depth: i32 = 0;
  private resumeAt: i32 = 0;
  private resumeLen: i32 = 0;
  private resumeHead: u64 = 0;

  constructor(private readonly codec: Codec, maxLine: i32) {
    this.maxLine = maxLine;
  }

  /** An inline command: everything up to and including the first LF. */
  inlineSize(data: Uint8Array, maxFrame: i32): i32 {
    const limit = min(data.length, this.maxLine + 1);
    for (let i = 0; i < limit; i++) {
      if (at(data, i) == LF) {
        if (i + 1 > maxFrame) return this.tooLarge(i + 1, maxFrame, "inline command");
        return i + 1;
      }
    }
    if (data.length > this.maxLine) {
      this.codec.error = "redis: inline command longer than " + this.maxLine.toString() + " bytes";
      return FRAME_ERROR;
    }
    if (data.length > maxFrame) return this.tooLarge(data.length, maxFrame, "inline command");
    return NEED_MORE;
  }

  /**
   * Measures one value at `start` (with the attributes before it): its end offset, MORE or BAD.
   * `request` demands an array of bulk strings. `resume` (frameSize only, start 0) keeps the
   * position across calls on the same frame.
   */
  scan(d: Uint8Array, start: i32, maxFrame: i32, request: bool, resume: bool): i32 {
    const stack = this.stack;
    let depth = 0;
    let pos = start;
    if (resume && this.resumeAt > 0 && d.length >= this.resumeLen && head(d) == this.resumeHead) {
      pos = this.resumeAt;
      depth = this.depth;
    } else {
      unchecked((stack[0] = 1));
    }
    this.resumeAt = 0;
    const n = d.length;
    while (depth >= 0) {
      if (unchecked(stack[depth]) == 0) {
        depth--;
        continue;
      }
      if (pos >= n) return this.more(d, pos, depth, maxFrame, resume, request);
      const t = at(d, pos);
      if (request) {
        // redis-server's grammar: `*N` then N bulks, nothing nested.
        if (depth == 0 && t != T_ARRAY) return this.unexpected(pos, T_ARRAY, t);
        if (depth == 1 && t != T_BULK) return this.unexpected(pos, T_BULK, t);
      }
      let end: i32 = 0;
      let children: i64 = 0;
      switch (t) {
        case T_BULK: case T_BULK_ERROR: case T_VERBATIM: {
          const s = this.numberLine(d, pos, "bulk length");
          if (s != 1) return s == MORE ? this.more(d, pos, depth, maxFrame, resume, request) : BAD;
          const len = this.num;
          if (len == -1 && t == T_BULK && !request) {
            end = this.next; // RESP2 null bulk
            break;
          }
          if (len < 0) return this.bad("redis: bulk length " + len.toString() + " is invalid");
          if (len > <i64>maxFrame) return this.tooLarge(len, maxFrame, "bulk length");
          end = this.next + <i32>len + 2;
          if (end > maxFrame) return this.tooLarge(end, maxFrame, request ? "command" : "reply");
          if (end > n) return this.more(d, pos, depth, maxFrame, resume, request);
          if (at(d, end - 2) != CR || at(d, end - 1) != LF) {
            return this.bad("redis: expected CRLF after the " + len.toString() + "-byte bulk at offset " + pos.toString() + ", got " + show(at(d, end - 2)) + " " + show(at(d, end - 1)));
          }
          if (t == T_VERBATIM && (len < 4 || at(d, this.next + 3) != 0x3a)) {
            return this.bad("redis: verbatim string at offset " + pos.toString() + " lacks its 3-byte format and ':'");
          }
          break;
        }
        case T_ARRAY: case T_SET: case T_PUSH: case T_MAP: case T_ATTRIBUTE: {
          const what = t == T_MAP || t == T_ATTRIBUTE ? "map length" : t == T_ARRAY ? "array length" : t == T_SET ? "set length" : "push length";
          const s = this.numberLine(d, pos, what);
          if (s != 1) return s == MORE ? this.more(d, pos, depth, maxFrame, resume, request) : BAD;
          let count = this.num;
          end = this.next;
          if (count == -1 && t == T_ARRAY) break; // RESP2 null array
          if (count <= 0 && request) break; // `*0`, `*-1`: redis-server ignores them
          if (count < 0) return this.bad("redis: " + what + " " + count.toString() + " is invalid");
          if (t == T_MAP || t == T_ATTRIBUTE) count *= 2;
          if (count > MAX_COUNT) return this.bad("redis: " + what + " " + this.num.toString() + " exceeds the limit of " + MAX_COUNT.toString() + " elements");
          if (count > 0 && depth + 1 > MAX_DEPTH) return this.bad("redis: nesting deeper than " + MAX_DEPTH.toString() + " at offset " + pos.toString());
          children = count;
          break;
        }
        case T_INTEGER: {
          const s = this.numberLine(d, pos, "integer");
          if (s != 1) return s == MORE ? this.more(d, pos, depth, maxFrame, resume, request) : BAD;
          end = this.next;
          break;
        }
        case T_SIMPLE: case T_ERROR: case T_DOUBLE: case T_BIGNUM: case T_NULL: case T_BOOLEAN: {
          const s = this.textLine(d, pos);
          if (s != 1) return s == MORE ? this.more(d, pos, depth, maxFrame, resume, request) : BAD;
          end = this.next;
          const len = end - pos - 3;
          if (t == T_NULL && len != 0) return this.bad("redis: null at offset " + pos.toString() + " carries " + len.toString() + " bytes");
          if (t == T_BOOLEAN && (len != 1 || (at(d, pos + 1) != 0x74 && at(d, pos + 1) != 0x66))) {
            return this.bad("redis: boolean at offset " + pos.toString() + " is not 't' or 'f'");
          }
          if ((t == T_DOUBLE || t == T_BIGNUM) && len == 0) return this.bad("redis: empty number at offset " + pos.toString());
          break;
        }
        default:
          return this.bad("redis: unknown reply type " + show(t) + " at offset " + pos.toString());
      }
      if (end > maxFrame) return this.tooLarge(end, maxFrame, request ? "command" : "reply");
      pos = end;
      // An attribute is not the value: one more element is owed where it stood.
      if (t != T_ATTRIBUTE) unchecked((stack[depth] = stack[depth] - 1));
      if (children > 0) {
        depth++;
        unchecked((stack[depth] = children));
      }
    }
    return pos - start;
  }

  /** NEED_MORE, remembering where to resume; BAD when the frame already exceeds maxFrame. */
  private more(d: Uint8Array, pos: i32, depth: i32, maxFrame: i32, resume: bool, request: bool): i32 {
    if (d.length > maxFrame) return this.tooLarge(d.length, maxFrame, request ? "command" : "reply");
    if (resume && pos > 0) {
      this.resumeAt = pos;
      this.resumeLen = d.length;
      this.resumeHead = head(d);
      this.depth = depth;
    }
    return MORE;
  }

  /**
   * The decimal integer line after the type byte at `p`: 1 with `num` and `next` set, MORE or
   * BAD. Digits are checked as they come, so garbage fails at once rather than at the line's end.
   */
  numberLine(d: Uint8Array, p: i32, what: string): i32 {
    const n = d.length;
    let i = p + 1;
    const negative = i < n && at(d, i) == 0x2d;
    if (negative) i++;
    const digits = i;
    let v: i64 = 0;
    for (; i < n; i++) {
      const c = at(d, i);
      if (c - 0x30 < 10) {
        if (i - digits >= MAX_DIGITS) return this.bad("redis: " + what + " at offset " + p.toString() + " has more than " + MAX_DIGITS.toString() + " digits");
        v = v * 10 + <i64>(c - 0x30);
        continue;
      }
      if (c != CR) return this.bad("redis: " + what + " at offset " + p.toString() + " is not a number: got " + show(c) + " at offset " + i.toString());
      if (i == digits) return this.bad("redis: " + what + " at offset " + p.toString() + " has no digits");
      if (i + 1 >= n) return MORE;
      if (at(d, i + 1) != LF) return this.unexpected(i + 1, LF, at(d, i + 1));
      this.num = negative ? -v : v;
      this.next = i + 2;
      return 1;
    }
    return MORE;
  }

  /** A line of text after the type byte at `p`, up to maxLine bytes: 1 with `next` set, MORE or BAD. */
  private textLine(d: Uint8Array, p: i32): i32 {
    const limit = min(d.length, p + 1 + this.maxLine);
    for (let i = p + 1; i < limit; i++) {
      const c = at(d, i);
      if (c == CR) {
        if (i + 1 >= d.length) return MORE;
        if (at(d, i + 1) != LF) return this.unexpected(i + 1, LF, at(d, i + 1));
        this.next = i + 2;
        return 1;
      }
      if (c == LF) return this.bad("redis: line at offset " + p.toString() + " holds a bare LF at offset " + i.toString());
    }
    if (d.length - p - 1 >= this.maxLine) return this.bad("redis: line at offset " + p.toString() + " is longer than " + this.maxLine.toString() + " bytes");
    return MORE;
  }

  unexpected(pos: i32, want: u32, got: u32): i32 {
    return this.bad("redis: expected " + show(want) + " at offset " + pos.toString() + ", got " + show(got));
  }

  /** `what` is "bulk length" (the value read) or a frame kind (its size so far). */
  private tooLarge(size: i64, maxFrame: i32, what: string): i32 {
    const value = what == "bulk length" ? " " + size.toString() : " of at least " + size.toString() + " bytes";
    this.codec.frameTooLarge("redis: " + what + value, maxFrame);
    return BAD;
  }

  private bad(message: string): i32 {
    this.codec.error = message;
    return BAD;
  }
}

/** The first up to 8 bytes of `d`, to recognise a frame when frameSize resumes. */
function head(d: Uint8Array): u64 {
  let v: u64 = 0;
  const n = min(d.length, 8);
  for (let i = 0; i < n; i++) v = (v << 8) | <u64>at(d, i);
  return v | (<u64>n << 60);
}

/** A byte for an error message: 'c' when printable ASCII, else 0xHH. */
export function show(c: u32): string {
  if (c == CR) return "'\\r'";
  if (c == LF) return "'\\n'";
  if (c >= 0x20 && c < 0x7f) return "'" + String.fromCharCode(c) + "'";
  return "0x" + (c < 16 ? "0" : "") + c.toString(16);
}

