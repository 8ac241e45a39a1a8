// Per-request mode, server role: sits in front of a tcp_proxy to one real server (an Envoy
// internal listener the router's cluster points at) and turns each HTTP/1.1 request of Envoy's
// router back into the protocol: the body is the call's frame (see http/call-headers.ts), the
// answer is the server's reply frame as a 200 body.
//
//   router --HTTP/1.1, one call at a time--> [this role] --protocol--> tcp_proxy -> server
//
// The router sends one request at a time on a connection and waits for its answer, so each
// connection here carries one call at a time and ids never collide. The route the router chose
// comes in `x-meltemi-route`; the Exchange applies that route's policies (authorization, rate
// limit, fault, mutation), answers locally through the codec's probe, and counts per route, as
// in per-connection mode. Frames the server sends on its own (heartbeats, events) are dropped:
// they belong to no call. A connection whose first bytes are not an HTTP request (a client that
// speaks the protocol itself, as a mesh server's sidecar sees from clients outside the mesh)
// passes untouched.
import * as abi from "../host/abi";
import { PluginRoot } from "../root";
import { Stats } from "../stats";
import { Codec } from "../core/codec";
import { ByteWriter } from "../core/bytes";
import { Peer } from "../policy/authz";
import { Route } from "../route/match";
import { parseIp } from "../policy/cidr";
import { Exchange, Stop, NS_PER_MS } from "../engine/exchange";
import { H1RequestParser, writeResponse } from "../http/h1";
import { ROUTE_HEADER, CLUSTER_HEADER, PROBE_HEADER, PEER_HEADER, SESSION_HEADER, STATUS_HEADER } from "../http/call-headers";
import { statusName, NO_ANSWER } from "../engine/access-log";
import { base64Decode } from "../util/base64";
import { Role, TimerKind } from "./role";

const EMPTY = new Uint8Array(0);
/** The request headers translate() reads. */
const CALL_HEADERS: string[] = [ROUTE_HEADER, CLUSTER_HEADER, PEER_HEADER, PROBE_HEADER, SESSION_HEADER];
/** The peer of a call whose route's rules never read one. */
const NO_PEER = new Peer();
const NO_NAMES: string[] = [];
const STATUS_NAMES: string[] = [STATUS_HEADER];
const HTTP_START = "POST ";

const enum Classified { NeedMore = 0, Http = 1, Raw = 2 }

export class RequestServer extends Role {
  private readonly ex: Exchange;
  private readonly stats: Stats;
  private readonly http: H1RequestParser;
  /** Decodes the probe that ends a oneway call, for its correlation id. */
  private readonly probes: Codec;
  private readonly out: ByteWriter = new ByteWriter(1024);
  private readonly answer: ByteWriter = new ByteWriter(1024);
  /** An HTTP request is waiting for `owed` more replies. */
  private open: bool = false;
  private owed: i32 = 0;
  /** Bytes at the start of Envoy's buffer held by an injected delay. */
  private heldBytes: i32 = 0;
  private closed: bool = false;
  /** The connection carries the protocol itself, not HTTP from a router: nothing is touched. */
  private passThrough: bool = false;
  private sawRequest: bool = false;
  /** The session state (x-meltemi-session) this server connection carries, "" for none. */
  private session: string = "";
  /** The URI SAN of the connection's peer certificate, read once ("" without mTLS); null: not read yet. */
  private principal: string | null = null;

  constructor(id: u32, private readonly root: PluginRoot) {
    super(id);
    const ex = new Exchange(id, root);
    const cfg = root.config!;
    ex.checkMismatch = false;
    ex.dropUnsolicited = true;
    this.ex = ex;
    this.stats = ex.stats;
    // A oneway call's body is its frame plus the probe.
    const http = new H1RequestParser(cfg.maxFrameBytes + (64 << 10));
    // What translate() reads: Envoy's own headers (x-request-id, x-envoy-*, ...) cost no strings.
    http.keepOnly = CALL_HEADERS;
    this.http = http;
    this.probes = cfg.codec!.create(cfg.codecOptions);
  }

  onNewConnection(): abi.FilterStatus {
    return abi.FilterStatus.Continue;
  }

  onDownstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.passThrough) return abi.FilterStatus.Continue;
    if (!this.sawRequest) {
      const verdict = this.classify(size, end);
      if (verdict == Classified.NeedMore) return abi.FilterStatus.StopIteration;
      if (verdict == Classified.Raw) {
        // A client that speaks the protocol itself (no Meltemi client role in front of it, as a
        // mesh's server side sees from non-mesh clients): its bytes pass untouched.
        this.passThrough = true;
        abi.incrementMetric(this.stats.outOfScope, 1);
        return abi.FilterStatus.Continue;
      }
      this.sawRequest = true;
    }
    if (this.closed) {
      if (size > this.heldBytes) abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, EMPTY);
      return abi.FilterStatus.Continue;
    }
    this.stats.memory();
    const all = abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>size);
    const held = this.heldBytes;
    const out = this.out;
    out.clear();
    if (held > 0) out.bytes(all.subarray(0, held));
    this.http.push(held > 0 ? all.subarray(held) : all);
    while (!this.closed) {
      const got = this.http.next();
      if (got == 0) break;
      if (got < 0) {
        this.fail("bad HTTP request from the router: " + this.http.error);
        break;
      }
      if (this.open) {
        this.fail("a second HTTP request arrived before the first was answered");
        break;
      }
      this.translate(out);
    }
    abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, this.closed ? EMPTY : out.written());
    const ex = this.ex;
    this.obeyStop();
    if (!this.closed && ex.holdUntil != 0) {
      this.heldBytes = out.len;
      this.root.schedule(this.id, <u32>((ex.holdUntil - abi.nowNanos()) / NS_PER_MS) + 1, TimerKind.Resume);
      return abi.FilterStatus.StopIteration;
    }
    return abi.FilterStatus.Continue;
  }

  /**
   * Whether the connection's first bytes are an HTTP request from a router (every per-request
   * call is a POST) or the protocol itself. No protocol Meltemi carries starts with "POST "
   * (redis-server itself refuses a POST command as a cross-protocol attack).
   */
  private classify(size: i32, end: bool): Classified {
    const n = min(size, HTTP_START.length);
    const head = abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>n);
    for (let i = 0; i < head.length; i++) {
      if (<u32>head[i] != <u32>HTTP_START.charCodeAt(i)) return Classified.Raw;
    }
    if (head.length < HTTP_START.length) return end ? Classified.Raw : Classified.NeedMore;
    return Classified.Http;
  }

  private peerPrincipal(): string {
    const known = this.principal;
    if (known != null) return known;
    const san = abi.getPropertyString(["connection", "uri_san_peer_certificate"]);
    const p = san != null ? san : "";
    this.principal = p;
    return p;
  }

  /**
   * Who is calling, for a route whose authorization rules read it (parsed per call only then):
   * the client's address as the client role saw it, and the identity of the certificate this
   * connection was made with (under Istio, the client's sidecar over mTLS), never a header, which
   * a client could write.
   */
  private peerOf(route: Route | null, address: string | null): Peer {
    const authz = route != null ? route.authz : null;
    if (authz == null || !authz.needsPeer()) return NO_PEER;
    const peer = new Peer();
    if (address != null) peer.address = parseIp(address);
    const principal = this.peerPrincipal();
    if (principal.length > 0) peer.principals.push(principal);
    return peer;
  }

  /** Appends the frames of the request just parsed (after its route's policies) to `out`. */
  private translate(out: ByteWriter): void {
    const ex = this.ex;
    // The router reuses this connection for the calls of any client connection, each in its own
    // transport: the codecs detect it afresh per call (the reply comes in the call's transport).
    ex.requests.restartStream();
    ex.responses.restartStream();
    this.probes.restartStream();
    const cfg = ex.cfg;
    const headers = this.http.headers;
    const name = headers.get(ROUTE_HEADER);
    const index = name != null ? cfg.table.indexOf(name) : -1;
    const cluster = headers.get(CLUSTER_HEADER);
    ex.routeTo(index >= 0 ? index : cfg.table.routes.length, cluster != null ? cluster : "");
    const address = headers.get(PEER_HEADER);
    ex.gate.peer = this.peerOf(ex.currentRoute(), address);
    ex.log.clientAddress = address != null ? address : "";
    ex.lastAnswer = NO_ANSWER;
    const body = this.http.body;
    let probeBytes = 0;
    const probeHeader = headers.get(PROBE_HEADER);
    if (probeHeader != null) {
      probeBytes = I32.parseInt(probeHeader);
      if (probeBytes <= 0 || probeBytes > body.length) {
        this.fail(PROBE_HEADER + " " + probeHeader + " does not fit a body of " + body.length.toString() + " bytes");
        return;
      }
    }
    const frames = body.subarray(0, body.length - probeBytes);
    let owed = this.replaySession(headers.get(SESSION_HEADER), out);
    if (owed < 0) return;
    const before = ex.inflight.size;
    const forwarded = ex.forwardRequests(frames, false);
    if (ex.stop != Stop.None) return;
    if (ex.down.carried() > 0) {
      this.fail("the request body ends inside a frame");
      return;
    }
    out.bytes(forwarded != null ? forwarded : frames);
    owed += ex.inflight.size - before;
    if (probeBytes > 0) {
      const probe = body.subarray(body.length - probeBytes);
      const meta = ex.meta;
      meta.reset();
      const size = this.probes.frameSize(probe, cfg.maxFrameBytes);
      if (size != probeBytes || !this.probes.decode(probe, meta)) {
        this.fail("the oneway probe is not one frame: " + this.probes.error);
        return;
      }
      ex.expectSilently(meta);
      out.bytes(probe);
      owed++;
    }
    if (owed == 0) {
      this.fail("the request carries nothing the server answers");
      return;
    }
    this.open = true;
    this.owed = owed;
    this.answer.clear();
  }

  /**
   * Brings this server connection to the client connection's session state before its call: a
   * reset when it carries another state, then the frames that set the client's. Their answers
   * are swallowed. Returns how many answers that adds, or -1 (the connection is failing).
   */
  private replaySession(value: string | null, out: ByteWriter): i32 {
    const wanted = value != null ? value : "";
    if (wanted == this.session) return 0;
    const ex = this.ex;
    let owed = 0;
    if (this.session.length > 0) {
      const reset = ex.requests.sessionReset();
      if (reset == null) {
        this.fail("the codec cannot reset session state on a server connection");
        return -1;
      }
      owed += ex.forwardSilently(reset);
      out.bytes(reset);
    }
    if (wanted.length > 0) {
      const frames = base64Decode(wanted);
      const n = frames != null ? ex.forwardSilently(frames) : -1;
      if (n < 0) {
        this.fail(SESSION_HEADER + " does not hold whole frames");
        return -1;
      }
      owed += n;
      out.bytes(frames!);
    }
    this.session = wanted;
    return owed;
  }

  onUpstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.passThrough) return abi.FilterStatus.Continue;
    if (this.closed) {
      if (size > 0) abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, EMPTY);
      return abi.FilterStatus.Continue;
    }
    this.stats.memory();
    const ex = this.ex;
    const chunk = abi.getDataBuffer(abi.BufferType.UpstreamData, 0, <u32>size);
    const replies = ex.forwardResponses(chunk, false);
    let response = EMPTY;
    if (ex.stop == Stop.None && this.open) {
      this.answer.bytes(replies != null ? replies : chunk);
      this.owed -= ex.settled;
      if (this.owed <= 0) {
        this.open = false;
        const w = this.out;
        w.clear();
        // With the access log on, how the protocol answered, for Envoy's own access log of the call.
        const logged = ex.cfg.accessLog;
        writeResponse(w, 200, "OK", logged ? STATUS_NAMES : NO_NAMES, logged ? [this.callStatus()] : NO_NAMES, this.answer.written());
        response = w.written();
      }
    }
    abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, response);
    this.obeyStop();
    return abi.FilterStatus.Continue;
  }

  /** The call's status word for STATUS_HEADER: a call answered by nothing was oneway. */
  private callStatus(): string {
    const answer = this.ex.lastAnswer;
    return answer == NO_ANSWER ? "oneway" : statusName(answer);
  }

  onDelete(): void {
    this.ex.gone();
    this.root.forget(this.id);
  }

  onTimer(kind: TimerKind, now: u64): void {
    const ex = this.ex;
    if (kind != TimerKind.Resume || ex.holdUntil == 0) return;
    if (now < ex.holdUntil) {
      this.root.schedule(this.id, <u32>((ex.holdUntil - now) / NS_PER_MS) + 1, TimerKind.Resume);
      return;
    }
    ex.holdUntil = 0;
    this.heldBytes = 0;
    abi.continueDownstream();
  }

  /**
   * Closes this connection (the router sees a reset and answers the client role's call with
   * its own error): after a bad frame, or a request this role cannot carry.
   */
  private obeyStop(): void {
    const stop = this.ex.stop;
    if (stop == Stop.None) return;
    this.ex.stop = Stop.None;
    this.closeSoon();
  }

  private fail(why: string): void {
    this.stats.inc(this.stats.decodeError);
    abi.log(abi.LogLevel.Warn, this.ex.tag() + why + "; closing connection");
    this.closeSoon();
  }

  private closeSoon(): void {
    if (this.closed) return;
    this.closed = true;
    this.root.closeLater(this.id);
  }
}
