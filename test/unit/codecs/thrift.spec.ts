import { ThriftCodec, Transport, Protocol } from "../../../assembly/codecs/thrift";
import { NEED_MORE, FRAME_ERROR, ErrorCode } from "../../../assembly/core/codec";
import { Metadata, MessageKind, KeyValue } from "../../../assembly/core/metadata";
import * as F from "../fixtures/thrift";

const MAX: i32 = 1 << 20;

function auto(): ThriftCodec {
  return new ThriftCodec(Transport.Auto, Protocol.Auto);
}

function decoded(hex: string): Metadata {
  return decodedBy(auto(), F.bytes(hex));
}

/** What `codec` decodes `frame` to, after measuring it whole. */
function decodedBy(codec: ThriftCodec, frame: Uint8Array): Metadata {
  const size = codec.frameSize(frame, MAX);
  expect(size).toBe(frame.length, "frameSize measures the whole message");
  const meta = new Metadata();
  expect(codec.decode(frame, meta)).toBe(true, codec.error);
  return meta;
}

describe("thrift codec: detection and framing", () => {
  it("detects framed binary", () => {
    const c = auto();
    c.frameSize(F.bytes(F.FRAMED_BINARY_CALL_SAYHELLO), MAX);
    expect(c.transport).toBe(Transport.Framed);
    expect(c.protocol).toBe(Protocol.Binary);
  });

  it("detects framed compact", () => {
    const c = auto();
    c.frameSize(F.bytes(F.FRAMED_COMPACT_CALL_SAYHELLO), MAX);
    expect(c.transport).toBe(Transport.Framed);
    expect(c.protocol).toBe(Protocol.Compact);
  });

  it("detects unframed binary and compact", () => {
    const b = auto();
    b.frameSize(F.bytes(F.BUFFERED_BINARY_CALL_SAYHELLO), MAX);
    expect(b.transport).toBe(Transport.Unframed);
    expect(b.protocol).toBe(Protocol.Binary);
    const c = auto();
    c.frameSize(F.bytes(F.BUFFERED_COMPACT_CALL_SAYHELLO), MAX);
    expect(c.transport).toBe(Transport.Unframed);
    expect(c.protocol).toBe(Protocol.Compact);
  });

  it("detects afresh after restartStream, and keeps what options pin", () => {
    // Per-request mode's server connections carry calls of clients of any transport in turn.
    const c = auto();
    c.frameSize(F.bytes(F.FRAMED_BINARY_CALL_SAYHELLO), MAX);
    expect(c.frameSize(F.bytes(F.BUFFERED_COMPACT_CALL_SAYHELLO), MAX)).toBe(FRAME_ERROR, "a connection keeps its transport");
    c.restartStream();
    const unframed = F.bytes(F.BUFFERED_COMPACT_CALL_SAYHELLO);
    expect(c.frameSize(unframed, MAX)).toBe(unframed.length);
    expect(c.transport).toBe(Transport.Unframed);
    expect(c.protocol).toBe(Protocol.Compact);
    const pinned = new ThriftCodec(Transport.Framed, Protocol.Auto);
    pinned.frameSize(F.bytes(F.FRAMED_COMPACT_CALL_SAYHELLO), MAX);
    pinned.restartStream();
    expect(pinned.transport).toBe(Transport.Framed);
    expect(pinned.protocol).toBe(Protocol.Auto);
  });

  it("waits for more data on every prefix of a message", () => {
    const all = [F.FRAMED_BINARY_CALL_SAYHELLO, F.FRAMED_COMPACT_CALL_SAYHELLO, F.BUFFERED_BINARY_CALL_SAYHELLO, F.BUFFERED_COMPACT_CALL_SAYHELLO, F.BUFFERED_BINARY_REPLY_DECLARED_EXCEPTION, F.BUFFERED_COMPACT_REPLY_DECLARED_EXCEPTION];
    for (let k = 0; k < all.length; k++) {
      const full = F.bytes(all[k]);
      for (let n = 0; n < full.length; n++) {
        const size = auto().frameSize(full.subarray(0, n), MAX);
        // A framed header tells the size early; an unframed message must be complete.
        expect(size == NEED_MORE || size == full.length).toBe(true, "prefix " + n.toString() + " of fixture " + k.toString());
      }
    }
  });

  it("measures one message when two are coalesced", () => {
    const one = F.bytes(F.BUFFERED_COMPACT_CALL_SAYHELLO);
    const two = new Uint8Array(one.length * 2);
    two.set(one, 0);
    two.set(one, one.length);
    expect(auto().frameSize(two, MAX)).toBe(one.length);
  });

  it("rejects a frame length over maxFrameBytes", () => {
    const c = auto();
    const frame = F.bytes("7fffffff80010001");
    expect(c.frameSize(frame, 4096)).toBe(FRAME_ERROR);
    expect(c.error).toBe("thrift: frame length 2147483647 exceeds maxFrameBytes 4096");
    expect(c.oversize).toBe(true, "counted as frame_too_large, not decode_error");
  });

  it("counts the 4-byte length prefix in maxFrameBytes, as the README says", () => {
    // 4 + 65532 fits 65536: measured from its length field, prefix included, not refused.
    expect(auto().frameSize(F.bytes("0000fffc80010001"), 65536)).toBe(65536);
    const c = auto();
    expect(c.frameSize(F.bytes("0000fffd80010001"), 65536)).toBe(FRAME_ERROR);
    expect(c.error).toBe("thrift: frame length 65533 exceeds maxFrameBytes 65536");
  });

  it("rejects an unframed message that outgrows maxFrameBytes", () => {
    const c = auto();
    // binary call "x" whose struct starts a 1000-byte string that never ends
    const frame = F.bytes("800100010000000178000000010b0001000003e8" + "61".repeat(40));
    expect(c.frameSize(frame, 32)).toBe(FRAME_ERROR);
    expect(c.error).toBe("thrift: unframed message of at least 60 bytes exceeds maxFrameBytes 32");
  });

  it("rejects unknown leading bytes", () => {
    const c = auto();
    expect(c.frameSize(F.bytes("474554202f20485454502f312e31"), MAX)).toBe(FRAME_ERROR);
    expect(c.error).toBe("thrift: unknown transport or protocol, first bytes 0x474554202f20");
    expect(c.oversize).toBe(false);
  });

  it("detects THeader, whose frames each name their protocol", () => {
    const c = auto();
    const frame = F.bytes(F.HEADER_COMPACT_CALL_SAYHELLO);
    expect(c.frameSize(frame, MAX)).toBe(frame.length);
    expect(c.transport).toBe(Transport.Header);
    expect(c.decode(frame, new Metadata())).toBe(true, c.error);
    expect(c.protocol).toBe(Protocol.Compact);
    const next = F.bytes(F.HEADER_BINARY_MUX_CALL);
    expect(c.frameSize(next, MAX)).toBe(next.length);
    expect(c.decode(next, new Metadata())).toBe(true, c.error);
    expect(c.protocol).toBe(Protocol.Binary);
  });

  it("rejects a negative string length in an unframed message", () => {
    const c = auto();
    expect(c.frameSize(F.bytes("800100010000000178000000010b0001ffffffff"), MAX)).toBe(FRAME_ERROR);
    expect(c.error).toBe("thrift: negative string length -1");
  });

  it("rejects an unknown field type in an unframed message", () => {
    const c = auto();
    expect(c.frameSize(F.bytes("8001000100000001780000000163000100"), MAX)).toBe(FRAME_ERROR);
    expect(c.error).toBe("thrift: unknown binary field type 99");
  });

  it("rejects nesting deeper than 64", () => {
    const c = auto();
    let hex = "80010001000000017800000001";
    for (let i = 0; i < 70; i++) hex += "0c0001"; // struct field holding a struct ...
    expect(c.frameSize(F.bytes(hex), MAX)).toBe(FRAME_ERROR);
    expect(c.error).toBe("thrift: nesting deeper than 64");
  });

  it("walks a hostile list count only as far as the bytes go", () => {
    const c = auto();
    // list<struct> claiming 2^31-1 elements, followed by 3 empty structs
    expect(c.frameSize(F.bytes("800100010000000178000000010f00010c7fffffff000000"), MAX)).toBe(NEED_MORE);
  });

  it("keeps an unframed pin from being taken for framed", () => {
    const c = new ThriftCodec(Transport.Unframed, Protocol.Auto);
    expect(c.frameSize(F.bytes(F.FRAMED_BINARY_CALL_SAYHELLO), MAX)).toBe(FRAME_ERROR);
    expect(c.error).toBe("thrift: unframed stream does not start with a binary or compact message, first byte 0x00");
  });
});

describe("thrift codec: decode", () => {
  it("decodes method, seqid and kind of a call in every transport and protocol", () => {
    const all = [F.FRAMED_BINARY_CALL_SAYHELLO, F.FRAMED_COMPACT_CALL_SAYHELLO, F.BUFFERED_BINARY_CALL_SAYHELLO, F.BUFFERED_COMPACT_CALL_SAYHELLO];
    for (let i = 0; i < all.length; i++) {
      const m = decoded(all[i]);
      expect(m.get("method")).toBe("sayHello");
      expect(m.get("service")).toBeNull();
      expect(m.requestId).toBe(7);
      expect(m.kind).toBe(MessageKind.Call);
      expect(m.isRequest).toBe(true);
      expect(m.expectsReply).toBe(true);
    }
  });

  it("splits multiplexed names into service and method", () => {
    const all = [F.FRAMED_BINARY_MUX_CALL, F.FRAMED_COMPACT_MUX_CALL, F.BUFFERED_BINARY_MUX_CALL, F.BUFFERED_COMPACT_MUX_CALL];
    for (let i = 0; i < all.length; i++) {
      const m = decoded(all[i]);
      expect(m.get("service")).toBe("Greeter");
      expect(m.get("method")).toBe("sayHello");
      expect(m.requestId).toBe(8);
    }
  });

  it("decodes names on one connection alike, whether seen before or not (framed binary)", () => {
    // One codec, as on a connection: the names it has seen come from its memo.
    const codec = auto();
    const order = [F.FRAMED_BINARY_MUX_CALL, F.FRAMED_BINARY_CALL_SAYHELLO, F.FRAMED_BINARY_MUX_CALL, F.FRAMED_BINARY_CALL_SAYHELLO];
    for (let i = 0; i < order.length; i++) {
      const frame = F.bytes(order[i]);
      expect(codec.frameSize(frame, MAX)).toBe(frame.length);
      const m = new Metadata();
      expect(codec.decode(frame, m)).toBe(true, codec.error);
      expect(m.get("method")).toBe("sayHello");
      if (i % 2 == 0) {
        expect(m.get("service")).toBe("Greeter");
        expect(m.requestId).toBe(8);
      } else {
        expect(m.get("service")).toBeNull();
        expect(m.requestId).toBe(7);
      }
    }
  });

  it("marks oneway calls as expecting no reply", () => {
    const m = decoded(F.FRAMED_COMPACT_ONEWAY_PING);
    expect(m.kind).toBe(MessageKind.Oneway);
    expect(m.expectsReply).toBe(false);
  });

  it("tells replies, declared exceptions and application exceptions apart", () => {
    const protocols = ["FRAMED_BINARY", "FRAMED_COMPACT", "BUFFERED_BINARY", "BUFFERED_COMPACT"];
    const replies = [F.FRAMED_BINARY_REPLY_SAYHELLO, F.FRAMED_COMPACT_REPLY_SAYHELLO, F.BUFFERED_BINARY_REPLY_SAYHELLO, F.BUFFERED_COMPACT_REPLY_SAYHELLO];
    const declared = [F.FRAMED_BINARY_REPLY_DECLARED_EXCEPTION, F.FRAMED_COMPACT_REPLY_DECLARED_EXCEPTION, F.BUFFERED_BINARY_REPLY_DECLARED_EXCEPTION, F.BUFFERED_COMPACT_REPLY_DECLARED_EXCEPTION];
    const app = [F.FRAMED_BINARY_APP_EXCEPTION, F.FRAMED_COMPACT_APP_EXCEPTION, F.BUFFERED_BINARY_APP_EXCEPTION, F.BUFFERED_COMPACT_APP_EXCEPTION];
    for (let i = 0; i < protocols.length; i++) {
      const r = decoded(replies[i]);
      expect(r.kind).toBe(MessageKind.Reply, protocols[i]);
      expect(r.isRequest).toBe(false);
      expect(r.requestId).toBe(7);
      expect(decoded(declared[i]).kind).toBe(MessageKind.Exception, protocols[i]);
      const a = decoded(app[i]);
      expect(a.kind).toBe(MessageKind.Exception, protocols[i]);
      expect(a.requestId).toBe(11);
    }
  });

  it("rejects a bad binary version", () => {
    const c = new ThriftCodec(Transport.Framed, Protocol.Binary);
    expect(c.decode(F.bytes("0000000880020001000000017800000001"), new Metadata())).toBe(false);
    expect(c.error).toBe("thrift: bad binary protocol version 0x80020001");
  });

  it("rejects a method name longer than the frame", () => {
    const c = new ThriftCodec(Transport.Framed, Protocol.Binary);
    expect(c.decode(F.bytes("0000000c800100010000ffff78000000"), new Metadata())).toBe(false);
    expect(c.error).toBe("thrift: truncated or invalid method name length 65535");
  });

  it("rejects an unknown message type", () => {
    const c = new ThriftCodec(Transport.Framed, Protocol.Binary);
    expect(c.decode(F.bytes("0000000d80010009000000017800000001"), new Metadata())).toBe(false);
    expect(c.error).toBe("thrift: unknown message type 9");
  });
});

/** A THeader frame around the binary call of HEADER_BINARY_MUX_CALL with `header` (hex) as its header. */
function withHeader(header: string): Uint8Array {
  const message = F.bytes(F.HEADER_BINARY_MUX_CALL).subarray(18); // length, prefix, one header word
  const head = F.bytes(header);
  const frame = new Uint8Array(14 + head.length + message.length);
  const len = frame.length - 4;
  frame[2] = <u8>(len >> 8);
  frame[3] = <u8>len;
  frame[4] = 0x0f;
  frame[5] = 0xff;
  frame[13] = <u8>(head.length / 4);
  frame.set(head, 14);
  frame.set(message, 14 + head.length);
  return frame;
}

/** What `frame` decodes to once `c` wrote k=v into its THeader. */
function withKv(c: ThriftCodec, frame: Uint8Array): Metadata {
  return decodedBy(auto(), c.mutate(frame, new Metadata(), [new KeyValue("k", "v")])!);
}

function headerFails(frame: Uint8Array, why: string): void {
  const c = new ThriftCodec(Transport.Header, Protocol.Auto);
  expect(c.frameSize(frame, MAX)).toBe(frame.length);
  expect(c.decode(frame, new Metadata())).toBe(false);
  expect(c.error).toBe(why);
}

describe("thrift codec: THeader", () => {
  it("puts the header's key/values into the metadata beside method and seqid, in both protocols", () => {
    const kinds = [F.HEADER_BINARY_CALL_SAYHELLO, F.HEADER_COMPACT_CALL_SAYHELLO];
    for (let i = 0; i < kinds.length; i++) {
      const m = decoded(kinds[i]);
      expect(m.get("method")).toBe("sayHello");
      expect(m.requestId).toBe(7);
      expect(m.kind).toBe(MessageKind.Call);
      expect(m.get("tenant")).toBe("blue");
      expect(m.get("request-id")).toBe("r-42");
    }
    const mux = decoded(F.HEADER_COMPACT_MUX_CALL);
    expect(mux.get("service")).toBe("Greeter");
    expect(mux.get("tenant")).toBeNull();
    const reply = decoded(F.HEADER_BINARY_REPLY_SAYHELLO);
    expect(reply.isRequest).toBe(false);
    expect(reply.kind).toBe(MessageKind.Reply);
  });

  it("leaves out the key/values nothing reads (readsOnly), keeping method and seqid", () => {
    const c = auto();
    c.readsOnly(["tenant"]);
    const frame = F.bytes(F.HEADER_BINARY_CALL_SAYHELLO);
    const m = decodedBy(c, frame);
    expect(m.get("tenant")).toBe("blue");
    expect(m.get("request-id")).toBeNull("not read by anything: no string made");
    expect(m.get("method")).toBe("sayHello");
    expect(m.requestId).toBe(7);
    // A rewrite still carries every key/value, read or not.
    const back = decodedBy(auto(), c.mutate(frame, m, [new KeyValue("x", "y")])!);
    expect(back.get("request-id")).toBe("r-42");
    expect(back.get("x")).toBe("y");
  });

  it("lets the message's method win over a header of the same name", () => {
    // header: binary, no transforms, one key/value method=evil, padded to 20 bytes
    const m = new Metadata();
    const c = new ThriftCodec(Transport.Header, Protocol.Auto);
    const frame = withHeader("000001" + "01" + "066d6574686f64" + "046576696c" + "00000000");
    expect(c.frameSize(frame, MAX)).toBe(frame.length);
    expect(c.decode(frame, m)).toBe(true, c.error);
    expect(m.get("method")).toBe("sayHello");
  });

  it("answers in THeader, with the request's protocol and seqid in frame and message", () => {
    const kinds = [F.HEADER_BINARY_MUX_CALL, F.HEADER_COMPACT_MUX_CALL];
    for (let i = 0; i < kinds.length; i++) {
      const codec = auto();
      const req = F.bytes(kinds[i]);
      codec.frameSize(req, MAX);
      const meta = new Metadata();
      expect(codec.decode(req, meta)).toBe(true, codec.error);
      const protocol = codec.protocol;
      const reply = codec.errorReply(meta, ErrorCode.Unauthorized, "meltemi: denied");
      // the frame's sequence number is the request's
      expect((<u32>reply[8] << 24) | (<u32>reply[9] << 16) | (<u32>reply[10] << 8) | <u32>reply[11]).toBe(8);
      const back = auto();
      expect(back.frameSize(reply, MAX)).toBe(reply.length);
      const m = new Metadata();
      expect(back.decode(reply, m)).toBe(true, back.error);
      expect(back.transport).toBe(Transport.Header);
      expect(back.protocol).toBe(protocol);
      expect(m.kind).toBe(MessageKind.Exception);
      expect(m.requestId).toBe(8);
      const probe = codec.localReplyProbe(meta)!;
      const p = new Metadata();
      expect(back.frameSize(probe, MAX)).toBe(probe.length);
      expect(back.decode(probe, p)).toBe(true, back.error);
      expect(p.requestId).toBe(8);
      expect(p.get("service")).toBe("Greeter");
    }
  });

  it("rewrites header key/values in place and adds new ones, the message byte for byte", () => {
    const c = new ThriftCodec(Transport.Header, Protocol.Auto);
    expect(c.canMutate()).toBe(true);
    const frame = F.bytes(F.HEADER_COMPACT_CALL_SAYHELLO);
    const meta = new Metadata();
    expect(c.decode(frame, meta)).toBe(true, c.error);
    const changed = c.mutate(frame, meta, [new KeyValue("tenant", "green"), new KeyValue("x-from", "meltemi")])!;
    expect(changed.length).toBeGreaterThan(frame.length);
    const m = decodedBy(auto(), changed);
    expect(m.get("tenant")).toBe("green");
    expect(m.get("request-id")).toBe("r-42");
    expect(m.get("x-from")).toBe("meltemi");
    expect(m.keys.indexOf("tenant")).toBeLessThan(m.keys.indexOf("request-id"), "in place, in order");
    expect(m.get("method")).toBe("sayHello");
    expect(m.requestId).toBe(7);
    // The message after the header is the original's, byte for byte.
    const was = frame.subarray(14 + <i32>frame[13] * 4);
    const now = changed.subarray(14 + <i32>changed[13] * 4);
    expect(now.length).toBe(was.length, "the message's length");
    let same = true;
    for (let i = 0; i < was.length && same; i++) same = now[i] == was[i];
    expect(same).toBe(true, "the message's bytes");
    // A frame without key/values gains a block; one with a persistent block keeps it.
    const n = withKv(c, F.bytes(F.HEADER_BINARY_MUX_CALL));
    expect(n.get("k")).toBe("v");
    expect(n.get("service")).toBe("Greeter");
    const p = withKv(c, withHeader("000002" + "01" + "0170" + "0131" + "00000000")); // persistent p=1, padded to 12
    expect(p.get("p")).toBe("1");
    expect(p.get("k")).toBe("v");
    // Not THeader: nothing to carry them in.
    expect(new ThriftCodec(Transport.Framed, Protocol.Binary).canMutate()).toBe(false);
  });

  it("refuses transforms, unknown protocols and headers that do not fit, naming what is wrong", () => {
    headerFails(withHeader("00010100"), "thrift: THeader transforms (zlib, ...) are not supported: the frame says 1");
    headerFails(withHeader("01000000"), "thrift: THeader protocol id 1 (binary is 0, compact 2)");
    headerFails(withHeader("00000105" + "0161016200000000"), "thrift: THeader header key/value 3 of 5 runs past the header");
    const long = withHeader("00000000");
    long[13] = 200; // 800 header bytes in a frame of 40
    headerFails(long, "thrift: THeader header of 800 bytes is longer than the frame");
    headerFails(withHeader("000001" + "41" + "0000".repeat(65) + "000000"), "thrift: THeader more than 64 header key/values");
    const plain = F.bytes(F.FRAMED_BINARY_CALL_SAYHELLO);
    headerFails(plain, "thrift: THeader frame without the THeader magic 0x0fff (0x8001)");
  });
});

describe("thrift codec: error replies", () => {
  it("builds a TApplicationException that decodes as an exception with the request's seqid", () => {
    const kinds = [F.FRAMED_BINARY_MUX_CALL, F.FRAMED_COMPACT_MUX_CALL, F.BUFFERED_BINARY_MUX_CALL, F.BUFFERED_COMPACT_MUX_CALL];
    for (let i = 0; i < kinds.length; i++) {
      const codec = auto();
      const req = F.bytes(kinds[i]);
      codec.frameSize(req, MAX);
      const meta = new Metadata();
      codec.decode(req, meta);
      const reply = codec.errorReply(meta, ErrorCode.Unauthorized, "meltemi: denied");
      expect(codec.frameSize(reply, MAX)).toBe(reply.length);
      const back = new Metadata();
      expect(codec.decode(reply, back)).toBe(true);
      expect(back.kind).toBe(MessageKind.Exception);
      expect(back.requestId).toBe(8);
      // The multiplexed client matches replies by the bare method name.
      expect(back.get("method")).toBe("sayHello");
      expect(back.get("service")).toBeNull();
    }
  });
});

describe("thrift codec: hostile bytes", () => {
  it("never traps on any truncation or any single corrupted byte of real messages", () => {
    const all = [F.FRAMED_BINARY_MUX_CALL, F.FRAMED_COMPACT_MUX_CALL, F.BUFFERED_BINARY_REPLY_DECLARED_EXCEPTION,
      F.BUFFERED_COMPACT_REPLY_DECLARED_EXCEPTION, F.BUFFERED_BINARY_APP_EXCEPTION, F.BUFFERED_COMPACT_APP_EXCEPTION,
      F.HEADER_BINARY_CALL_SAYHELLO, F.HEADER_COMPACT_CALL_SAYHELLO];
    let decodedOk = 0;
    let rejected = 0;
    for (let k = 0; k < all.length; k++) {
      const msg = F.bytes(all[k]);
      for (let i = 0; i < msg.length; i++) {
        for (let v = 0; v < 256; v += 17) {
          const copy = msg.slice();
          copy[i] = <u8>v;
          for (let n = 1; n <= copy.length; n += 7) {
            const c = auto();
            const part = copy.subarray(0, n);
            const size = c.frameSize(part, 4096);
            if (size == FRAME_ERROR) {
              rejected++;
              expect(c.error.length).toBeGreaterThan(0, "a rejection says why");
              continue;
            }
            if (size <= 0 || size > part.length) continue;
            const m = new Metadata();
            if (c.decode(part.subarray(0, size), m)) decodedOk++;
            else rejected++;
            // Whatever decoded must be answerable (and, under THeader, rewritable) without trapping too.
            c.errorReply(m, ErrorCode.BadRequest, "x");
            c.localReplyProbe(m);
            c.mutate(part.subarray(0, size), m, [new KeyValue("tenant", "x")]);
          }
        }
      }
    }
    expect(decodedOk).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });
});
