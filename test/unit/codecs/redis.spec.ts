import { RedisCodec, DEFAULT_MAX_LINE } from "../../../assembly/codecs/redis";
import { NEED_MORE, FRAME_ERROR, ErrorCode } from "../../../assembly/core/codec";
import { Metadata, MessageKind } from "../../../assembly/core/metadata";
import { FrameStream, Finish } from "../../../assembly/core/stream";
import { concat } from "../bytes";

const MAX: i32 = 1 << 20;

// Fixtures as redis-cli 7.0 and redis-server 7.0 put them on the wire (RESP2 unless noted).
/** redis-cli `SET a 1`: *3 (three bulks) $3 SET $1 a $1 1 */
const SET_A_1 = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
/** redis-cli `get session:42`: the command as typed, lower case */
const GET_SESSION = "*2\r\n$3\r\nget\r\n$10\r\nsession:42\r\n";
/** redis-cli `PING` */
const PING_ARRAY = "*1\r\n$4\r\nPING\r\n";
/** a telnet user's inline `PING` */
const PING_INLINE = "PING\r\n";
/** redis-benchmark `-t get`: GET key:__rand_int__ */
const BENCH_GET = "*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n";

/** +OK */
const R_OK = "+OK\r\n";
/** -ERR unknown command (redis-server 7.0's wording) */
const R_ERR = "-ERR unknown command 'FOO', with args beginning with: \r\n";
/** :1000 */
const R_INT = ":1000\r\n";
/** $5 hello */
const R_BULK = "$5\r\nhello\r\n";
/** $-1: GET of a missing key */
const R_NIL = "$-1\r\n";
/** *-1: a null array (BLPOP timeout) */
const R_NIL_ARRAY = "*-1\r\n";
/** LRANGE-like nested reply: *2 [ $1 a, *2 [ :1, $-1 ] ] */
const R_NESTED = "*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n";
/** *0: an empty list */
const R_EMPTY = "*0\r\n";
// RESP3 (after HELLO 3)
const R3_NULL = "_\r\n";
const R3_TRUE = "#t\r\n";
const R3_DOUBLE = ",3.14\r\n";
const R3_BIGNUM = "(3492890328409238509324850943850943825024385\r\n";
/** !21 SYNTAX invalid syntax: a bulk error */
const R3_BULK_ERROR = "!21\r\nSYNTAX invalid syntax\r\n";
/** =15 txt:Some string: verbatim */
const R3_VERBATIM = "=15\r\ntxt:Some string\r\n";
/** %2 { +first: :1, +second: :2 } */
const R3_MAP = "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n";
/** ~2 { +a, +b } */
const R3_SET = "~2\r\n+a\r\n+b\r\n";
/** |1 { +ttl: :3600 } then the value :42 */
const R3_ATTRIBUTED = "|1\r\n+ttl\r\n:3600\r\n:42\r\n";
/** >3 [ $message, $ch, $hi ]: an out-of-band RESP3 pub/sub push */
const R3_PUSH = ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";

function b(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

function text(a: Uint8Array): string {
  return String.UTF8.decode(a.buffer.slice(a.byteOffset, a.byteOffset + a.length));
}

function requests(): RedisCodec {
  return new RedisCodec();
}

function replies(): RedisCodec {
  const c = new RedisCodec();
  c.readsResponses = true;
  return c;
}

/** Measures and decodes one whole frame; fails the test unless both succeed. */
function decodeWith(codec: RedisCodec, s: string): Metadata {
  const frame = b(s);
  expect(codec.frameSize(frame, MAX)).toBe(frame.length, "frameSize measures the whole frame: " + codec.error);
  const meta = new Metadata();
  expect(codec.decode(frame, meta)).toBe(true, codec.error);
  return meta;
}

/** frameSize's error on `s`, asserting FRAME_ERROR. */
function frameError(codec: RedisCodec, s: string, maxFrame: i32 = MAX): string {
  expect(codec.frameSize(b(s), maxFrame)).toBe(FRAME_ERROR, "expected a frame error for " + s);
  return codec.error;
}

/** decode's error on `s` (frameSize must accept it), asserting failure. */
function decodeError(codec: RedisCodec, s: string): string {
  const frame = b(s);
  expect(codec.frameSize(frame, MAX)).toBe(frame.length, codec.error);
  expect(codec.decode(frame, new Metadata())).toBe(false, "expected a decode error for " + s);
  return codec.error;
}

describe("redis codec: requests", () => {
  it("decodes an array command into command and key, numbered from 1", () => {
    const c = requests();
    const m = decodeWith(c, SET_A_1);
    expect(m.kind).toBe(MessageKind.Call);
    expect(m.isRequest).toBe(true);
    expect(m.expectsReply).toBe(true);
    expect(m.requestId).toBe(1);
    expect(m.get("command")).toBe("SET");
    expect(m.get("key")).toBe("a");
    expect(decodeWith(c, BENCH_GET).requestId).toBe(2);
  });

  it("upper-cases the command and keeps the key as sent", () => {
    const m = decodeWith(requests(), GET_SESSION);
    expect(m.get("command")).toBe("GET");
    expect(m.get("key")).toBe("session:42");
  });

  it("has no key for a command without arguments", () => {
    const m = decodeWith(requests(), PING_ARRAY);
    expect(m.get("command")).toBe("PING");
    expect(m.get("key")).toBeNull();
  });

  it("leaves the key out when nothing reads it (readsOnly), and keeps it when something does", () => {
    const c = requests();
    c.readsOnly(["command"]);
    const m = decodeWith(c, GET_SESSION);
    expect(m.get("command")).toBe("GET");
    expect(m.get("key")).toBeNull();
    c.readsOnly(["command", "key"]);
    expect(decodeWith(c, GET_SESSION).get("key")).toBe("session:42");
    c.readsOnly(null);
    expect(decodeWith(c, GET_SESSION).get("key")).toBe("session:42");
  });

  it("names known and unknown commands alike, in any case", () => {
    expect(decodeWith(requests(), "*2\r\n$3\r\ngEt\r\n$1\r\nk\r\n").get("command")).toBe("GET");
    expect(decodeWith(requests(), "*1\r\n$13\r\nzrangebyscore\r\n").get("command")).toBe("ZRANGEBYSCORE");
    expect(decodeWith(requests(), "*1\r\n$8\r\nmycomman\r\n").get("command")).toBe("MYCOMMAN");
    // Same letters as a known command but one byte longer (packing alone could confuse them).
    expect(decodeWith(requests(), "*1\r\n$4\r\n\x00GET\r\n").get("command")).toBe("\x00GET");
  });

  it("keeps AUTH and HELLO arguments (passwords) out of the metadata", () => {
    expect(decodeWith(requests(), "*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n").get("key")).toBeNull();
    expect(decodeWith(requests(), "hello 3 AUTH default secret\r\n").get("key")).toBeNull();
  });

  it("decodes inline commands as redis-server splits them", () => {
    const c = requests();
    const ping = decodeWith(c, PING_INLINE);
    expect(ping.get("command")).toBe("PING");
    expect(ping.requestId).toBe(1);
    const set = decodeWith(c, "set \"a b\\x21\\n\" 'it\\'s'\n");
    expect(set.get("command")).toBe("SET");
    expect(set.get("key")).toBe("a b!\n");
    expect(set.requestId).toBe(2);
    expect(decodeWith(c, "  get\t session:1  \r\n").get("key")).toBe("session:1");
  });

  it("passes blank inline lines and *0 on unnumbered, as redis-server ignores them", () => {
    const c = requests();
    const blank = decodeWith(c, "  \r\n");
    expect(blank.isRequest).toBe(false, "not a request the server answers");
    expect(blank.isRoutable()).toBe(false);
    const empty = decodeWith(c, "*0\r\n");
    expect(empty.isRoutable()).toBe(false);
    expect(decodeWith(c, "*-1\r\n").isRoutable()).toBe(false);
    expect(decodeWith(c, SET_A_1).requestId).toBe(1, "numbering skipped the ignored frames");
  });

  it("waits for more data on every prefix of a command", () => {
    const all = [SET_A_1, GET_SESSION, PING_ARRAY, PING_INLINE, BENCH_GET];
    for (let k = 0; k < all.length; k++) {
      const full = b(all[k]);
      for (let n = 1; n < full.length; n++) {
        expect(requests().frameSize(full.subarray(0, n), MAX)).toBe(NEED_MORE, "prefix " + n.toString() + " of " + all[k]);
      }
    }
  });

  it("measures one command when a pipeline is coalesced", () => {
    const c = requests();
    expect(c.frameSize(b(SET_A_1 + PING_INLINE + GET_SESSION), MAX)).toBe(SET_A_1.length);
    expect(c.frameSize(b(PING_INLINE + SET_A_1), MAX)).toBe(PING_INLINE.length);
  });

  it("cuts the same numbered commands whatever the read size", () => {
    const stream = b(SET_A_1 + PING_INLINE + "\r\n" + GET_SESSION + BENCH_GET + PING_ARRAY);
    for (let step = 1; step <= stream.length; step += 1) {
      const s = new FrameStream();
      const c = requests();
      let forwarded = new Uint8Array(0);
      const commands: string[] = [];
      const ids: string[] = [];
      for (let pos = 0; pos < stream.length; pos += step) {
        const chunk = stream.slice(pos, min(pos + step, stream.length));
        s.begin(chunk);
        while (s.next(c, MAX) > 0) {
          const m = new Metadata();
          expect(c.decode(s.frame(), m)).toBe(true, c.error);
          if (m.isRoutable()) {
            commands.push(m.get("command")!);
            ids.push(m.requestId.toString());
          }
        }
        const out = s.finish(Finish.Carry);
        forwarded = concat(forwarded, out != null ? out : chunk);
      }
      expect(text(forwarded)).toBe(text(stream), "read size " + step.toString());
      expect(commands.join(",")).toBe("SET,PING,GET,GET,PING", "read size " + step.toString());
      expect(ids.join(",")).toBe("1,2,3,4,5", "read size " + step.toString());
    }
  });
});

describe("redis codec: malformed and hostile requests", () => {
  it("rejects a negative bulk length", () => {
    expect(frameError(requests(), "*1\r\n$-5\r\n")).toBe("redis: bulk length -5 is invalid");
  });

  it("rejects a null bulk in a command", () => {
    expect(frameError(requests(), "*1\r\n$-1\r\n")).toBe("redis: bulk length -1 is invalid");
  });

  it("rejects an element that is not a bulk string, naming the offset", () => {
    expect(frameError(requests(), "*2\r\n$3\r\nGET\r\nx")).toBe("redis: expected '$' at offset 13, got 'x'");
    expect(frameError(requests(), "*1\r\n*1\r\n$1\r\na\r\n")).toBe("redis: expected '$' at offset 4, got '*'");
  });

  it("rejects a length that is not a number, at the first bad byte", () => {
    expect(frameError(requests(), "*1\r\n$1x")).toBe("redis: bulk length at offset 4 is not a number: got 'x' at offset 6");
    expect(frameError(requests(), "*x")).toBe("redis: array length at offset 0 is not a number: got 'x' at offset 1");
    expect(frameError(requests(), "*\r\n")).toBe("redis: array length at offset 0 has no digits");
  });

  it("rejects a length with more digits than fit", () => {
    expect(frameError(requests(), "*1\r\n$9999999999999999999")).toBe("redis: bulk length at offset 4 has more than 18 digits");
  });

  it("rejects a CR not followed by LF", () => {
    expect(frameError(requests(), "*1\rX")).toBe("redis: expected '\\n' at offset 3, got 'X'");
  });

  it("rejects bulk data not followed by CRLF", () => {
    expect(frameError(requests(), "*1\r\n$2\r\nabcd")).toBe("redis: expected CRLF after the 2-byte bulk at offset 4, got 'c' 'd'");
  });

  it("rejects a bulk length over maxFrameBytes before its bytes arrive", () => {
    const e = frameError(requests(), "*1\r\n$2147483647\r\n", 4096);
    expect(e).toBe("redis: bulk length 2147483647 exceeds maxFrameBytes 4096");
  });

  it("rejects a command that outgrows maxFrameBytes", () => {
    expect(frameError(requests(), SET_A_1, 20)).toBe("redis: command of at least 27 bytes exceeds maxFrameBytes 20");
  });

  it("rejects more than a million arguments", () => {
    expect(frameError(requests(), "*1048577\r\n")).toBe("redis: array length 1048577 exceeds the limit of 1048576 elements");
    expect(frameError(requests(), "*2147483648\r\n")).toBe("redis: array length 2147483648 exceeds the limit of 1048576 elements");
  });

  it("walks a hostile argument count only as far as the bytes go", () => {
    expect(requests().frameSize(b("*1048576\r\n$1\r\na\r\n"), MAX)).toBe(NEED_MORE);
  });

  it("rejects an inline command longer than maxLine (default 1 MiB), accepts one over 64 KiB", () => {
    const long = "a".repeat(DEFAULT_MAX_LINE + 1);
    expect(frameError(requests(), long, 8 << 20)).toBe("redis: inline command longer than 1048576 bytes");
    expect(requests().frameSize(b(long.substring(0, DEFAULT_MAX_LINE)), 8 << 20)).toBe(NEED_MORE);
    const set = "SET k " + "v".repeat(70000) + "\r\n";
    expect(requests().frameSize(b(set), MAX)).toBe(set.length);
  });

  it("rejects unbalanced quotes in an inline command", () => {
    expect(decodeError(requests(), "SET \"a b\r\n")).toBe("redis: inline command: unbalanced quotes");
    expect(decodeError(requests(), "SET 'a\r\n")).toBe("redis: inline command: unbalanced quotes");
    expect(decodeError(requests(), "SET \"a\"b c\r\n")).toBe("redis: inline command: closing quote at offset 6 must be followed by a space");
  });

  it("refuses pub/sub, MONITOR and CLIENT REPLY OFF, which break one reply per command", () => {
    expect(decodeError(requests(), "*2\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n")).toBe("redis: SUBSCRIBE is not supported: pub/sub replies do not pair with commands");
    expect(decodeError(requests(), "PSUBSCRIBE news.*\r\n")).toBe("redis: PSUBSCRIBE is not supported: pub/sub replies do not pair with commands");
    expect(decodeError(requests(), "UNSUBSCRIBE a b\r\n")).toBe("redis: UNSUBSCRIBE is not supported: pub/sub replies do not pair with commands");
    expect(decodeError(requests(), "MONITOR\r\n")).toBe("redis: MONITOR is not supported: its stream does not pair with commands");
    expect(decodeError(requests(), "client reply off\r\n")).toBe("redis: CLIENT REPLY OFF is not supported: commands would go unanswered");
    expect(decodeWith(requests(), "CLIENT REPLY ON\r\n").get("command")).toBe("CLIENT");
    expect(decodeWith(requests(), "PUBLISH ch hi\r\n").get("key")).toBe("ch");
  });
});

describe("redis codec: replies", () => {
  it("numbers replies from 1 and tells errors from answers", () => {
    const c = replies();
    const ok = decodeWith(c, R_OK);
    expect(ok.isRequest).toBe(false);
    expect(ok.kind).toBe(MessageKind.Reply);
    expect(ok.requestId).toBe(1);
    const err = decodeWith(c, R_ERR);
    expect(err.kind).toBe(MessageKind.Exception);
    expect(err.requestId).toBe(2);
    expect(decodeWith(c, R_INT).requestId).toBe(3);
  });

  it("measures and decodes every RESP2 and RESP3 reply type", () => {
    const all = [R_OK, R_ERR, R_INT, R_BULK, R_NIL, R_NIL_ARRAY, R_NESTED, R_EMPTY, R3_NULL, R3_TRUE, R3_DOUBLE, R3_BIGNUM, R3_BULK_ERROR, R3_VERBATIM, R3_MAP, R3_SET, R3_ATTRIBUTED];
    const exception = [false, true, false, false, false, false, false, false, false, false, false, false, true, false, false, false, false];
    const c = replies();
    for (let i = 0; i < all.length; i++) {
      const m = decodeWith(c, all[i]);
      expect(m.kind).toBe(exception[i] ? MessageKind.Exception : MessageKind.Reply, all[i]);
      expect(m.requestId).toBe(<u64>(i + 1), all[i]);
    }
  });

  it("passes RESP3 pushes on as server-initiated, unnumbered", () => {
    const c = replies();
    const push = decodeWith(c, R3_PUSH);
    expect(push.isRequest).toBe(true);
    expect(push.expectsReply).toBe(false);
    expect(decodeWith(c, R_OK).requestId).toBe(1);
  });

  it("waits for more data on every prefix of a reply", () => {
    const all = [R_OK, R_ERR, R_INT, R_BULK, R_NIL, R_NESTED, R3_BIGNUM, R3_VERBATIM, R3_MAP, R3_ATTRIBUTED, R3_PUSH];
    for (let k = 0; k < all.length; k++) {
      const full = b(all[k]);
      for (let n = 1; n < full.length; n++) {
        expect(replies().frameSize(full.subarray(0, n), MAX)).toBe(NEED_MORE, "prefix " + n.toString() + " of " + all[k]);
      }
    }
  });

  it("measures one reply when replies are coalesced", () => {
    expect(replies().frameSize(b(R_NESTED + R_OK), MAX)).toBe(R_NESTED.length);
    expect(replies().frameSize(b(R3_ATTRIBUTED + R_OK), MAX)).toBe(R3_ATTRIBUTED.length);
  });

  it("resumes a large reply across reads instead of rescanning it", () => {
    // *3000 of :i, fed 7 bytes at a time: the same frames as the whole, and the same bytes out.
    let big = "*3000\r\n";
    for (let i = 0; i < 3000; i++) big += ":" + i.toString() + "\r\n";
    const stream = b(big + R_OK + big);
    const s = new FrameStream();
    const c = replies();
    const sizes: string[] = [];
    for (let pos = 0; pos < stream.length; pos += 7) {
      s.begin(stream.slice(pos, min(pos + 7, stream.length)));
      let n = 0;
      while ((n = s.next(c, MAX)) > 0) sizes.push(n.toString());
      s.finish(Finish.Carry);
    }
    expect(sizes.join(",")).toBe(big.length.toString() + "," + R_OK.length.toString() + "," + big.length.toString());
  });

  it("starts over when asked about a different frame after NEED_MORE", () => {
    const c = replies();
    expect(c.frameSize(b("*2\r\n:1\r\n"), MAX)).toBe(NEED_MORE);
    expect(c.frameSize(b("+PONG\r\n:1\r\n"), MAX)).toBe(7);
    expect(c.frameSize(b("*2\r\n:1\r\n"), MAX)).toBe(NEED_MORE);
    expect(c.frameSize(b("*3\r\n:1\r\n:2\r\n:3\r\n"), MAX)).toBe(16);
  });
});

describe("redis codec: malformed and hostile replies", () => {
  it("rejects an unknown type byte", () => {
    expect(frameError(replies(), "?x\r\n")).toBe("redis: unknown reply type '?' at offset 0");
    expect(frameError(replies(), "*1\r\n\x00")).toBe("redis: unknown reply type 0x00 at offset 4");
  });

  it("rejects a negative bulk or aggregate length other than the RESP2 nulls", () => {
    expect(frameError(replies(), "$-2\r\n")).toBe("redis: bulk length -2 is invalid");
    expect(frameError(replies(), "!-1\r\n")).toBe("redis: bulk length -1 is invalid");
    expect(frameError(replies(), "*-2\r\n")).toBe("redis: array length -2 is invalid");
    expect(frameError(replies(), "%-1\r\n")).toBe("redis: map length -1 is invalid");
  });

  it("rejects a bad integer, boolean, null and verbatim string", () => {
    expect(frameError(replies(), ":12a\r\n")).toBe("redis: integer at offset 0 is not a number: got 'a' at offset 3");
    expect(frameError(replies(), "#x\r\n")).toBe("redis: boolean at offset 0 is not 't' or 'f'");
    expect(frameError(replies(), "_x\r\n")).toBe("redis: null at offset 0 carries 1 bytes");
    expect(frameError(replies(), "=2\r\nab\r\n")).toBe("redis: verbatim string at offset 0 lacks its 3-byte format and ':'");
  });

  it("rejects a bare LF inside a simple line", () => {
    expect(frameError(replies(), "+O\nK\r\n")).toBe("redis: line at offset 0 holds a bare LF at offset 2");
  });

  it("rejects a simple line longer than maxLine", () => {
    expect(frameError(replies(), "+" + "a".repeat(DEFAULT_MAX_LINE), 8 << 20)).toBe("redis: line at offset 0 is longer than 1048576 bytes");
  });

  it("accepts the 33-deep tables Lua scripts return, and rejects nesting deeper than 128", () => {
    const deep = "*1\r\n".repeat(33) + ":1\r\n";
    expect(replies().frameSize(b(deep), MAX)).toBe(deep.length);
    expect(frameError(replies(), "*1\r\n".repeat(129) + ":1\r\n")).toBe("redis: nesting deeper than 128 at offset 512");
    expect(replies().frameSize(b("*1\r\n".repeat(32) + ":1\r\n"), MAX)).toBe(32 * 4 + 4);
  });

  it("rejects an aggregate over the element limit, counting map pairs twice", () => {
    expect(frameError(replies(), "*1048577\r\n")).toBe("redis: array length 1048577 exceeds the limit of 1048576 elements");
    expect(frameError(replies(), "%524289\r\n")).toBe("redis: map length 524289 exceeds the limit of 1048576 elements");
  });

  it("rejects a reply that outgrows maxFrameBytes while it is still arriving", () => {
    expect(frameError(replies(), "*100\r\n" + ":1\r\n".repeat(20), 64)).toBe("redis: reply of at least 66 bytes exceeds maxFrameBytes 64");
  });

  it("rejects streamed RESP3 aggregates it does not speak", () => {
    expect(frameError(replies(), "$?\r\n")).toBe("redis: bulk length at offset 0 is not a number: got '?' at offset 1");
  });

  it("never traps on arbitrary bytes in either direction", () => {
    let seed: u32 = 12345;
    const alphabet = b("*$+-:_#,(!=%~>|\r\n0123456789-?ab \"'\\x");
    for (let round = 0; round < 3000; round++) {
      const len = <i32>(seed % 40) + 1;
      const buf = new Uint8Array(len);
      for (let i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = alphabet[<i32>((seed >> 16) % <u32>alphabet.length)];
      }
      const codecs = [requests(), replies()];
      for (let k = 0; k < 2; k++) {
        const c = codecs[k];
        const n = c.frameSize(buf, MAX);
        expect(n >= FRAME_ERROR && n <= len || n > 0).toBe(true);
        if (n > 0 && n <= len) c.decode(buf.subarray(0, n), new Metadata());
        c.decode(buf, new Metadata());
      }
    }
  });
});

describe("redis codec: local replies", () => {
  it("answers with -ERR and the message on one line", () => {
    const c = requests();
    const m = decodeWith(c, "FLUSHALL\r\n");
    expect(text(c.errorReply(m, ErrorCode.Unauthorized, "meltemi: request denied by authorization rule deny-flushall"))).toBe("-ERR meltemi: request denied by authorization rule deny-flushall\r\n");
    expect(text(c.errorReply(m, ErrorCode.RateLimited, "a\r\nb"))).toBe("-ERR a  b\r\n");
    expect(text(c.errorReply(m, ErrorCode.RateLimited, ""))).toBe("-ERR meltemi: rate limited\r\n");
  });

  it("probes with PING, which the reply codec numbers like any reply", () => {
    const c = requests();
    const m = decodeWith(c, "FLUSHALL\r\n");
    const probe = c.localReplyProbe(m)!;
    expect(text(probe)).toBe(PING_ARRAY);
    const again = decodeWith(requests(), text(probe));
    expect(again.get("command")).toBe("PING");
    expect(c.canMutate()).toBe(false);
  });
});
