// One client connection through the filter: thin glue between host callbacks and the pure core.
//
// Routing is per connection: tcp_proxy opens one upstream per client connection, and proxy-wasm
// cannot open connections of its own. So the filter holds the connection until the first request
// frame is complete, picks the route from it, tells tcp_proxy the cluster through filter state,
// and lets tcp_proxy start (it needs max_early_data_bytes to accept the bytes read meanwhile).
// Later requests are counted against the connection's route; one that would match another route
// follows the config's mismatchPolicy.
//
// Local replies: a network filter cannot write to the client by itself. A request that a policy
// rejects is replaced by the codec's local-reply probe (same correlation id), and the server's
// answer to the probe is replaced by the codec's error reply on the way back.
import * as abi from "./host/abi";
import { PluginRoot, TimerKind, DEFAULT_ROUTE_NAME } from "./root";
import { FilterConfig, MismatchPolicy, NoRoutePolicy } from "./route/config";
import { Route } from "./route/match";
import { pickDestination } from "./route/pick";
import { Stats } from "./stats";
import { Codec, ErrorCode, NEED_MORE, FRAME_ERROR } from "./core/codec";
import { FrameStream, Finish } from "./core/stream";
import { Metadata, MessageKind, kindName } from "./core/metadata";
import { InFlight } from "./core/inflight";
import { rolls } from "./policy/fault";
import { Peer } from "./policy/authz";
import { parseIp } from "./policy/cidr";

const enum State {
  /** Paused until the first request frame picks the route. */
  AwaitingFirst = 0,
  Routed = 1,
  /** Nothing more is forwarded; the connection closes once forwarded requests are answered. */
  Draining = 2,
  Closed = 3,
  /** Outside the config's scope: every byte passes untouched, nothing is decoded or counted. */
  Bypassed = 4,
}

/** What becomes of one frame (see requestFate, settleResponse). */
const enum Fate { Pass = 0, Forward = 1, Drain = 2, Replace = 3 }

/** Bounds the memory a client can pin by pipelining requests without reading answers. */
const MAX_IN_FLIGHT: i32 = 65536;
/** A draining connection whose answers do not come back is closed after this long. */
const DRAIN_TIMEOUT_MS: u32 = 10000;
const TCP_PROXY_CLUSTER = "envoy.tcp_proxy.cluster";
const NS_PER_MS: u64 = 1000000;
const EMPTY = new Uint8Array(0);

export class Connection {
  private state: State = State.AwaitingFirst;
  private readonly cfg: FilterConfig;
  private readonly stats: Stats;
  private readonly requests: Codec;
  private readonly responses: Codec;
  /**
   * Decodes the frames that pick the route (possibly more than once, as reads add up), so that
   * `requests` still decodes every request exactly once (codecs may number them). Dropped once routed.
   */
  private router: Codec | null = null;
  private readonly down: FrameStream = new FrameStream();
  private readonly up: FrameStream = new FrameStream();
  private readonly meta: Metadata = new Metadata();
  private readonly inflight: InFlight = new InFlight(MAX_IN_FLIGHT);
  /** Index into the route table; routes.length stands for defaultCluster. */
  private route: i32 = -1;
  private cluster: string = "";
  /** Fetched on the first authorization rule that needs it. */
  private peer: Peer | null = null;
  /** While an injected delay holds the read side: when it ends (ns), and the bytes held. */
  private holdUntil: u64 = 0;
  private heldBytes: i32 = 0;
  private timeoutCheckPending: bool = false;
  /** Operation index (Stats.operation) of the request being forwarded. */
  private op: i32 = -1;
  /**
   * Pass-through (see skipFrames): bytes of a frame already decided on from its prefix that
   * are still to come, per direction; and the local replies waiting for their probe's answer.
   */
  private downSkip: i32 = 0;
  private upSkip: i32 = 0;
  private localReplies: i32 = 0;

  constructor(public readonly id: u32, private readonly root: PluginRoot) {
    const cfg = root.config!;
    const factory = cfg.codec!;
    this.requests = factory.create(cfg.codecOptions);
    this.responses = factory.create(cfg.codecOptions);
    this.cfg = cfg;
    this.stats = root.stats!;
    this.responses.readsResponses = true;
  }

  onNewConnection(): abi.FilterStatus {
    // Counted directly: stats batched for a data callback would wait for the next one.
    if (!this.inScope()) {
      this.state = State.Bypassed;
      abi.incrementMetric(this.stats.outOfScope, 1);
      return abi.FilterStatus.Continue;
    }
    abi.incrementMetric(this.stats.connections, 1);
    return abi.FilterStatus.StopIteration;
  }

  /** Whether this connection is addressed to the routed service (see route/scope.ts). */
  private inScope(): bool {
    const scope = this.cfg.scope;
    if (!scope.isSet()) return true;
    let destination: Uint8Array | null = null;
    if (scope.destinations.length > 0) {
      const addr = abi.getPropertyString(["destination", "address"]);
      if (addr != null) destination = parseIp(addr);
    }
    let chain: string | null = null;
    if (scope.filterChains.length > 0) {
      chain = abi.getPropertyString(["xds", "filter_chain_name"]);
    }
    return scope.admits(destination, chain);
  }

  onDownstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.state == State.Bypassed) return abi.FilterStatus.Continue;
    const status = this.downstreamData(size, end);
    this.stats.flush();
    return status;
  }

  onUpstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.state == State.Bypassed) return abi.FilterStatus.Continue;
    const status = this.upstreamData(size, end);
    this.stats.flush();
    return status;
  }

  private downstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.state == State.Closed || this.state == State.Draining) {
      if (size > this.heldBytes) abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, this.heldPart(size));
      return this.holdUntil != 0 ? abi.FilterStatus.StopIteration : abi.FilterStatus.Continue;
    }
    this.stats.memory();
    let from = 0;
    if (this.state == State.Routed && (this.downSkip > 0 || this.canSkip(true))) {
      from = this.skipFrames(true, size, end);
      if (from < 0) return abi.FilterStatus.Continue;
    }
    const all = abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>size);
    if (this.state == State.AwaitingFirst) {
      if (!this.routeFirstRequest(all, end)) return abi.FilterStatus.StopIteration;
    }
    // While an injected delay holds the read side, Envoy's buffer starts with bytes this filter
    // has already processed (as do bytes skipFrames passed); only what follows them is new.
    const held = this.heldBytes + from;
    const fresh = held > 0 ? all.subarray(held) : all;
    const out = this.forwardRequests(fresh, end);
    let length = size;
    if (out != null) {
      const replacement = held > 0 ? join(all.subarray(0, held), out) : out;
      abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, replacement);
      length = replacement.length;
    }
    if (this.holdUntil != 0) {
      this.heldBytes = length;
      return abi.FilterStatus.StopIteration;
    }
    return abi.FilterStatus.Continue;
  }

  private upstreamData(size: i32, end: bool): abi.FilterStatus {
    // The write path cannot pause: always Continue, carrying partial frames in VM memory.
    // Once closing, nothing more reaches the client: after a refused reply, the bytes that follow
    // are the rest of that reply (a stored value, a payload) and would parse as replies.
    if (this.state == State.Closed) {
      if (size > 0) abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, EMPTY);
      return abi.FilterStatus.Continue;
    }
    this.stats.memory();
    let from = 0;
    if (this.upSkip > 0 || this.canSkip(false)) from = this.skipFrames(false, size, end);
    if (from >= 0) {
      const chunk = abi.getDataBuffer(abi.BufferType.UpstreamData, 0, <u32>size);
      const out = this.forwardResponses(from > 0 ? chunk.subarray(from) : chunk, end);
      if (out != null) abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, from > 0 ? join(chunk.subarray(0, from), out) : out);
    }
    if (this.state == State.Draining && this.inflight.size == 0) {
      // Closing now would drop the answers being written: close from the next tick.
      this.state = State.Closed;
      this.root.closeLater(this.id);
    }
    return abi.FilterStatus.Continue;
  }

  onDelete(): void {
    const n = this.inflight.size;
    if (n > 0) this.stats.add(this.stats.activeRequests, -n);
    this.stats.flush();
    this.root.forget(this.id);
  }

  /** Timer: an injected delay is over; hand the held bytes to tcp_proxy. */
  resume(now: u64): void {
    if (this.holdUntil == 0) return;
    if (now < this.holdUntil) {
      this.root.schedule(this.id, <u32>((this.holdUntil - now) / NS_PER_MS) + 1, TimerKind.Resume);
      return;
    }
    this.holdUntil = 0;
    this.heldBytes = 0;
    abi.continueDownstream();
  }

  /** Timer: closes the connection when its oldest request has waited past the route's timeout. */
  checkTimeouts(now: u64): void {
    this.timeoutCheckPending = false;
    const timeoutMs = this.routeTimeoutMs();
    if (timeoutMs == 0 || this.inflight.size == 0 || this.state == State.Closed) return;
    const due = this.inflight.oldestStart() + <u64>timeoutMs * NS_PER_MS;
    if (now >= due) {
      this.stats.inc(this.stats.timeout);
      abi.log(abi.LogLevel.Warn, this.tag() + "request timed out after " + timeoutMs.toString() + " ms on route " + this.routeName() + "; closing connection with " + this.inflight.size.toString() + " requests in flight");
      this.state = State.Closed;
      abi.closeDownstream();
      return;
    }
    this.watchTimeout(<u32>((due - now) / NS_PER_MS) + 1);
  }

  // ---- first request: pick the route ----

  /** True once the route is set; false to keep the connection paused (or when it was closed). */
  private routeFirstRequest(chunk: Uint8Array, end: bool): bool {
    let codec = this.router;
    if (codec == null) this.router = codec = this.cfg.codec!.create(this.cfg.codecOptions);
    const meta = this.meta;
    let pos = 0;
    while (pos < chunk.length) {
      const rest = chunk.subarray(pos);
      const size = codec.frameSize(rest, this.cfg.maxFrameBytes);
      if (size == FRAME_ERROR) return this.reject(codec);
      if (size == NEED_MORE || size > rest.length) break;
      meta.reset();
      if (!codec.decode(rest.subarray(0, size), meta)) return this.reject(codec);
      if (meta.isRoutable()) return this.pickRoute(meta);
      pos += size;
    }
    if (end) {
      this.stats.inc(this.stats.truncated);
      abi.log(abi.LogLevel.Warn, this.tag() + "client closed before a complete first request (" + chunk.length.toString() + " bytes)");
      this.close();
    }
    return false;
  }

  private pickRoute(meta: Metadata): bool {
    const table = this.cfg.table;
    let route = table.find(meta);
    if (route < 0) {
      this.stats.inc(this.stats.noRoute);
      if (this.cfg.noRoute == NoRoutePolicy.Reject) {
        abi.log(abi.LogLevel.Info, this.tag() + "no route for " + describe(meta) + "; closing");
        this.close();
        return false;
      }
      this.route = table.routes.length;
      this.cluster = this.cfg.defaultCluster;
    } else {
      const r = table.routes[route];
      this.route = route;
      this.cluster = r.destinations[pickDestination(r, this.root.rng.next())].cluster;
    }
    if (!abi.setEnvoyFilterState(TCP_PROXY_CLUSTER, this.cluster, abi.FilterStateSpan.DownstreamConnection)) {
      abi.log(abi.LogLevel.Error, this.tag() + "Envoy refused filter state " + TCP_PROXY_CLUSTER + "=" + this.cluster + "; closing");
      this.close();
      return false;
    }
    this.stats.routeConnection(this.route);
    this.state = State.Routed;
    this.router = null;
    return true;
  }

  // ---- requests: client to server ----

  /** Cuts, checks and forwards the requests in `chunk`; returns the bytes to forward instead, or null. */
  private forwardRequests(chunk: Uint8Array, end: bool): Uint8Array | null {
    const s = this.down;
    const codec = this.requests;
    const meta = this.meta;
    const route = this.currentRoute();
    let mode = Finish.Carry;
    s.begin(chunk);
    while (true) {
      const n = this.decodeNext(s, codec, "request");
      if (n == NEED_MORE) break;
      if (n == FRAME_ERROR) {
        mode = Finish.Discard;
        break;
      }
      const fate = this.requestFate(meta);
      if (fate == Fate.Pass) continue;
      if (fate == Fate.Drain) {
        this.stats.inc(this.stats.routeMismatch);
        s.replaceFrame(null);
        mode = Finish.Discard;
        this.drain("request " + describe(meta) + " needs another route than " + this.routeName());
        break;
      }
      if (route == null) {
        if (meta.expectsReply) this.track(meta, abi.nowNanos(), null);
      } else if (!this.applyPolicies(route, s, meta)) {
        mode = Finish.Discard;
        break;
      }
    }
    return s.finish(this.finishMode(s, mode, end, "request"));
  }

  /**
   * Runs the route's policies on one request (authorization, rate limit, fault abort, delay) and
   * forwards it, a probe in its place, or nothing. False when the connection must stop here.
   */
  private applyPolicies(route: Route, s: FrameStream, meta: Metadata): bool {
    const now = abi.nowNanos();
    const authz = route.authz;
    if (authz != null && !authz.allows(meta, this.peerInfo(authz.needsPeer()))) {
      this.stats.inc(this.stats.authzDenied);
      const rule = authz.decidedBy >= 0 ? authz.rules[authz.decidedBy].name : "defaultAction";
      return this.replyLocally(s, meta, now, ErrorCode.Unauthorized, "meltemi: request denied by authorization rule " + rule);
    }
    const rl = route.rateLimit;
    if (rl != null) {
      const bucket = rl.bucketFor(meta);
      if (bucket >= 0) {
        if (!this.root.buckets.take(rl.sharedKey(bucket, this.cfg.statPrefix, route.name), rl.spec(bucket), now / NS_PER_MS)) {
          this.stats.inc(this.stats.rateLimited);
          return this.replyLocally(s, meta, now, ErrorCode.RateLimited, "meltemi: rate limit exceeded on route " + route.name);
        }
      }
    }
    const fault = route.fault;
    if (fault != null) {
      if (fault.hasAbort() && rolls(fault.abortPerMillion, this.root.rng.next())) {
        this.stats.inc(this.stats.faultAbort);
        return this.replyLocally(s, meta, now, ErrorCode.FaultAbort, fault.abortMessage);
      }
      if (fault.hasDelay() && rolls(fault.delayPerMillion, this.root.rng.next())) {
        this.stats.inc(this.stats.faultDelay);
        this.holdFor(fault.delayMs, now);
      }
    }
    this.forward(route, s, meta, now);
    return true;
  }

  private forward(route: Route, s: FrameStream, meta: Metadata, now: u64): void {
    if (meta.expectsReply) this.track(meta, now, null);
    const mutation = route.requestMutation;
    if (mutation.length > 0) {
      const changed = this.requests.mutate(s.frame(), meta, mutation);
      if (changed != null) s.replaceFrame(changed);
      else this.stats.inc(this.stats.mutationFailed);
    }
  }

  /**
   * Answers a request with the protocol's error instead of forwarding it: a probe goes upstream in
   * its place and the probe's answer is swapped for the error on the way back. Oneway requests
   * are dropped. False when the codec has no probe (the connection then drains and closes).
   */
  private replyLocally(s: FrameStream, meta: Metadata, now: u64, code: ErrorCode, message: string): bool {
    const codec = this.requests;
    if (!meta.expectsReply) {
      s.replaceFrame(null);
      this.stats.inc(this.stats.onewayDropped);
      return true;
    }
    const probe = codec.localReplyProbe(meta);
    if (probe == null) {
      s.replaceFrame(null);
      this.drain(message + " (codec has no local reply)");
      return false;
    }
    s.replaceFrame(probe);
    this.track(meta, now, codec.errorReply(meta, code, message));
    this.stats.inc(this.stats.localReply);
    if (this.cfg.accessLog) {
      abi.log(abi.LogLevel.Info, "meltemi access conn=" + this.id.toString() + " route=" + this.routeName() + " cluster=" + this.cluster + " id=" + meta.requestId.toString() + " " + describe(meta) + " status=local_reply reason=\"" + message + "\"");
    }
    return true;
  }

  /** Holds the read side for `ms` (the bytes of this read and later ones wait in Envoy's buffer). */
  private holdFor(ms: u32, now: u64): void {
    const until = now + <u64>ms * NS_PER_MS;
    if (until > this.holdUntil) this.holdUntil = until;
    this.root.schedule(this.id, ms, TimerKind.Resume);
  }

  /** The route `meta` would take on a fresh connection (routes.length for the default). */
  private routeFor(meta: Metadata): i32 {
    const r = this.cfg.table.find(meta);
    return r >= 0 ? r : this.cfg.table.routes.length;
  }

  private currentRoute(): Route | null {
    const routes = this.cfg.table.routes;
    return this.route >= 0 && this.route < routes.length ? routes[this.route] : null;
  }

  private routeTimeoutMs(): u32 {
    const r = this.currentRoute();
    return r != null ? r.timeoutMs : 0;
  }

  private track(meta: Metadata, now: u64, reply: Uint8Array | null): void {
    const note = this.cfg.accessLog ? describe(meta) : "";
    if (!this.inflight.add(meta.requestId, this.route, now, reply, note, this.op)) {
      this.stats.inc(this.stats.untracked);
      return;
    }
    if (reply != null) this.localReplies++;
    this.stats.later(this.stats.activeRequests, 1);
    const timeoutMs = this.routeTimeoutMs();
    if (timeoutMs > 0 && !this.timeoutCheckPending) this.watchTimeout(timeoutMs);
  }

  private watchTimeout(ms: u32): void {
    this.timeoutCheckPending = true;
    this.root.schedule(this.id, ms, TimerKind.Timeout);
  }

  /**
   * Stops forwarding requests and closes the connection once the requests already forwarded are
   * answered (or DRAIN_TIMEOUT_MS passes), so that no answer the client waits for is lost.
   */
  private drain(why: string): void {
    this.state = State.Draining;
    abi.log(abi.LogLevel.Info, this.tag() + why + "; closing after " + this.inflight.size.toString() + " in-flight responses");
    this.root.closeLater(this.id, this.inflight.size == 0 ? 0 : DRAIN_TIMEOUT_MS);
  }

  private peerInfo(needed: bool): Peer {
    let p = this.peer;
    if (p != null) return p;
    p = new Peer();
    if (needed) {
      const addr = abi.getPropertyString(["source", "address"]);
      if (addr != null) p.address = parseIp(addr);
      const san = abi.getPropertyString(["connection", "uri_san_peer_certificate"]);
      if (san != null && san.length > 0) p.principals.push(san);
    }
    this.peer = p;
    return p;
  }

  // ---- pass-through: frames decided on from their first bytes ----
  //
  // When every frame of a read will be forwarded unchanged and the codec decodes from a prefix
  // (decodePrefix), only that prefix of each frame is fetched from the host; the rest of the frame,
  // in this read or later ones, passes unread. Anything else (a frame that may be changed or
  // replaced, an incomplete header, a decode error) hands the read from that frame on to the
  // full path, before any side effect of that frame.

  /** Whether the next frame of a direction may take the pass-through path. */
  private canSkip(requests: bool): bool {
    if (requests) {
      if (this.down.carried() != 0 || this.heldBytes != 0 || this.holdUntil != 0) return false;
      if (this.requests.decodePrefix() <= 0) return false;
      const route = this.currentRoute();
      return route == null || (route.requestMutation.length == 0 && route.authz == null && route.rateLimit == null && route.fault == null);
    }
    return this.up.carried() == 0 && this.localReplies == 0 && this.responses.decodePrefix() > 0;
  }

  /**
   * Passes the frames of one direction's read by their first bytes. -1 when all `size` bytes were
   * handled (the host buffer is forwarded as is), else the offset where the full path takes over.
   */
  private skipFrames(requests: bool, size: i32, end: bool): i32 {
    const codec = requests ? this.requests : this.responses;
    const buffer = requests ? abi.BufferType.DownstreamData : abi.BufferType.UpstreamData;
    const meta = this.meta;
    const prefix = codec.decodePrefix();
    let remaining = requests ? this.downSkip : this.upSkip;
    let pos = 0;
    // The bytes fetched last, from offset `at` of the read: small frames often fit several to a fetch.
    let head = new Uint8Array(0);
    let at = 0;
    while (pos < size) {
      if (remaining > 0) {
        const n = min(remaining, size - pos);
        pos += n;
        remaining -= n;
        continue;
      }
      // At a frame boundary: a frame partly passed is always finished here, whatever changed since.
      if (!this.canSkip(requests)) break;
      const want = min(prefix, size - pos);
      if (pos + want > at + head.length) {
        head = abi.getDataBuffer(buffer, <u32>pos, <u32>want);
        at = pos;
      }
      const bytes = head.subarray(pos - at);
      const fs = codec.frameSize(bytes, this.cfg.maxFrameBytes);
      if (fs <= 0) break;
      meta.reset();
      if (!codec.decode(bytes.length > fs ? bytes.subarray(0, fs) : bytes, meta)) break;
      if (requests) {
        if (this.requestFate(meta) == Fate.Drain) break;
        if (meta.isRequest && meta.kind != MessageKind.Heartbeat && meta.expectsReply) this.track(meta, abi.nowNanos(), null);
      } else {
        this.settleResponse(meta);
      }
      const here = min(fs, size - pos);
      pos += here;
      remaining = fs - here;
    }
    if (requests) this.downSkip = remaining;
    else this.upSkip = remaining;
    if (pos < size) return pos;
    if (end && remaining > 0) this.endedInside(requests ? "request" : "response", remaining);
    return -1;
  }

  /**
   * Counts a client frame and says what becomes of it: Pass (not a request to route: heartbeats
   * and answers go on as they are), Forward, or Drain (a request for another route under
   * mismatchPolicy close: nothing is counted, the caller stops forwarding here).
   */
  private requestFate(meta: Metadata): Fate {
    if (!meta.isRequest) return Fate.Pass;
    if (meta.kind == MessageKind.Heartbeat) {
      this.stats.inc(this.stats.heartbeat);
      return Fate.Pass;
    }
    if (this.routeFor(meta) != this.route) {
      if (this.cfg.mismatch == MismatchPolicy.Close) return Fate.Drain;
      this.stats.inc(this.stats.routeMismatch);
    }
    this.stats.message(this.route, false, meta.kind);
    this.op = this.stats.operation(meta);
    this.stats.operationMessage(this.op, false, meta.kind);
    return Fate.Forward;
  }

  /**
   * Pairs a server frame with its request and counts it. Returns Fate.Replace when the request was
   * answered locally (the reply to send instead is in inflight.reply), Fate.Forward for an answer
   * to a forwarded request (inflight.route and .start describe it), Fate.Pass otherwise.
   */
  private settleResponse(meta: Metadata): Fate {
    if (meta.isRequest) {
      if (meta.kind == MessageKind.Heartbeat) this.stats.inc(this.stats.heartbeat);
      return Fate.Pass;
    }
    if (!this.inflight.take(meta.requestId)) {
      if (meta.kind == MessageKind.Heartbeat) this.stats.inc(this.stats.heartbeat);
      else this.stats.inc(this.stats.unmatchedResponse);
      return Fate.Pass;
    }
    this.stats.later(this.stats.activeRequests, -1);
    if (this.inflight.reply != null) {
      this.localReplies--;
      return Fate.Replace;
    }
    const route = this.inflight.route;
    this.stats.message(route, true, meta.kind);
    this.stats.operationMessage(this.inflight.op, true, meta.kind);
    const ms = (abi.nowNanos() - this.inflight.start) / NS_PER_MS;
    this.stats.latency(route, ms);
    if (this.cfg.accessLog) this.accessLog(meta, ms);
    return Fate.Forward;
  }

  /** The stream ended inside a frame that was passing through: its bytes went as they were. */
  private endedInside(what: string, missing: i32): void {
    this.stats.inc(this.stats.truncated);
    abi.log(abi.LogLevel.Warn, this.tag() + "stream ended inside a " + what + " frame; forwarded its bytes as they were (" + missing.toString() + " bytes missing)");
  }

  // ---- responses: server to client ----

  private forwardResponses(chunk: Uint8Array, end: bool): Uint8Array | null {
    const s = this.up;
    const codec = this.responses;
    const meta = this.meta;
    let mode = Finish.Carry;
    s.begin(chunk);
    while (true) {
      const n = this.decodeNext(s, codec, "response");
      if (n == NEED_MORE) break;
      if (n == FRAME_ERROR) {
        mode = Finish.Discard;
        break;
      }
      const fate = this.settleResponse(meta);
      if (fate == Fate.Replace) {
        s.replaceFrame(this.inflight.reply);
        continue;
      }
      if (fate != Fate.Forward) continue;
      const route = this.inflight.route;
      const routes = this.cfg.table.routes;
      if (route >= 0 && route < routes.length) {
        const mutation = routes[route].responseMutation;
        if (mutation.length > 0) {
          const changed = codec.mutate(s.frame(), meta, mutation);
          if (changed != null) s.replaceFrame(changed);
          else this.stats.inc(this.stats.mutationFailed);
        }
      }
    }
    return s.finish(this.finishMode(s, mode, end, "response"));
  }

  // ---- shared ----

  /**
   * Cuts the next frame of `s` and decodes it into `meta`: its size, NEED_MORE at the end of the
   * read's whole frames, or FRAME_ERROR after a bad frame (dropped from the output and reported).
   */
  private decodeNext(s: FrameStream, codec: Codec, what: string): i32 {
    const n = s.next(codec, this.cfg.maxFrameBytes);
    if (n == NEED_MORE) return NEED_MORE;
    if (n != FRAME_ERROR) {
      this.meta.reset();
      if (codec.decode(s.frame(), this.meta)) return n;
      s.replaceFrame(null);
    }
    this.protocolError(codec, what);
    return FRAME_ERROR;
  }

  /** At end of stream a partial frame is forwarded as it is (never swallowed) and counted. */
  private finishMode(s: FrameStream, mode: Finish, end: bool, what: string): Finish {
    if (end && mode == Finish.Carry && s.remaining() > 0) {
      this.stats.inc(this.stats.truncated);
      abi.log(abi.LogLevel.Warn, this.tag() + "stream ended inside a " + what + " frame; forwarding its " + s.remaining().toString() + " bytes as they are");
      return Finish.Flush;
    }
    return mode;
  }

  /**
   * A frame the codec rejects: counted, logged, and the connection closed. Requests already
   * forwarded are still answered first; a bad response closes at once (its bytes are dropped).
   */
  private protocolError(codec: Codec, what: string): void {
    this.countBadFrame(codec);
    const message = codec.error;
    const why = "bad " + what + " frame: " + message;
    abi.log(abi.LogLevel.Warn, this.tag() + why + "; closing connection");
    if (what == "request" && this.state == State.Routed) {
      this.drain(why);
    } else {
      this.state = State.Closed;
      this.root.closeLater(this.id);
    }
  }

  private countBadFrame(codec: Codec): void {
    this.stats.inc(codec.oversize ? this.stats.frameTooLarge : this.stats.decodeError);
  }

  /** The first request cannot be routed: nothing was forwarded, so close at once. */
  private reject(codec: Codec): bool {
    this.countBadFrame(codec);
    const message = codec.error;
    abi.log(abi.LogLevel.Warn, this.tag() + "bad first request frame: " + message + "; closing connection");
    this.close();
    return false;
  }

  private close(): void {
    this.state = State.Closed;
    abi.closeDownstream();
  }

  /** While draining under a delay hold: keep the processed bytes, drop what came after. */
  private heldPart(size: i32): Uint8Array {
    if (this.heldBytes == 0) return new Uint8Array(0);
    return abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>min(this.heldBytes, size));
  }

  private accessLog(meta: Metadata, ms: u64): void {
    // The request's metadata: responses of some protocols (Dubbo) do not repeat it.
    abi.log(abi.LogLevel.Info, "meltemi access conn=" + this.id.toString() + " route=" + this.routeName() + " cluster=" + this.cluster + " id=" + meta.requestId.toString() + " " + this.inflight.note + " status=" + kindName(meta.kind) + " duration_ms=" + ms.toString());
  }

  private routeName(): string {
    const routes = this.cfg.table.routes;
    if (this.route < 0) return "-";
    return this.route < routes.length ? routes[this.route].name : DEFAULT_ROUTE_NAME;
  }

  private tag(): string {
    return "meltemi conn=" + this.id.toString() + ": ";
  }
}

/** `key=value` pairs of a frame's metadata, for logs. */
function describe(meta: Metadata): string {
  let s = "";
  for (let i = 0; i < meta.keys.length; i++) {
    if (i > 0) s += " ";
    s += meta.keys[i] + "=" + meta.values[i];
  }
  return s;
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
