// The filter's access log: one JSON object per request on one line, after a fixed prefix, in
// Envoy's `wasm` logger (a network filter has no way into tcp_proxy's access log, which writes
// once per connection; docs/DESIGN.md, "Access log"). Pure: the engine hands over the facts,
// this module writes the line's UTF-8 bytes straight into a reused writer (no intermediate
// strings: the line is built on every request while the log is on). Metadata values come from
// the client, so every string is escaped (quotes, backslashes, control bytes, unpaired
// surrogates): a line is always one valid JSON object, whatever the client sent.
import { Metadata, MessageKind, MESSAGE_KIND_COUNT, kindName } from "../core/metadata";
import { ByteWriter } from "../core/bytes";

/** What every access line starts with, so that a log pipeline can pick the lines out. */
export const ACCESS_PREFIX = "meltemi access ";

/** How a request was answered, beyond a MessageKind: by the filter itself, or not (yet) at all. */
export const LOCAL_REPLY: i32 = -1;
export const NO_ANSWER: i32 = -2;

/** The status word of an answer (a MessageKind, LOCAL_REPLY or NO_ANSWER), as lines and x-meltemi-status say it. */
export function statusName(answer: i32): string {
  if (answer == LOCAL_REPLY) return "local_reply";
  if (answer < 0 || answer >= MESSAGE_KIND_COUNT) return "none";
  return kindName(<MessageKind>answer);
}

const HEX = "0123456789abcdef";

/** A line's fixed text, encoded once: appending it is one copy. */
function lit(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}
const K_OPEN = lit(ACCESS_PREFIX + "{\"start_time\":");
const K_CONN = lit(",\"conn\":");
const K_PEER = lit(",\"peer\":");
const K_ROUTE = lit(",\"route\":");
const K_CLUSTER = lit(",\"cluster\":");
const K_STATUS = lit(",\"status\":");
const K_DURATION = lit(",\"duration_ms\":");
const K_RESPONSE_BYTES = lit(",\"response_bytes\":");
const K_REASON = lit(",\"reason\":");
const K_ID = lit("\"id\":");
const K_SERVICE = lit(",\"service\":");
const K_METHOD = lit(",\"method\":");
const K_REQUEST_BYTES = lit(",\"request_bytes\":");
const K_META = lit(",\"meta\":");
const K_NULL = lit("null");

/** Appends `s` as a JSON string literal, quotes included. */
export function writeJsonString(w: ByteWriter, s: string): void {
  const n = s.length;
  let plain = true;
  for (let i = 0; i < n && plain; i++) {
    const c = s.charCodeAt(i);
    plain = c >= 0x20 && c != 0x22 && c != 0x5c && (c < 0xd800 || c > 0xdfff);
  }
  w.u8(0x22);
  if (plain) {
    w.utf8(s);
    w.u8(0x22);
    return;
  }
  let from = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && isLowSurrogate(s.charCodeAt(i + 1))) {
      i++;   // a whole pair is one character: kept as it is
      continue;
    }
    const special = c < 0x20 || c == 0x22 || c == 0x5c || (c >= 0xd800 && c <= 0xdfff);
    if (!special) continue;
    if (i > from) w.utf8(s.substring(from, i));
    writeEscape(w, c);
    from = i + 1;
  }
  if (n > from) w.utf8(s.substring(from, n));
  w.u8(0x22);
}

const isLowSurrogate = (c: i32): bool => c >= 0xdc00 && c <= 0xdfff;

/** The escape of one character JSON requires escaped (or, for an unpaired surrogate, UTF-8 cannot carry). */
function writeEscape(w: ByteWriter, c: i32): void {
  w.u8(0x5c);
  if (c == 0x22 || c == 0x5c) w.u8(c);
  else if (c == 0x0a) w.u8(0x6e);   // \n
  else if (c == 0x0d) w.u8(0x72);   // \r
  else if (c == 0x09) w.u8(0x74);   // \t
  else {
    w.u8(0x75);   // \u00XX, \uDXXX
    for (let shift = 12; shift >= 0; shift -= 4) w.u8(HEX.charCodeAt((c >> shift) & 15));
  }
}

/** Appends `v` in decimal. */
export function writeDecimal(w: ByteWriter, v: u64): void {
  const digits = DIGITS;
  let i = digits.length;
  do {
    unchecked((digits[--i] = <u8>(0x30 + <u32>(v % 10))));
    v /= 10;
  } while (v > 0);
  for (; i < digits.length; i++) w.u8(unchecked(digits[i]));
}

/** Scratch for writeDecimal: u64's 20 digits. */
const DIGITS = new StaticArray<u8>(20);

function writeDigits(w: ByteWriter, v: i64, width: i32): void {
  let div: i64 = 1;
  for (let i = 1; i < width; i++) div *= 10;
  for (; div > 0; div /= 10) w.u8(0x30 + <u32>((v / div) % 10));
}

/**
 * Appends `ms` since the Unix epoch as an ISO-8601 UTC timestamp string, `"2026-12-01T12:00:00.123Z"`.
 * Lines come many to a second: the text up to the second is kept and only the milliseconds written.
 */
export function writeIsoTime(w: ByteWriter, ms: i64): void {
  let second = ms / 1000;
  let milli = ms % 1000;
  if (milli < 0) {
    milli += 1000;
    second--;
  }
  if (second != cachedSecond || cachedText.len == 0) {
    cachedSecond = second;
    cachedText.clear();
    writeSecond(cachedText, second);
  }
  w.bytes(cachedText.buf.subarray(0, cachedText.len));
  writeDigits(w, milli, 3);
  w.u8(0x5a);
  w.u8(0x22);
}

let cachedSecond: i64 = 0;
const cachedText = new ByteWriter(32);

/**
 * `"YYYY-MM-DDTHH:MM:SS.` of a second since the epoch (days to a civil date after H. Hinnant's
 * days_from_civil inverse, proleptic Gregorian).
 */
function writeSecond(w: ByteWriter, second: i64): void {
  let days = second / 86400;
  let rest = second % 86400;
  if (rest < 0) {
    rest += 86400;
    days--;
  }
  const z = days + 719468;
  const era = (z >= 0 ? z : z - 146096) / 146097;
  const doe = z - era * 146097;
  const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const mp = (5 * doy + 2) / 153;
  const day = doy - (153 * mp + 2) / 5 + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  w.u8(0x22);
  writeDigits(w, year, 4);
  w.u8(0x2d);
  writeDigits(w, month, 2);
  w.u8(0x2d);
  writeDigits(w, day, 2);
  w.u8(0x54);
  writeDigits(w, rest / 3600, 2);
  w.u8(0x3a);
  writeDigits(w, (rest / 60) % 60, 2);
  w.u8(0x3a);
  writeDigits(w, rest % 60, 2);
  w.u8(0x2e);
}

function writeStringOrNull(w: ByteWriter, s: string | null): void {
  if (s != null) writeJsonString(w, s);
  else w.bytes(K_NULL);
}

/** Every decoded metadata key and value as one JSON object (keys are unique in a Metadata). */
export function writeMetadataObject(w: ByteWriter, meta: Metadata): void {
  w.u8(0x7b);
  for (let i = 0; i < meta.keys.length; i++) {
    if (i > 0) w.u8(0x2c);
    writeJsonString(w, meta.keys[i]);
    w.u8(0x3a);
    writeJsonString(w, meta.values[i]);
  }
  w.u8(0x7d);
}

/**
 * Appends the request's half of a line, taken when the request is forwarded (its metadata is gone
 * by the time the answer comes): id, operation (the codec's service and method keys, null when
 * the frame lacks one), size on the wire, and every metadata key.
 */
export function writeRequestPart(w: ByteWriter, meta: Metadata, serviceKey: string, methodKey: string, requestBytes: i32): void {
  w.bytes(K_ID);
  writeDecimal(w, meta.requestId);
  w.bytes(K_SERVICE);
  writeStringOrNull(w, serviceKey.length > 0 ? meta.get(serviceKey) : null);
  w.bytes(K_METHOD);
  writeStringOrNull(w, methodKey.length > 0 ? meta.get(methodKey) : null);
  w.bytes(K_REQUEST_BYTES);
  writeDecimal(w, <u64>requestBytes);
  w.bytes(K_META);
  writeMetadataObject(w, meta);
}

/** One answered request: everything a line says. */
export class AccessEntry {
  /** `<vm>.<connection>`, unique in the Envoy process (conn-label.ts). */
  conn: string = "";
  /** The client's address as Envoy gives it (`ip:port`), "" when unknown. */
  peer: string = "";
  route: string = "";
  cluster: string = "";
  /** From writeRequestPart(). */
  request: Uint8Array = new Uint8Array(0);
  /** The answer's kind (reply, exception, ...) or local_reply. */
  status: string = "";
  /** When the request was forwarded, ms since the Unix epoch (Envoy's clock). */
  startMs: i64 = 0;
  durationMs: u64 = 0;
  responseBytes: i32 = 0;
  /** Why the filter answered itself (local replies), or null. */
  reason: string | null = null;

  /** Appends the line, prefix included. */
  write(w: ByteWriter): void {
    w.bytes(K_OPEN);
    writeIsoTime(w, this.startMs);
    w.bytes(K_CONN);
    writeJsonString(w, this.conn);
    w.bytes(K_PEER);
    writeStringOrNull(w, this.peer.length > 0 ? this.peer : null);
    w.bytes(K_ROUTE);
    writeJsonString(w, this.route);
    w.bytes(K_CLUSTER);
    writeJsonString(w, this.cluster);
    w.bytes(K_STATUS);
    writeJsonString(w, this.status);
    w.bytes(K_DURATION);
    writeDecimal(w, this.durationMs);
    w.bytes(K_RESPONSE_BYTES);
    writeDecimal(w, <u64>this.responseBytes);
    const reason = this.reason;
    if (reason != null) {
      w.bytes(K_REASON);
      writeJsonString(w, reason);
    }
    w.u8(0x2c);
    w.bytes(this.request);
    w.u8(0x7d);
  }
}
