// Per-connection routing: the whole client connection goes to the cluster its first request
// picks. tcp_proxy opens one upstream per client connection and proxy-wasm cannot open connections
// of its own, so the filter holds the connection until the first request frame is complete, picks
// the route from it, tells tcp_proxy the cluster through filter state, and lets tcp_proxy start
// (it needs max_early_data_bytes to accept the bytes read meanwhile). Later requests are counted
// against the connection's route; one that would match another route follows the config's
// mismatchPolicy. Policies, mutation and correlation are the Exchange's.
//
// Bytes the filter must keep back (an incomplete first request; requests held by an injected
// delay) are taken out of Envoy's buffer into VM memory, not left there: a filter that returns
// StopIteration with its bytes in Envoy's buffer makes Envoy stop reading the connection once the
// buffer reaches the listener's per_connection_buffer_limit_bytes (1 MiB by default), and a read
// side that stops reading never learns that the client closed. They go back into Envoy's buffer
// (proxy_set_buffer_bytes at start 0 prepends) when they may pass.
import * as abi from "../host/abi";
import { ByteWriter, Window, concatBytes } from "../core/bytes";
import { HoldQueue } from "../core/hold-queue";
import { PluginRoot } from "../root";
import { NoRoutePolicy } from "../route/config";
import { pickDestination } from "../route/pick";
import { Stats } from "../stats";
import { Codec, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { Metadata, MessageKind } from "../core/metadata";
import { connectionInScope } from "./in-scope";
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
/**
 * Requests held by injected delays take at most this much VM memory per connection; beyond it,
 * new bytes stay unread in Envoy's buffer (whose listener limit then pushes back on the client)
 * until a hold ends.
 */
const MAX_HELD_BYTES: i32 = 1 << 20;
const TCP_PROXY_CLUSTER = "envoy.tcp_proxy.cluster";
/**
 * Envoy's response flag NC (StreamInfo's NoClusterFound, bit 24 of `response.flags`): tcp_proxy
 * sets it when the cluster named in filter state is not one Envoy has, then closes the connection.
 */
const NO_CLUSTER_FOUND: u64 = 1 << 24;
const EMPTY = new Uint8Array(0);
/** Pass-through: the rest of a read up to this size is fetched at once, not frame prefix by prefix. */
const FETCH_WHOLE_READ: i32 = 2048;

export class PerConnection extends Role {
  private state: State = State.AwaitingFirst;
  private readonly ex: Exchange;
  private readonly stats: Stats;
  /**
   * Decodes the frames that pick the route (possibly more than once, as reads add up), so that
   * the exchange's codec still decodes every request exactly once (codecs may number them).
   */
  private readonly router: Codec;
  /** The first request's bytes so far, taken out of Envoy's buffer; null when none are carried. */
  private early: ByteWriter | null = null;
  /**
   * Request bytes held by injected delays (core/hold-queue.ts): each read that carries a delayed
   * request waits for its own delay, and a read behind it waits no longer than the read before it.
   */
  private readonly held: HoldQueue = new HoldQueue();
  /** Bytes in Envoy's buffer not processed yet, left there while `held` was full. */
  private unread: i32 = 0;
  /** The client ended its side of the stream. */
  private ended: bool = false;
  /** The server has sent something: tcp_proxy found the route's cluster. */
  private heardUpstream: bool = false;
  private timeoutCheckPending: bool = false;
  /**
   * Pass-through (see skipFrames): bytes of a frame already decided on from its prefix that
   * are still to come, per direction.
   */
  private downSkip: i32 = 0;
  private upSkip: i32 = 0;
  /** skipFrames: the first bytes of the frame at hand (no allocation per frame). */
  private readonly prefixView: Window = new Window();

  constructor(id: u32, private readonly root: PluginRoot) {
    super(id);
    const ex = new Exchange(id, root);
    const cfg = root.config!;
    this.ex = ex;
    this.stats = ex.stats;
    this.router = cfg.codec!.create(cfg.codecOptions);
    // Only this role hints: the per-request roles turn every key into a header for Envoy.
    ex.requests.readsOnly(root.keysRead);
  }

  onNewConnection(): abi.FilterStatus {
    // Counted directly: stats batched for a data callback would wait for the next one.
    if (!this.inScope()) {
      this.state = State.Bypassed;
      abi.incrementMetric(this.stats.outOfScope, 1);
      return abi.FilterStatus.Continue;
    }
    abi.incrementMetric(this.stats.connections, 1);
    const ms = this.ex.cfg.firstRequestTimeoutMs;
    if (ms > 0) this.root.schedule(this.id, ms, TimerKind.FirstRequest);
    return abi.FilterStatus.StopIteration;
  }

  /** Whether this connection is addressed to the routed service (see route/scope.ts). */
  private inScope(): bool {
    return connectionInScope(this.ex.cfg.scope);
  }

  onDownstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.state == State.Bypassed) return abi.FilterStatus.Continue;
    return this.downstreamData(size, end);
  }

  onUpstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.state == State.Bypassed) return abi.FilterStatus.Continue;
    this.upstreamData(size, end);
    return abi.FilterStatus.Continue;
  }

  onClose(): void {
    if (this.state == State.Bypassed || this.ex.route < 0 || this.heardUpstream) return;
    this.checkCluster();
  }

  onDelete(): void {
    this.ex.gone();
    this.root.forget(this.id);
  }

  /**
   * A routed connection closed before the server said anything: was it because Envoy has no such
   * cluster? A Wasm filter cannot list Envoy's clusters, so a config naming one Envoy lacks is
   * accepted; tcp_proxy then closes every connection of that route, counting only its own
   * downstream_cx_no_route. Its NC response flag, read once the connection has closed, tells.
   */
  private checkCluster(): void {
    const flags = abi.getProperty(["response", "flags"]);
    if (flags == null || flags.length != 8 || (load<u64>(flags.dataStart) & NO_CLUSTER_FOUND) == 0) return;
    const ex = this.ex;
    this.stats.inc(this.stats.noCluster);
    abi.log(abi.LogLevel.Warn, ex.tag() + "route " + ex.routeName() + " sends to cluster " + ex.cluster + ", which Envoy does not have; tcp_proxy closed the connection");
  }

  onTimer(kind: TimerKind, now: u64): void {
    if (kind == TimerKind.Resume) this.resume(now);
    else if (kind == TimerKind.Timeout) this.checkTimeouts(now);
    else if (kind == TimerKind.FirstRequest) this.firstRequestTimedOut();
  }

  private downstreamData(size: i32, end: bool): abi.FilterStatus {
    if (end) this.sawEnd();
    if (this.state == State.Closed || this.state == State.Draining) {
      // Nothing more is forwarded: what came is dropped (held requests still pass at their time).
      if (size > 0) abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, EMPTY);
      this.unread = 0;
      return this.holding() ? abi.FilterStatus.StopIteration : abi.FilterStatus.Continue;
    }
    this.stats.memory();
    if (this.state == State.AwaitingFirst) return this.awaitFirst(size, end);
    if (this.held.bytes >= MAX_HELD_BYTES) {
      this.unread = size;
      return abi.FilterStatus.StopIteration;
    }
    let from = 0;
    if (this.downSkip > 0 || this.canSkip(true)) {
      from = this.skipFrames(true, size, end);
      if (from < 0) return this.afterRequests();
    }
    const all = abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>size);
    return this.forward(all, size, from, true, end);
  }

  /**
   * Hands `input` to the exchange from offset `from` (bytes before it were passed by skipFrames)
   * and puts what it returns in place of the `size` bytes of Envoy's buffer, or into the hold
   * queue while an injected delay holds the connection. `inputIsHost`: `input` is exactly
   * Envoy's buffer (else it is carried bytes followed by Envoy's).
   */
  private forward(input: Uint8Array, size: i32, from: i32, inputIsHost: bool, end: bool): abi.FilterStatus {
    const ex = this.ex;
    const out = ex.forwardRequests(from > 0 ? input.subarray(from) : input, end);
    let bytes: Uint8Array | null = null;
    if (out != null) bytes = from > 0 ? concatBytes(input.subarray(0, from), out) : out;
    else if (!inputIsHost) bytes = input;
    if (ex.callHoldUntil != 0 || this.holding()) {
      // The exchange's output is a fresh copy; `input` may be the host scratch buffer: copied.
      this.hold(out != null ? bytes! : input.slice(), ex.callHoldUntil);
      if (size > 0) abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, EMPTY);
    } else if (bytes != null) {
      abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, bytes);
    }
    return this.afterRequests();
  }

  /** Acts on what the exchange asked for after requests were handled. */
  private afterRequests(): abi.FilterStatus {
    const ex = this.ex;
    this.obeyStop();
    const timeoutMs = ex.routeTimeoutMs();
    if (timeoutMs > 0 && ex.inflight.size > 0 && !this.timeoutCheckPending) this.watchTimeout(timeoutMs);
    return this.holding() ? abi.FilterStatus.StopIteration : abi.FilterStatus.Continue;
  }

  private upstreamData(size: i32, end: bool): void {
    const ex = this.ex;
    if (size > 0) this.heardUpstream = true;
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
      if (out != null) abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, from > 0 ? concatBytes(chunk.subarray(0, from), out) : out);
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

  // ---- injected delays: requests held in VM memory ----

  private holding(): bool {
    return this.held.length > 0;
  }

  /**
   * Queues processed request bytes. `until`: when the delays their requests drew end (0: none
   * was delayed); they never pass before the bytes queued ahead of them.
   */
  private hold(bytes: Uint8Array, until: u64): void {
    const at = this.held.push(bytes, until);
    if (at > this.ex.holdUntil) this.ex.holdUntil = at;
    if (this.ended) this.sawEnd();
    this.scheduleResume(abi.nowNanos());
  }

  /**
   * The client's end of stream. Envoy hands it to tcp_proxy with whatever is released next, so
   * nothing may be released after it: every held read now waits for the last one.
   */
  private sawEnd(): void {
    this.ended = true;
    this.held.holdAllUntilLast();
  }

  private scheduleResume(now: u64): void {
    const due = this.held.nextDue();
    this.root.schedule(this.id, due > now ? <u32>((due - now) / NS_PER_MS) + 1 : 0, TimerKind.Resume);
  }

  /** Timer: injected delays ended; hand the reads they held to tcp_proxy, in order. */
  private resume(now: u64): void {
    const ex = this.ex;
    if (!this.holding() || this.state == State.Closed) return;
    const n = this.held.dueCount(now);
    if (n == 0) {
      this.scheduleResume(now);
      return;
    }
    let release = this.held.take(n);
    if (this.unread > 0 && this.state == State.Routed) {
      // Read while the queue was full and left in Envoy's buffer: processed now, behind `release`.
      const size = this.unread;
      this.unread = 0;
      const chunk = abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>size);
      const out = ex.forwardRequests(chunk, this.ended);
      const bytes = out != null ? out : chunk.slice();
      abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, EMPTY);
      if (ex.callHoldUntil != 0 || this.holding()) this.hold(bytes, ex.callHoldUntil);
      else release = concatBytes(release, bytes);
      this.afterRequests();
    }
    if (this.holding()) this.scheduleResume(now);
    else ex.holdUntil = 0;
    abi.setBuffer(abi.BufferType.DownstreamData, 0, 0, release);
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

  /**
   * Before the route is picked: the bytes so far (carried ones, then Envoy's) either route the
   * connection, and are handed on with the rest of the read, or are taken into VM memory to wait
   * for more.
   */
  private awaitFirst(size: i32, end: bool): abi.FilterStatus {
    const chunk = abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>size);
    const early = this.early;
    let input = chunk;
    if (early != null) {
      early.bytes(chunk);
      input = early.buf.subarray(0, early.len);
    }
    if (!this.routeFirstRequest(input, end)) {
      if (this.state == State.AwaitingFirst && size > 0) {
        if (early == null) {
          const carry = new ByteWriter(max(size << 1, 4096));
          carry.bytes(chunk);
          this.early = carry;
        }
        abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, EMPTY);
      }
      return abi.FilterStatus.StopIteration;
    }
    this.early = null;
    this.root.cancel(this.id, TimerKind.FirstRequest);
    return this.forward(input, size, 0, early == null, end);
  }

  /** Timer: the first request did not come within firstRequestTimeoutMs. */
  private firstRequestTimedOut(): void {
    if (this.state != State.AwaitingFirst) return;
    const early = this.early;
    const got = early != null ? early.len : 0;
    this.stats.inc(this.stats.firstRequestTimeout);
    abi.log(abi.LogLevel.Info, this.ex.tag() + "no complete first request within firstRequestTimeoutMs " + this.ex.cfg.firstRequestTimeoutMs.toString() + " (" + got.toString() + " bytes received); closing connection");
    this.close();
  }

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
    // Codecs refuse a frame over maxFrame from its first bytes when they can; this bounds the
    // carried bytes whatever the codec: one incomplete frame, after at most maxFrame of frames
    // that route nothing (keep-alives).
    const rest = chunk.length - pos;
    if (rest > maxFrame || pos > maxFrame) {
      codec.frameTooLarge("first request still incomplete at " + chunk.length.toString() + " bytes, which", maxFrame);
      return this.reject();
    }
    if (end) {
      if (chunk.length == 0) {
        // A TCP health check or a port scan: not a broken client.
        this.stats.inc(this.stats.emptyConnection);
        abi.log(abi.LogLevel.Debug, this.ex.tag() + "client closed without sending a byte");
      } else {
        this.stats.inc(this.stats.truncated);
        abi.log(abi.LogLevel.Warn, this.ex.tag() + "client closed before a complete first request (" + chunk.length.toString() + " bytes)");
      }
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
      ex.routeTo(table.routes.length, cfg.defaultCluster);
    } else {
      const r = table.routes[route];
      ex.routeTo(route, r.destinations[pickDestination(r, this.root.rng.next())].cluster);
    }
    if (!abi.setEnvoyFilterState(TCP_PROXY_CLUSTER, ex.cluster, abi.FilterStateSpan.DownstreamConnection)) {
      abi.log(abi.LogLevel.Error, ex.tag() + "Envoy refused filter state " + TCP_PROXY_CLUSTER + "=" + ex.cluster + "; closing");
      this.close();
      return false;
    }
    this.stats.routeConnection(ex.target);
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
    this.early = null;
    abi.closeDownstream();
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
      if (ex.down.carried() != 0 || this.holding()) return false;
      if (ex.requests.decodePrefix() <= 0) return false;
      // A service-wide limit may answer any request locally: such frames need their whole bytes.
      if (ex.cfg.serviceRateLimit != null) return false;
      const route = ex.currentRoute();
      return route == null || route.passesByPrefix(true);
    }
    if (ex.up.carried() != 0 || ex.localReplies != 0 || ex.responses.decodePrefix() <= 0) return false;
    const route = ex.currentRoute();
    return route == null || route.passesByPrefix(false);
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
      // The rest of a small read in one fetch (a host call costs more than copying a few KiB),
      // else the frame's prefix.
      const want = size - pos <= FETCH_WHOLE_READ ? size - pos : prefix;
      if (pos + min(prefix, size - pos) > at + head.length) {
        head = abi.getDataBuffer(buffer, <u32>pos, <u32>want);
        at = pos;
      }
      // The frame's first bytes (at most its prefix), shown through one reused window.
      const shown = min(prefix, head.length - (pos - at));
      const bytes = this.prefixView.moveTo(head, pos - at, shown);
      const fs = codec.frameSize(bytes, ex.cfg.maxFrameBytes);
      if (fs <= 0) break;
      ex.frameBytes = fs;
      meta.reset();
      if (!codec.decode(shown > fs ? this.prefixView.moveTo(head, pos - at, fs) : bytes, meta)) break;
      if (requests) {
        // A request the route's policies would refuse is answered by the whole-frame path. Checked
        // before requestFate counts it, so that the whole path counts it once.
        if (!ex.admits(meta)) break;
        if (ex.requestFate(meta) == Fate.Drain) break;
        if (meta.isRequest && meta.kind != MessageKind.Heartbeat && meta.expectsReply) ex.track(meta, abi.callbackNanos(), null);
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
