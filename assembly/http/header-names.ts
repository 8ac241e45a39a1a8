// The header names a per-request server role sees on every call (from Envoy's router and the
// client role), as strings made once: a name read from the wire is looked up here before a
// string is allocated for it, which is most of what reading a request's headers used to cost.
import { ROUTE_HEADER, CLUSTER_HEADER, PROBE_HEADER, PEER_HEADER, SESSION_HEADER } from "./call-headers";

const NAMES: string[] = [
  "host", "content-length", "content-type", "transfer-encoding", "x-request-id", "x-forwarded-proto",
  "x-envoy-expected-rq-timeout-ms", "x-envoy-attempt-count", "x-envoy-internal", "x-forwarded-for",
  ROUTE_HEADER, CLUSTER_HEADER, PROBE_HEADER, PEER_HEADER, SESSION_HEADER,
];
const BYTES: Uint8Array[] = NAMES.map<Uint8Array>((n: string) => Uint8Array.wrap(String.UTF8.encode(n)));

/** The known name spelled by bytes [start, end) of `buf` (already lower case), or null. */
export function knownName(buf: Uint8Array, start: i32, end: i32): string | null {
  const len = end - start;
  for (let i = 0, n = BYTES.length; i < n; i++) {
    const b = unchecked(BYTES[i]);
    if (b.length == len && memory.compare(b.dataStart, buf.dataStart + <usize>start, <usize>len) == 0) return unchecked(NAMES[i]);
  }
  return null;
}
