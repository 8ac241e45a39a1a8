// Per-request mode, client role: sits in front of Envoy's http_connection_manager (codec HTTP/2)
// and turns each call of the client's connection into one HTTP/2 stream, so that Envoy's own
// router routes, balances, retries, mirrors and times out every call on its own.
//
//   client --protocol--> [this role] --HTTP/2--> HCM -> router -> (per call) a cluster whose
//   endpoints are the server role's internal listener, which speaks the protocol to the server.
//
// Toward HCM: the client preface and SETTINGS on the first bytes, then per call a HEADERS block
// (`:path /<service>/<method>` and every metadata key as a header, for the route table to match)
// and the frame as the body. From HCM: each stream's response; 200 carries the server's reply
// frame, anything else (Envoy's own local replies: no route, overflow, no healthy upstream,
// timeout) becomes the protocol's error reply for that call's id. The connection stays open.
//
// Writing: a network filter writes toward HCM only as the read buffer of this connection. This
// role keeps Envoy's pointer to that buffer by always returning StopIteration and hands HCM its
// bytes itself (continueDownstream), from the data callback or, when flow control or a local
// reply must wait, from a tick. It writes to the client only inside upstream callbacks, so a
// local reply (a keep-alive answer, a refused request) is released by a PING that HCM answers.
import * as abi from "../host/abi";
import { PluginRoot } from "../root";
import { FilterConfig } from "../route/config";
import { Stats } from "../stats";
import { Codec, CodecFactory, ErrorCode, CallScope, BatchAnswer, NEED_MORE, FRAME_ERROR } from "../core/codec";
import { FrameStream, Finish } from "../core/stream";
import { Metadata, MessageKind } from "../core/metadata";
import { ByteWriter, concatBytes } from "../core/bytes";
import { HeaderList } from "../http/headers";
import { HcmLink } from "./hcm-link";
import { callHeaders, errorFor, PROBE_HEADER, PEER_HEADER, SESSION_HEADER } from "../http/call-headers";
import { Role, TimerKind } from "./role";
import { connectionLabel } from "../engine/conn-label";
import { Call, Batch, Session, firstLine } from "./request-call";
import { connectionInScope } from "./in-scope";

const EMPTY = new Uint8Array(0);
/** The error of a call HCM's GOAWAY left untaken. */
const NOT_TAKEN = "meltemi: call not sent: the connection manager is going away";

export class RequestClient extends Role {
  private readonly cfg: FilterConfig;
  private readonly stats: Stats;
  private readonly factory: CodecFactory;
  private readonly codec: Codec;
  /** Decodes the replies, for per-operation counts only (a reply's bytes pass as they are). */
  private readonly replies: Codec;
  /** Measures replies inside one answer (a transaction's); never decodes, so it keeps no count. */
  private readonly cutter: Codec;
  private readonly frames: FrameStream = new FrameStream();
  private readonly meta: Metadata = new Metadata();
  /** The HTTP/2 connection toward HCM (hcm-link.ts). */
  private readonly link: HcmLink;
  private readonly headers: HeaderList = new HeaderList();
  private readonly toClient: ByteWriter = new ByteWriter(1024);
  /** Calls not yet answered to the client, in the order the client sent them. */
  private readonly calls: Call[] = [];
  /** Calls not yet wholly written to HCM, in order. */
  private readonly unsent: Call[] = [];
  private flushPending: bool = false;
  /** No new calls: a bad frame, GOAWAY or exhausted stream ids; close once all are answered. */
  private draining: bool = false;
  /** Why, as the error that answers the calls the client sends from then on. */
  private drainReason: string = "";
  /** The client's frames can no longer be cut (a bad one came): what follows is dropped. */
  private unreadable: bool = false;
  private closed: bool = false;
  /**
   * Outside the config's scope: another service's connection on a shared port (Istio applies the
   * WasmPlugin by port). Its bytes pass untouched to what follows on its own listener.
   */
  private bypassed: bool = false;
  private peerAddress: string | null = null;
  private batch: Batch | null = null;
  private readonly session: Session = new Session();

  constructor(id: u32, private readonly root: PluginRoot) {
    super(id);
    const cfg = root.config!;
    const factory = cfg.codec!;
    this.cfg = cfg;
    this.stats = root.stats!;
    this.factory = factory;
    this.codec = factory.create(cfg.codecOptions);
    const replies = factory.create(cfg.codecOptions);
    replies.readsResponses = true;
    this.replies = replies;
    const cutter = factory.create(cfg.codecOptions);
    cutter.readsResponses = true;
    this.cutter = cutter;
    // The server role bounds replies by maxFrameBytes; this bounds what Envoy itself may send.
    this.link = new HcmLink(cfg.maxFrameBytes + 65536);
  }

  onNewConnection(): abi.FilterStatus {
    if (!connectionInScope(this.cfg.scope)) {
      this.bypassed = true;
      abi.incrementMetric(this.stats.outOfScope, 1);
      return abi.FilterStatus.Continue;
    }
    abi.incrementMetric(this.stats.connections, 1);
    this.peerAddress = abi.getPropertyString(["source", "address"]);
    return abi.FilterStatus.Continue;
  }

  onDownstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.bypassed) return abi.FilterStatus.Continue;
    if (this.closed) {
      if (size > 0) abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, EMPTY);
      return abi.FilterStatus.StopIteration;
    }
    this.stats.memory();
    const chunk = abi.getDataBuffer(abi.BufferType.DownstreamData, 0, <u32>size);
    this.readCalls(chunk, end);
    this.pump();
    const out = this.takeToHcm();
    abi.setBuffer(abi.BufferType.DownstreamData, 0, <u32>size, out);
    if (out.length > 0) abi.continueDownstream();
    this.closeIfDone();
    // Always StopIteration: Envoy keeps the buffer pointer that later writes toward HCM need.
    return abi.FilterStatus.StopIteration;
  }

  onUpstreamData(size: i32, end: bool): abi.FilterStatus {
    if (this.bypassed) return abi.FilterStatus.Continue;
    if (this.closed) {
      if (size > 0) abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, EMPTY);
      return abi.FilterStatus.Continue;
    }
    this.stats.memory();
    const chunk = abi.getDataBuffer(abi.BufferType.UpstreamData, 0, <u32>size);
    this.readHcm(chunk);
    this.release();
    abi.setBuffer(abi.BufferType.UpstreamData, 0, <u32>size, this.takeToClient());
    if (this.link.out.len > 0 || (this.unsent.length > 0 && this.link.canSend(this.unsent))) this.flushSoon();
    this.closeIfDone();
    return abi.FilterStatus.Continue;
  }

  onDelete(): void {
    const n = this.calls.length;
    if (n > 0) this.stats.inFlight(-n);
    this.root.forget(this.id);
  }

  onTimer(kind: TimerKind, now: u64): void {
    if (kind != TimerKind.Flush || this.closed) return;
    this.flushPending = false;
    this.pump();
    const out = this.takeToHcm();
    if (out.length == 0) return;
    abi.setBuffer(abi.BufferType.DownstreamData, 0, 0, out);
    abi.continueDownstream();
  }

  // ---- client to HCM ----

  /** Cuts the client's frames into calls (or local answers); an incomplete frame is carried. */
  private readCalls(chunk: Uint8Array, end: bool): void {
    const s = this.frames;
    const codec = this.codec;
    const meta = this.meta;
    let mode = Finish.Carry;
    s.begin(chunk);
    while (!this.unreadable) {
      const n = s.next(codec, this.cfg.maxFrameBytes);
      if (n == NEED_MORE) break;
      if (n != FRAME_ERROR) {
        meta.reset();
        if (codec.decode(s.frame(), meta)) {
          this.take(s.frame(), meta);
          continue;
        }
      }
      this.stats.inc(codec.oversize ? this.stats.frameTooLarge : this.stats.decodeError);
      this.unreadable = true;
      this.stopTaking("bad request frame: " + codec.error);
      mode = Finish.Discard;
      break;
    }
    if (this.unreadable) mode = Finish.Discard;
    if (end && mode == Finish.Carry && s.remaining() > 0) {
      this.stats.inc(this.stats.truncated);
      abi.log(abi.LogLevel.Warn, this.tag() + "client closed inside a request frame (" + s.remaining().toString() + " bytes); dropped");
      mode = Finish.Discard;
    }
    s.finish(mode);
  }

  /** Turns one client frame into a call, a local answer, or nothing. */
  private take(frame: Uint8Array, meta: Metadata): void {
    const codec = this.codec;
    if (!meta.isRequest) {
      // Frames the server answers nothing to (Redis blank lines) need no stream.
      if (meta.kind != MessageKind.Heartbeat) this.stats.inc(this.stats.unmatchedResponse);
      return;
    }
    if (meta.kind == MessageKind.Heartbeat) {
      this.stats.inc(this.stats.heartbeat);
      const answer = codec.keepAliveReply(meta);
      if (answer != null) this.answerLocally(meta, answer);
      return;
    }
    if (this.draining) {
      this.notSent(meta);
      return;
    }
    const scope = codec.callScope(meta);
    const refusal = codec.perRequestRefusal(meta);
    if (this.batch != null) {
      this.takeInBatch(frame, meta, scope, refusal);
      return;
    }
    if (refusal != null) {
      this.refuse(meta, refusal);
      return;
    }
    if (scope == CallScope.BeginBatch) {
      this.batch = new Batch(frame.slice());
      this.answerLocally(meta, codec.batchAnswer(BatchAnswer.Ok));
      return;
    }
    const change = scope == CallScope.Session ? this.session.propose(codec.sessionSlot(meta), frame) : null;
    const call = this.send(meta, frame, false);
    if (change != null) {
      if (call != null) call.session = change;
      else this.session.settle(change, false);
    }
  }

  /** Inside MULTI: queue the call (answered +QUEUED here), commit, discard, or abort on a refusal. */
  private takeInBatch(frame: Uint8Array, meta: Metadata, scope: CallScope, refusal: string | null): void {
    const codec = this.codec;
    const batch = this.batch!;
    if (scope == CallScope.DiscardBatch) {
      this.batch = null;
      this.answerLocally(meta, codec.batchAnswer(BatchAnswer.Ok));
      return;
    }
    if (scope == CallScope.CommitBatch) {
      this.batch = null;
      if (batch.aborted) {
        this.answerLocally(meta, codec.batchAnswer(BatchAnswer.Aborted));
        return;
      }
      // MULTI, the queued calls and EXEC in one request, routed as the first queued call; the
      // client was already answered for all but EXEC.
      batch.frames.bytes(frame);
      const first = batch.first;
      this.send(first != null ? first : meta, batch.frames.toBytes(), true, meta);
      return;
    }
    if (scope == CallScope.BeginBatch) {
      this.answerLocally(meta, codec.errorReply(meta, ErrorCode.BadRequest, "MULTI calls can not be nested"));
      return;
    }
    if (refusal == null && scope == CallScope.Session) refusal = "meltemi: connection state cannot change inside MULTI in per-request mode";
    if (refusal != null) {
      // As Redis does with a command it cannot queue: the transaction is aborted at EXEC.
      batch.aborted = true;
      this.refuse(meta, refusal);
      return;
    }
    if (batch.first == null) batch.first = meta.clone();
    batch.frames.bytes(frame);
    this.answerLocally(meta, codec.batchAnswer(BatchAnswer.Queued));
  }

  /**
   * A call that came after the role stopped taking calls (HCM's GOAWAY, stream ids exhausted):
   * answered at once with the unavailable error, so the client knows it did not run rather than
   * learning nothing until the connection closes. A oneway call has nobody to tell.
   */
  private notSent(meta: Metadata): void {
    if (!meta.expectsReply) {
      this.stats.inc(this.stats.onewayDropped);
      return;
    }
    this.answerLocally(meta, this.codec.errorReply(meta, ErrorCode.Unavailable, "meltemi: call not sent: " + this.drainReason));
  }

  private refuse(meta: Metadata, reason: string): void {
    this.stats.inc(this.stats.refused);
    if (meta.expectsReply) this.answerLocally(meta, this.codec.errorReply(meta, ErrorCode.BadRequest, reason));
  }

  /**
   * Queues a call: `frame` is its body, `meta` routes it (headers), `replyMeta` (when another)
   * is what an error reply answers. `keepLast`: the server's answer holds several replies of
   * which the client wants only the last (a transaction's EXEC). Returns the call, or null when
   * none could be sent.
   */
  private send(meta: Metadata, frame: Uint8Array, keepLast: bool, replyMeta: Metadata | null = null): Call | null {
    const codec = this.codec;
    const op = this.stats.operation(meta);
    this.stats.operationMessage(op, false, meta.kind);
    // A oneway call gets no answer, so its HTTP request would never end: the server role sends
    // the probe after it, and the probe's answer (swallowed there) ends the stream.
    let body = frame.slice();
    let probeLength = 0;
    if (!meta.expectsReply) {
      const probe = codec.localReplyProbe(meta);
      if (probe == null) {
        this.stats.inc(this.stats.refused);
        abi.log(abi.LogLevel.Warn, this.tag() + "oneway call dropped: codec " + this.factory.name() + " has no probe to end its stream");
        return null;
      }
      body = concatBytes(frame, probe);
      probeLength = probe.length;
    }
    const names = this.headers.names;
    const values = this.headers.values;
    this.headers.clear();
    callHeaders(this.factory, meta, body.length, names, values);
    if (probeLength > 0) {
      names.push(PROBE_HEADER);
      values.push(probeLength.toString());
    }
    const peer = this.peerAddress;
    if (peer != null) {
      names.push(PEER_HEADER);
      values.push(peer);
    }
    if (this.session.value.length > 0) {
      names.push(SESSION_HEADER);
      values.push(this.session.value);
    }
    const call = new Call((replyMeta != null ? replyMeta : meta).clone(), this.link.encodeHead(names, values), body, op);
    call.keepLast = keepLast;
    this.calls.push(call);
    this.unsent.push(call);
    this.stats.inFlight(1);
    return call;
  }

  /** Queues `answer` for the client in the call order and asks HCM for a chance to write it. */
  private answerLocally(meta: Metadata, answer: Uint8Array): void {
    const call = new Call(meta.clone(), EMPTY, EMPTY, -1);
    call.headSent = true;
    call.out = answer;
    this.calls.push(call);
    this.stats.inFlight(1);
    this.stats.inc(this.stats.localReply);
    this.link.ping(<u64>this.id);
  }

  /** Writes what HCM's stream limit and windows let through of the unsent calls, in order. */
  private pump(): void {
    if (!this.link.pump(this.unsent)) this.stopTaking("stream ids exhausted");
  }

  // ---- HCM to client ----

  /** HCM's frames: ended calls get their bytes for the client (released in order by release()). */
  private readHcm(chunk: Uint8Array): void {
    const link = this.link;
    link.read(chunk);
    if (link.goingAway) {
      this.stopTaking("the connection manager is going away" + (link.goawayReason.length > 0 ? " (" + link.goawayReason + ")" : ""));
      // After a drain's final GOAWAY, calls still waiting for a stream will never get one.
      if (!link.takesNewStreams) link.endUnstarted(this.unsent);
    }
    const ended = link.ended;
    for (let i = 0; i < ended.length; i++) this.complete(ended[i]);
    ended.length = 0;
    if (link.error.length > 0) {
      this.stats.inc(this.stats.decodeError);
      abi.log(abi.LogLevel.Error, this.tag() + link.error + "; closing connection");
      this.closeNow();
    }
  }

  /** A stream ended: the client's bytes for it are settled (released in order by release()). */
  private complete(call: Call): void {
    // Answered before all of it was written (Envoy refused it early): write no more of it.
    if (call.sent < call.body.length) {
      const i = this.unsent.indexOf(call);
      if (i >= 0) this.unsent.splice(i, 1);
    }
    const meta = call.meta;
    const answer = call.answer;
    // The call's own writer, never written again: its bytes serve without a copy.
    const body = answer != null ? answer.written() : EMPTY;
    if (call.notTaken) {
      // Above the GOAWAY's last stream id (HCM got it but did not process it), or never sent.
      this.stats.inc(call.stream != 0 ? this.stats.upstreamReset : call.oneway ? this.stats.onewayDropped : this.stats.localReply);
      call.out = call.oneway ? EMPTY : this.codec.errorReply(meta, ErrorCode.Unavailable, NOT_TAKEN);
    } else if (call.tooLarge) {
      this.stats.inc(this.stats.upstreamError);
      call.out = call.oneway ? EMPTY : this.codec.errorReply(meta, ErrorCode.Unavailable, "meltemi: the reply exceeds " + this.cfg.maxFrameBytes.toString() + " bytes (maxFrameBytes)");
    } else if (call.reset) {
      this.stats.inc(this.stats.upstreamReset);
      call.out = call.oneway ? EMPTY : this.codec.errorReply(meta, ErrorCode.Unavailable, "meltemi: the call was reset before its reply (HTTP/2 error " + call.status.toString() + ")");
    } else if (call.status == 200 && (body.length > 0 || call.oneway)) {
      call.out = call.oneway ? EMPTY : call.keepLast ? this.lastReply(body) : body;
      if (!call.oneway) {
        const kind = this.countReply(call.op, body);
        this.settleSession(call, kind == MessageKind.Reply);
      }
      return;
    } else {
      const code = errorFor(call.status);
      this.stats.inc(code == ErrorCode.NoRoute ? this.stats.noRoute : code == ErrorCode.Timeout ? this.stats.timeout : this.stats.upstreamError);
      const message = "meltemi: " + (call.status == 200 ? "empty reply" : "upstream answered " + call.status.toString() + ": " + firstLine(body));
      call.out = call.oneway ? EMPTY : this.codec.errorReply(meta, code, message);
      if (this.cfg.accessLog || call.status != 404) {
        abi.log(abi.LogLevel.Info, this.tag() + "call id=" + meta.requestId.toString() + " got " + message);
      }
    }
    // No reply from the server: the client is told the call failed, so its state did not change.
    this.settleSession(call, false);
  }

  /** A session call's reply came (`took`: the server's reply is not an error). */
  private settleSession(call: Call, took: bool): void {
    const change = call.session;
    if (change == null) return;
    call.session = null;
    this.session.settle(change, took);
  }

  /** The last of the replies in `body` (each measured by the codec), or the body when it cannot tell. */
  private lastReply(body: Uint8Array): Uint8Array {
    let pos = 0;
    let last = 0;
    while (pos < body.length) {
      const size = this.cutter.frameSize(body.subarray(pos), this.cfg.maxFrameBytes);
      if (size <= 0 || pos + size > body.length) return body;
      last = pos;
      pos += size;
    }
    return body.subarray(last);
  }

  /** Counts a reply for its operation; returns its kind, or -1 when it does not decode. */
  private countReply(op: i32, reply: Uint8Array): i32 {
    const m = this.meta;
    m.reset();
    const size = this.replies.frameSize(reply, this.cfg.maxFrameBytes);
    if (size > 0 && size <= reply.length && this.replies.decode(reply.subarray(0, size), m)) {
      this.stats.operationMessage(op, true, m.kind);
      return <i32>m.kind;
    }
    return -1;
  }

  /**
   * Moves the settled calls' bytes to the client: in call order for codecs whose replies pair by
   * position (Redis), as soon as each is settled for those that carry correlation ids.
   */
  private release(): void {
    const calls = this.calls;
    const ordered = this.factory.repliesInOrder();
    let i = 0;
    while (i < calls.length) {
      const out = calls[i].out;
      if (out == null) {
        if (ordered) break;
        i++;
        continue;
      }
      this.toClient.bytes(out);
      calls.splice(i, 1);
      this.stats.inFlight(-1);
    }
  }

  // ---- connection ----

  private stopTaking(why: string): void {
    if (this.draining) return;
    this.draining = true;
    this.drainReason = why;
    abi.log(abi.LogLevel.Warn, this.tag() + why + "; closing after " + this.calls.length.toString() + " calls are answered");
  }

  private closeIfDone(): void {
    if (this.draining && !this.closed && this.calls.length == 0) {
      this.closed = true;
      this.root.closeLater(this.id);
    }
  }

  private closeNow(): void {
    this.closed = true;
    this.root.closeLater(this.id);
  }

  private flushSoon(): void {
    if (this.flushPending) return;
    this.flushPending = true;
    this.root.schedule(this.id, 0, TimerKind.Flush);
  }

  /** The bytes queued for HCM, as a view (ByteWriter.written): hand them to Envoy before writing more. */
  private takeToHcm(): Uint8Array {
    const w = this.link.out;
    if (w.len == 0) return EMPTY;
    const out = w.written();
    w.clear();
    return out;
  }

  /** The bytes queued for the client, as a view: hand them to Envoy before writing more. */
  private takeToClient(): Uint8Array {
    if (this.toClient.len == 0) return EMPTY;
    const out = this.toClient.written();
    this.toClient.clear();
    return out;
  }

  private tag(): string {
    return "meltemi conn=" + connectionLabel(this.id) + ": ";
  }
}
