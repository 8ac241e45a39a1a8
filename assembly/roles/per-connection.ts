// Per-connection routing: the whole client connection goes to the cluster its first request
// picks. tcp_proxy opens one upstream per client connection and proxy-wasm cannot open connections
// of its own, so the filter holds the connection until the first request frame is complete, picks
// the route from it, tells tcp_proxy the cluster through filter state, and lets tcp_proxy start
// (it needs max_early_data_bytes to accept the bytes read meanwhile). Later requests are counted
// against the connection's route; one that would match another route follows the config's
// mismatchPolicy. Policies, mutation and correlation are the Exchange's.
import * as abi from "../host/abi";
import { PluginRoot } from "../root";
import { NoRoutePolicy } from "../route/config";
import { pickDestination } from "../route/pick";
import { Stats } from "../stats";
import { Codec, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { Metadata, MessageKind } from "../core/metadata";
import { parseIp } from "../policy/cidr";
import { Exchange, Fate, Stop, NS_PER_MS, describe } from "../engine/exchange";
import { Role, TimerKind } from "./role";

const enum State {
  /** Paused until the first request frame picks the route. */
  AwaitingFirst = 0,
  Routed = 1,
  /** Nothing more is forwarded; the connection closes once forwarded requests are answered. */
  Draining = 2,
  /** Nothing more passes in either direction; the close is on its way. */
  Closed = 3,
  /** Outside the config's scope: every byte passes untouched, nothing is decoded or counted. */
  Bypassed = 4,
}

/** A draining connection whose answers do not come back is closed after this long. */
const DRAIN_TIMEOUT_MS: u32 = 10000;
const TCP_PROXY_CLUSTER = "envoy.tcp_proxy.cluster";
const EMPTY = new Uint8Array(0);

export class PerConnection extends Role {
  private state: State = State.AwaitingFirst;
  private readonly ex: Exchange;
  private readonly stats: Stats;
  /**
   * Decodes the frames that pick the route (possibly more than once, as reads add up), so that
   * the exchange's codec still decodes every request exactly once (codecs may number them).
   */
  private readonly router: Codec;
  /** Bytes at the start of Envoy's buffer already processed and held by an injected delay. */
  private heldBytes: i32 = 0;
  private timeoutCheckPending: bool = false;
  /**
   * Pass-through (see skipFrames): bytes of a frame already decided on from its prefix that
   * are still to come, per direction.
   */
  private downSkip: i32 = 0;
  private upSkip: i32 = 0;

  constructor(id: u32, private readonly root: PluginRoot) {
    super(id);
    const ex = new Exchange(id, root);
    const cfg = root.config!;
    this.ex = ex;
    this.stats = ex.stats;
    this.router = cfg.codec!.create(cfg.codecOptions);
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
    const scope = this.ex.cfg.scope;
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
    this.upstreamData(size, end);
    this.stats.flush();
    return abi.FilterStatus.Continue;
  }

  onDelete(): void {
    const n = this.ex.inflight.size;
    if (n > 0) this.stats.add(this.stats.activeRequests, -n);
    this.stats.flush();
    this.root.forget(this.id);
  }

  onTimer(kind: TimerKind, now: u64): void {
    if (kind == TimerKind.Resume) this.resume(now);
    else if (kind == TimerKind.Timeout) this.checkTimeouts(now);
  }

  private downstreamData(size: i32, end: bool): abi.FilterStatus {
    const ex = this.ex;
    if (this.state == State.Closed || this.state == State.Draining) {
      if (size > this.heldBytes) abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, this.heldPart(size));
      return ex.holdUntil != 0 ? abi.FilterStatus.StopIteration : abi.FilterStatus.Continue;
    }
    this.stats.memory();
    let from = 0;
    if (this.state == State.Routed && (this.downSkip > 0 || this.canSkip(true))) {
      from = this.skipFrames(true, size, end);
      if (from < 0) return this.afterRequests();
    }
    const all = abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>size);
    if (this.state == State.AwaitingFirst) {
      if (!this.routeFirstRequest(all, end)) return abi.FilterStatus.StopIteration;
    }
    // While an injected delay holds the read side, Envoy's buffer starts with bytes this filter
    // has already processed (as do bytes skipFrames passed); only what follows them is new.
    const held = this.heldBytes + from;
    const fresh = held > 0 ? all.subarray(held) : all;
    const out = ex.forwardRequests(fresh, end);
    let length = size;
    if (out != null) {
      const replacement = held > 0 ? join(all.subarray(0, held), out) : out;
      abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, replacement);
      length = replacement.length;
    }
    if (ex.holdUntil != 0) {
      this.heldBytes = length;
      this.root.schedule(this.id, <u32>((ex.holdUntil - abi.nowNanos()) / NS_PER_MS) + 1, TimerKind.Resume);
    }
    return this.afterRequests();
  }

  /** Acts on what the exchange asked for after requests were handled. */
  private afterRequests(): abi.FilterStatus {
    const ex = this.ex;
    this.obeyStop();
    const timeoutMs = ex.routeTimeoutMs();
    if (timeoutMs > 0 && ex.inflight.size > 0 && !this.timeoutCheckPending) this.watchTimeout(timeoutMs);
    return ex.holdUntil != 0 ? abi.FilterStatus.StopIteration : abi.FilterStatus.Continue;
  }

  private upstreamData(size: i32, end: bool): void {
    const ex = this.ex;
    // Once closing, nothing more reaches the client: after a refused reply, the bytes that follow
    // are the rest of that reply (a stored value, a payload) and would parse as replies.
    if (this.state == State.Closed) {
      if (size > 0) abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, EMPTY);
      return;
    }
    this.stats.memory();
    let from = 0;
    if (this.upSkip > 0 || this.canSkip(false)) from = this.skipFrames(false, size, end);
    if (from >= 0) {
      const chunk = abi.getDataBuffer(abi.BufferType.UpstreamData, 0, <u32>size);
      const out = ex.forwardResponses(from > 0 ? chunk.subarray(from) : chunk, end);
      if (out != null) abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, from > 0 ? join(chunk.subarray(0, from), out) : out);
    }
    this.obeyStop();
    if (this.state == State.Draining && ex.inflight.size == 0) {
      // Closing now would drop the answers being written: close from the next tick.
      this.state = State.Closed;
      this.root.closeLater(this.id);
    }
  }

  /** Drains or closes when the exchange asked to (it has logged why). */
  private obeyStop(): void {
    const ex = this.ex;
    const stop = ex.stop;
    if (stop == Stop.None) return;
    ex.stop = Stop.None;
    if (stop == Stop.Drain && this.state == State.Routed) {
      this.state = State.Draining;
      this.root.closeLater(this.id, ex.inflight.size == 0 ? 0 : DRAIN_TIMEOUT_MS);
    } else if (this.state != State.Closed) {
      this.state = State.Closed;
      this.root.closeLater(this.id);
    }
  }

  /** Timer: an injected delay is over; hand the held bytes to tcp_proxy. */
  private resume(now: u64): void {
    const ex = this.ex;
    if (ex.holdUntil == 0) return;
    if (now < ex.holdUntil) {
      this.root.schedule(this.id, <u32>((ex.holdUntil - now) / NS_PER_MS) + 1, TimerKind.Resume);
      return;
    }
    ex.holdUntil = 0;
    this.heldBytes = 0;
    abi.continueDownstream();
  }

  /** Timer: closes the connection when its oldest request has waited past the route's timeout. */
  private checkTimeouts(now: u64): void {
    const ex = this.ex;
    this.timeoutCheckPending = false;
    const timeoutMs = ex.routeTimeoutMs();
    if (timeoutMs == 0 || ex.inflight.size == 0 || this.state == State.Closed) return;
    const due = ex.inflight.oldestStart() + <u64>timeoutMs * NS_PER_MS;
    if (now >= due) {
      this.stats.inc(this.stats.timeout);
      abi.log(abi.LogLevel.Warn, ex.tag() + "request timed out after " + timeoutMs.toString() + " ms on route " + ex.routeName() + "; closing connection with " + ex.inflight.size.toString() + " requests in flight");
      this.state = State.Closed;
      abi.closeDownstream();
      return;
    }
    this.watchTimeout(<u32>((due - now) / NS_PER_MS) + 1);
  }

  private watchTimeout(ms: u32): void {
    this.timeoutCheckPending = true;
    this.root.schedule(this.id, ms, TimerKind.Timeout);
  }

  // ---- first request: pick the route ----

  /** True once the route is set; false to keep the connection paused (or when it was closed). */
  private routeFirstRequest(chunk: Uint8Array, end: bool): bool {
    const codec = this.router;
    const meta = this.ex.meta;
    const maxFrame = this.ex.cfg.maxFrameBytes;
    let pos = 0;
    while (pos < chunk.length) {
      const rest = chunk.subarray(pos);
      const size = codec.frameSize(rest, maxFrame);
      if (size == FRAME_ERROR) return this.reject();
      if (size == NEED_MORE || size > rest.length) break;
      meta.reset();
      if (!codec.decode(rest.subarray(0, size), meta)) return this.reject();
      if (meta.isRoutable()) return this.pickRoute(meta);
      pos += size;
    }
    if (end) {
      this.stats.inc(this.stats.truncated);
      abi.log(abi.LogLevel.Warn, this.ex.tag() + "client closed before a complete first request (" + chunk.length.toString() + " bytes)");
      this.close();
    }
    return false;
  }

  private pickRoute(meta: Metadata): bool {
    const ex = this.ex;
    const cfg = ex.cfg;
    const table = cfg.table;
    const route = table.find(meta);
    if (route < 0) {
      this.stats.inc(this.stats.noRoute);
      if (cfg.noRoute == NoRoutePolicy.Reject) {
        abi.log(abi.LogLevel.Info, ex.tag() + "no route for " + describe(meta) + "; closing");
        this.close();
        return false;
      }
      ex.route = table.routes.length;
      ex.cluster = cfg.defaultCluster;
    } else {
      const r = table.routes[route];
      ex.route = route;
      ex.cluster = r.destinations[pickDestination(r, this.root.rng.next())].cluster;
    }
    if (!abi.setEnvoyFilterState(TCP_PROXY_CLUSTER, ex.cluster, abi.FilterStateSpan.DownstreamConnection)) {
      abi.log(abi.LogLevel.Error, ex.tag() + "Envoy refused filter state " + TCP_PROXY_CLUSTER + "=" + ex.cluster + "; closing");
      this.close();
      return false;
    }
    this.stats.routeConnection(ex.route);
    this.state = State.Routed;
    return true;
  }

  /** The first request cannot be routed: nothing was forwarded, so close at once. */
  private reject(): bool {
    const codec = this.router;
    this.ex.countBadFrame(codec);
    abi.log(abi.LogLevel.Warn, this.ex.tag() + "bad first request frame: " + codec.error + "; closing connection");
    this.close();
    return false;
  }

  private close(): void {
    this.state = State.Closed;
    abi.closeDownstream();
  }

  /** While draining under a delay hold: keep the processed bytes, drop what came after. */
  private heldPart(size: i32): Uint8Array {
    if (this.heldBytes == 0) return EMPTY;
    return abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>min(this.heldBytes, size));
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
    const ex = this.ex;
    if (requests) {
      if (ex.down.carried() != 0 || this.heldBytes != 0 || ex.holdUntil != 0) return false;
      if (ex.requests.decodePrefix() <= 0) return false;
      const route = ex.currentRoute();
      return route == null || (route.requestMutation.length == 0 && route.authz == null && route.rateLimit == null && route.fault == null);
    }
    if (ex.up.carried() != 0 || ex.localReplies != 0 || ex.responses.decodePrefix() <= 0) return false;
    // A response that may be rewritten needs its whole frame.
    const route = ex.currentRoute();
    return route == null || route.responseMutation.length == 0;
  }

  /**
   * Passes the frames of one direction's read by their first bytes. -1 when all `size` bytes were
   * handled (the host buffer is forwarded as is), else the offset where the full path takes over.
   */
  private skipFrames(requests: bool, size: i32, end: bool): i32 {
    const ex = this.ex;
    const codec = requests ? ex.requests : ex.responses;
    const buffer = requests ? abi.BufferType.DownstreamData : abi.BufferType.UpstreamData;
    const meta = ex.meta;
    const prefix = codec.decodePrefix();
    let remaining = requests ? this.downSkip : this.upSkip;
    let pos = 0;
    // The bytes fetched last, from offset `at` of the read: small frames often fit several to a fetch.
    let head = EMPTY;
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
      const fs = codec.frameSize(bytes, ex.cfg.maxFrameBytes);
      if (fs <= 0) break;
      meta.reset();
      if (!codec.decode(bytes.length > fs ? bytes.subarray(0, fs) : bytes, meta)) break;
      if (requests) {
        if (ex.requestFate(meta) == Fate.Drain) break;
        if (meta.isRequest && meta.kind != MessageKind.Heartbeat && meta.expectsReply) ex.track(meta, abi.nowNanos(), null);
      } else {
        ex.settleResponse(meta);
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

  /** The stream ended inside a frame that was passing through: its bytes went as they were. */
  private endedInside(what: string, missing: i32): void {
    this.stats.inc(this.stats.truncated);
    abi.log(abi.LogLevel.Warn, this.ex.tag() + "stream ended inside a " + what + " frame; forwarded its bytes as they were (" + missing.toString() + " bytes missing)");
  }
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
