// How a call looks as an HTTP request in per-request mode, and how Envoy's answer maps back: the
// one contract between the client role, the Envoy route table (rendered by the controller from
// the same names) and the server role.
//
//   :method POST, :scheme http, :authority meltemi
//   :path /<service>/<method>      (percent-encoded; a part the codec lacks is "-")
//   <metadata key>: <value>        (every key the codec decoded, lower-cased, for route matches
//                                   and hash keys; keys no HTTP header may carry are left out)
//   x-meltemi-probe-bytes: <n>     (oneway calls: the body ends with an n-byte probe)
//   x-meltemi-peer: <ip:port>      (the client's address, for authorization in the server role)
//   x-meltemi-session: <base64>    (connection state to replay first; see SESSION_HEADER)
//   content-length: <body bytes>
// The route table adds x-meltemi-route: <route name> and x-meltemi-cluster: <cluster>
// (request_headers_to_add), which the server role reads to apply that route's policies.
import { CodecFactory, ErrorCode } from "../core/codec";
import { Metadata } from "../core/metadata";
import { ByteWriter } from "../core/bytes";

export const ROUTE_HEADER = "x-meltemi-route";
/** Added by the route table next to ROUTE_HEADER: the cluster the router chose (for logs). */
export const CLUSTER_HEADER = "x-meltemi-cluster";
export const PROBE_HEADER = "x-meltemi-probe-bytes";
/**
 * On the server role's 200 answer, with the access log on: how the protocol answered the call
 * (reply, exception, local_reply; oneway for a call without an answer), for Envoy's access log.
 */
export const STATUS_HEADER = "x-meltemi-status";
export const PEER_HEADER = "x-meltemi-peer";
/**
 * The client connection's session state (Redis AUTH, HELLO, SELECT, CLIENT SETNAME), base64 of
 * the frames that set it: the server role replays them on a server connection that lacks them.
 */
export const SESSION_HEADER = "x-meltemi-session";
export const AUTHORITY = "meltemi";
/** Values longer than this are left out: Envoy's default header limit is 60 KiB for all of them. */
const MAX_VALUE_BYTES = 4096;

/**
 * Appends the request headers of a call (`meta` as the codec decoded it, a body of
 * `contentLength` bytes) to `names`/`values`.
 */
export function callHeaders(factory: CodecFactory, meta: Metadata, contentLength: i32, names: string[], values: string[]): void {
  names.push(":method");
  values.push("POST");
  names.push(":scheme");
  values.push("http");
  names.push(":authority");
  values.push(AUTHORITY);
  names.push(":path");
  values.push(callPath(factory, meta));
  for (let i = 0; i < meta.keys.length; i++) {
    const name = headerName(meta.keys[i]);
    const value = meta.values[i];
    if (name == null || !isHeaderValue(value)) continue;
    names.push(name);
    values.push(value);
  }
  names.push("content-length");
  values.push(contentLength.toString());
}

/** `/<service>/<method>` from the codec's operation keys; "-" stands for a part it lacks. */
export function callPath(factory: CodecFactory, meta: Metadata): string {
  const skey = factory.serviceKey();
  const mkey = factory.methodKey();
  const service = skey.length > 0 ? meta.get(skey) : null;
  const method = mkey.length > 0 ? meta.get(mkey) : null;
  return "/" + pathSegment(service) + "/" + pathSegment(method);
}

function pathSegment(s: string | null): string {
  if (s == null || s.length == 0) return "-";
  let plain = true;
  for (let i = 0; i < s.length && plain; i++) plain = isPathChar(s.charCodeAt(i));
  if (plain) return s;
  // Escaped into one buffer: appending to a string copies it per byte, which a hostile 32 KiB
  // method name made gigabytes inside one callback.
  const bytes = Uint8Array.wrap(String.UTF8.encode(s));
  const out = new ByteWriter(bytes.length * 3);
  for (let i = 0; i < bytes.length; i++) {
    const c = <u32>bytes[i];
    if (isPathChar(<i32>c)) {
      out.u8(c);
    } else {
      out.u8(0x25);
      out.u8(<u32>HEX.charCodeAt(<i32>(c >> 4)));
      out.u8(<u32>HEX.charCodeAt(<i32>(c & 15)));
    }
  }
  return String.UTF8.decodeUnsafe(out.buf.dataStart, <usize>out.len);
}

const HEX = "0123456789ABCDEF";

/** RFC 3986 unreserved plus the sub-delims Envoy leaves alone, ':' and '@' (no '/', '%', '?', '#'). */
function isPathChar(c: i32): bool {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e || c == 0x3a || c == 0x40 || c == 0x21 || c == 0x24 ||
    c == 0x26 || c == 0x27 || c == 0x28 || c == 0x29 || c == 0x2a || c == 0x2b || c == 0x2c || c == 0x3b || c == 0x3d;
}

/**
 * The header a metadata key travels as: lower-cased, or null when it must not travel. Left out:
 * names that are not HTTP tokens, pseudo-headers, hop-by-hop and framing headers, and the
 * prefixes Envoy (`x-envoy-`, `x-forwarded-`) and Meltemi (`x-meltemi-`) give meaning to, so that
 * no client can steer Envoy or the server role through an attachment.
 */
export function headerName(key: string): string | null {
  if (key.length == 0 || key.length > 256) return null;
  let lower = true;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) lower = false;
    else if (!isTokenChar(c)) return null;
  }
  const name = lower ? key : key.toLowerCase();
  if (name.startsWith("x-meltemi-") || name.startsWith("x-envoy-") || name.startsWith("x-forwarded-")) return null;
  if (RESERVED.includes(name)) return null;
  return name;
}

const RESERVED = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host",
  "content-length", "content-type", "trailer", "x-request-id", "expect"];

function isTokenChar(c: i32): bool {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a)) return true;
  return c == 0x21 || c == 0x23 || c == 0x24 || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a || c == 0x2b ||
    c == 0x2d || c == 0x2e || c == 0x5e || c == 0x5f || c == 0x60 || c == 0x7c || c == 0x7e;
}

/** Whether `v` may be an HTTP/2 field value as Envoy accepts it: no controls, no edge whitespace, bounded. */
export function isHeaderValue(v: string): bool {
  const n = v.length;
  if (n > MAX_VALUE_BYTES) return false;
  if (n > 0 && (isSpace(v.charCodeAt(0)) || isSpace(v.charCodeAt(n - 1)))) return false;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c != 0x09) || c == 0x7f) return false;
  }
  return true;
}

function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x09;
}

/**
 * The protocol error for an HTTP status Envoy answered a call with: 404 (no route), 504 (route
 * timeout), 429 (rate limited), 403 (denied), 400/413/431 (the request itself), anything else
 * (503 overflow, no healthy upstream, connect failure; 502) as the upstream being unavailable.
 */
export function errorFor(status: i32): ErrorCode {
  switch (status) {
    case 404: return ErrorCode.NoRoute;
    case 504: return ErrorCode.Timeout;
    case 408: return ErrorCode.Timeout;
    case 429: return ErrorCode.RateLimited;
    case 403: return ErrorCode.Unauthorized;
    case 400: return ErrorCode.BadRequest;
    case 413: return ErrorCode.BadRequest;
    case 431: return ErrorCode.BadRequest;
    default: return ErrorCode.Unavailable;
  }
}
