// The client role's HTTP/2 connection toward Envoy's http_connection_manager: the preface and
// SETTINGS, flow-control windows both ways, stream ids and HCM's stream limit, writing each call as
// a HEADERS block and DATA, and reading HCM's frames into the state of the call each stream
// carries. It knows nothing of the protocol inside: RequestClient turns client frames into calls
// and ended calls into the client's bytes.
import { ByteWriter } from "../core/bytes";
import {
  FrameType, Flag, SettingId, H2Error, H2FrameReader, DEFAULT_MAX_FRAME_SIZE,
  writePreface, writeSettings, writeSettingsAck, writeWindowUpdate, writeHeaders, writeData, writePing,
  settingsCount, settingId, settingValue, windowIncrement, rstErrorCode, goawayLastStreamId, goawayErrorCode, goawayDebug,
} from "../http/h2";
import { HpackDecoder, HpackEncoder } from "../http/hpack";
import { HeaderList } from "../http/headers";
import { Call } from "./request-call";

/** The largest window HTTP/2 allows: advertised so that replies never wait for WINDOW_UPDATEs. */
const MAX_WINDOW: u32 = 0x7fffffff;
/** Replies received since the last connection WINDOW_UPDATE before another is due. */
const WINDOW_REFILL: i64 = 1 << 30;
/** Stream ids are odd and below 2^31. */
const LAST_STREAM_ID: u32 = 0x7fffffff;
/** HCM's limit on open streams until its SETTINGS say otherwise (RFC 9113 recommends >= 100). */
const ASSUMED_MAX_STREAMS: i32 = 100;

export class HcmLink {
  /** Bytes for HCM, taken by the role at the end of the current callback or tick. */
  readonly out: ByteWriter = new ByteWriter(1024);
  /** Calls whose stream ended (answered, reset, or refused by GOAWAY) since the role last took them. */
  readonly ended: Call[] = [];
  /**
   * HCM sent GOAWAY. A drain sends two (RFC 9113 section 6.8): first a notice with the largest
   * stream id, after which HCM still takes new streams, then, HCM's drain_timeout later, the
   * final one with the last stream it took (see takesNewStreams).
   */
  goingAway: bool = false;
  /** Why, as HCM said it: "" for a plain drain (NO_ERROR), else its error code and debug text. */
  goawayReason: string = "";
  /** Why HCM's bytes could not be read ("" when they could): the connection must close. */
  error: string = "";
  /** A PING is on its way to HCM (its answer gives the role a chance to write to the client). */
  pinging: bool = false;
  private started: bool = false;
  private readonly streams: Map<u32, Call> = new Map();
  private readonly reader: H2FrameReader = new H2FrameReader(DEFAULT_MAX_FRAME_SIZE);
  private readonly decoder: HpackDecoder = HcmLink.answerDecoder();
  private readonly encoder: HpackEncoder = new HpackEncoder();
  private readonly headers: HeaderList = new HeaderList();
  private readonly block: ByteWriter = new ByteWriter(256);
  private nextStream: u32 = 1;
  /** The last stream id HCM will process: the lowest a GOAWAY named. */
  private lastStream: u32 = LAST_STREAM_ID;
  private maxStreams: i32 = ASSUMED_MAX_STREAMS;
  private peerMaxFrame: i32 = DEFAULT_MAX_FRAME_SIZE;
  private connWindow: i64 = 65535;
  private streamWindow: i64 = 65535;
  private settingsSeen: i32 = 0;
  private received: i64 = 0;

  /** HCM's answers are read for their :status alone (onHeaders); no dynamic table (start()). */
  private static answerDecoder(): HpackDecoder {
    const d = new HpackDecoder(0);
    d.keepOnly = [":status"];
    return d;
  }

  /** `maxAnswer`: the most bytes kept of one stream's answer (what Envoy itself may send is bounded). */
  constructor(private readonly maxAnswer: i32) {}

  /** A call's HEADERS block (HPACK, no dynamic table). */
  encodeHead(names: string[], values: string[]): Uint8Array {
    this.block.clear();
    this.encoder.encode(names, values, this.block);
    return this.block.toBytes();
  }

  /** Asks HCM for an answer, so that the role gets an upstream callback to write to the client in. */
  ping(id: u64): void {
    if (this.pinging) return;
    this.pinging = true;
    writePing(this.out, false, id);
  }

  /** Whether pump() could write anything of `unsent` now. */
  canSend(unsent: Call[]): bool {
    return this.connWindow > 0 && ((this.streams.size < this.maxStreams && this.takesNewStreams) || (unsent.length > 0 && unsent[0].stream != 0));
  }

  /** False once a GOAWAY named a last stream below the next one: HCM would ignore a new stream. */
  get takesNewStreams(): bool {
    return this.nextStream <= this.lastStream;
  }

  /**
   * Ends the calls of `unsent` that have no stream yet, now that HCM takes no new ones (the final
   * GOAWAY of a drain): they never left the role, so they did not run (`notTaken`).
   */
  endUnstarted(unsent: Call[]): void {
    for (let i = 0; i < unsent.length; i++) {
      const call = unsent[i];
      if (call.stream != 0) continue;
      call.notTaken = true;
      this.ended.push(call);
    }
  }

  /**
   * Writes as much of `unsent` as HCM's stream limit and flow-control windows allow, in order,
   * removing what was written whole (the preface goes first, once). False when stream ids ran out.
   */
  pump(unsent: Call[]): bool {
    if (!this.started) this.start();
    const w = this.out;
    while (unsent.length > 0) {
      const call = unsent[0];
      if (call.stream == 0) {
        if (this.streams.size >= this.maxStreams) break;
        if (this.nextStream > LAST_STREAM_ID) return false;
        if (!this.takesNewStreams) break;
        call.stream = this.nextStream;
        call.window = this.streamWindow;
        this.nextStream += 2;
        this.streams.set(call.stream, call);
      }
      if (!call.headSent) {
        writeHeaders(w, call.stream, call.head, false, this.peerMaxFrame);
        call.headSent = true;
      }
      const left = call.body.length - call.sent;
      const n = <i32>min(<i64>left, min(this.connWindow, call.window));
      if (n < left && n <= 0) break;
      writeData(w, call.stream, call.body.subarray(call.sent, call.sent + n), n == left, this.peerMaxFrame);
      call.sent += n;
      call.window -= n;
      this.connWindow -= n;
      if (n < left) break;
      unsent.shift();
    }
    return true;
  }

  /**
   * Reads HCM's bytes: each stream's status and answer go into its call, ended calls into `ended`.
   * Stops at the first bad frame or header block, with `error` set.
   */
  read(chunk: Uint8Array): void {
    const r = this.reader;
    r.begin(chunk);
    while (this.error.length == 0) {
      const got = r.next();
      if (got == 0) return;
      if (got < 0) {
        this.error = "bad HTTP/2 from the connection manager: " + r.error;
        return;
      }
      switch (r.type) {
        case FrameType.SETTINGS: this.onSettings(r.flags, r.payload); break;
        case FrameType.WINDOW_UPDATE: this.onWindowUpdate(r.streamId, windowIncrement(r.payload)); break;
        case FrameType.PING:
          if ((r.flags & Flag.ACK) != 0) this.pinging = false;
          else writePing(this.out, true, load<u64>(r.payload.dataStart));
          break;
        case FrameType.HEADERS: this.onHeaders(r.streamId, r.flags, r.payload); break;
        case FrameType.DATA: this.onData(r.streamId, r.flags, r.payload); break;
        case FrameType.RST_STREAM: this.onReset(r.streamId, rstErrorCode(r.payload)); break;
        case FrameType.GOAWAY: this.onGoaway(goawayLastStreamId(r.payload), goawayErrorCode(r.payload), goawayDebug(r.payload)); break;
        default: break; // PRIORITY and unknown types carry nothing for us
      }
    }
  }

  /** The connection preface: large windows toward us, no dynamic table, and HCM's SETTINGS pre-acknowledged. */
  private start(): void {
    const body = new ByteWriter(64);
    writePreface(body);
    writeSettings(body, [<u16>SettingId.HEADER_TABLE_SIZE, <u16>SettingId.ENABLE_PUSH, <u16>SettingId.INITIAL_WINDOW_SIZE], [0, 0, MAX_WINDOW]);
    writeWindowUpdate(body, 0, MAX_WINDOW - 65535);
    // HCM applies its own stream window (larger than the default) only once its SETTINGS are
    // acknowledged; acknowledging before they arrive lets a large first call through at once.
    writeSettingsAck(body);
    const w = this.out;
    const rest = w.toBytes();
    w.clear();
    w.bytes(body.toBytes());
    w.bytes(rest);
    this.started = true;
  }

  private onSettings(flags: i32, payload: Uint8Array): void {
    if ((flags & Flag.ACK) != 0) return;
    for (let i = 0, n = settingsCount(payload); i < n; i++) {
      const id = settingId(payload, i);
      const v = settingValue(payload, i);
      if (id == SettingId.MAX_CONCURRENT_STREAMS) this.maxStreams = <i32>min(v, 1 << 20);
      else if (id == SettingId.MAX_FRAME_SIZE) this.peerMaxFrame = <i32>v;
      else if (id == SettingId.HEADER_TABLE_SIZE) this.encoder.peerTableSize(v);
      else if (id == SettingId.INITIAL_WINDOW_SIZE) {
        const delta = <i64>v - this.streamWindow;
        this.streamWindow = <i64>v;
        const calls = this.streams.values();
        for (let k = 0; k < calls.length; k++) calls[k].window += delta;
      }
    }
    // The first SETTINGS were acknowledged in advance (see start()).
    if (this.settingsSeen++ > 0) writeSettingsAck(this.out);
  }

  private onWindowUpdate(stream: u32, increment: u32): void {
    if (stream == 0) {
      this.connWindow += increment;
      return;
    }
    if (this.streams.has(stream)) this.streams.get(stream).window += increment;
  }

  private onHeaders(stream: u32, flags: i32, block: Uint8Array): void {
    const list = this.headers;
    list.clear();
    if (!this.decoder.decode(block, list)) {
      this.error = "bad header block from the connection manager: " + this.decoder.error;
      return;
    }
    if (!this.streams.has(stream)) return;
    const call = this.streams.get(stream);
    const status = list.get(":status");
    if (status != null && call.status == 0) {
      const code = I32.parseInt(status);
      if (code >= 200) call.status = code; // 1xx: informational, the real answer follows
    }
    if ((flags & Flag.END_STREAM) != 0) this.end(call);
  }

  private onData(stream: u32, flags: i32, payload: Uint8Array): void {
    this.received += payload.length;
    if (this.received >= WINDOW_REFILL) {
      writeWindowUpdate(this.out, 0, <u32>this.received);
      this.received = 0;
    }
    if (!this.streams.has(stream)) return;
    const call = this.streams.get(stream);
    let answer = call.answer;
    if (answer == null) call.answer = answer = new ByteWriter(max(payload.length, 64));
    // An answer over the bound is dropped whole (the role answers the call with an error), never
    // kept with a hole in it.
    if (call.tooLarge || answer.len + payload.length > this.maxAnswer) call.tooLarge = true;
    else answer.bytes(payload);
    if ((flags & Flag.END_STREAM) != 0) this.end(call);
  }

  private onReset(stream: u32, code: u32): void {
    if (!this.streams.has(stream)) return;
    const call = this.streams.get(stream);
    call.reset = true;
    call.status = <i32>code;
    this.end(call);
  }

  /**
   * HCM stops taking streams: those above `last` were never processed, so they end as reset, and
   * no stream above it opens. An error code other than NO_ERROR means HCM found fault with this
   * connection (the role logs it).
   */
  private onGoaway(last: u32, code: u32, debug: Uint8Array): void {
    if (code != <u32>H2Error.NO_ERROR) this.goawayReason = "HTTP/2 error " + code.toString() + (debug.length > 0 ? " \"" + String.UTF8.decode(debug.slice(0, 200).buffer) + "\"" : "");
    const calls = this.streams.values();
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i];
      if (call.stream > last) {
        call.reset = true;
        call.notTaken = true;
        this.end(call);
      }
    }
    if (last < this.lastStream) this.lastStream = last;
    this.goingAway = true;
  }

  private end(call: Call): void {
    this.streams.delete(call.stream);
    this.ended.push(call);
  }
}
