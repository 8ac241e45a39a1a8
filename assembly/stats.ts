// Every metric the filter emits, named after outcomes. Per-route metrics are defined on first use,
// so /stats lists only what happened. Names: see docs/DESIGN.md.
import { defineMetric, incrementMetric, recordMetric, MetricType } from "./host/abi";
import { MessageKind, MESSAGE_KIND_COUNT, kindName } from "./core/metadata";

export class Stats {
  readonly prefix: string;
  readonly noRoute: u32;
  readonly routeMismatch: u32;
  readonly decodeError: u32;
  readonly frameTooLarge: u32;
  readonly truncated: u32;
  readonly unmatchedResponse: u32;
  readonly untracked: u32;
  readonly mutationFailed: u32;
  readonly heartbeat: u32;
  readonly localReply: u32;
  readonly onewayDropped: u32;
  readonly authzDenied: u32;
  readonly rateLimited: u32;
  readonly faultAbort: u32;
  readonly faultDelay: u32;
  readonly timeout: u32;
  readonly activeRequests: u32;
  readonly connections: u32;
  private routeNames: string[];
  /** [route * 2 * KINDS + direction * KINDS + kind] → metric id, 0 until first use. */
  private routeKind: StaticArray<u32>;
  private routeConnections: StaticArray<u32>;
  private routeLatency: StaticArray<u32>;

  constructor(prefix: string, routeNames: string[]) {
    this.prefix = prefix;
    this.routeNames = routeNames;
    const p = prefix + ".";
    this.noRoute = defineMetric(MetricType.Counter, p + "no_route");
    this.routeMismatch = defineMetric(MetricType.Counter, p + "route_mismatch");
    this.decodeError = defineMetric(MetricType.Counter, p + "decode_error");
    this.frameTooLarge = defineMetric(MetricType.Counter, p + "frame_too_large");
    this.truncated = defineMetric(MetricType.Counter, p + "truncated");
    this.unmatchedResponse = defineMetric(MetricType.Counter, p + "unmatched_response");
    this.untracked = defineMetric(MetricType.Counter, p + "untracked_request");
    this.mutationFailed = defineMetric(MetricType.Counter, p + "mutation_failed");
    this.heartbeat = defineMetric(MetricType.Counter, p + "heartbeat");
    this.localReply = defineMetric(MetricType.Counter, p + "local_reply");
    this.onewayDropped = defineMetric(MetricType.Counter, p + "oneway_dropped");
    this.authzDenied = defineMetric(MetricType.Counter, p + "authz_denied");
    this.rateLimited = defineMetric(MetricType.Counter, p + "ratelimited");
    this.faultAbort = defineMetric(MetricType.Counter, p + "fault_abort");
    this.faultDelay = defineMetric(MetricType.Counter, p + "fault_delay");
    this.timeout = defineMetric(MetricType.Counter, p + "timeout");
    this.activeRequests = defineMetric(MetricType.Gauge, p + "active_requests");
    this.connections = defineMetric(MetricType.Counter, p + "connections");
    this.routeKind = new StaticArray<u32>(routeNames.length * 2 * MESSAGE_KIND_COUNT);
    this.routeConnections = new StaticArray<u32>(routeNames.length);
    this.routeLatency = new StaticArray<u32>(routeNames.length);
  }

  @inline inc(id: u32): void {
    incrementMetric(id, 1);
  }

  @inline add(id: u32, by: i64): void {
    incrementMetric(id, by);
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
    incrementMetric(id, 1);
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
