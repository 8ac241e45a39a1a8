// Redis command names as the codec reports them: upper-cased, and for the common commands the
// same string object every time (a table, not a new string per request), so that route matches
// compare by pointer first.
import { at } from "./resp";

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
export function commandName(buf: Uint8Array, from: i32, to: i32): string {
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
export function upperAscii(buf: Uint8Array, from: i32, to: i32): string {
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

/** Whether the `n` bytes at `from` of `buf` spell CLIENT in any case. */
export function isClient(buf: Uint8Array, from: i32, n: i32): bool {
  if (n != 6) return false;
  const word = "CLIENT";
  for (let i = 0; i < 6; i++) {
    if ((at(buf, from + i) & 0xdf) != <u32>word.charCodeAt(i)) return false;
  }
  return true;
}
