// When the garbage collector runs: as the host's outermost call into the VM returns.
//
// The module is built with AssemblyScript's minimal runtime (asconfig.json: a two-color mark and
// sweep collector, TCMS), not the incremental one (ITCMS). ITCMS keeps a shadow stack of every
// managed local and puts a write barrier on every reference store; on Redis GET/SET that was 42 %
// of the filter's time (bench/micro.mjs: 0.58x the time per request without them). TCMS does not
// see the Wasm stack, so it may only run when no object is referenced from the stack alone: when
// the host's outermost call into the VM returns (Envoy can call in again from inside a host call,
// for instance a close event raised by proxy_close_stream, so calls nest; only depth 0 is safe).
// Everything that outlives a callback hangs off a global (roots, connections), as it must anyway.
//
// It runs when linear memory grew since the last collection (garbage no longer fits: a large
// frame's carry buffer, a burst of new connections); when COLLECT_BYTES of connection data have
// crossed between Envoy and the VM since the last one (what a callback allocates grows with the
// bytes it handles: per-request calls of 4 KiB leave tens of KiB each, and memory that grew never
// shrinks, so counting callbacks alone had left 32-64 MiB behind); and otherwise every
// COLLECT_BASE + COLLECT_PER_CONTEXT x (live contexts) outermost callbacks. A collection marks what
// is live, which grows with the connections, and frees what is not: spacing collections by the
// number of connections keeps the marking per callback flat (each connection's few dozen objects
// are visited once per COLLECT_PER_CONTEXT callbacks), and the garbage in between bounded by a few
// callbacks' worth per connection. A Redis request allocates nothing (it meets the data rule once
// per some 25,000 small commands), a Thrift or Dubbo call a few strings.
export const COLLECT_BASE: i32 = 1024;
export const COLLECT_PER_CONTEXT: i32 = 16;
/** Bytes of connection data read from or written to Envoy between two collections. */
export const COLLECT_BYTES: usize = 1 << 20;

let depth: i32 = 0;
let sinceCollect: i32 = 0;
let pagesAtCollect: i32 = memory.size();
let collections: u64 = 0;
let bytesSinceCollect: usize = 0;

/** `bytes` of connection data crossed between Envoy and the VM (host/abi.ts). */
@inline export function dataMoved(bytes: usize): void {
  bytesSinceCollect += bytes;
}

/** Call first in every export the host calls (except malloc, which only runs inside host calls). */
export function enterCallback(): void {
  depth++;
}

/** True inside the host's outermost call into the VM (not one nested in a host call). */
export function outermost(): bool {
  return depth == 1;
}

/**
 * Call last in every export that called enterCallback(), on every path out; `contexts` is how
 * many connection contexts are live.
 */
export function leaveCallback(contexts: i32): void {
  if (--depth > 0) return;
  depth = 0;
  if (++sinceCollect < COLLECT_BASE + COLLECT_PER_CONTEXT * contexts && memory.size() == pagesAtCollect && bytesSinceCollect < COLLECT_BYTES) return;
  __collect();
  collections++;
  sinceCollect = 0;
  bytesSinceCollect = 0;
  pagesAtCollect = memory.size();
}

/** Collections so far (for tests and benchmarks). */
export function collectionCount(): u64 {
  return collections;
}
