// Every metric the filter emits, named after outcomes. Per-route metrics are defined on first use,
// so /stats lists only what happened. Names and meanings are listed in README.md ("Observability").
import { defineMetric, incrementMetric, recordMetric, MetricType } from "./host/abi";
import { Metadata, MessageKind, MESSAGE_KIND_COUNT, kindName } from "./core/metadata";

/** Distinct metrics whose deltas one callback can hold before flushing early. */
const MAX_PENDING = 16;

/** Distinct operations counted by name per plugin; more would bloat Envoy's stats. */
const MAX_OPERATIONS = 256;

/** Stat-name-safe: dots (Envoy's separator) and other punctuation become '_'. */
function sanitize(s: string): string {
  let out = s;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d;
    if (!ok) {
      out = out.substring(0, i) + "_" + out.substring(i + 1);
    }
  }
  return out;
}

export class Stats {
  readonly prefix: string;
  readonly noRoute: u32;
  readonly routeMismatch: u32;
  readonly decodeError: u32;
  readonly frameTooLarge: u32;
  readonly truncated: u32;
  /** Per-connection mode: a connection that closed before sending a byte (health checks, scans). */
  readonly emptyConnection: u32;
  /** Per-connection mode: no complete first request within firstRequestTimeoutMs. */
  readonly firstRequestTimeout: u32;
  readonly unmatchedResponse: u32;
  readonly untracked: u32;
  readonly mutationFailed: u32;
  readonly heartbeat: u32;
  readonly localReply: u32;
  readonly onewayDropped: u32;
  readonly authzDenied: u32;
  readonly rateLimited: u32;
  /** Requests a rate limit let through because the shared bucket's compare-and-swap kept losing (fail open). */
  readonly rateLimitContended: u32;
  readonly faultAbort: u32;
  readonly faultDelay: u32;
  readonly timeout: u32;
  readonly activeRequests: u32;
  readonly connections: u32;
  readonly outOfScope: u32;
  /** Per-request mode: requests that cannot travel alone (codec's perRequestRefusal). */
  readonly refused: u32;
  /** Per-request mode: calls whose stream was reset before a reply. */
  readonly upstreamReset: u32;
  /** Per-request mode: calls Envoy answered with an error status other than 404 and 504. */
  readonly upstreamError: u32;
  /** Gauge: this VM's linear memory in bytes (grows, never shrinks: a leak shows as growth). */
  readonly wasmMemory: u32;
  private memoryPages: i32 = 0;
  private routeNames: string[];
  /** [route * 2 * KINDS + direction * KINDS + kind] → metric id, 0 until first use. */
  private routeKind: StaticArray<u32>;
  private routeConnections: StaticArray<u32>;
  private routeLatency: StaticArray<u32>;
  private opIndex: Map<string, Map<string, i32>> = new Map();
  private opNames: string[] = [];
  private opKind: u32[] = [];
  /** Counter and gauge deltas of the current host callback, sent by flush() once at its end. */
  private pendingIds: StaticArray<u32> = new StaticArray<u32>(MAX_PENDING);
  private pendingBy: StaticArray<i64> = new StaticArray<i64>(MAX_PENDING);
  private pendingN: i32 = 0;

  /** Metadata keys naming an operation (CodecFactory.serviceKey / methodKey). */
  serviceKey: string = "service";
  methodKey: string = "method";

  constructor(prefix: string, routeNames: string[]) {
    this.prefix = prefix;
    this.routeNames = routeNames;
    const p = prefix + ".";
    this.noRoute = defineMetric(MetricType.Counter, p + "no_route");
    this.routeMismatch = defineMetric(MetricType.Counter, p + "route_mismatch");
    this.decodeError = defineMetric(MetricType.Counter, p + "decode_error");
    this.frameTooLarge = defineMetric(MetricType.Counter, p + "frame_too_large");
    this.truncated = defineMetric(MetricType.Counter, p + "truncated");
    this.emptyConnection = defineMetric(MetricType.Counter, p + "empty_connection");
    this.firstRequestTimeout = defineMetric(MetricType.Counter, p + "first_request_timeout");
    this.unmatchedResponse = defineMetric(MetricType.Counter, p + "unmatched_response");
    this.untracked = defineMetric(MetricType.Counter, p + "untracked_request");
    this.mutationFailed = defineMetric(MetricType.Counter, p + "mutation_failed");
    this.heartbeat = defineMetric(MetricType.Counter, p + "heartbeat");
    this.localReply = defineMetric(MetricType.Counter, p + "local_reply");
    this.onewayDropped = defineMetric(MetricType.Counter, p + "oneway_dropped");
    this.authzDenied = defineMetric(MetricType.Counter, p + "authz_denied");
    this.rateLimited = defineMetric(MetricType.Counter, p + "ratelimited");
    this.rateLimitContended = defineMetric(MetricType.Counter, p + "ratelimit_contended");
    this.faultAbort = defineMetric(MetricType.Counter, p + "fault_abort");
    this.faultDelay = defineMetric(MetricType.Counter, p + "fault_delay");
    this.timeout = defineMetric(MetricType.Counter, p + "timeout");
    this.activeRequests = defineMetric(MetricType.Gauge, p + "active_requests");
    this.connections = defineMetric(MetricType.Counter, p + "connections");
    this.outOfScope = defineMetric(MetricType.Counter, p + "out_of_scope");
    this.refused = defineMetric(MetricType.Counter, p + "refused_request");
    this.upstreamReset = defineMetric(MetricType.Counter, p + "upstream_reset");
    this.upstreamError = defineMetric(MetricType.Counter, p + "upstream_error");
    this.wasmMemory = defineMetric(MetricType.Gauge, p + "wasm_memory_bytes");
    this.routeKind = new StaticArray<u32>(routeNames.length * 2 * MESSAGE_KIND_COUNT);
    this.routeConnections = new StaticArray<u32>(routeNames.length);
    this.routeLatency = new StaticArray<u32>(routeNames.length);
    this.memory();
  }

  @inline inc(id: u32): void {
    incrementMetric(id, 1);
  }

  @inline add(id: u32, by: i64): void {
    incrementMetric(id, by);
  }

  /**
   * Adds `by` to a counter or gauge at the end of the current host callback (flush()): a read
   * carrying several frames then costs one host call per metric instead of one per frame.
   */
  later(id: u32, by: i64): void {
    const n = this.pendingN;
    for (let i = 0; i < n; i++) {
      if (unchecked(this.pendingIds[i]) == id) {
        unchecked((this.pendingBy[i] += by));
        return;
      }
    }
    if (n == MAX_PENDING) this.flush();
    const k = this.pendingN;
    unchecked((this.pendingIds[k] = id));
    unchecked((this.pendingBy[k] = by));
    this.pendingN = k + 1;
  }

  /** Sends the deltas held by later(); every host callback that counts calls it before returning. */
  flush(): void {
    for (let i = 0, n = this.pendingN; i < n; i++) {
      const by = unchecked(this.pendingBy[i]);
      if (by != 0) incrementMetric(unchecked(this.pendingIds[i]), by);
    }
    this.pendingN = 0;
  }

  /** Updates wasm_memory_bytes when the memory grew: one instruction, a host call only on growth. */
  @inline memory(): void {
    const pages = memory.size();
    if (pages != this.memoryPages) {
      this.memoryPages = pages;
      recordMetric(this.wasmMemory, <u64>pages << 16);
    }
  }

  /** Counts a request (`response` false) or response of `kind` on route index `route`. */
  message(route: i32, response: bool, kind: MessageKind): void {
    if (<u32>route >= <u32>this.routeNames.length) return;
    const slot = (route * 2 + (response ? 1 : 0)) * MESSAGE_KIND_COUNT + <i32>kind;
    let id = unchecked(this.routeKind[slot]);
    if (id == 0) {
      const name = this.prefix + ".route." + unchecked(this.routeNames[route]) + (response ? ".response." : ".request.") + kindName(kind);
      id = defineMetric(MetricType.Counter, name);
      unchecked((this.routeKind[slot] = id));
    }
    this.later(id, 1);
  }

  routeConnection(route: i32): void {
    if (<u32>route >= <u32>this.routeNames.length) return;
    let id = unchecked(this.routeConnections[route]);
    if (id == 0) {
      id = defineMetric(MetricType.Counter, this.prefix + ".route." + unchecked(this.routeNames[route]) + ".connections");
      unchecked((this.routeConnections[route] = id));
    }
    incrementMetric(id, 1);
  }

  /**
   * Index of the operation (service or interface, and method) of a request, for per-operation
   * counters; defined on first sight, at most MAX_OPERATIONS, then all others share "_other".
   */
  operation(meta: Metadata): i32 {
    const service = this.serviceKey.length > 0 ? meta.get(this.serviceKey) : null;
    const svc = service != null ? service : "-";
    const method = this.methodKey.length > 0 ? meta.get(this.methodKey) : null;
    const m = method != null ? method : "-";
    // Two map lookups, no string building: this runs for every request.
    let methods: Map<string, i32>;
    if (this.opIndex.has(svc)) {
      methods = this.opIndex.get(svc);
      if (methods.has(m)) return methods.get(m);
    } else {
      methods = new Map<string, i32>();
      if (this.opNames.length < MAX_OPERATIONS) this.opIndex.set(svc, methods);
    }
    if (this.opNames.length >= MAX_OPERATIONS) return this.otherOperation();
    const index = this.opNames.length;
    this.opNames.push(sanitize(svc) + "." + sanitize(m));
    for (let k = 0; k < 2 * MESSAGE_KIND_COUNT; k++) this.opKind.push(0);
    methods.set(m, index);
    return index;
  }

  /** The shared slot for operations beyond MAX_OPERATIONS. */
  private otherOperation(): i32 {
    if (this.opNames.length == MAX_OPERATIONS) {
      this.opNames.push("_other");
      for (let k = 0; k < 2 * MESSAGE_KIND_COUNT; k++) this.opKind.push(0);
    }
    return MAX_OPERATIONS;
  }

  /** Counts a request or response of `kind` for operation `op` (from operation()). */
  operationMessage(op: i32, response: bool, kind: MessageKind): void {
    if (op < 0 || op >= this.opNames.length) return;
    const slot = (op * 2 + (response ? 1 : 0)) * MESSAGE_KIND_COUNT + <i32>kind;
    let id = this.opKind[slot];
    if (id == 0) {
      id = defineMetric(MetricType.Counter, this.prefix + ".op." + this.opNames[op] + (response ? ".response." : ".request.") + kindName(kind));
      this.opKind[slot] = id;
    }
    this.later(id, 1);
  }

  /** Request-to-response time on `route`, in ms like Envoy's own upstream_rq_time. */
  latency(route: i32, ms: u64): void {
    if (<u32>route >= <u32>this.routeNames.length) return;
    let id = unchecked(this.routeLatency[route]);
    if (id == 0) {
      id = defineMetric(MetricType.Histogram, this.prefix + ".route." + unchecked(this.routeNames[route]) + ".request_duration_ms");
      unchecked((this.routeLatency[route] = id));
    }
    recordMetric(id, ms);
  }
}
