// Redis: RESP2 requests (arrays of bulk strings, and inline commands as redis-server accepts them)
// and RESP2 and RESP3 replies.
//
// Correlation: Redis frames carry no id; a server answers a connection's commands in order. So
// this codec numbers them: the request codec gives the n-th command it decodes requestId n, the
// response codec gives the n-th reply requestId n, both counting from 1. They stay in step because
// every command gets exactly one reply and frames that get none are not numbered: blank inline
// lines and `*0` (redis-server ignores both; they decode as non-routable pass-through frames) and
// RESP3 push frames (`>`, not replies; they decode as server-initiated). This relies on the
// connection decoding each frame exactly once, in stream order, on each direction's codec, and on
// `readsResponses` telling the codec which direction it reads: RESP does not say on the wire.
//
// Not supported, because they break one reply per command: pub/sub (SUBSCRIBE, PSUBSCRIBE,
// SSUBSCRIBE and their UNSUBSCRIBEs), MONITOR and CLIENT REPLY OFF|SKIP. decode() refuses them
// with a precise error, so the connection closes (after the answers it owes) instead of pairing
// replies with the wrong commands. Inside MULTI the server queues the local-reply probe (PING) and
// answers +QUEUED, which is swapped for the error as usual; EXEC's array then holds its PONG.
//
// Metadata of a request: `command`, upper-cased, and `key`: the first argument, whatever the
// command (for GET, SET, HSET, ... the key; for CONFIG GET the subcommand), except AUTH and HELLO,
// whose arguments may be passwords. Replies: kind Reply, or Exception for errors (`-`, `!`).
//
// Bounds: a simple line (`+`, `-`, `:`, inline command, ...) is at most maxLine bytes, a bulk at
// most maxFrameBytes, an aggregate at most MAX_COUNT elements, nesting at most MAX_DEPTH deep.
import { Codec, CodecFactory, ErrorCode, CallScope, BatchAnswer, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { Metadata, MessageKind } from "../core/metadata";
import { ByteWriter } from "../core/bytes";

/**
 * Longest line by default, type byte to CR (an inline command, a simple string or error reply).
 * redis-server refuses inline commands over 64 KiB only when they arrive slowly, and a Lua error
 * reply can be long, so the default is generous; codecOptions.maxLineBytes changes it (a line is
 * never longer than maxFrameBytes either).
 */
export const DEFAULT_MAX_LINE: i32 = 1 << 20;
const MIN_LINE_OPTION: i32 = 1024;
const MAX_LINE_OPTION: i32 = 64 << 20;
/** Most elements in one array, set, map (pairs count twice) or push; redis-server's limit for a command. */
export const MAX_COUNT: i64 = 1024 * 1024;
/** Deepest aggregate nesting in a reply (Lua tables nest deep; each level costs 8 bytes here). */
export const MAX_DEPTH: i32 = 128;
/** Most decimal digits in a length or integer (keeps i64 arithmetic exact). */
const MAX_DIGITS: i32 = 18;

const CR: u32 = 0x0d;
const LF: u32 = 0x0a;

// Type bytes.
const T_ARRAY: u32 = 0x2a; // *
const T_BULK: u32 = 0x24; // $
const T_SIMPLE: u32 = 0x2b; // +
const T_ERROR: u32 = 0x2d; // -
const T_INTEGER: u32 = 0x3a; // :
const T_NULL: u32 = 0x5f; // _  RESP3
const T_BOOLEAN: u32 = 0x23; // #  RESP3
const T_DOUBLE: u32 = 0x2c; // ,  RESP3
const T_BIGNUM: u32 = 0x28; // (  RESP3
const T_BULK_ERROR: u32 = 0x21; // !  RESP3
const T_VERBATIM: u32 = 0x3d; // =  RESP3
const T_MAP: u32 = 0x25; // %  RESP3
const T_SET: u32 = 0x7e; // ~  RESP3
const T_PUSH: u32 = 0x3e; // >  RESP3
const T_ATTRIBUTE: u32 = 0x7c; // |  RESP3

/** The local-reply probe: PING, which every server answers at once (+PONG) and in order. */
const PING: string = "*1\r\n$4\r\nPING\r\n";
/** Drops the open transaction: sent instead of EXEC when Meltemi refused one of its commands. */
const DISCARD: string = "*1\r\n$7\r\nDISCARD\r\n";
/** Clears a connection's state (database, protocol, user, name, MULTI, WATCH): Redis 6.2 and later. */
const RESET: string = "*1\r\n$5\r\nRESET\r\n";

// Scan outcomes (lengths are returned as themselves, > 0).
const MORE: i32 = 0;
const BAD: i32 = -1;

@inline function at(d: Uint8Array, i: i32): u32 {
  return <u32>load<u8>(d.dataStart + <usize>i);
}

export class RedisCodec extends Codec {
  /** Longest line accepted (see DEFAULT_MAX_LINE). */
  maxLine: i32 = DEFAULT_MAX_LINE;
  /** Whether decode() sets `key` (readsOnly: left out when nothing reads it, a string less per request). */
  private wantsKey: bool = true;
  private nextId: u64 = 1;
  private w: ByteWriter = new ByteWriter(64);
  /** Result of numberLine/textLine: the value, and the offset after the line's LF. */
  private num: i64 = 0;
  private next: i32 = 0;
  // Resumable measuring: where frameSize stopped (an element boundary) when it returned NEED_MORE,
  // the elements still owed at each open nesting level, and how to recognise the same frame again.
  private stack: StaticArray<i64> = new StaticArray<i64>(MAX_DEPTH + 2);
  private depth: i32 = 0;
  private resumeAt: i32 = 0;
  private resumeLen: i32 = 0;
  private resumeHead: u64 = 0;

  /**
   * Requests: an array of bulk strings (`*`) or an inline line ending in LF. Replies: one RESP
   * value with its attributes. After NEED_MORE, a call on the same frame with more bytes (what
   * FrameStream does) resumes at the last whole element instead of rescanning the frame.
   */
  frameSize(data: Uint8Array, maxFrame: i32): i32 {
    if (data.length == 0) return NEED_MORE;
    if (!this.readsResponses && at(data, 0) != T_ARRAY) return this.inlineSize(data, maxFrame);
    const r = this.scan(data, 0, maxFrame, !this.readsResponses, true);
    if (r == BAD) return FRAME_ERROR;
    return r; // MORE == NEED_MORE
  }

  /**
   * Requests: kind Call with `command` and `key`, numbered; blank inline lines and `*0`/`*-1`
   * (which redis-server ignores) decode as unnumbered pass-through frames. Replies: Reply or
   * Exception, numbered; RESP3 pushes decode as server-initiated frames, unnumbered.
   */
  decode(frame: Uint8Array, meta: Metadata): bool {
    if (frame.length == 0) return this.fail("redis: empty frame");
    if (this.readsResponses) return this.decodeReply(frame, meta);
    // Argument i is bytes [starts[i], ends[i]) of `src`: the frame itself for an array (nothing
    // is copied), or `w`, where an inline command's arguments land unescaped.
    const w = this.w;
    w.clear();
    const starts = this.starts;
    const ends = this.ends;
    starts.length = 0;
    ends.length = 0;
    let src = frame;
    if (at(frame, 0) == T_ARRAY) {
      if (!this.splitArray(frame, starts, ends)) return false;
    } else {
      if (!this.splitInline(frame, w, starts, ends)) return false;
      src = w.buf;
    }
    if (ends.length == 0) {
      // Nothing the server answers: forward it, unnumbered and unrouted.
      meta.isRequest = false;
      meta.expectsReply = false;
      meta.kind = MessageKind.Heartbeat;
      return true;
    }
    const command = commandName(src, unchecked(starts[0]), unchecked(ends[0]));
    if (!this.supported(command, src, starts, ends)) return false;
    meta.kind = MessageKind.Call;
    meta.requestId = this.nextId++;
    meta.set("command", command);
    if (this.wantsKey && ends.length > 1 && command != "AUTH" && command != "HELLO") {
      const from = unchecked(starts[1]);
      meta.set("key", String.UTF8.decodeUnsafe(src.dataStart + <usize>from, <usize>(unchecked(ends[1]) - from)));
    }
    return true;
  }

  canMutate(): bool {
    return false;
  }

  readsOnly(keys: string[] | null): void {
    this.wantsKey = keys == null || keys.includes("key");
  }

  // ---- per-request mode ----
  //
  // Each command may reach another server connection. State that lives on a connection follows
  // the client's connection instead: AUTH, HELLO, SELECT and CLIENT SETNAME are replayed (after a
  // RESET) before calls on a server connection that lacks them; MULTI ... EXEC travel together;
  // WATCH would need every command of the client on one server connection and is refused.

  perRequestRefusal(meta: Metadata): string | null {
    const found = meta.get("command");
    const command = found != null ? found : "";
    if (command == "WATCH" || command == "UNWATCH") {
      return "meltemi: " + command + " is not supported in per-request mode (it needs one server connection for the whole client connection); use MULTI/EXEC without WATCH, or per-connection mode";
    }
    if (command == "RESET") return "meltemi: RESET is not supported in per-request mode";
    return null;
  }

  callScope(meta: Metadata): CallScope {
    const command = meta.get("command");
    if (command == null) return CallScope.Call;
    if (command == "MULTI") return CallScope.BeginBatch;
    if (command == "EXEC") return CallScope.CommitBatch;
    if (command == "DISCARD") return CallScope.DiscardBatch;
    if (command == "AUTH" || command == "HELLO" || command == "SELECT") return CallScope.Session;
    if (command == "CLIENT") {
      const sub = meta.get("key");
      if (sub != null && sub.toUpperCase() == "SETNAME") return CallScope.Session;
    }
    return CallScope.Call;
  }

  /** Replay order: AUTH, HELLO (protocol, and its own AUTH/SETNAME), SELECT, CLIENT SETNAME. */
  sessionSlot(meta: Metadata): i32 {
    const command = meta.get("command");
    if (command == "AUTH") return 0;
    if (command == "HELLO") return 1;
    if (command == "SELECT") return 2;
    return 3;
  }

  sessionReset(): Uint8Array | null {
    return Uint8Array.wrap(String.UTF8.encode(RESET));
  }

  batchDiscard(): Uint8Array | null {
    return Uint8Array.wrap(String.UTF8.encode(DISCARD));
  }

  batchAnswer(answer: BatchAnswer): Uint8Array {
    const text = answer == BatchAnswer.Ok ? "+OK\r\n" : answer == BatchAnswer.Queued ? "+QUEUED\r\n" : "-EXECABORT Transaction discarded because of previous errors.\r\n";
    return Uint8Array.wrap(String.UTF8.encode(text));
  }

  /** `-ERR <message>` (CR and LF in the message become spaces). */
  errorReply(meta: Metadata, code: ErrorCode, message: string): Uint8Array {
    const w = this.w;
    w.clear();
    w.utf8("-ERR ");
    const start = w.len;
    w.utf8(message.length > 0 ? message : defaultMessage(code));
    for (let i = start; i < w.len; i++) {
      const c = <u32>load<u8>(w.buf.dataStart + <usize>i);
      if (c == CR || c == LF) store<u8>(w.buf.dataStart + <usize>i, 0x20);
    }
    w.utf8("\r\n");
    return w.toBytes();
  }

  /** PING: answered with +PONG, in order, with no side effect (ids are positions, so any request keeps them). */
  localReplyProbe(meta: Metadata): Uint8Array | null {
    return Uint8Array.wrap(String.UTF8.encode(PING));
  }

  // ---- measuring ----

  private starts: i32[] = [];
  private ends: i32[] = [];

  /** An inline command: everything up to and including the first LF. */
  private inlineSize(data: Uint8Array, maxFrame: i32): i32 {
    const limit = min(data.length, this.maxLine + 1);
    for (let i = 0; i < limit; i++) {
      if (at(data, i) == LF) {
        if (i + 1 > maxFrame) return this.tooLarge(i + 1, maxFrame, "inline command");
        return i + 1;
      }
    }
    if (data.length > this.maxLine) {
      this.error = "redis: inline command longer than " + this.maxLine.toString() + " bytes";
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
  private scan(d: Uint8Array, start: i32, maxFrame: i32, request: bool, resume: bool): i32 {
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
  private numberLine(d: Uint8Array, p: i32, what: string): i32 {
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

  private unexpected(pos: i32, want: u32, got: u32): i32 {
    return this.bad("redis: expected " + show(want) + " at offset " + pos.toString() + ", got " + show(got));
  }

  /** `what` is "bulk length" (the value read) or a frame kind (its size so far). */
  private tooLarge(size: i64, maxFrame: i32, what: string): i32 {
    const value = what == "bulk length" ? " " + size.toString() : " of at least " + size.toString() + " bytes";
    this.frameTooLarge("redis: " + what + value, maxFrame);
    return BAD;
  }

  private bad(message: string): i32 {
    this.error = message;
    return BAD;
  }

  private fail(message: string): bool {
    this.error = message;
    return false;
  }

  // ---- decoding ----

  /** numberLine inside a frame already measured: false, with the reason, unless it is whole and valid. */
  private header(frame: Uint8Array, p: i32, what: string): bool {
    const s = this.numberLine(frame, p, what);
    if (s == MORE) return this.fail("redis: truncated " + what + " at offset " + p.toString());
    return s == 1;
  }

  private decodeReply(frame: Uint8Array, meta: Metadata): bool {
    meta.isRequest = false;
    meta.expectsReply = false;
    // Attributes (`|`) annotate the value that follows them.
    let p = 0;
    while (p < frame.length && at(frame, p) == T_ATTRIBUTE) {
      if (!this.header(frame, p, "map length")) return false;
      const count = this.num;
      if (count < 0 || count > MAX_COUNT) return this.fail("redis: map length " + count.toString() + " is invalid");
      p = this.next;
      for (let i: i64 = 0; i < count * 2; i++) {
        const size = this.scan(frame, p, frame.length, false, false);
        if (size <= 0) return this.fail(size == MORE ? "redis: truncated attribute" : this.error);
        p += size;
      }
    }
    if (p >= frame.length) return this.fail("redis: reply ends after its attributes");
    const t = at(frame, p);
    if (t == T_PUSH) {
      // Out-of-band data (RESP3 pub/sub, client tracking): not a reply, not numbered.
      meta.isRequest = true;
      meta.kind = MessageKind.Oneway;
      return true;
    }
    meta.kind = t == T_ERROR || t == T_BULK_ERROR ? MessageKind.Exception : MessageKind.Reply;
    meta.requestId = this.nextId++;
    return true;
  }

  /** Where the bulk strings of a `*N` request lie in `frame` (none for N <= 0). */
  private splitArray(frame: Uint8Array, starts: i32[], ends: i32[]): bool {
    if (!this.header(frame, 0, "array length")) return false;
    const count = this.num;
    let p = this.next;
    if (count > MAX_COUNT) return this.fail("redis: array length " + count.toString() + " exceeds the limit of " + MAX_COUNT.toString() + " elements");
    // Only the command and the first argument are kept (and for CLIENT the second, which says
    // REPLY OFF/SKIP); the rest is checked by frameSize.
    let keep = <i32>min(count, 2);
    for (let i = 0; i < keep; i++) {
      if (p >= frame.length) return this.fail("redis: truncated command at offset " + p.toString());
      if (at(frame, p) != T_BULK) return this.unexpected(p, T_BULK, at(frame, p)) == 1;
      if (!this.header(frame, p, "bulk length")) return false;
      const len = this.num;
      if (len < 0 || len > <i64>(frame.length - this.next)) return this.fail("redis: bulk length " + len.toString() + " is invalid");
      starts.push(this.next);
      ends.push(this.next + <i32>len);
      p = this.next + <i32>len + 2;
      if (i == 0 && count > 2 && isClient(frame, this.next, <i32>len)) keep = 3;
    }
    return true;
  }

  /**
   * An inline command split as redis-server does (sdssplitargs): blanks separate arguments,
   * "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' take \'.
   */
  private splitInline(frame: Uint8Array, w: ByteWriter, starts: i32[], ends: i32[]): bool {
    let end = frame.length;
    if (end > 0 && at(frame, end - 1) == LF) end--;
    if (end > 0 && at(frame, end - 1) == CR) end--;
    // Like redis-server, which hands the line to a C string function: a NUL ends it.
    for (let i = 0; i < end; i++) {
      if (at(frame, i) == 0) {
        end = i;
        break;
      }
    }
    let p = 0;
    while (true) {
      while (p < end && isSpace(at(frame, p))) p++;
      if (p >= end) return true;
      starts.push(w.len);
      let inDouble = false;
      let inSingle = false;
      let done = false;
      while (!done) {
        const c: u32 = p < end ? at(frame, p) : 0;
        const c1: u32 = p + 1 < end ? at(frame, p + 1) : 0;
        if (inDouble) {
          if (c == 0x5c && c1 == 0x78 && p + 3 < end && isHex(at(frame, p + 2)) && isHex(at(frame, p + 3))) {
            w.u8((hexValue(at(frame, p + 2)) << 4) | hexValue(at(frame, p + 3)));
            p += 3;
          } else if (c == 0x5c && c1 != 0) {
            p++;
            w.u8(c1 == 0x6e ? LF : c1 == 0x72 ? CR : c1 == 0x74 ? 0x09 : c1 == 0x62 ? 0x08 : c1 == 0x61 ? 0x07 : c1);
          } else if (c == 0x22) {
            if (c1 != 0 && !isSpace(c1)) return this.fail("redis: inline command: closing quote at offset " + p.toString() + " must be followed by a space");
            done = true;
          } else if (c == 0) {
            return this.fail("redis: inline command: unbalanced quotes");
          } else {
            w.u8(c);
          }
        } else if (inSingle) {
          if (c == 0x5c && c1 == 0x27) {
            p++;
            w.u8(0x27);
          } else if (c == 0x27) {
            if (c1 != 0 && !isSpace(c1)) return this.fail("redis: inline command: closing quote at offset " + p.toString() + " must be followed by a space");
            done = true;
          } else if (c == 0) {
            return this.fail("redis: inline command: unbalanced quotes");
          } else {
            w.u8(c);
          }
        } else if (c == 0 || isSpace(c)) {
          done = true;
        } else if (c == 0x22) {
          inDouble = true;
        } else if (c == 0x27) {
          inSingle = true;
        } else {
          w.u8(c);
        }
        if (p < end) p++;
      }
      ends.push(w.len);
    }
  }

  /** False, with the reason, for commands after which replies no longer pair with commands. */
  private supported(command: string, src: Uint8Array, starts: i32[], ends: i32[]): bool {
    // Every refused name but CLIENT has 7 letters or more: most commands stop here.
    if (command.length < 7 && command != "CLIENT") return true;
    if (command == "SUBSCRIBE" || command == "PSUBSCRIBE" || command == "SSUBSCRIBE" ||
        command == "UNSUBSCRIBE" || command == "PUNSUBSCRIBE" || command == "SUNSUBSCRIBE") {
      return this.fail("redis: " + command + " is not supported: pub/sub replies do not pair with commands");
    }
    if (command == "MONITOR") return this.fail("redis: MONITOR is not supported: its stream does not pair with commands");
    if (command == "CLIENT" && ends.length > 2) {
      const sub = upperAscii(src, unchecked(starts[1]), unchecked(ends[1]));
      if (sub == "REPLY") {
        const mode = upperAscii(src, unchecked(starts[2]), unchecked(ends[2]));
        if (mode != "ON") return this.fail("redis: CLIENT REPLY " + mode + " is not supported: commands would go unanswered");
      }
    }
    return true;
  }
}

/** maxLineBytes as a number in range, or 0. */
function parseLineOption(value: string): i32 {
  if (value.length == 0 || value.length > 9) return 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return 0;
  }
  const n = I32.parseInt(value);
  return n >= MIN_LINE_OPTION && n <= MAX_LINE_OPTION ? n : 0;
}

/** Whether the `n` bytes at `from` of `buf` spell CLIENT in any case. */
function isClient(buf: Uint8Array, from: i32, n: i32): bool {
  if (n != 6) return false;
  const word = "CLIENT";
  for (let i = 0; i < 6; i++) {
    if ((at(buf, from + i) & 0xdf) != <u32>word.charCodeAt(i)) return false;
  }
  return true;
}

/** The first up to 8 bytes of `d`, to recognise a frame when frameSize resumes. */
function head(d: Uint8Array): u64 {
  let v: u64 = 0;
  const n = min(d.length, 8);
  for (let i = 0; i < n; i++) v = (v << 8) | <u64>at(d, i);
  return v | (<u64>n << 60);
}

/**
 * Commands named once, upper-cased: the common ones come from this table instead of a new
 * string per request (and then compare by pointer first wherever they are matched). Keyed by
 * their upper-cased bytes packed into a u64, so names of at most 8 bytes.
 */
const KNOWN_COMMANDS: Map<u64, string> = knownCommands([
  "GET", "SET", "DEL", "TTL", "MGET", "MSET", "INCR", "DECR", "HGET", "HSET", "HDEL", "LPOP", "RPOP",
  "SADD", "SREM", "ZADD", "ZREM", "PING", "AUTH", "EXEC", "INFO", "SCAN", "KEYS", "TYPE", "ECHO",
  "SETEX", "SETNX", "GETEX", "GETDEL", "INCRBY", "DECRBY", "APPEND", "STRLEN", "EXISTS", "EXPIRE",
  "PEXPIRE", "PTTL", "UNLINK", "HMGET", "HMSET", "HINCRBY", "HGETALL", "HEXISTS", "HKEYS", "HLEN",
  "LPUSH", "RPUSH", "LRANGE", "LLEN", "LINDEX", "LTRIM", "SMEMBERS", "SCARD", "ZRANGE", "ZSCORE",
  "ZCARD", "ZINCRBY", "ZRANK", "MULTI", "DISCARD", "WATCH", "UNWATCH", "SELECT", "HELLO", "CLIENT",
  "CONFIG", "EVAL", "EVALSHA", "PUBLISH", "XADD", "XRANGE", "XREAD", "XLEN", "RESET", "QUIT",
  "DBSIZE", "COMMAND",
]);

function knownCommands(names: string[]): Map<u64, string> {
  const m = new Map<u64, string>();
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const bytes = Uint8Array.wrap(String.UTF8.encode(name));
    m.set(packUpper(bytes, 0, bytes.length) ^ (<u64>bytes.length << 60), name);
  }
  return m;
}

/** The `n` (at most 8) bytes at `from` of `buf`, ASCII letters upper-cased, packed big-endian. */
function packUpper(buf: Uint8Array, from: i32, n: i32): u64 {
  let v: u64 = 0;
  for (let i = 0; i < n; i++) {
    let c = at(buf, from + i);
    if (c - 0x61 < 26) c -= 0x20;
    v = (v << 8) | <u64>c;
  }
  return v;
}

/** Bytes [from, to) of `buf` as an upper-cased command name: a KNOWN_COMMANDS entry when it is one. */
function commandName(buf: Uint8Array, from: i32, to: i32): string {
  const n = to - from;
  if (n > 0 && n <= 8) {
    // For one length, packing is one-to-one up to letter case; the length is folded into the key
    // and checked, since names of different lengths may pack alike.
    const k = packUpper(buf, from, n) ^ (<u64>n << 60);
    if (KNOWN_COMMANDS.has(k)) {
      const known = KNOWN_COMMANDS.get(k);
      if (known.length == n) return known;
    }
  }
  return upperAscii(buf, from, to);
}

/** Bytes [from, to) of `buf` as an upper-cased string (ASCII letters only change). */
function upperAscii(buf: Uint8Array, from: i32, to: i32): string {
  const n = to - from;
  if (n <= 0) return "";
  const tmp = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let c = at(buf, from + i);
    if (c - 0x61 < 26) c -= 0x20;
    unchecked((tmp[i] = <u8>c));
  }
  return String.UTF8.decodeUnsafe(tmp.dataStart, <usize>n);
}

/** A byte for an error message: 'c' when printable ASCII, else 0xHH. */
function show(c: u32): string {
  if (c == CR) return "'\\r'";
  if (c == LF) return "'\\n'";
  if (c >= 0x20 && c < 0x7f) return "'" + String.fromCharCode(c) + "'";
  return "0x" + (c < 16 ? "0" : "") + c.toString(16);
}

function isSpace(c: u32): bool {
  return c == 0x20 || (c >= 0x09 && c <= 0x0d);
}

function isHex(c: u32): bool {
  return c - 0x30 < 10 || (c | 0x20) - 0x61 < 6;
}

function hexValue(c: u32): u32 {
  return c - 0x30 < 10 ? c - 0x30 : (c | 0x20) - 0x61 + 10;
}

function defaultMessage(code: ErrorCode): string {
  switch (code) {
    case ErrorCode.NoRoute: return "meltemi: no route";
    case ErrorCode.Unauthorized: return "meltemi: unauthorized";
    case ErrorCode.RateLimited: return "meltemi: rate limited";
    case ErrorCode.FaultAbort: return "meltemi: fault injected";
    case ErrorCode.Timeout: return "meltemi: timeout";
    case ErrorCode.Unavailable: return "meltemi: upstream unavailable";
    default: return "meltemi: bad request";
  }
}

export class RedisCodecFactory extends CodecFactory {
  serviceKey(): string {
    return "";
  }

  repliesInOrder(): bool {
    return true;
  }

  methodKey(): string {
    return "command";
  }

  name(): string {
    return "redis";
  }

  checkOption(key: string, value: string): string | null {
    if (key != "maxLineBytes") return "unknown option for codec redis (known: maxLineBytes)";
    const n = parseLineOption(value);
    return n > 0 ? null : "expected an integer in [" + MIN_LINE_OPTION.toString() + ", " + MAX_LINE_OPTION.toString() + "], got \"" + value + "\"";
  }

  create(options: Map<string, string>): Codec {
    const c = new RedisCodec();
    if (options.has("maxLineBytes")) c.maxLine = parseLineOption(options.get("maxLineBytes"));
    return c;
  }
}
