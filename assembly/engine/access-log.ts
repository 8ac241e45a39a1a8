// The filter's access log: one JSON object per request on one line, after a fixed prefix, in
// Envoy's `wasm` logger (a network filter has no way into tcp_proxy's access log, which writes
// once per connection; docs/DESIGN.md, "Access log"). Pure: the engine hands over the facts,
// this module returns the text. Metadata values come from the client, so every string is escaped
// (quotes, backslashes, control bytes, unpaired surrogates): a line is always one valid JSON
// object, whatever the client sent.
import { Metadata, MessageKind, MESSAGE_KIND_COUNT, kindName } from "../core/metadata";

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

/** `s` as a JSON string literal, quotes included. */
export function jsonString(s: string): string {
  const n = s.length;
  let plain = true;
  for (let i = 0; i < n && plain; i++) {
    const c = s.charCodeAt(i);
    plain = c >= 0x20 && c != 0x22 && c != 0x5c && (c < 0xd800 || c > 0xdfff);
  }
  if (plain) return "\"" + s + "\"";
  const parts = new Array<string>();
  parts.push("\"");
  let from = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let escaped: string | null = null;
    if (c == 0x22) escaped = "\\\"";
    else if (c == 0x5c) escaped = "\\\\";
    else if (c == 0x0a) escaped = "\\n";
    else if (c == 0x0d) escaped = "\\r";
    else if (c == 0x09) escaped = "\\t";
    else if (c < 0x20) escaped = unicodeEscape(c);
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && isLowSurrogate(s.charCodeAt(i + 1))) {
      i++;   // a whole pair is one character: kept as it is
      continue;
    } else if (c >= 0xd800 && c <= 0xdfff) escaped = unicodeEscape(c);   // unpaired: not UTF-8-encodable
    if (escaped == null) continue;
    if (i > from) parts.push(s.substring(from, i));
    parts.push(escaped);
    from = i + 1;
  }
  if (n > from) parts.push(s.substring(from, n));
  parts.push("\"");
  return parts.join("");
}

const isLowSurrogate = (c: i32): bool => c >= 0xdc00 && c <= 0xdfff;

function unicodeEscape(c: i32): string {
  return "\\u" + HEX.charAt((c >> 12) & 15) + HEX.charAt((c >> 8) & 15) + HEX.charAt((c >> 4) & 15) + HEX.charAt(c & 15);
}

const orNull = (s: string | null): string => (s != null ? jsonString(s) : "null");

/** Every decoded metadata key and value as one JSON object (later duplicates cannot occur: keys are unique). */
export function metadataObject(meta: Metadata): string {
  const parts = new Array<string>(meta.keys.length);
  for (let i = 0; i < meta.keys.length; i++) parts[i] = jsonString(meta.keys[i]) + ":" + jsonString(meta.values[i]);
  return "{" + parts.join(",") + "}";
}

/**
 * The request's half of a line, taken when the request is forwarded (its metadata is gone by the
 * time the answer comes): id, operation (the codec's service and method keys, null when the frame
 * lacks one), size on the wire, and every metadata key.
 */
export function requestPart(meta: Metadata, serviceKey: string, methodKey: string, requestBytes: i32): string {
  const service = serviceKey.length > 0 ? meta.get(serviceKey) : null;
  const method = methodKey.length > 0 ? meta.get(methodKey) : null;
  return "\"id\":" + meta.requestId.toString() + ",\"service\":" + orNull(service) + ",\"method\":" + orNull(method)
    + ",\"request_bytes\":" + requestBytes.toString() + ",\"meta\":" + metadataObject(meta);
}

/** One answered request: everything a line says. */
export class AccessEntry {
  /** `<vm>.<connection>`, unique in the Envoy process (conn-label.ts). */
  conn: string = "";
  /** The client's address as Envoy gives it (`ip:port`), "" when unknown. */
  peer: string = "";
  route: string = "";
  cluster: string = "";
  /** From requestPart(). */
  request: string = "";
  /** The answer's kind (reply, exception, ...) or local_reply. */
  status: string = "";
  /** When the request was forwarded, ms since the Unix epoch (Envoy's clock). */
  startMs: i64 = 0;
  durationMs: u64 = 0;
  responseBytes: i32 = 0;
  /** Why the filter answered itself (local replies), or null. */
  reason: string | null = null;

  /** The line, prefix included. */
  toLine(): string {
    return ACCESS_PREFIX + "{\"start_time\":" + jsonString(new Date(this.startMs).toISOString())
      + ",\"conn\":" + jsonString(this.conn) + ",\"peer\":" + (this.peer.length > 0 ? jsonString(this.peer) : "null")
      + ",\"route\":" + jsonString(this.route) + ",\"cluster\":" + jsonString(this.cluster)
      + ",\"status\":" + jsonString(this.status) + ",\"duration_ms\":" + this.durationMs.toString()
      + ",\"response_bytes\":" + this.responseBytes.toString()
      + (this.reason != null ? ",\"reason\":" + jsonString(this.reason!) : "")
      + "," + this.request + "}";
  }
}
