// The request/response engine of one connection, shared by every role that forwards a protocol's
// frames to a server: cut each direction into frames, apply the route's policies to each request
// (authorization, rate limit, fault), mutate, answer locally through the codec's probe, pair each
// response with its request, and count and log it all. It knows nothing of how the route was
// chosen or of the host's buffers: a role hands it bytes and gets back the bytes to send instead,
// then reads `stop` to learn whether the connection must drain or close. What authorization and
// rate limits decide is engine/gate.ts; writing access lines, engine/access-logger.ts.
//
// Local replies: a network filter cannot write to the client by itself. A request that a policy
// rejects is replaced by the codec's local-reply probe (same correlation id), and the server's
// answer to the probe is replaced by the codec's error reply on the way back.
import * as abi from "../host/abi";
import { PluginRoot } from "../root";
import { FilterConfig, MismatchPolicy, DEFAULT_ROUTE_NAME } from "../route/config";
import { Route } from "../route/match";
import { Stats } from "../stats";
import { Codec, ErrorCode, CallScope, BatchAnswer, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { FrameStream, Finish } from "../core/stream";
import { Metadata, MessageKind, kindName } from "../core/metadata";
import { InFlight, Pending } from "../core/inflight";
import { rolls } from "../policy/fault";
import { connectionLabel } from "./conn-label";
import { LOCAL_REPLY, NO_ANSWER } from "./access-log";
import { AccessLogger } from "./access-logger";
import { PolicyGate, Refusal, NS_PER_MS } from "./gate";

export { NS_PER_MS } from "./gate";

/** What becomes of one frame (see requestFate, settleResponse). */
export const enum Fate { Pass = 0, Forward = 1, Drain = 2, Replace = 3 }

/** What the engine asks of its role after a call. */
export const enum Stop {
  None = 0,
  /** Forward nothing more; close once the requests already forwarded are answered. */
  Drain = 1,
  /** Close now: nothing more may pass in either direction. */
  Close = 2,
}

/** Bounds the memory a client can pin by pipelining requests without reading answers. */
const MAX_IN_FLIGHT: i32 = 65536;
/** The "local reply" of a request whose answer is dropped. */
const SWALLOWED = new Uint8Array(0);

export class Exchange {
  readonly cfg: FilterConfig;
  readonly stats: Stats;
  readonly requests: Codec;
  readonly responses: Codec;
  readonly down: FrameStream = new FrameStream();
  readonly up: FrameStream = new FrameStream();
  /** The frame being handled; reset before each decode. */
  readonly meta: Metadata = new Metadata();
  readonly inflight: InFlight = new InFlight(MAX_IN_FLIGHT);
  /** Index into the route table; routes.length stands for defaultCluster, -1 for none yet. */
  route: i32 = -1;
  cluster: string = "";
  /** What the route and cluster count on (Stats.target); set with them by routeTo(). */
  target: i32 = -1;
  /**
   * Per-connection routing only: a request whose own route differs from the connection's follows
   * the config's mismatchPolicy. Off where something else (Envoy's router) picked the route.
   */
  checkMismatch: bool = true;
  /** Set by a call that needs the role to drain or close, with the reason (already logged). */
  stop: Stop = Stop.None;
  /** While an injected delay holds the read side: when it ends (ns); 0 when nothing is held. */
  holdUntil: u64 = 0;
  /**
   * When the delays drawn by the requests of the last forwardRequests() call end (ns), 0 when
   * none of them was delayed. A role that holds each read for its own delay (per-connection)
   * reads this; holdUntil is the latest end over all calls.
   */
  callHoldUntil: u64 = 0;
  /** Inside a transaction (Redis MULTI), and whether a request of it was answered locally. */
  private inBatch: bool = false;
  private batchAborted: bool = false;
  /** Local replies waiting for their probe's answer. */
  localReplies: i32 = 0;
  /** Authorization and rate limits: what they decide of each request (engine/gate.ts). */
  readonly gate: PolicyGate;
  private op: i32 = -1;
  /** The connection's name in log lines (see conn-label.ts): unique in the Envoy process. */
  readonly label: string;
  /** The size of the frame decodeNext() cut last, for the access log. */
  frameBytes: i32 = 0;
  /** The access lines of this connection (with the access log on). */
  readonly log: AccessLogger;
  /** How the last answered request was answered: a MessageKind, LOCAL_REPLY or NO_ANSWER (access-log.ts). */
  lastAnswer: i32 = NO_ANSWER;

  constructor(public readonly id: u32, private readonly root: PluginRoot) {
    const label = connectionLabel(id);
    this.label = label;
    const cfg = root.config!;
    const factory = cfg.codec!;
    this.cfg = cfg;
    this.gate = new PolicyGate(root, cfg);
    this.log = new AccessLogger(label, factory);
    this.stats = root.stats!;
    this.requests = factory.create(cfg.codecOptions);
    this.responses = factory.create(cfg.codecOptions);
    this.responses.readsResponses = true;
  }

  /** Sets the route (index; routes.length for the default) and cluster of what follows. */
  routeTo(route: i32, cluster: string): void {
    this.route = route;
    this.cluster = cluster;
    this.target = this.stats.target(route, cluster);
  }

  /** The connection went away: the requests it still owed answers for leave the gauge. */
  gone(): void {
    const n = this.inflight.size;
    if (n > 0) this.stats.inFlight(-n);
  }

  // ---- requests: client to server ----

  /** Cuts, checks and forwards the requests in `chunk`; returns the bytes to forward instead, or null. */
  forwardRequests(chunk: Uint8Array, end: bool): Uint8Array | null {
    const s = this.down;
    const meta = this.meta;
    const route = this.currentRoute();
    let mode = Finish.Carry;
    this.callHoldUntil = 0;
    s.begin(chunk);
    while (true) {
      const n = this.decodeNext(s, this.requests, true);
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
      if (!this.gate.withinServiceLimit(meta, abi.callbackNanos())) {
        this.stats.inc(this.stats.rateLimited);
        if (!this.replyLocally(s, meta, abi.callbackNanos(), ErrorCode.RateLimited, "meltemi: service rate limit exceeded")) {
          mode = Finish.Discard;
          break;
        }
        continue;
      }
      const scope = this.requests.callScope(meta);
      if (scope == CallScope.CommitBatch && this.batchAborted) {
        this.abortBatch(s, meta);
        continue;
      }
      if (route == null) {
        if (meta.expectsReply) this.track(meta, abi.callbackNanos(), null);
      } else if (!this.applyPolicies(route, s, meta)) {
        mode = Finish.Discard;
        break;
      }
      if (scope == CallScope.BeginBatch) this.inBatch = true;
      else if (scope == CallScope.CommitBatch || scope == CallScope.DiscardBatch) this.inBatch = this.batchAborted = false;
    }
    return s.finish(this.finishMode(s, mode, end, "request"));
  }

  /**
   * The commit of a transaction one of whose requests was answered locally: as Redis does with a
   * command it refuses to queue, nothing of it runs. The server drops it (the codec's discard in
   * place of the commit) and the client gets the protocol's abort answer.
   */
  private abortBatch(s: FrameStream, meta: Metadata): void {
    const discard = this.requests.batchDiscard();
    this.inBatch = this.batchAborted = false;
    if (discard == null) return;
    s.replaceFrame(discard);
    const now = abi.callbackNanos();
    const answer = this.requests.batchAnswer(BatchAnswer.Aborted);
    this.track(meta, now, answer);
    this.stats.inc(this.stats.localReply);
    // Answered here, so logged here, as replyLocally logs its answers.
    if (this.cfg.accessLog) this.logAccess(this.log.note(meta, this.frameBytes), this.route, now, "local_reply", 0, answer.length, "meltemi: transaction aborted: a command in it was refused");
  }

  /**
   * For frames passing by their first bytes: whether the current route's authorization and rate
   * limit let request `meta` through, taking its token when they do. False hands the frame to the
   * whole-frame path, whose applyPolicies refuses it the same way (a token is only ever taken when
   * one is there, so none is taken twice). Frames that are not requests are admitted.
   */
  admits(meta: Metadata): bool {
    if (!meta.isRequest || meta.kind == MessageKind.Heartbeat) return true;
    const route = this.currentRoute();
    return route == null || this.gate.refusal(route, meta, abi.callbackNanos()) == Refusal.None;
  }

  /**
   * Runs the route's policies on one request (authorization, rate limit, fault abort, delay) and
   * forwards it, a probe in its place, or nothing. False when the connection must stop here.
   */
  private applyPolicies(route: Route, s: FrameStream, meta: Metadata): bool {
    const now = abi.callbackNanos();
    const refused = this.gate.refusal(route, meta, now);
    if (refused == Refusal.Authorization) {
      this.stats.inc(this.stats.authzDenied);
      return this.replyLocally(s, meta, now, ErrorCode.Unauthorized, "meltemi: request denied by authorization rule " + route.authz!.ruleName(this.gate.deniedBy));
    }
    if (refused == Refusal.RateLimit) {
      this.stats.inc(this.stats.rateLimited);
      return this.replyLocally(s, meta, now, ErrorCode.RateLimited, "meltemi: rate limit exceeded on route " + route.name);
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
    const reply = codec.errorReply(meta, code, message);
    this.track(meta, now, reply);
    if (this.inBatch) this.batchAborted = true;
    this.stats.inc(this.stats.localReply);
    if (this.cfg.accessLog) this.logAccess(this.log.note(meta, this.frameBytes), this.route, now, "local_reply", 0, reply.length, message);
    return true;
  }

  /** Holds the request for `ms` from `now`: the role holds the bytes of this read (see callHoldUntil). */
  private holdFor(ms: u32, now: u64): void {
    const until = now + <u64>ms * NS_PER_MS;
    if (until > this.holdUntil) this.holdUntil = until;
    if (until > this.callHoldUntil) this.callHoldUntil = until;
  }

  /**
   * Counts a client frame and says what becomes of it: Pass (not a request to route: heartbeats
   * and answers go on as they are), Forward, or Drain (a request for another route under
   * mismatchPolicy close: nothing is counted, the caller stops forwarding here).
   */
  requestFate(meta: Metadata): Fate {
    if (!meta.isRequest) return Fate.Pass;
    if (meta.kind == MessageKind.Heartbeat) {
      this.countHeartbeat(false);
      return Fate.Pass;
    }
    if (this.checkMismatch && this.routeFor(meta) != this.route) {
      if (this.cfg.mismatch == MismatchPolicy.Close) return Fate.Drain;
      this.stats.inc(this.stats.routeMismatch);
    }
    this.stats.message(this.target, false, meta.kind);
    this.op = this.stats.operation(meta);
    this.stats.operationMessage(this.op, false, meta.kind);
    return Fate.Forward;
  }

  /** Records a forwarded request (reply: the local reply that replaces its answer, or null). */
  track(meta: Metadata, now: u64, reply: Uint8Array | null): void {
    // A request answered locally (or swallowed) is logged where it is answered, not from its entry.
    const note = this.cfg.accessLog && reply == null ? this.log.note(meta, this.frameBytes) : null;
    if (!this.inflight.add(meta.requestId, this.route, now, reply, note, this.op, this.target)) {
      this.stats.inc(this.stats.untracked);
      return;
    }
    if (reply != null) this.localReplies++;
    this.stats.inFlight(1);
  }

  /**
   * Tracks a request the role sent on its own behalf whose answer must not reach the client (the
   * probe that ends a oneway call's HTTP request in per-request mode): the answer is swallowed.
   */
  expectSilently(meta: Metadata): void {
    this.track(meta, abi.callbackNanos(), SWALLOWED);
  }

  /**
   * Decodes `frames` as requests the role sends on its own behalf (a session replay) and tracks
   * each one that expects an answer with its answer swallowed. Returns how many were tracked, or
   * -1 when the bytes are not whole frames. Goes through the request codec, so that codecs that
   * number frames (Redis) stay in step.
   */
  forwardSilently(frames: Uint8Array): i32 {
    const s = this.down;
    const meta = this.meta;
    let tracked = 0;
    let ok = true;
    s.begin(frames);
    while (true) {
      const n = s.next(this.requests, this.cfg.maxFrameBytes);
      if (n == NEED_MORE) break;
      meta.reset();
      if (n == FRAME_ERROR || !this.requests.decode(s.frame(), meta)) {
        ok = false;
        break;
      }
      if (meta.expectsReply) {
        this.expectSilently(meta);
        tracked++;
      }
    }
    if (s.remaining() > 0) ok = false;
    s.finish(Finish.Discard);
    return ok ? tracked : -1;
  }

  // ---- responses: server to client ----

  /**
   * Cuts and settles the responses in `chunk`; returns the bytes to send the client instead, or
   * null. `settled` counts the responses that answered a tracked request (forwarded or local).
   */
  forwardResponses(chunk: Uint8Array, end: bool): Uint8Array | null {
    const s = this.up;
    const codec = this.responses;
    const meta = this.meta;
    let mode = Finish.Carry;
    this.settled = 0;
    this.unsolicited = 0;
    s.begin(chunk);
    while (true) {
      const n = this.decodeNext(s, codec, false);
      if (n == NEED_MORE) break;
      if (n == FRAME_ERROR) {
        mode = Finish.Discard;
        break;
      }
      const pending = this.settleResponse(meta);
      if (pending == null) {
        this.unsolicited++;
        if (this.dropUnsolicited) s.replaceFrame(null);
        continue;
      }
      this.settled++;
      if (pending.reply != null) {
        s.replaceFrame(pending.reply);
        continue;
      }
      const routes = this.cfg.table.routes;
      if (pending.route >= 0 && pending.route < routes.length) {
        const mutation = routes[pending.route].responseMutation;
        if (mutation.length > 0) {
          const changed = codec.mutate(s.frame(), meta, mutation);
          if (changed != null) s.replaceFrame(changed);
          else this.stats.inc(this.stats.mutationFailed);
        }
      }
    }
    return s.finish(this.finishMode(s, mode, end, "response"));
  }

  /** Responses of the last forwardResponses() that answered a tracked request. */
  settled: i32 = 0;
  /** Server frames of the last forwardResponses() that answered nothing tracked (heartbeats, events). */
  unsolicited: i32 = 0;
  /** Drop server frames that answer nothing tracked instead of passing them on (server role). */
  dropUnsolicited: bool = false;

  /**
   * Pairs a server frame with its request and counts it: the request's entry (its `reply` set
   * when the request was answered locally), or null for a frame that answers nothing tracked.
   */
  settleResponse(meta: Metadata): Pending | null {
    if (meta.isRequest) {
      if (meta.kind == MessageKind.Heartbeat) this.countHeartbeat(true);
      return null;
    }
    const pending = this.inflight.take(meta.requestId);
    if (pending == null) {
      if (meta.kind == MessageKind.Heartbeat) this.countHeartbeat(true);
      else this.stats.inc(this.stats.unmatchedResponse);
      return null;
    }
    this.stats.inFlight(-1);
    if (pending.reply != null) {
      this.localReplies--;
      if (pending.reply !== SWALLOWED) this.lastAnswer = LOCAL_REPLY;
      return pending;
    }
    this.lastAnswer = <i32>meta.kind;
    this.stats.message(pending.target, true, meta.kind);
    this.stats.operationMessage(pending.op, true, meta.kind);
    const ms = (abi.callbackNanos() - pending.start) / NS_PER_MS;
    this.stats.latency(pending.target, ms);
    if (this.cfg.accessLog) this.logAccess(pending.note!, pending.route, pending.start, kindName(meta.kind), ms, this.frameBytes, null);
    return pending;
  }

  /**
   * A keep-alive frame: `heartbeat_total`, and the connection's requests_total{kind="heartbeat"}
   * (from the client) or responses_total{status="heartbeat"} (from the server: its answers and its
   * own keep-alives). Before a route is known (target -1) only the global counter moves.
   */
  private countHeartbeat(fromServer: bool): void {
    this.stats.inc(this.stats.heartbeat);
    this.stats.message(this.target, fromServer, MessageKind.Heartbeat);
  }

  // ---- shared ----

  /**
   * Cuts the next frame of `s` and decodes it into `meta`: its size, NEED_MORE at the end of the
   * read's whole frames, or FRAME_ERROR after a bad frame (dropped from the output and reported).
   */
  private decodeNext(s: FrameStream, codec: Codec, requests: bool): i32 {
    const n = s.next(codec, this.cfg.maxFrameBytes);
    if (n == NEED_MORE) return NEED_MORE;
    this.frameBytes = n;
    if (n != FRAME_ERROR) {
      this.meta.reset();
      if (codec.decode(s.frame(), this.meta)) return n;
      s.replaceFrame(null);
    }
    this.protocolError(codec, requests);
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
   * A frame the codec rejects: counted, logged, and the connection stopped. Requests already
   * forwarded are still answered first; a bad response closes at once (its bytes are dropped).
   */
  private protocolError(codec: Codec, requests: bool): void {
    this.countBadFrame(codec);
    const why = "bad " + (requests ? "request" : "response") + " frame: " + codec.error;
    abi.log(abi.LogLevel.Warn, this.tag() + why + "; closing connection");
    if (requests && this.route >= 0) this.drain(why);
    else this.stop = Stop.Close;
  }

  countBadFrame(codec: Codec): void {
    this.stats.inc(codec.oversize ? this.stats.frameTooLarge : this.stats.decodeError);
  }

  /** Asks the role to forward nothing more and close once the forwarded requests are answered. */
  drain(why: string): void {
    this.stop = Stop.Drain;
    abi.log(abi.LogLevel.Info, this.tag() + why + "; closing after " + this.inflight.size.toString() + " in-flight responses");
  }

  /** The route `meta` would take on a fresh connection (routes.length for the default). */
  routeFor(meta: Metadata): i32 {
    const r = this.cfg.table.find(meta);
    return r >= 0 ? r : this.cfg.table.routes.length;
  }

  currentRoute(): Route | null {
    const routes = this.cfg.table.routes;
    return this.route >= 0 && this.route < routes.length ? routes[this.route] : null;
  }

  routeTimeoutMs(): u32 {
    const r = this.currentRoute();
    return r != null ? r.timeoutMs : 0;
  }

  /** Writes one access line (access-log.ts): only called with the access log on. */
  private logAccess(request: Uint8Array, route: i32, start: u64, status: string, ms: u64, responseBytes: i32, reason: string | null): void {
    this.log.write(request, this.routeNameOf(route), this.cluster, <i64>(start / NS_PER_MS), status, ms, responseBytes, reason);
  }

  routeName(): string {
    return this.routeNameOf(this.route);
  }

  private routeNameOf(route: i32): string {
    const routes = this.cfg.table.routes;
    if (route < 0) return "-";
    return route < routes.length ? routes[route].name : DEFAULT_ROUTE_NAME;
  }

  tag(): string {
    return "meltemi conn=" + this.label + ": ";
  }
}

/** `key=value` pairs of a frame's metadata, for log lines about a connection (access lines are JSON). */
export function describe(meta: Metadata): string {
  // At most DESCRIBE_MAX characters: a log line, not a dump (and appending to a string copies it,
  // so thousands of THeader key/values would cost their square).
  let s = "";
  for (let i = 0; i < meta.keys.length && s.length < DESCRIBE_MAX; i++) {
    if (i > 0) s += " ";
    s += meta.keys[i] + "=" + meta.values[i];
  }
  return s.length > DESCRIBE_MAX ? s.substring(0, DESCRIBE_MAX) + "..." : s;
}

const DESCRIBE_MAX = 1024;
