import { FrameStream, Finish } from "../../../assembly/core/stream";
import { ThriftCodec, Transport, Protocol } from "../../../assembly/codecs/thrift";
import { NEED_MORE, FRAME_ERROR } from "../../../assembly/core/codec";
import * as F from "../fixtures/thrift";
import { hexOf, concat } from "../bytes";

const MAX: i32 = 1 << 20;

/** Feeds `input` in reads of `step` bytes; returns the forwarded bytes and the frame count. */
function feed(input: Uint8Array, step: i32, s: FrameStream, codec: ThriftCodec, frames: i32[]): Uint8Array {
  let out = new Uint8Array(0);
  for (let pos = 0; pos < input.length; pos += step) {
    const chunk = input.slice(pos, min(pos + step, input.length));
    s.begin(chunk);
    while (s.next(codec, MAX) > 0) frames[0]++;
    const replaced = s.finish(Finish.Carry);
    out = concat(out, replaced != null ? replaced : chunk);
  }
  return out;
}

describe("frame stream", () => {
  it("leaves the host buffer alone when a read holds whole frames", () => {
    const s = new FrameStream();
    const codec = new ThriftCodec(Transport.Auto, Protocol.Auto);
    const two = concat(F.bytes(F.FRAMED_BINARY_CALL_SAYHELLO), F.bytes(F.FRAMED_BINARY_MUX_CALL));
    s.begin(two);
    expect(s.next(codec, MAX)).toBeGreaterThan(0);
    expect(s.next(codec, MAX)).toBeGreaterThan(0);
    expect(s.next(codec, MAX)).toBe(NEED_MORE);
    expect(s.finish(Finish.Carry)).toBeNull();
    expect(s.carried()).toBe(0);
  });

  it("forwards the same bytes and cuts the same frames whatever the read size", () => {
    const stream = concat(concat(F.bytes(F.BUFFERED_COMPACT_CALL_SAYHELLO), F.bytes(F.BUFFERED_COMPACT_MUX_CALL)), F.bytes(F.BUFFERED_COMPACT_ONEWAY_PING));
    for (let step = 1; step <= stream.length; step++) {
      const frames = [0];
      const out = feed(stream, step, new FrameStream(), new ThriftCodec(Transport.Auto, Protocol.Auto), frames);
      expect(hexOf(out)).toBe(hexOf(stream), "read size " + step.toString());
      expect(frames[0]).toBe(3, "read size " + step.toString());
    }
  });

  it("shows each cut frame's own bytes, from a read and from carried bytes alike", () => {
    const a = F.bytes(F.FRAMED_BINARY_CALL_SAYHELLO);
    const b = F.bytes(F.FRAMED_BINARY_MUX_CALL);
    const both = concat(a, b);
    const codec = new ThriftCodec(Transport.Auto, Protocol.Auto);
    for (let split = 1; split < both.length; split++) {
      const s = new FrameStream();
      const seen: string[] = [];
      s.begin(both.slice(0, split));
      while (s.next(codec, MAX) > 0) seen.push(hexOf(s.frame()));
      s.finish(Finish.Carry);
      s.begin(both.slice(split));
      while (s.next(codec, MAX) > 0) seen.push(hexOf(s.frame()));
      s.finish(Finish.Carry);
      expect(seen.join(" ")).toBe(hexOf(a) + " " + hexOf(b), "split at " + split.toString());
    }
  });

  it("splices a replaced frame and keeps the others", () => {
    const s = new FrameStream();
    const codec = new ThriftCodec(Transport.Auto, Protocol.Auto);
    const a = F.bytes(F.FRAMED_BINARY_CALL_SAYHELLO);
    const b = F.bytes(F.FRAMED_BINARY_MUX_CALL);
    s.begin(concat(a, b));
    s.next(codec, MAX);
    s.replaceFrame(F.bytes("deadbeef"));
    s.next(codec, MAX);
    const out = s.finish(Finish.Carry);
    expect(out).not.toBeNull();
    expect(hexOf(out!)).toBe("deadbeef" + hexOf(b));
  });

  it("drops what follows a bad frame when discarding, and forwards a partial frame at end of stream", () => {
    const codec = new ThriftCodec(Transport.Auto, Protocol.Auto);
    const good = F.bytes(F.FRAMED_BINARY_CALL_SAYHELLO);
    const s = new FrameStream();
    s.begin(concat(good, F.bytes("7fffffff80")));
    expect(s.next(codec, 4096)).toBeGreaterThan(0);
    expect(s.next(codec, 4096)).toBe(FRAME_ERROR);
    expect(hexOf(s.finish(Finish.Discard)!)).toBe(hexOf(good));
    expect(s.carried()).toBe(0);

    const t = new FrameStream();
    const partial = good.subarray(0, 10);
    t.begin(partial);
    expect(t.next(codec, MAX)).toBe(NEED_MORE);
    // Nothing to splice: the host buffer (the partial frame) is forwarded as it is.
    expect(t.finish(Finish.Flush)).toBeNull();
    expect(t.carried()).toBe(0);
  });
});
