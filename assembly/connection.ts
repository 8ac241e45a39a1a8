// One client connection through the filter: thin glue between host callbacks and the pure core.
//
// Routing is per connection: tcp_proxy opens one upstream per client connection, and proxy-wasm
// cannot open connections of its own. So the filter holds the connection until the first request
// frame is complete, picks the route from it, tells tcp_proxy the cluster through filter state,
// and lets tcp_proxy start (it needs max_early_data_bytes to accept the bytes read meanwhile).
// Later requests are counted against the connection's route; one that would match another route
// follows the config's mismatchPolicy.
import * as abi from "./host/abi";
import { PluginRoot } from "./root";
import { FilterConfig, MismatchPolicy, NoRoutePolicy } from "./route/config";
import { pickDestination } from "./route/pick";
import { Stats } from "./stats";
import { Codec, NEED_MORE, FRAME_ERROR } from "./core/codec";
import { FrameStream, Finish } from "./core/stream";
import { Metadata, MessageKind, kindName } from "./core/metadata";
import { InFlight } from "./core/inflight";

const enum State {
  /** Paused until the first request frame picks the route. */
  AwaitingFirst = 0,
  Routed = 1,
  /** A request needed another route: nothing more is forwarded; close once answers are back. */
  Draining = 2,
  Closed = 3,
}

/** Bounds the memory a client can pin by pipelining requests without reading answers. */
const MAX_IN_FLIGHT: i32 = 65536;
/** A draining connection whose answers do not come back is closed after this long. */
const DRAIN_TIMEOUT_MS: u32 = 10000;
const TCP_PROXY_CLUSTER = "envoy.tcp_proxy.cluster";

export class Connection {
  private state: State = State.AwaitingFirst;
  private readonly cfg: FilterConfig;
  private readonly stats: Stats;
  private readonly requests: Codec;
  private readonly responses: Codec;
  private readonly down: FrameStream = new FrameStream();
  private readonly up: FrameStream = new FrameStream();
  private readonly meta: Metadata = new Metadata();
  private readonly inflight: InFlight = new InFlight(MAX_IN_FLIGHT);
  /** Index into the route table; routes.length stands for defaultCluster. */
  private route: i32 = -1;
  private cluster: string = "";

  constructor(public readonly id: u32, private readonly root: PluginRoot) {
    const cfg = root.config!;
    const factory = cfg.codec!;
    this.requests = factory.create(cfg.codecOptions);
    this.responses = factory.create(cfg.codecOptions);
    this.cfg = cfg;
    this.stats = root.stats!;
  }

  onNewConnection(): abi.FilterStatus {
    this.stats.inc(this.stats.connections);
    return abi.FilterStatus.StopIteration;
  }

  onDownstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.state == State.Closed || this.state == State.Draining) {
      if (size > 0) abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, new Uint8Array(0));
      return abi.FilterStatus.Continue;
    }
    const chunk = abi.getBuffer(abi.BufferType.DownstreamData, 0, <u32>size);
    if (this.state == State.AwaitingFirst) {
      const decided = this.routeFirstRequest(chunk, end);
      if (!decided) return abi.FilterStatus.StopIteration;
    }
    this.forwardRequests(chunk, size, end);
    return abi.FilterStatus.Continue;
  }

  onUpstreamData(size: i32, end: bool): abi.FilterStatus {
    // The write path cannot pause: always Continue, carrying partial frames in VM memory.
    if (this.state == State.Closed) return abi.FilterStatus.Continue;
    const chunk = abi.getBuffer(abi.BufferType.UpstreamData, 0, <u32>size);
    this.forwardResponses(chunk, size, end);
    return abi.FilterStatus.Continue;
  }

  onDelete(): void {
    const n = this.inflight.size;
    if (n > 0) this.stats.add(this.stats.activeRequests, -n);
    this.root.forget(this.id);
  }

  // ---- first request: pick the route ----

  /** True once the route is set; false to keep the connection paused (or when it was closed). */
  private routeFirstRequest(chunk: Uint8Array, end: bool): bool {
    const codec = this.requests;
    const meta = this.meta;
    let pos = 0;
    while (pos < chunk.length) {
      const rest = chunk.subarray(pos);
      const size = codec.frameSize(rest, this.cfg.maxFrameBytes);
      if (size == FRAME_ERROR) return this.reject(codec.error);
      if (size == NEED_MORE || size > rest.length) break;
      meta.reset();
      if (!codec.decode(rest.subarray(0, size), meta)) return this.reject(codec.error);
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
    return true;
  }

  // ---- requests: client to server ----

  private forwardRequests(chunk: Uint8Array, size: i32, end: bool): void {
    const s = this.down;
    const codec = this.requests;
    const meta = this.meta;
    const routes = this.cfg.table.routes;
    let mode = Finish.Carry;
    s.begin(chunk);
    while (true) {
      const n = s.next(codec, this.cfg.maxFrameBytes);
      if (n == NEED_MORE) break;
      if (n == FRAME_ERROR) {
        this.protocolError(codec.error, "request");
        mode = Finish.Discard;
        break;
      }
      meta.reset();
      if (!codec.decode(s.frame(), meta)) {
        s.replaceFrame(null);
        this.protocolError(codec.error, "request");
        mode = Finish.Discard;
        break;
      }
      if (!meta.isRequest) continue; // a heartbeat answer from the client: pass it on
      if (meta.kind == MessageKind.Heartbeat) {
        this.stats.inc(this.stats.heartbeat);
        continue;
      }
      const wanted = this.routeFor(meta);
      if (wanted != this.route) {
        this.stats.inc(this.stats.routeMismatch);
        if (this.cfg.mismatch == MismatchPolicy.Close) {
          s.replaceFrame(null);
          mode = Finish.Discard;
          this.drain("request " + describe(meta) + " needs another route than " + this.routeName());
          break;
        }
      }
      this.stats.message(this.route, false, meta.kind);
      if (meta.expectsReply) this.track(meta.requestId);
      if (this.route < routes.length) {
        const mutation = routes[this.route].requestMutation;
        if (mutation.length > 0) {
          const changed = codec.mutate(s.frame(), meta, mutation);
          if (changed != null) s.replaceFrame(changed);
          else this.stats.inc(this.stats.mutationFailed);
        }
      }
    }
    this.finish(s, mode, end, abi.BufferType.DownstreamData, size, "request");
  }

  /** The route `meta` would take on a fresh connection (routes.length for the default). */
  private routeFor(meta: Metadata): i32 {
    const r = this.cfg.table.find(meta);
    return r >= 0 ? r : this.cfg.table.routes.length;
  }

  private track(requestId: u64): void {
    if (this.inflight.add(requestId, this.route, 0)) {
      this.stats.add(this.stats.activeRequests, 1);
    } else {
      this.stats.inc(this.stats.untracked);
    }
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

  // ---- responses: server to client ----

  private forwardResponses(chunk: Uint8Array, size: i32, end: bool): void {
    const s = this.up;
    const codec = this.responses;
    const meta = this.meta;
    let mode = Finish.Carry;
    s.begin(chunk);
    while (true) {
      const n = s.next(codec, this.cfg.maxFrameBytes);
      if (n == NEED_MORE) break;
      if (n == FRAME_ERROR) {
        this.protocolError(codec.error, "response");
        mode = Finish.Discard;
        break;
      }
      meta.reset();
      if (!codec.decode(s.frame(), meta)) {
        s.replaceFrame(null);
        this.protocolError(codec.error, "response");
        mode = Finish.Discard;
        break;
      }
      if (meta.kind == MessageKind.Heartbeat) {
        this.stats.inc(this.stats.heartbeat);
        continue;
      }
      if (meta.isRequest) continue; // a server-initiated request: pass it on
      if (!this.inflight.take(meta.requestId)) {
        this.stats.inc(this.stats.unmatchedResponse);
        continue;
      }
      this.stats.add(this.stats.activeRequests, -1);
      this.stats.message(this.inflight.route, true, meta.kind);
      if (this.cfg.accessLog) this.accessLog(meta);
    }
    this.finish(s, mode, end, abi.BufferType.UpstreamData, size, "response");
    if (this.state == State.Draining && this.inflight.size == 0) {
      // Closing now would drop the answers being written: close from the next tick.
      this.state = State.Closed;
      this.root.closeLater(this.id);
    }
  }

  // ---- shared ----

  private finish(s: FrameStream, mode: Finish, end: bool, buffer: abi.BufferType, size: i32, what: string): void {
    if (end && mode == Finish.Carry && s.remaining() > 0) {
      this.stats.inc(this.stats.truncated);
      abi.log(abi.LogLevel.Warn, this.tag() + "stream ended inside a " + what + " frame; forwarding its " + s.remaining().toString() + " bytes as they are");
      mode = Finish.Flush;
    }
    const out = s.finish(mode);
    if (out != null) abi.setBuffer(buffer, 0, <u32>size, out);
  }

  /**
   * A frame the codec rejects: counted, logged, and the connection closed. Requests already
   * forwarded are still answered first; a bad response closes at once (its bytes are dropped).
   */
  private protocolError(message: string, what: string): void {
    const tooLarge = message.includes("exceeds maxFrameBytes");
    this.stats.inc(tooLarge ? this.stats.frameTooLarge : this.stats.decodeError);
    const why = "bad " + what + " frame: " + message;
    abi.log(abi.LogLevel.Warn, this.tag() + why + "; closing connection");
    if (what == "request" && this.state == State.Routed) {
      this.drain(why);
    } else {
      this.state = State.Closed;
      this.root.closeLater(this.id);
    }
  }

  /** The first request cannot be routed: nothing was forwarded, so close at once. */
  private reject(message: string): bool {
    const tooLarge = message.includes("exceeds maxFrameBytes");
    this.stats.inc(tooLarge ? this.stats.frameTooLarge : this.stats.decodeError);
    abi.log(abi.LogLevel.Warn, this.tag() + "bad first request frame: " + message + "; closing connection");
    this.close();
    return false;
  }

  private close(): void {
    this.state = State.Closed;
    abi.closeDownstream();
  }

  private accessLog(meta: Metadata): void {
    abi.log(abi.LogLevel.Info, "meltemi access conn=" + this.id.toString() + " route=" + this.routeName() + " cluster=" + this.cluster + " id=" + meta.requestId.toString() + " " + describe(meta) + " status=" + kindName(meta.kind));
  }

  private routeName(): string {
    const routes = this.cfg.table.routes;
    if (this.route < 0) return "-";
    return this.route < routes.length ? routes[this.route].name : "_default";
  }

  private tag(): string {
    return "meltemi conn=" + this.id.toString() + ": ";
  }
}

/** `key=value` pairs of a request's metadata, for logs. */
function describe(meta: Metadata): string {
  let s = "";
  for (let i = 0; i < meta.keys.length; i++) {
    if (i > 0) s += " ";
    s += meta.keys[i] + "=" + meta.values[i];
  }
  return s;
}
