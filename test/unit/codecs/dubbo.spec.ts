import {
  DubboCodec, DubboCodecFactory, heartbeatRequest, heartbeatResponse, countParameters, statusFor,
} from "../../../assembly/codecs/dubbo";
import { Hessian2Reader } from "../../../assembly/codecs/hessian2";
import { writeString } from "../../../assembly/codecs/hessian2-writer";
import { findCodec } from "../../../assembly/codecs/registry";
import { NEED_MORE, FRAME_ERROR, ErrorCode } from "../../../assembly/core/codec";
import { Metadata, MessageKind, KeyValue } from "../../../assembly/core/metadata";
import { ByteWriter, peekU32 } from "../../../assembly/core/bytes";
import { FrameStream, Finish } from "../../../assembly/core/stream";
import * as F from "../fixtures/dubbo";
import { hexOf, concat } from "../bytes";

const MAX: i32 = 1 << 20;

/** Decodes a frame that must be valid. */
function decoded(frame: Uint8Array): Metadata {
  const c = new DubboCodec();
  const m = new Metadata();
  expect(c.frameSize(frame, MAX)).toBe(frame.length, c.error);
  expect(c.decode(frame, m)).toBe(true, c.error);
  return m;
}

/**
 * True when `meta` is the answer to heartbeat request `id`: what the exchange relies on when it
 * pairs the answer to a local-reply probe with the rejected request (a response, a heartbeat, the id).
 */
function isHeartbeatResponse(meta: Metadata, id: u64): bool {
  return meta.kind == MessageKind.Heartbeat && !meta.isRequest && meta.requestId == id;
}

/** Decodes a complete frame that must be rejected; returns the error. */
function decodeError(frame: Uint8Array): string {
  const c = new DubboCodec();
  const m = new Metadata();
  expect(c.decode(frame, m)).toBe(false, "expected a decode error");
  return c.error;
}

function frameError(data: Uint8Array, maxFrame: i32 = MAX): string {
  const c = new DubboCodec();
  expect(c.frameSize(data, maxFrame)).toBe(FRAME_ERROR);
  return c.error;
}

function str(v: string | null): string {
  return v == null ? "<absent>" : v;
}

/** The string attachments of a decoded request, `k=v` joined by spaces, in wire order. */
function describe_(m: Metadata): string {
  let s = "";
  for (let i = 0; i < m.keys.length; i++) s += (i > 0 ? " " : "") + m.keys[i] + "=" + m.values[i];
  return s;
}

/** The same frame with its body cut to `bodyLen` bytes and the length field patched. */
function cut(frame: Uint8Array, bodyLen: i32): Uint8Array {
  const out = frame.slice(0, 16 + bodyLen);
  const w = new ByteWriter();
  w.bytes(out);
  w.patchU32(12, <u32>bodyLen);
  return w.toBytes();
}

/**
 * A request frame: flag 0xc2 (two-way hessian2 request), id 5, the five leading strings, then raw
 * hex for the arguments and the attachments. With the default strings the arguments start at
 * offset 52: header 16, "2.0.2" 6, "svc.Foo" 8, "" 1, "m" 2, "Ljava/lang/Object;" 19.
 */
function request(argsHex: string, attachmentsHex: string, desc: string = "Ljava/lang/Object;", flag: u32 = 0xc2): Uint8Array {
  const w = new ByteWriter();
  w.u16(0xdabb);
  w.u8(flag);
  w.u8(0);
  w.u64(5);
  w.u32(0);
  writeString(w, "2.0.2");
  writeString(w, "svc.Foo");
  writeString(w, "");
  writeString(w, "m");
  writeString(w, desc);
  w.bytes(F.bytes(argsHex));
  w.bytes(F.bytes(attachmentsHex));
  w.patchU32(12, <u32>(w.len - 16));
  return w.toBytes();
}

/** A response frame with `status` and a raw hex body. */
function response(status: u32, id: u64, bodyHex: string, flag: u32 = 0x02): Uint8Array {
  const w = new ByteWriter();
  w.u16(0xdabb);
  w.u8(flag);
  w.u8(status);
  w.u64(id);
  const body = F.bytes(bodyHex);
  w.u32(<u32>body.length);
  w.bytes(body);
  return w.toBytes();
}

function kvs(pairs: string[]): KeyValue[] {
  const out: KeyValue[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) out.push(new KeyValue(pairs[i], pairs[i + 1]));
  return out;
}

/** Decodes `frame`, mutates it, checks the result is a well-formed frame, and returns it. */
function mutated(frame: Uint8Array, mutation: KeyValue[]): Uint8Array {
  const c = new DubboCodec();
  const m = new Metadata();
  expect(c.decode(frame, m)).toBe(true, c.error);
  const out = c.mutate(frame, m, mutation);
  expect(out).not.toBeNull("mutate refused");
  const bytes = out!;
  expect(peekU32(bytes, 12)).toBe(<u32>(bytes.length - 16), "body length patched");
  expect(c.frameSize(bytes, MAX)).toBe(bytes.length);
  // Header (but the length) and every byte before the attachments are untouched.
  expect(hexOf(bytes.subarray(0, 12))).toBe(hexOf(frame.subarray(0, 12)));
  expect(hexOf(bytes.subarray(16, m.mark0))).toBe(hexOf(frame.subarray(16, m.mark0)));
  return bytes;
}

describe("dubbo: header", () => {
  it("waits for the magic and then the whole header", () => {
    const c = new DubboCodec();
    const frame = F.bytes(F.REQUEST_ATTACHMENTS);
    expect(c.frameSize(frame.subarray(0, 0), MAX)).toBe(NEED_MORE);
    expect(c.frameSize(frame.subarray(0, 1), MAX)).toBe(NEED_MORE);
    expect(c.frameSize(frame.subarray(0, 15), MAX)).toBe(NEED_MORE);
    expect(c.frameSize(frame.subarray(0, 16), MAX)).toBe(16 + 0xf3);
    expect(c.frameSize(frame, MAX)).toBe(frame.length);
  });

  it("rejects a stream that does not start with the magic, as soon as two bytes say so", () => {
    expect(frameError(F.bytes("1234"))).toBe("dubbo: bad magic 0x1234");
    expect(frameError(F.bytes("dab0 c2"))).toBe("dubbo: bad magic 0xdab0");
    expect(frameError(F.bytes("4745 5420 2f20 4854 5450 2f31 2e31 0d0a"))).toBe("dubbo: bad magic 0x4745"); // "GET / HTTP/1.1"
  });

  it("rejects a body length over the frame limit", () => {
    expect(frameError(F.bytes("dabb c2 00 0000000000000001 ffffffff"))).toBe("dubbo: body length 4294967295 exceeds maxFrameBytes 1048576");
    expect(frameError(F.bytes("dabb c2 00 0000000000000001 00000011"), 32)).toBe("dubbo: body length 17 exceeds maxFrameBytes 32");
    const c = new DubboCodec();
    expect(c.frameSize(F.bytes("dabb c2 00 0000000000000001 00000010"), 32)).toBe(32);
  });

  it("reads the 64-bit request id and the direction flags", () => {
    // Dubbo 3.3.5 request ids are random-looking 64-bit values, often with the top bit set.
    const m = decoded(F.bytes(F.REQUEST_FAIL));
    expect(m.requestId).toBe(0xe59732fd9553e655);
    expect(m.isRequest).toBe(true);
    expect(m.expectsReply).toBe(true);
    expect(m.kind).toBe(MessageKind.Call);
  });

  it("is registered as \"dubbo\" and can mutate", () => {
    const f = findCodec("dubbo");
    expect(f).not.toBeNull();
    expect(f!.name()).toBe("dubbo");
    expect(f!.checkOption("serialization", "hessian2")).toBe("unknown option for codec dubbo");
    expect(f!.create(new Map<string, string>()).canMutate()).toBe(true);
    expect(new DubboCodecFactory().name()).toBe("dubbo");
  });
});

describe("dubbo: requests from Apache Dubbo 3.3.5", () => {
  it("reads interface, method, version and every string attachment", () => {
    const m = decoded(F.bytes(F.REQUEST_ATTACHMENTS));
    expect(m.kind).toBe(MessageKind.Call);
    expect(m.requestId).toBe(0x1de5dcf0c5992548);
    expect(describe_(m)).toBe(
      "interface=dev.meltemi.demo.GreetService method=sayHello version=1.0.0 path=dev.meltemi.demo.GreetService " +
      "remote.application=meltemi-consumer x-tenant=blue x-user=alice timeout=5000",
    );
    expect(str(m.get("group"))).toBe("<absent>");
    expect(m.mark0).toBe(0x5c); // the 'H' after the argument "alice"
    expect(m.mark1).toBe(F.bytes(F.REQUEST_ATTACHMENTS).length);
    expect(m.mark2).toBe(0);
  });

  it("reads the group from the group attachment", () => {
    const m = decoded(F.bytes(F.REQUEST_GROUP));
    expect(str(m.get("group"))).toBe("canary");
    expect(str(m.get("interface"))).toBe("dev.meltemi.demo.GreetService");
    expect(str(m.get("version"))).toBe("1.0.0");
  });

  it("reads another interface and method", () => {
    const m = decoded(F.bytes(F.REQUEST_ORDER));
    expect(str(m.get("interface"))).toBe("dev.meltemi.demo.OrderService");
    expect(str(m.get("method"))).toBe("getOrder");
    expect(str(m.get("timeout"))).toBe("5000");
  });

  it("tells a one-way request from a call", () => {
    const m = decoded(F.bytes(F.REQUEST_ONEWAY));
    expect(m.kind).toBe(MessageKind.Oneway);
    expect(m.isRequest).toBe(true);
    expect(m.expectsReply).toBe(false);
    expect(str(m.get("method"))).toBe("sayHello");
  });

  it("skips null and 4096-character arguments to reach the attachments", () => {
    let m = decoded(F.bytes(F.REQUEST_NULL_ARG));
    expect(str(m.get("method"))).toBe("echo");
    expect(str(m.get("remote.application"))).toBe("meltemi-consumer");
    m = decoded(F.bytes(F.REQUEST_ECHO_4K));
    expect(str(m.get("method"))).toBe("echo");
    expect(str(m.get("timeout"))).toBe("5000");
  });

  it("lets the version attachment win and keeps interface and method from the frame", () => {
    const attachments = "48 07 76657273696f6e 03 322e30  09 696e74657266616365 01 78  06 6d6574686f64 01 79 5a";
    const m = decoded(request("90", attachments));
    expect(str(m.get("version"))).toBe("2.0");
    expect(str(m.get("interface"))).toBe("svc.Foo");
    expect(str(m.get("method"))).toBe("m");
  });

  it("reads a typed attachments map and skips non-string keys and values", () => {
    // 'M' "java.util.HashMap"; 1 -> "one"; "n" -> 7; "list" -> [1]; "s" -> "v"; "nul" -> null
    const attachments = "4d 11 6a6176612e7574696c2e486173684d6170  91 03 6f6e65  01 6e 97  04 6c697374 79 91  01 73 01 76  03 6e756c 4e 5a";
    const m = decoded(request("90", attachments));
    expect(describe_(m)).toBe("interface=svc.Foo method=m version= s=v");
  });

  it("accepts a request without attachments", () => {
    const frame = request("05 616c696365", "");
    const m = decoded(frame);
    expect(m.mark0).toBe(frame.length);
    expect(m.mark1).toBe(frame.length);
  });

  it("counts parameters the way Dubbo's descriptors spell them", () => {
    expect(countParameters("")).toBe(0);
    expect(countParameters("I")).toBe(1);
    expect(countParameters("Ljava/lang/String;")).toBe(1);
    expect(countParameters("[Ljava/lang/String;IJ[[BLjava/util/Map;")).toBe(5);
    expect(countParameters("ZBCDFIJSV")).toBe(9);
    expect(countParameters("Ljava/lang/String")).toBe(-1);
    expect(countParameters("L;")).toBe(-1);
    expect(countParameters("[")).toBe(-1);
    expect(countParameters("Q")).toBe(-1);
  });

  it("skips several arguments of mixed types", () => {
    // int 1, long 2, [ "a" ], a Map {"k": "v"}, an object P{x=1}
    const args = "91  e2  79 01 61  48 01 6b 01 76 5a  43 01 50 91 01 78 60 91";
    const m = decoded(request(args, "48 01 6b 01 76 5a", "IJ[Ljava/lang/String;Ljava/util/Map;LP;"));
    expect(str(m.get("k"))).toBe("v");
  });
});

describe("dubbo: responses", () => {
  it("maps response types to reply and exception", () => {
    let m = decoded(F.bytes(F.RESPONSE_VALUE));
    expect(m.kind).toBe(MessageKind.Reply);
    expect(m.isRequest).toBe(false);
    expect(m.expectsReply).toBe(false);
    expect(m.requestId).toBe(decoded(F.bytes(F.REQUEST_ATTACHMENTS)).requestId);
    expect(decoded(F.bytes(F.RESPONSE_NULL_VALUE)).kind).toBe(MessageKind.Reply);
    expect(decoded(F.bytes(F.RESPONSE_ATTACHMENTS)).kind).toBe(MessageKind.Reply);
    m = decoded(F.bytes(F.RESPONSE_EXCEPTION));
    expect(m.kind).toBe(MessageKind.Exception);
    expect(m.requestId).toBe(decoded(F.bytes(F.REQUEST_FAIL)).requestId);
    // Types 0..2, written by Dubbo versions that send no response attachments.
    expect(decoded(response(20, 1, "90 43 01 45 90 60")).kind).toBe(MessageKind.Exception);
    expect(decoded(response(20, 1, "91 01 61")).kind).toBe(MessageKind.Reply);
    expect(decoded(response(20, 1, "92")).kind).toBe(MessageKind.Reply);
  });

  it("treats every non-OK status as an exception without reading the body", () => {
    const statuses: u32[] = [30, 31, 40, 50, 60, 70, 80, 90, 100];
    for (let i = 0; i < statuses.length; i++) {
      const m = decoded(response(statuses[i], 9, "05 6572726f72"));
      expect(m.kind).toBe(MessageKind.Exception, statuses[i].toString());
      expect(m.requestId).toBe(9);
    }
  });

  it("rejects an unknown response type", () => {
    expect(decodeError(response(20, 1, "99"))).toBe("dubbo: unknown response type 9");
    expect(decodeError(response(20, 1, ""))).toBe("dubbo: bad response type: hessian2: truncated int at offset 16");
    expect(decodeError(response(20, 1, "01 61"))).toBe("dubbo: bad response type: hessian2: expected an int, got type byte 0x01 at offset 16");
  });

  it("walks every value of real response bodies: values, exceptions with class definitions and refs, attachments", () => {
    const bodies: string[] = [F.RESPONSE_VALUE, F.RESPONSE_NULL_VALUE, F.RESPONSE_ATTACHMENTS, F.RESPONSE_EXCEPTION, F.RESPONSE_ECHO_4K];
    for (let i = 0; i < bodies.length; i++) {
      const frame = F.bytes(bodies[i]);
      const h = new Hessian2Reader();
      h.reset(frame, 16);
      expect(h.readInt()).toBe(true, h.error);
      const type = h.int;
      if (type != 2 && type != 5) expect(h.skip()).toBe(true, h.error);
      if (type >= 3) expect(h.skip()).toBe(true, h.error);
      expect(h.atEnd()).toBe(true, "response " + i.toString() + " fully walked");
    }
  });

  it("reads the attachments Dubbo 3.3.5 adds to every response", () => {
    const frame = F.bytes(F.RESPONSE_NULL_VALUE);
    const h = new Hessian2Reader();
    h.reset(frame, 16);
    expect(h.readInt()).toBe(true);
    expect(h.int).toBe(5); // null value with attachments
    expect(h.beginMap()).toBe(true);
    expect(h.readString()).toBe(true);
    expect(h.str).toBe("dubbo");
    expect(h.readString()).toBe(true);
    expect(h.str).toBe("2.0.2");
    expect(h.endOfContainer()).toBe(true);
  });
});

describe("dubbo: heartbeats and events", () => {
  it("decodes Dubbo's heartbeat request and response as heartbeats with the same id", () => {
    const req = decoded(F.bytes(F.HEARTBEAT_REQUEST));
    expect(req.kind).toBe(MessageKind.Heartbeat);
    expect(req.isRequest).toBe(true);
    expect(req.expectsReply).toBe(true);
    const res = decoded(F.bytes(F.HEARTBEAT_RESPONSE));
    expect(res.kind).toBe(MessageKind.Heartbeat);
    expect(res.isRequest).toBe(false);
    expect(res.expectsReply).toBe(false);
    expect(res.requestId).toBe(req.requestId);
    expect(req.isRoutable()).toBe(false);
  });

  it("builds heartbeats byte for byte as Dubbo does", () => {
    const id = decoded(F.bytes(F.HEARTBEAT_REQUEST)).requestId;
    expect(hexOf(heartbeatRequest(id))).toBe(F.HEARTBEAT_REQUEST);
    expect(hexOf(heartbeatResponse(id))).toBe(F.HEARTBEAT_RESPONSE);
  });

  it("recognises the answer to its own heartbeat (the local-reply trick)", () => {
    const id: u64 = 0x8000000000000007;
    const answer = decoded(heartbeatResponse(id));
    expect(isHeartbeatResponse(answer, id)).toBe(true);
    expect(isHeartbeatResponse(answer, 7)).toBe(false);
    expect(isHeartbeatResponse(decoded(heartbeatRequest(id)), id)).toBe(false);
    expect(isHeartbeatResponse(decoded(response(20, id, "92")), id)).toBe(false);
  });

  it("passes the provider's READONLY event (a one-way event request) as a heartbeat", () => {
    const m = decoded(F.bytes(F.EVENT_READONLY));
    expect(m.kind).toBe(MessageKind.Heartbeat);
    expect(m.isRequest).toBe(true);
    expect(m.expectsReply).toBe(false);
  });

  it("does not read event bodies, whatever their serialization", () => {
    const m = decoded(response(20, 3, "ff ff", 0x26));
    expect(m.kind).toBe(MessageKind.Heartbeat);
  });
});

/** Feeds `input` in reads of `step` bytes; returns the forwarded bytes and decodes every frame into `metas`. */
function feed(input: Uint8Array, step: i32, metas: Metadata[]): Uint8Array {
  const s = new FrameStream();
  const codec = new DubboCodec();
  let out = new Uint8Array(0);
  for (let pos = 0; pos < input.length; pos += step) {
    const chunk = input.slice(pos, min(pos + step, input.length));
    s.begin(chunk);
    while (s.next(codec, MAX) > 0) {
      const m = new Metadata();
      expect(codec.decode(s.frame(), m)).toBe(true, codec.error);
      metas.push(m);
    }
    const replaced = s.finish(Finish.Carry);
    out = concat(out, replaced != null ? replaced : chunk);
  }
  expect(s.carried()).toBe(0);
  return out;
}

describe("dubbo: split and coalesced frames", () => {
  it("cuts 8 pipelined requests whatever the read size", () => {
    const stream = F.bytes(F.STREAM_PIPELINED_REQUESTS);
    const steps: i32[] = [1, 2, 3, 15, 16, 17, 100, 261, 262, 1000, stream.length];
    for (let i = 0; i < steps.length; i++) {
      const metas: Metadata[] = [];
      const out = feed(stream, steps[i], metas);
      expect(hexOf(out)).toBe(F.STREAM_PIPELINED_REQUESTS, "read size " + steps[i].toString());
      expect(metas.length).toBe(8, "read size " + steps[i].toString());
      for (let j = 0; j < metas.length; j++) {
        expect(str(metas[j].get("group"))).toBe("canary");
        expect(str(metas[j].get("method"))).toBe("sayHello");
      }
    }
  });

  it("pairs every pipelined response with a request id", () => {
    const requests: Metadata[] = [];
    feed(F.bytes(F.STREAM_PIPELINED_REQUESTS), 4096, requests);
    const responses: Metadata[] = [];
    const stream = F.bytes(F.STREAM_PIPELINED_RESPONSES);
    feed(stream, 7, responses);
    expect(responses.length).toBe(8);
    for (let i = 0; i < responses.length; i++) {
      expect(responses[i].kind).toBe(MessageKind.Reply);
      let found = 0;
      for (let j = 0; j < requests.length; j++) if (requests[j].requestId == responses[i].requestId) found++;
      expect(found).toBe(1, "response " + i.toString());
    }
  });

  it("cuts a request and a heartbeat coalesced in one read", () => {
    const metas: Metadata[] = [];
    const both = concat(F.bytes(F.HEARTBEAT_REQUEST), F.bytes(F.REQUEST_ORDER));
    feed(both, both.length, metas);
    expect(metas.length).toBe(2);
    expect(metas[0].kind).toBe(MessageKind.Heartbeat);
    expect(str(metas[1].get("method"))).toBe("getOrder");
  });
});

describe("dubbo: mutation", () => {
  it("overwrites and adds attachments, keeping the arguments and the other attachments", () => {
    const frame = F.bytes(F.REQUEST_ATTACHMENTS);
    const before = decoded(frame);
    const out = mutated(frame, kvs(["x-tenant", "red", "x-route", "canary-é"]));
    const m = decoded(out);
    expect(describe_(m)).toBe(
      "interface=dev.meltemi.demo.GreetService method=sayHello version=1.0.0 path=dev.meltemi.demo.GreetService " +
      "remote.application=meltemi-consumer x-tenant=red x-user=alice timeout=5000 x-route=canary-é",
    );
    expect(m.requestId).toBe(before.requestId);
    expect(m.mark0).toBe(before.mark0);
    expect(out.length).toBe(frame.length - 1 + 8 + 10); // "red" is one byte shorter; x-route entry added
  });

  it("leaves the frame byte-identical when the mutation writes the values it already has", () => {
    const frame = F.bytes(F.REQUEST_GROUP);
    expect(hexOf(mutated(frame, kvs(["group", "canary", "timeout", "5000"])))).toBe(F.REQUEST_GROUP);
  });

  it("lets the last of duplicate mutation keys win", () => {
    const out = mutated(F.bytes(F.REQUEST_ORDER), kvs(["a", "1", "a", "2", "timeout", "1", "timeout", "9"]));
    const m = decoded(out);
    expect(str(m.get("a"))).toBe("2");
    expect(str(m.get("timeout"))).toBe("9");
    expect(m.keys.length).toBe(decoded(F.bytes(F.REQUEST_ORDER)).keys.length + 1);
  });

  it("adds an attachments map to a request that had none", () => {
    const frame = request("05 616c696365", "");
    const out = mutated(frame, kvs(["k", "v"]));
    expect(hexOf(out.subarray(frame.length))).toBe("48016b01765a");
    expect(str(decoded(out).get("k"))).toBe("v");
  });

  it("copies non-string attachments verbatim and keeps a typed map's type", () => {
    const attachments = "4d 03 4d6170  01 6e 97  04 6c697374 79 91  01 73 01 76 5a";
    const frame = request("90", attachments);
    const out = mutated(frame, kvs(["s", "w", "t", "u"]));
    expect(hexOf(out.subarray(53))).toBe("4d034d6170016e97046c697374799101730177017401755a");
  });

  it("re-walks the arguments when attachments refer to their class definitions", () => {
    // Argument: class P{x} and an instance; attachment "p" is another P (0x60), then "s" -> "v".
    const frame = request("43 01 50 91 01 78 60 91", "48 01 70 60 92  01 73 01 76 5a");
    const m = decoded(frame);
    expect(m.mark2).toBe(1);
    const out = mutated(frame, kvs(["s", "w"]));
    expect(hexOf(out.subarray(m.mark0))).toBe("480170609201730177" + "5a");
  });

  it("refuses to drop a value that later bytes may refer to", () => {
    // "a" -> [1] (ref 1), "b" -> ref 1: overwriting "a" would leave "b" pointing nowhere.
    const frame = request("90", "48 01 61 79 91  01 62 51 91 5a");
    const c = new DubboCodec();
    const m = new Metadata();
    expect(c.decode(frame, m)).toBe(true, c.error);
    expect(m.mark2).toBe(1);
    expect(c.mutate(frame, m, kvs(["a", "x"]))).toBeNull();
    expect(c.mutate(frame, m, kvs(["c", "x"]))).not.toBeNull();
  });

  it("adds attachments to a real response and keeps its value", () => {
    const c = new DubboCodec();
    const m = new Metadata();
    const res = F.bytes(F.RESPONSE_VALUE);
    expect(c.decode(res, m)).toBe(true);
    const out = c.mutate(res, m, kvs(["k", "v"]))!;
    expect(out).not.toBeNull();
    expect(peekU32(out, 12)).toBe(<u32>(out.length - 16), "body length patched");
    // The original map {dubbo: 2.0.2} is closed by its 'Z'; the new pair goes before it.
    const origHex = hexOf(res);
    const outHex = hexOf(out);
    expect(outHex.slice(32, origHex.length - 2)).toBe(origHex.slice(32, origHex.length - 2), "value and existing attachments untouched");
    expect(outHex.slice(origHex.length - 2)).toBe("016b01765a");
    const back = new Metadata();
    expect(c.decode(out, back)).toBe(true, c.error);
    expect(back.kind).toBe(MessageKind.Reply);
  });

  it("turns a response without attachments into its with-attachments type", () => {
    const c = new DubboCodec();
    const m = new Metadata();
    // type 1 (RESPONSE_VALUE, 0x91), value "hello"
    const res = response(20, 9, "910568656c6c6f");
    expect(c.decode(res, m)).toBe(true, c.error);
    const out = c.mutate(res, m, kvs(["k", "v"]))!;
    expect(hexOf(out.subarray(16))).toBe("940568656c6c6f48016b01765a");
    expect(peekU32(out, 12)).toBe(<u32>(out.length - 16));
  });

  it("does not mutate heartbeats or error responses", () => {
    const c = new DubboCodec();
    const m = new Metadata();
    const hb = F.bytes(F.HEARTBEAT_REQUEST);
    expect(c.decode(hb, m)).toBe(true);
    expect(c.mutate(hb, m, kvs(["k", "v"]))).toBeNull();
    m.reset();
    const err = response(70, 9, "05626f6f6d21");
    expect(c.decode(err, m)).toBe(true);
    expect(c.mutate(err, m, kvs(["k", "v"]))).toBeNull();
  });
});

describe("dubbo: error replies", () => {
  it("answers with the request id, hessian2 and the status each error maps to", () => {
    const codes: ErrorCode[] = [ErrorCode.NoRoute, ErrorCode.Unauthorized, ErrorCode.RateLimited, ErrorCode.FaultAbort, ErrorCode.Timeout, ErrorCode.BadRequest];
    const statuses: u32[] = [60, 70, 100, 70, 31, 40];
    const req = decoded(F.bytes(F.REQUEST_ATTACHMENTS));
    for (let i = 0; i < codes.length; i++) {
      const c = new DubboCodec();
      const out = c.errorReply(req, codes[i], "meltemi: no route for é");
      expect(statusFor(codes[i])).toBe(statuses[i]);
      expect(hexOf(out.subarray(0, 12))).toBe("dabb02" + (statuses[i] < 16 ? "0" : "") + statuses[i].toString(16) + "1de5dcf0c5992548");
      const m = decoded(out);
      expect(m.kind).toBe(MessageKind.Exception);
      expect(m.requestId).toBe(req.requestId);
      const h = new Hessian2Reader();
      h.reset(out, 16);
      expect(h.readString()).toBe(true);
      expect(h.str).toBe("meltemi: no route for é");
      expect(h.atEnd()).toBe(true);
    }
  });
});

describe("dubbo: malformed and hostile frames", () => {
  it("rejects arguments that nest too deep, claim huge lengths, or refer to nothing", () => {
    expect(decodeError(request("57".repeat(65) + "5a".repeat(65), "48 5a")))
      .toBe("dubbo: bad argument 1 of 1: hessian2: nesting deeper than 64 at offset 116");
    expect(decodeError(request("53 ffff 61", ""))).toBe("dubbo: bad argument 1 of 1: hessian2: string length 65535 exceeds the 1 bytes left at offset 52");
    expect(decodeError(request("58 49 7fffffff 90", ""))).toBe("dubbo: bad argument 1 of 1: hessian2: list length 2147483647 exceeds the 1 bytes left at offset 52");
    expect(decodeError(request("51 93", ""))).toBe("dubbo: bad argument 1 of 1: hessian2: ref 3 but only 0 values to refer to at offset 52");
    expect(decodeError(request("6f", ""))).toBe("dubbo: bad argument 1 of 1: hessian2: object of class definition 15 but only 0 defined at offset 52");
    expect(decodeError(request("45", ""))).toBe("dubbo: bad argument 1 of 1: hessian2: unknown type byte 0x45 at offset 52");
    expect(decodeError(request("57 91", ""))).toBe("dubbo: bad argument 1 of 1: hessian2: truncated list at offset 52");
    expect(decodeError(request("90", "", "II"))).toBe("dubbo: bad argument 2 of 2: hessian2: truncated value at offset 37");
  });

  it("rejects truncated real requests with the field that was cut", () => {
    const frame = F.bytes(F.REQUEST_ATTACHMENTS);
    expect(decodeError(cut(frame, 64 - 16))).toBe("dubbo: bad method name: hessian2: string length 8 exceeds the 5 bytes left at offset 58");
    expect(decodeError(cut(frame, 100 - 16))).toBe("dubbo: bad attachment path: hessian2: string length 29 exceeds the 1 bytes left at offset 98");
    expect(decodeError(cut(frame, frame.length - 17))).toBe("dubbo: bad attachments: hessian2: truncated map at offset 92");
    expect(decodeError(cut(frame, 0))).toBe("dubbo: bad dubbo version: hessian2: truncated string at offset 16");
  });

  it("rejects bad leading strings, descriptors and attachments", () => {
    const hdr = "dabb c2 00 0000000000000001";
    expect(decodeError(F.bytes(hdr + "00000007 05322e302e32 91"))).toBe("dubbo: bad service path: hessian2: expected a string, got type byte 0x91 at offset 22");
    expect(decodeError(F.bytes(hdr + "0000000a 05322e302e32 53ffff61"))).toBe("dubbo: bad service path: hessian2: string length 65535 exceeds the 1 bytes left at offset 22");
    expect(decodeError(request("", "", "Ljava/lang/String"))).toBe("dubbo: bad parameter type descriptor \"Ljava/lang/String\"");
    expect(decodeError(request("90", "91"))).toBe("dubbo: bad attachments: hessian2: expected a map, got type byte 0x91 at offset 53");
    expect(decodeError(request("90", "48 01 6b 45 5a"))).toBe("dubbo: bad attachment k: hessian2: unknown type byte 0x45 at offset 56");
  });

  it("rejects serializations other than hessian2 for requests and OK responses", () => {
    expect(decodeError(request("90", "", "Ljava/lang/Object;", 0xc6))).toBe("dubbo: serialization id 6 is not supported (only hessian2, 2)");
    expect(decodeError(response(20, 1, "91", 0x17))).toBe("dubbo: serialization id 23 is not supported (only hessian2, 2)");
  });

  it("rejects frames whose length field disagrees with the bytes given", () => {
    const frame = F.bytes(F.HEARTBEAT_REQUEST);
    expect(decodeError(frame.subarray(0, 10))).toBe("dubbo: frame of 10 bytes is shorter than the header");
    expect(decodeError(concat(frame, F.bytes("00")))).toBe("dubbo: body length 1 does not match the frame's 2 body bytes");
  });

  it("never traps on any truncation or any single corrupted byte of real frames", () => {
    const frames: string[] = [F.REQUEST_ATTACHMENTS, F.REQUEST_GROUP, F.RESPONSE_EXCEPTION, F.RESPONSE_VALUE];
    const c = new DubboCodec();
    const m = new Metadata();
    let ok = 0;
    for (let f = 0; f < frames.length; f++) {
      const frame = F.bytes(frames[f]);
      for (let n = 16; n <= frame.length; n++) {
        m.reset();
        if (c.decode(cut(frame, n - 16), m)) ok++;
      }
      const limit = min(frame.length, 300);
      for (let i = 16; i < limit; i++) {
        const copy = frame.slice();
        for (let v = 0; v < 256; v += 37) {
          copy[i] = <u8>v;
          m.reset();
          if (c.decode(copy, m) && m.isRoutable()) {
            const out = c.mutate(copy, m, kvs(["k", "v"]));
            if (out != null) ok++;
          }
        }
      }
    }
    expect(ok).toBeGreaterThan(0);
  });
});

describe("dubbo codec: decoding from a prefix (readsOnly)", () => {
  it("decodes requests from their first bytes when only interface, method and version are read", () => {
    const c = new DubboCodec();
    expect(c.decodePrefix()).toBe(0, "every key by default: attachments need the whole frame");
    c.readsOnly(["interface", "method"]);
    const prefix = c.decodePrefix();
    expect(prefix).toBeGreaterThan(0);
    const frame = F.bytes(F.REQUEST_ECHO_4K);
    expect(c.frameSize(frame.subarray(0, prefix), MAX)).toBe(frame.length);
    const m = new Metadata();
    expect(c.decode(frame.subarray(0, prefix), m)).toBe(true, c.error);
    expect(m.kind).toBe(MessageKind.Call);
    expect(m.get("interface")).toBe("dev.meltemi.demo.GreetService");
    expect(m.get("method")).toBe("echo");
    expect(m.get("version")).toBe("1.0.0");
    expect(m.requestId).toBe(decoded(frame).requestId);
  });

  it("fails on a prefix too short for the call's names (the caller then takes the whole frame)", () => {
    const c = new DubboCodec();
    c.readsOnly(["method"]);
    const frame = F.bytes(F.REQUEST_ATTACHMENTS);
    expect(c.decode(frame.subarray(0, 40), new Metadata())).toBe(false);
  });

  it("keeps whole-frame decoding when an attachment is read", () => {
    const c = new DubboCodec();
    c.readsOnly(["method", "x-tenant"]);
    expect(c.decodePrefix()).toBe(0);
    const frame = F.bytes(F.REQUEST_ATTACHMENTS);
    expect(c.decode(frame.subarray(0, 200), new Metadata())).toBe(false, "a prefix is refused");
    const m = new Metadata();
    expect(c.decode(frame, m)).toBe(true, c.error);
    expect(m.get("x-tenant")).toBe("blue");
  });

  it("decodes responses from their first bytes whatever is read", () => {
    const c = new DubboCodec();
    c.readsResponses = true;
    expect(c.decodePrefix()).toBeGreaterThan(0);
    const frame = F.bytes(F.RESPONSE_ECHO_4K);
    const m = new Metadata();
    expect(c.decode(frame.subarray(0, c.decodePrefix()), m)).toBe(true, c.error);
    expect(m.kind).toBe(MessageKind.Reply);
  });
});
