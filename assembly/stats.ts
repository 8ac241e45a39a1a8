// Every metric the filter emits, named after outcomes, with the route, cluster, operation and
// status as labels (docs/metrics.md). Labelled metrics are defined on first use, so /stats lists
// only what happened; every id is resolved once and cached, never a name built per request.
//
// Labels travel in the stat name as `<label>=.=<value>;.;`, Istio's convention for tags of Wasm
// stats: the stats_tags regex `(<label>=\.=(.*?);\.;)` (what Istio's bootstrap renders for each
// meshConfig extraStatTags entry, and what Meltemi's own bootstraps carry) moves the pair out of
// the name into a tag, which /stats/prometheus prints as a label. So
//   wasmcustom.meltemi.meltemi_service=.=echo;.;meltemi_route=.=default;.;meltemi_cluster=.=v1;.;meltemi_kind=.=call;.;requests_total
// is scraped as meltemi_requests_total{meltemi_service="echo",meltemi_route="default",...}.
import { defineMetric, incrementMetric, recordMetric, MetricType } from "./host/abi";
import { Metadata, MessageKind, MESSAGE_KIND_COUNT, kindName } from "./core/metadata";
import { Route } from "./route/match";
import { label, SERVICE, ROUTE, CLUSTER, OPERATION, KIND, STATUS, OTHER } from "./stats-labels";
import { PairMemo } from "./util/pair-memo";

/** Distinct metrics whose deltas can be held before they are sent early. */
const MAX_PENDING = 16;

/** Distinct operations counted by name per plugin; more would bloat Envoy's stats. */
const MAX_OPERATIONS = 256;
/**
 * An operation whose service and method together are longer than this is counted as "_other":
 * real names are far shorter (a Java interface and method, a Redis command), and a client's
 * 32 KiB method name must not become a 32 KiB stat name.
 */
const MAX_OPERATION_CHARS = 512;

export class Stats {
  readonly noRoute: u32;
  readonly routeMismatch: u32;
  readonly decodeError: u32;
  readonly frameTooLarge: u32;
  readonly truncated: u32;
  /** Per-connection mode: a connection that closed before sending a byte (health checks, scans). */
  readonly emptyConnection: u32;
  /** Per-connection mode: no complete first request within firstRequestTimeoutMs. */
  readonly firstRequestTimeout: u32;
  /** Per-connection mode: the route's cluster is not one Envoy has (tcp_proxy closed the connection). */
  readonly noCluster: u32;
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
  /** `<prefix>.meltemi_service=.=<service>;.;`: how every metric name starts. */
  private readonly head: string;
  /**
   * A target is a (route, cluster) pair: route r owns the targets routeBase[r] ..
   * routeBase[r + 1] - 1, one per destination in config order, then one for OTHER.
   */
  private routeBase: StaticArray<i32> = new StaticArray<i32>(0);
  private routeClusters: string[][] = [];
  /** Per target: its route and cluster labels, written once at configure. */
  private targetLabels: string[] = [];
  /** [target * 2 * KINDS + direction * KINDS + kind] → metric id, 0 until first use. */
  private targetKind: StaticArray<u32> = new StaticArray<u32>(0);
  private targetConnections: StaticArray<u32> = new StaticArray<u32>(0);
  private targetLatency: StaticArray<u32> = new StaticArray<u32>(0);
  private opIndex: Map<string, Map<string, i32>> = new Map();
  /** Per operation: its operation label. */
  private opLabels: string[] = [];
  /** Recent operations by service and method: most requests repeat a few (see util/pair-memo.ts). */
  private recentOps: PairMemo = new PairMemo();
  private opKind: u32[] = [];
  /** Counter and gauge deltas not sent yet (later(), settle()). */
  private pendingIds: StaticArray<u32> = new StaticArray<u32>(MAX_PENDING);
  private pendingBy: StaticArray<i64> = new StaticArray<i64>(MAX_PENDING);
  private pendingN: i32 = 0;
  /** Requests in flight through this plugin in this VM: its share of the active_requests gauge. */
  private active: i64 = 0;

  /** Metadata keys naming an operation (CodecFactory.serviceKey / methodKey). */
  serviceKey: string = "service";
  methodKey: string = "method";

  /**
   * `routes` are the config's routes; `defaultName` and `defaultCluster` the pseudo-route of
   * defaultCluster, counted after them (route index routes.length).
   */
  constructor(prefix: string, service: string, routes: Route[], defaultName: string, defaultCluster: string) {
    this.head = prefix + "." + label(SERVICE, service);
    const n = routes.length + 1;
    this.routeBase = new StaticArray<i32>(n + 1);
    for (let r = 0; r < n; r++) {
      const clusters: string[] = [];
      if (r < routes.length) {
        const ds = routes[r].destinations;
        for (let d = 0; d < ds.length; d++) clusters.push(ds[d].cluster);
      } else if (defaultCluster.length > 0) {
        clusters.push(defaultCluster);
      }
      this.routeClusters.push(clusters);
      const routeLabel = label(ROUTE, r < routes.length ? routes[r].name : defaultName);
      unchecked((this.routeBase[r] = this.targetLabels.length));
      for (let d = 0; d < clusters.length; d++) this.targetLabels.push(routeLabel + label(CLUSTER, clusters[d]));
      this.targetLabels.push(routeLabel + label(CLUSTER, OTHER));
    }
    unchecked((this.routeBase[n] = this.targetLabels.length));
    const targets = this.targetLabels.length;
    this.targetKind = new StaticArray<u32>(targets * 2 * MESSAGE_KIND_COUNT);
    this.targetConnections = new StaticArray<u32>(targets);
    this.targetLatency = new StaticArray<u32>(targets);

    this.noRoute = this.counter("no_route_total");
    this.routeMismatch = this.counter("route_mismatch_total");
    this.decodeError = this.counter("decode_error_total");
    this.frameTooLarge = this.counter("frame_too_large_total");
    this.truncated = this.counter("truncated_total");
    this.emptyConnection = this.counter("empty_connection_total");
    this.firstRequestTimeout = this.counter("first_request_timeout_total");
    this.noCluster = this.counter("no_cluster_total");
    this.unmatchedResponse = this.counter("unmatched_response_total");
    this.untracked = this.counter("untracked_request_total");
    this.mutationFailed = this.counter("mutation_failed_total");
    this.heartbeat = this.counter("heartbeat_total");
    this.localReply = this.counter("local_reply_total");
    this.onewayDropped = this.counter("oneway_dropped_total");
    this.authzDenied = this.counter("authz_denied_total");
    this.rateLimited = this.counter("ratelimited_total");
    this.rateLimitContended = this.counter("ratelimit_contended_total");
    this.faultAbort = this.counter("fault_abort_total");
    this.faultDelay = this.counter("fault_delay_total");
    this.timeout = this.counter("timeout_total");
    this.activeRequests = defineMetric(MetricType.Gauge, this.head + "active_requests");
    this.connections = this.counter("connections_total");
    this.outOfScope = this.counter("out_of_scope_total");
    this.refused = this.counter("refused_request_total");
    this.upstreamReset = this.counter("upstream_reset_total");
    this.upstreamError = this.counter("upstream_error_total");
    this.wasmMemory = defineMetric(MetricType.Gauge, this.head + "wasm_memory_bytes");
    this.memory();
  }

  private counter(name: string): u32 {
    return defineMetric(MetricType.Counter, this.head + name);
  }

  @inline inc(id: u32): void {
    incrementMetric(id, 1);
  }

  @inline add(id: u32, by: i64): void {
    incrementMetric(id, by);
  }

  /**
   * Adds `by` to a counter or gauge soon (settle()): the requests and replies of many reads then
   * cost one host call per metric instead of one per read. A delta waits while other requests
   * are in flight, at most until the root's next tick.
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

  /** `by` more (or, negative, fewer) requests in flight: the active_requests gauge, held like a count. */
  inFlight(by: i64): void {
    this.active += by;
    this.later(this.activeRequests, by);
  }

  /**
   * Called as each outermost host callback ends. With no request in flight the held deltas go to
   * Envoy at once, so an idle filter's stats are always current (a client holding its reply finds
   * it counted: the reply leaves Envoy after this callback). Under load they wait for later
   * callbacks to add to them; true while any is held, and the root's tick then sends them
   * (PluginRoot.settleStats), so a count is late by at most a tick.
   */
  settle(): bool {
    if (this.pendingN == 0) return false;
    if (this.active != 0) return true;
    this.flush();
    return false;
  }

  /** True while later() holds deltas not sent yet. */
  get holding(): bool {
    return this.pendingN > 0;
  }

  /** Sends every delta held by later(). */
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

  /**
   * The target that counts traffic of route index `route` (routes.length: the default) sent to
   * `cluster`: a destination of the route, else the route's OTHER; -1 for no route. Called when
   * a role picks or learns the route, not per frame.
   */
  target(route: i32, cluster: string): i32 {
    if (<u32>route >= <u32>this.routeClusters.length) return -1;
    const clusters = unchecked(this.routeClusters[route]);
    const base = unchecked(this.routeBase[route]);
    for (let d = 0, n = clusters.length; d < n; d++) {
      if (unchecked(clusters[d]) == cluster) return base + d;
    }
    return base + clusters.length;
  }

  /** Counts a request (`response` false) or response of `kind` on `target` (from target()). */
  message(target: i32, response: bool, kind: MessageKind): void {
    if (<u32>target >= <u32>this.targetLabels.length) return;
    const slot = (target * 2 + (response ? 1 : 0)) * MESSAGE_KIND_COUNT + <i32>kind;
    let id = unchecked(this.targetKind[slot]);
    if (id == 0) {
      const labels = unchecked(this.targetLabels[target]);
      const name = response ? label(STATUS, kindName(kind)) + "responses_total" : label(KIND, kindName(kind)) + "requests_total";
      id = defineMetric(MetricType.Counter, this.head + labels + name);
      unchecked((this.targetKind[slot] = id));
    }
    this.later(id, 1);
  }

  /** Counts a connection routed to `target` (per-connection mode). */
  routeConnection(target: i32): void {
    if (<u32>target >= <u32>this.targetLabels.length) return;
    let id = unchecked(this.targetConnections[target]);
    if (id == 0) {
      id = defineMetric(MetricType.Counter, this.head + unchecked(this.targetLabels[target]) + "route_connections_total");
      unchecked((this.targetConnections[target] = id));
    }
    incrementMetric(id, 1);
  }

  /**
   * Index of the operation (service or interface, and method) of a request, for per-operation
   * counters; defined on first sight, at most MAX_OPERATIONS, then all others share "_other".
   */
  operation(meta: Metadata): i32 {
    const service = this.serviceKey.length > 0 ? meta.get(this.serviceKey) : null;
    const svc = service != null ? service : "";
    const method = this.methodKey.length > 0 ? meta.get(this.methodKey) : null;
    const m = method != null ? method : "-";
    const known = this.recentOps.find(svc, m);
    if (known >= 0) return known;
    const op = this.findOperation(svc, m);
    this.recentOps.remember(svc, m, op);
    return op;
  }

  private findOperation(svc: string, m: string): i32 {
    if (svc.length + m.length > MAX_OPERATION_CHARS) {
      svc = "";
      m = OTHER;
    }
    // Two map lookups, no string building.
    let methods: Map<string, i32>;
    if (this.opIndex.has(svc)) {
      methods = this.opIndex.get(svc);
      if (methods.has(m)) return methods.get(m);
    } else {
      methods = new Map<string, i32>();
      if (this.opLabels.length < MAX_OPERATIONS) this.opIndex.set(svc, methods);
    }
    if (this.opLabels.length >= MAX_OPERATIONS) return this.otherOperation();
    const index = this.opLabels.length;
    // `Interface/method` as gRPC writes a full method name; the method alone without a service.
    this.opLabels.push(label(OPERATION, svc.length > 0 ? svc + "/" + m : m));
    for (let k = 0; k < 2 * MESSAGE_KIND_COUNT; k++) this.opKind.push(0);
    methods.set(m, index);
    return index;
  }

  /** The shared slot for operations beyond MAX_OPERATIONS. */
  private otherOperation(): i32 {
    if (this.opLabels.length == MAX_OPERATIONS) {
      this.opLabels.push(label(OPERATION, OTHER));
      for (let k = 0; k < 2 * MESSAGE_KIND_COUNT; k++) this.opKind.push(0);
    }
    return MAX_OPERATIONS;
  }

  /** Counts a request or response of `kind` for operation `op` (from operation()). */
  operationMessage(op: i32, response: bool, kind: MessageKind): void {
    if (op < 0 || op >= this.opLabels.length) return;
    const slot = (op * 2 + (response ? 1 : 0)) * MESSAGE_KIND_COUNT + <i32>kind;
    let id = this.opKind[slot];
    if (id == 0) {
      const name = response ? label(STATUS, kindName(kind)) + "operation_responses_total" : label(KIND, kindName(kind)) + "operation_requests_total";
      id = defineMetric(MetricType.Counter, this.head + this.opLabels[op] + name);
      this.opKind[slot] = id;
    }
    this.later(id, 1);
  }

  /** Request-to-response time on `target`, in ms like Envoy's own upstream_rq_time. */
  latency(target: i32, ms: u64): void {
    if (<u32>target >= <u32>this.targetLabels.length) return;
    let id = unchecked(this.targetLatency[target]);
    if (id == 0) {
      id = defineMetric(MetricType.Histogram, this.head + unchecked(this.targetLabels[target]) + "request_duration_ms");
      unchecked((this.targetLatency[target] = id));
    }
    recordMetric(id, ms);
  }
}
