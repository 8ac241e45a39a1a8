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
// Measuring a frame is RESP's grammar (codecs/resp.ts, with its bounds); command names come from a
// table (codecs/redis-commands.ts).
import { Codec, CodecFactory, ErrorCode, CallScope, BatchAnswer, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { Metadata, MessageKind } from "../core/metadata";
import { ByteWriter } from "../core/bytes";
import { RespScanner, at, MORE, BAD, CR, LF, MAX_COUNT, T_ARRAY, T_BULK, T_ERROR, T_BULK_ERROR, T_PUSH, T_ATTRIBUTE } from "./resp";
import { commandName, upperAscii, isClient } from "./redis-commands";

/**
 * Longest line by default, type byte to CR (an inline command, a simple string or error reply).
 * redis-server refuses inline commands over 64 KiB only when they arrive slowly, and a Lua error
 * reply can be long, so the default is generous; codecOptions.maxLineBytes changes it (a line is
 * never longer than maxFrameBytes either).
 */
export const DEFAULT_MAX_LINE: i32 = 1 << 20;
const MIN_LINE_OPTION: i32 = 1024;
const MAX_LINE_OPTION: i32 = 64 << 20;
/** The local-reply probe: PING, which every server answers at once (+PONG) and in order. */
const PING: string = "*1\r\n$4\r\nPING\r\n";
/** Drops the open transaction: sent instead of EXEC when Meltemi refused one of its commands. */
const DISCARD: string = "*1\r\n$7\r\nDISCARD\r\n";
/** Clears a connection's state (database, protocol, user, name, MULTI, WATCH): Redis 6.2 and later. */
const RESET: string = "*1\r\n$5\r\nRESET\r\n";

export class RedisCodec extends Codec {
  /** Measures frames (codecs/resp.ts); its maxLine is the longest line accepted (DEFAULT_MAX_LINE). */
  readonly resp: RespScanner = new RespScanner(this, DEFAULT_MAX_LINE);
  /** Whether decode() sets `key` (readsOnly: left out when nothing reads it, a string less per request). */
  private wantsKey: bool = true;
  private nextId: u64 = 1;
  private w: ByteWriter = new ByteWriter(64);

  /**
   * Requests: an array of bulk strings (`*`) or an inline line ending in LF. Replies: one RESP
   * value with its attributes. After NEED_MORE, a call on the same frame with more bytes (what
   * FrameStream does) resumes at the last whole element instead of rescanning the frame.
   */
  frameSize(data: Uint8Array, maxFrame: i32): i32 {
    if (data.length == 0) return NEED_MORE;
    const resp = this.resp;
    if (!this.readsResponses && at(data, 0) != T_ARRAY) return resp.inlineSize(data, maxFrame);
    const r = resp.scan(data, 0, maxFrame, !this.readsResponses, true);
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

  private starts: i32[] = [];
  private ends: i32[] = [];

  private fail(message: string): bool {
    this.error = message;
    return false;
  }

  // ---- decoding ----

  /** numberLine inside a frame already measured: false, with the reason, unless it is whole and valid. */
  private header(frame: Uint8Array, p: i32, what: string): bool {
    const s = this.resp.numberLine(frame, p, what);
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
      const count = this.resp.num;
      if (count < 0 || count > MAX_COUNT) return this.fail("redis: map length " + count.toString() + " is invalid");
      p = this.resp.next;
      for (let i: i64 = 0; i < count * 2; i++) {
        const size = this.resp.scan(frame, p, frame.length, false, false);
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
    const resp = this.resp;
    if (!this.header(frame, 0, "array length")) return false;
    const count = resp.num;
    let p = resp.next;
    if (count > MAX_COUNT) return this.fail("redis: array length " + count.toString() + " exceeds the limit of " + MAX_COUNT.toString() + " elements");
    // Only the command and the first argument are kept (and for CLIENT the second, which says
    // REPLY OFF/SKIP); the rest is checked by frameSize.
    let keep = <i32>min(count, 2);
    for (let i = 0; i < keep; i++) {
      if (p >= frame.length) return this.fail("redis: truncated command at offset " + p.toString());
      if (at(frame, p) != T_BULK) return resp.unexpected(p, T_BULK, at(frame, p)) == 1;
      if (!this.header(frame, p, "bulk length")) return false;
      const len = resp.num;
      if (len < 0 || len > <i64>(frame.length - resp.next)) return this.fail("redis: bulk length " + len.toString() + " is invalid");
      starts.push(resp.next);
      ends.push(resp.next + <i32>len);
      p = resp.next + <i32>len + 2;
      if (i == 0 && count > 2 && isClient(frame, resp.next, <i32>len)) keep = 3;
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
    if (options.has("maxLineBytes")) c.resp.maxLine = parseLineOption(options.get("maxLineBytes"));
    return c;
  }
}
