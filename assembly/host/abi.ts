// The one seam between Meltemi and the proxy-wasm host. Every host call Meltemi makes goes
// through a typed wrapper here; nothing else in assembly/ touches a host pointer or status.
//
// Raw imports come from @solo-io/proxy-runtime where its declarations are right. What it lacks
// (proxy_set_buffer_bytes) or binds wrongly (its proxy_set_buffer_status is bound to
// proxy_get_buffer_status) is declared below.
import {
  proxy_log, proxy_get_buffer_bytes, proxy_continue_stream,
  proxy_close_stream, proxy_define_metric, proxy_increment_metric, proxy_record_metric,
  proxy_set_tick_period_milliseconds, proxy_get_current_time_nanoseconds,
  proxy_set_effective_context, proxy_call_foreign_function, proxy_get_property,
  proxy_get_shared_data, proxy_set_shared_data,
} from "@solo-io/proxy-runtime/assembly/imports";
import { Window } from "../core/bytes";
import { dataMoved } from "./collector";

// @ts-ignore: decorator
@external("env", "proxy_set_buffer_bytes")
declare function proxy_set_buffer_bytes(typ: i32, start: u32, length: u32, data: usize, size: usize): u32;

// ---- enums of the 0.2.x ABI ----

export const enum Status { Ok = 0, NotFound = 1, BadArgument = 2, Empty = 7, CasMismatch = 8 }
export const enum LogLevel { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Critical = 5 }
export const enum BufferType { DownstreamData = 2, UpstreamData = 3, VmConfiguration = 6, PluginConfiguration = 7 }
export const enum FilterStatus { Continue = 0, StopIteration = 1 }
export const enum MetricType { Counter = 0, Gauge = 1, Histogram = 2 }
/** proxy_continue_stream / proxy_close_stream stream types. */
export const enum StreamType { Request = 0, Response = 1, Downstream = 2, Upstream = 3 }

// ---- memory the host writes into ----

// The host asks for memory through `malloc` and hands the pointer back through an out-parameter.
// We allocate a pinned ArrayBuffer so the result can be wrapped without a copy, then unpinned.
export function hostAlloc(size: usize): usize {
  if (scratchWanted) {
    scratchWanted = false;
    if (size <= MAX_SCRATCH) {
      if (<usize>scratch.byteLength < size) {
        let cap: usize = max(<usize>scratch.byteLength << 1, 4096);
        while (cap < size) cap <<= 1;
        scratch = new ArrayBuffer(<i32>cap);
        scratchView = Uint8Array.wrap(scratch);
      }
      return changetype<usize>(scratch);
    }
  }
  const buf = __new(size, idof<ArrayBuffer>());
  __pin(buf);
  return buf;
}

// Two out-parameter slots, reused: host calls never nest.
const outPtr = memory.data(sizeof<usize>());
const outSize = memory.data(sizeof<usize>());

// Connection data is fetched into one reused scratch buffer (grown to the largest read, at most
// MAX_SCRATCH) instead of a fresh allocation per read: a 4 KiB frame then costs the VM no
// garbage. Only getDataBuffer uses it, so its result is valid until the next getDataBuffer.
const MAX_SCRATCH: usize = 1 << 20;
let scratch: ArrayBuffer = new ArrayBuffer(4096);
let scratchWanted = false;
/** All of `scratch`, and the view of it getDataBuffer returns: moved per read, not allocated. */
let scratchView: Uint8Array = Uint8Array.wrap(scratch);
const dataView = new Window();

function takeHostBuffer(): ArrayBuffer {
  const ptr = load<usize>(outPtr);
  if (ptr == 0) return new ArrayBuffer(0);
  if (ptr == changetype<usize>(scratch)) return scratch;
  __unpin(ptr);
  return changetype<ArrayBuffer>(ptr);
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

// ---- logging ----

export function log(level: LogLevel, message: string): void {
  const b = utf8(message);
  proxy_log(level, changetype<usize>(b), b.byteLength);
}

/** Logs the first `n` bytes of `utf8` (UTF-8 text built without a string, as access lines are). */
export function logBytes(level: LogLevel, utf8: Uint8Array, n: i32): void {
  proxy_log(level, utf8.dataStart, <usize>min(n, utf8.length));
}

// ---- buffers ----

/** Reads `length` bytes from `start` of a host buffer; an empty array when there is nothing. */
export function getBuffer(typ: BufferType, start: u32, length: u32): Uint8Array {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  if (proxy_get_buffer_bytes(typ, start, length, outPtr, outSize) != Status.Ok) return new Uint8Array(0);
  return Uint8Array.wrap(takeHostBuffer(), 0, <i32>load<usize>(outSize));
}

/**
 * Like getBuffer, for connection data on the hot path: the bytes land in a reused scratch buffer,
 * so the result is only valid until the next getDataBuffer call (copy what must outlive it).
 */
export function getDataBuffer(typ: BufferType, start: u32, length: u32): Uint8Array {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  scratchWanted = true;
  const status = proxy_get_buffer_bytes(typ, start, length, outPtr, outSize);
  scratchWanted = false;
  if (status != Status.Ok) return new Uint8Array(0);
  const size = <i32>load<usize>(outSize);
  dataMoved(<usize>size);
  if (load<usize>(outPtr) == changetype<usize>(scratch)) return dataView.moveTo(scratchView, 0, size);
  return Uint8Array.wrap(takeHostBuffer(), 0, size);
}

/**
 * Replaces `length` bytes at `start` of a host buffer with `data` (Envoy: start 0 drains `length`
 * bytes and prepends; start >= size appends). Returns false on a host error.
 */
export function setBuffer(typ: BufferType, start: u32, length: u32, data: Uint8Array): bool {
  dataMoved(<usize>data.byteLength);
  return proxy_set_buffer_bytes(typ, start, length, data.dataStart, data.byteLength) == Status.Ok;
}

// ---- stream control ----

/** Resumes the read side after StopIteration: Envoy hands the buffer to the next filter. */
export function continueDownstream(): void {
  proxy_continue_stream(StreamType.Downstream);
}

/** Closes the client connection (Envoy flushes pending writes first); tcp_proxy closes upstream. */
export function closeDownstream(): void {
  proxy_close_stream(StreamType.Downstream);
}

export function setEffectiveContext(contextId: u32): bool {
  return proxy_set_effective_context(contextId) == Status.Ok;
}

// ---- timers and time ----

export function setTickPeriod(ms: u32): void {
  proxy_set_tick_period_milliseconds(ms);
}

const timeSlot = memory.data(8);
/**
 * The host clock as of the current host callback: read once per callback, so that a read carrying
 * many frames costs one host call, not one per frame (they arrived together anyway). The exports
 * call newCallback() on every entry from the host.
 */
export function callbackNanos(): u64 {
  if (callbackAt == 0) callbackAt = nowNanos();
  return callbackAt;
}

/** Forgets the clock reading of the previous host callback (see callbackNanos). */
export function newCallback(): void {
  callbackAt = 0;
}

let callbackAt: u64 = 0;

export function nowNanos(): u64 {
  proxy_get_current_time_nanoseconds(timeSlot);
  return load<u64>(timeSlot);
}

// ---- metrics ----

/** Defines a metric; 0 (never a valid id in Envoy) when the host refused. */
export function defineMetric(typ: MetricType, name: string): u32 {
  const b = utf8(name);
  const idSlot = outSize;
  store<u32>(idSlot, 0);
  if (proxy_define_metric(typ, changetype<usize>(b), b.byteLength, idSlot) != Status.Ok) return 0;
  return load<u32>(idSlot);
}

export function incrementMetric(id: u32, by: i64): void {
  if (id != 0) proxy_increment_metric(id, by);
}

export function recordMetric(id: u32, value: u64): void {
  if (id != 0) proxy_record_metric(id, value);
}

// ---- properties ----

/** A host property by path segments (joined with NUL as the ABI wants); null when absent. */
export function getProperty(path: string[]): Uint8Array | null {
  const joined = path.join("\0");
  const b = utf8(joined);
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  if (proxy_get_property(changetype<usize>(b), b.byteLength, outPtr, outSize) != Status.Ok) return null;
  return Uint8Array.wrap(takeHostBuffer(), 0, <i32>load<usize>(outSize));
}

/** A host property that is text (addresses, names), or null when absent. */
export function getPropertyString(path: string[]): string | null {
  const v = getProperty(path);
  return v != null ? String.UTF8.decodeUnsafe(v.dataStart, <usize>v.length) : null;
}

// ---- shared data (process-wide, per VM id) ----

const casSlot = memory.data(4);

/** The CAS token of the value the last getSharedData returned (0 when absent). */
export let sharedCas: u32 = 0;

/**
 * A shared-data value under the UTF-8 key `k` (callers encode keys once), or null when unset.
 * Sets sharedCas for a following setSharedData.
 */
export function getSharedData(k: ArrayBuffer): Uint8Array | null {
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  store<u32>(casSlot, 0);
  const status = proxy_get_shared_data(changetype<usize>(k), k.byteLength, outPtr, outSize, casSlot);
  sharedCas = load<u32>(casSlot);
  if (status != Status.Ok) {
    sharedCas = 0;
    if (load<usize>(outPtr) != 0) takeHostBuffer();
    return null;
  }
  return Uint8Array.wrap(takeHostBuffer(), 0, <i32>load<usize>(outSize));
}

/** Sets a shared-data value if its CAS token is still `cas` (0: unconditionally). */
export function setSharedData(k: ArrayBuffer, value: Uint8Array, cas: u32): Status {
  return <Status>proxy_set_shared_data(changetype<usize>(k), k.byteLength, value.dataStart, value.byteLength, cas);
}

// ---- foreign functions ----

/** Calls a host foreign function with raw argument bytes; returns the host status. */
export function callForeign(name: string, args: Uint8Array): u32 {
  const n = utf8(name);
  store<usize>(outPtr, 0);
  store<usize>(outSize, 0);
  const status = proxy_call_foreign_function(changetype<usize>(n), n.byteLength, args.dataStart, args.byteLength, outPtr, outSize);
  if (load<usize>(outPtr) != 0) takeHostBuffer();
  return status;
}

/** Lifespans of envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments. */
export const enum FilterStateSpan { FilterChain = 0, DownstreamRequest = 1, DownstreamConnection = 2 }

/**
 * Sets an Envoy filter-state object that Envoy's own filters read (for example
 * `envoy.tcp_proxy.cluster`). The argument is the serialized SetEnvoyFilterStateArguments proto:
 * { string path = 1; string value = 2; LifeSpan span = 3 }.
 */
export function setEnvoyFilterState(path: string, value: string, span: FilterStateSpan): bool {
  const p = Uint8Array.wrap(utf8(path));
  const v = Uint8Array.wrap(utf8(value));
  const msg = new Uint8Array(p.length + v.length + 14);
  let o = 0;
  o = protoBytesField(msg, o, 0x0a, p);
  o = protoBytesField(msg, o, 0x12, v);
  msg[o++] = 0x18;
  msg[o++] = <u8>span;
  return callForeign("set_envoy_filter_state", msg.subarray(0, o)) == Status.Ok;
}

function protoBytesField(out: Uint8Array, o: i32, tag: u8, value: Uint8Array): i32 {
  out[o++] = tag;
  let n = <u32>value.length;
  while (n >= 0x80) {
    out[o++] = <u8>(n | 0x80);
    n >>= 7;
  }
  out[o++] = <u8>n;
  out.set(value, o);
  return o + value.length;
}
