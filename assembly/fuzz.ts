// Entry point of build/fuzz.wasm (not loaded by Envoy): feeds bytes through the host-free paths
// the filter runs on client and server bytes, with the same codecs, FrameStream and compiler
// settings as build/meltemi.wasm. test/fuzz/run.mjs writes a mutated input into `inputBuffer`,
// calls run(), and counts traps (an AssemblyScript abort or a Wasm trap) per codec.
//
// One run() is what a connection does with one direction's bytes, read in `chunk`-byte reads:
//  - requests: the per-connection router's first-request loop (frameSize and decode from the start
//    of the bytes so far, as routeFirstRequest does on every read until a routable frame);
//  - FrameStream cutting frames across reads (carry, replaceFrame splicing, finish modes);
//  - for codecs with decodePrefix: decode of the prefix first, as the pass-through path does;
//  - decode of each frame; for requests: requestMutation (mutate), the local-reply probe,
//    errorReply (each error code in turn), keepAliveReply, and the per-request hooks
//    (perRequestRefusal, callScope, sessionSlot); for responses: responseMutation;
//  - every frame Meltemi produces (mutated frame, probe, error reply, keep-alive answer) is checked
//    to be one whole frame that a fresh codec decodes; one that is not counts in `badOutputs`.
import { CODECS } from "./codecs/registry";
import { Codec, ErrorCode, NEED_MORE, FRAME_ERROR } from "./core/codec";
import { FrameStream, Finish } from "./core/stream";
import { Metadata, KeyValue, MessageKind } from "./core/metadata";

let input = new Uint8Array(0);

/** A buffer of `size` bytes for the next input; returns its address in linear memory. */
export function inputBuffer(size: i32): usize {
  if (input.length < size) input = new Uint8Array(max(size, input.length << 1));
  return input.dataStart;
}

// Counters of the last run, read back with counter(i).
const FRAMES = 0; // frames cut and decoded
const REJECTED = 1; // inputs whose bytes the codec refused (FRAME_ERROR or decode false)
const PRODUCED = 2; // frames Meltemi produced and checked
const BAD_OUTPUTS = 3; // produced frames a fresh codec does not read back as one whole frame
const ROUTED = 4; // first-request loops that found a routable frame
const COUNTERS = 5;
const counters = new StaticArray<i32>(COUNTERS);
/** What the last bad output was: for the report, not for matching. */
let lastBad = "";

export function counter(i: i32): i32 {
  return i >= 0 && i < COUNTERS ? counters[i] : 0;
}

/** The last bad-output note: the address of an AssemblyScript string (UTF-16, length before it). */
export function badNote(): usize {
  return changetype<usize>(lastBad);
}

const MUTATION: KeyValue[] = [new KeyValue("x-meltemi-route", "canary"), new KeyValue("x-fuzz", "\u00e9t\u00e9 \"1\"")];
const ERROR_CODES: ErrorCode[] = [ErrorCode.NoRoute, ErrorCode.Unauthorized, ErrorCode.RateLimited, ErrorCode.FaultAbort, ErrorCode.Timeout, ErrorCode.BadRequest, ErrorCode.Unavailable];

/** Codec options by variant (see test/fuzz/run.mjs): pinned transports and protocols, short lines. */
function options(codec: i32, variant: i32): Map<string, string> {
  const m = new Map<string, string>();
  const name = CODECS[codec].name();
  if (name == "thrift") {
    const v = variant % 5;
    if (v == 1 || v == 2) m.set("transport", "framed");
    if (v == 3 || v == 4) m.set("transport", "unframed");
    if (v == 1 || v == 3) m.set("protocol", "binary");
    if (v == 2 || v == 4) m.set("protocol", "compact");
  } else if (name == "redis") {
    if (variant % 2 == 1) m.set("maxLineBytes", "1024");
  }
  return m;
}

function fresh(codec: i32, variant: i32, responses: bool): Codec {
  const c = CODECS[codec].create(options(codec, variant));
  c.readsResponses = responses;
  // Odd variants: the narrowest readsOnly hint (Dubbo then decodes requests from a prefix).
  if (variant % 2 == 1) c.readsOnly(["method"]);
  return c;
}

/**
 * Feeds input[0, len) as one direction of a connection (`responses`: server to client) in reads
 * of `chunk` bytes, with `maxFrame` as maxFrameBytes. Returns the number of frames decoded.
 * `replace` 1: requests are replaced by their probe or mutated frame, as policies do.
 */
export function run(codec: i32, variant: i32, responses: i32, len: i32, chunk: i32, maxFrame: i32, replace: i32): i32 {
  for (let i = 0; i < COUNTERS; i++) counters[i] = 0;
  checkRequests = null;
  checkResponses = null;
  const data = input.subarray(0, len);
  const toServer = responses == 0;
  if (chunk < 1) chunk = 1;
  if (toServer) routeFirst(codec, variant, data, chunk, maxFrame);

  const c = fresh(codec, variant, !toServer);
  const meta = new Metadata();
  const s = new FrameStream();
  const prefix = c.decodePrefix();
  let off = 0;
  while (off < len) {
    const n = min(chunk, len - off);
    const end = off + n >= len;
    s.begin(data.subarray(off, off + n));
    off += n;
    let mode = Finish.Carry;
    while (true) {
      const size = s.next(c, maxFrame);
      if (size == NEED_MORE) break;
      if (size == FRAME_ERROR) {
        counters[REJECTED]++;
        mode = Finish.Discard;
        break;
      }
      const frame = s.frame();
      if (prefix > 0 && frame.length > prefix) {
        meta.reset();
        c.decode(frame.subarray(0, prefix), meta);
      }
      meta.reset();
      if (!c.decode(frame, meta)) {
        counters[REJECTED]++;
        s.replaceFrame(null);
        mode = Finish.Discard;
        break;
      }
      counters[FRAMES]++;
      const out = toServer ? onRequest(codec, variant, c, frame, meta, maxFrame) : onResponse(codec, variant, c, frame, meta, maxFrame);
      if (replace != 0 && out != null) s.replaceFrame(out);
    }
    if (end && mode == Finish.Carry && s.remaining() > 0) mode = Finish.Flush;
    s.finish(mode);
    if (mode == Finish.Discard) break;
  }
  collectNow();
  return counters[FRAMES];
}

/**
 * The minimal runtime collects only when asked, and only with nothing on the stack (see
 * host/callback.ts): here, as run() returns, every COLLECT_RUNS runs.
 */
const COLLECT_RUNS = 256;
let runsSinceCollect = 0;
function collectNow(): void {
  if (++runsSinceCollect < COLLECT_RUNS) return;
  runsSinceCollect = 0;
  __collect();
}

/** The per-connection router: from the start of the bytes so far, at up to 8 read boundaries and the end. */
function routeFirst(codec: i32, variant: i32, data: Uint8Array, chunk: i32, maxFrame: i32): void {
  const c = fresh(codec, variant, false);
  const meta = new Metadata();
  const reads = (data.length + chunk - 1) / chunk;
  const step = max(1, reads / 8);
  for (let r = step; ; r += step) {
    const upTo = min(data.length, r * chunk);
    const seen = data.subarray(0, upTo);
    let pos = 0;
    let done = false;
    while (pos < seen.length) {
      const rest = seen.subarray(pos);
      const size = c.frameSize(rest, maxFrame);
      if (size == FRAME_ERROR) {
        done = true;
        break;
      }
      if (size == NEED_MORE || size > rest.length) break;
      meta.reset();
      if (!c.decode(rest.subarray(0, size), meta)) {
        done = true;
        break;
      }
      if (meta.isRoutable()) {
        counters[ROUTED]++;
        done = true;
        break;
      }
      pos += size;
    }
    if (done || upTo == data.length) return;
  }
}

/** What the policies and the per-request roles do with a request; returns what would replace it. */
function onRequest(codec: i32, variant: i32, c: Codec, frame: Uint8Array, meta: Metadata, maxFrame: i32): Uint8Array | null {
  if (!meta.isRequest) return null;
  let replacement: Uint8Array | null = null;
  if (meta.kind == MessageKind.Heartbeat) {
    if (meta.expectsReply) {
      const ka = c.keepAliveReply(meta);
      if (ka != null) check(codec, variant, true, ka, maxFrame, "keepAliveReply");
    }
    return null;
  }
  c.perRequestRefusal(meta);
  c.callScope(meta);
  c.sessionSlot(meta);
  if (c.canMutate()) {
    const m = c.mutate(frame, meta, MUTATION);
    if (m != null) {
      const back = check(codec, variant, false, m, maxFrame, "mutate");
      if (back != null) {
        for (let i = 0; i < MUTATION.length; i++) {
          const v = back.get(MUTATION[i].key);
          if (v == null || v != MUTATION[i].value) bad("mutate: " + MUTATION[i].key + " not carried");
        }
      }
      replacement = m;
    }
  }
  if (meta.expectsReply) {
    const probe = c.localReplyProbe(meta);
    if (probe != null) {
      check(codec, variant, false, probe, maxFrame, "localReplyProbe");
      replacement = probe;
    }
    // One error code per request, in turn (each code's reply is built the same way).
    const code = ERROR_CODES[counters[FRAMES] % ERROR_CODES.length];
    check(codec, variant, true, c.errorReply(meta, code, "meltemi: fuzz \"reply\"\r\n-ERR injected"), maxFrame, "errorReply");
  }
  return replacement;
}

function onResponse(codec: i32, variant: i32, c: Codec, frame: Uint8Array, meta: Metadata, maxFrame: i32): Uint8Array | null {
  if (meta.isRequest || !c.canMutate()) return null;
  const m = c.mutate(frame, meta, MUTATION);
  if (m != null) check(codec, variant, true, m, maxFrame, "response mutate");
  return m;
}

// Codecs that read back what Meltemi produced in one run, per direction: a peer's view of it.
let checkRequests: Codec | null = null;
let checkResponses: Codec | null = null;

/**
 * A frame Meltemi produced must be one whole frame to the peer's codec for its direction (error
 * replies and keep-alive answers: the client's, reading responses) and decode; returns its metadata.
 */
function check(codec: i32, variant: i32, responses: bool, bytes: Uint8Array, maxFrame: i32, what: string): Metadata | null {
  counters[PRODUCED]++;
  let c = responses ? checkResponses : checkRequests;
  if (c == null) {
    c = fresh(codec, variant, responses);
    if (responses) checkResponses = c;
    else checkRequests = c;
  }
  // Produced frames may exceed a small maxFrameBytes (a mutation adds bytes): measure with room.
  const size = c.frameSize(bytes, max(maxFrame, bytes.length + 16));
  if (size != bytes.length) {
    bad(what + ": frameSize " + size.toString() + " for " + bytes.length.toString() + " bytes (" + c.error + ")");
    return null;
  }
  const m = new Metadata();
  if (!c.decode(bytes, m)) {
    bad(what + ": does not decode: " + c.error);
    return null;
  }
  return m;
}

function bad(note: string): void {
  counters[BAD_OUTPUTS]++;
  lastBad = note;
}

/**
 * Proves the runner counts traps (test/fuzz/run.mjs checks it before fuzzing): 0 aborts as a
 * failed assertion does, 1 reads past the end of linear memory.
 */
export function selfCheck(kind: i32): i32 {
  if (kind == 0) assert(false, "fuzz self check");
  return <i32>load<u8>(<usize>memory.size() << 16);
}
