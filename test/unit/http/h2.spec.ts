import {
  H2FrameReader, FrameType, Flag, SettingId, H2Error, CLIENT_PREFACE,
  writePreface, writeSettings, writeSettingsAck, writeWindowUpdate, writeHeaders, writeData, writePing,
  writeFrameHeader,
  settingsCount, settingId, settingValue, windowIncrement, rstErrorCode, goawayLastStreamId, goawayErrorCode,
  goawayDebug,
} from "../../../assembly/http/h2";
import { HpackDecoder } from "../../../assembly/http/hpack";
import { HeaderList } from "../../../assembly/http/headers";
import { ByteWriter, Window } from "../../../assembly/core/bytes";
import { bytes, hexOf, concat } from "../bytes";

/** A PING's opaque data as a big-endian number (the role echoes it as it came, unread). */
function pingOpaque(payload: Uint8Array): u64 {
  return payload.length >= 8 ? bswap<u64>(load<u64>(payload.dataStart)) : 0;
}

/** One line per frame: `type flags stream payload-hex`. */
function describe1(r: H2FrameReader): string {
  return r.type.toString() + " " + r.flags.toString() + " " + r.streamId.toString() + " " + hexOf(r.payload) + "\n";
}

/** Feeds `input` in chunks of `step` bytes; returns the frames read, then "error: ..." if one stopped it. */
function readAll(input: Uint8Array, step: i32, r: H2FrameReader = new H2FrameReader()): string {
  let out = "";
  for (let pos = 0; pos < input.length; pos += step) {
    r.begin(input.slice(pos, min(pos + step, input.length)));
    while (true) {
      const k = r.next();
      if (k == 1) {
        out += describe1(r);
        continue;
      }
      if (k < 0) return out + "error: " + r.error;
      break;
    }
  }
  return out;
}

/** The error reading `hex` in one chunk stops with. */
function failure(hex: string, r: H2FrameReader = new H2FrameReader()): string {
  const out = readAll(bytes(hex), 1 << 30, r);
  const at = out.indexOf("error: ");
  expect(at >= 0).toBe(true, "reading " + hex + " should fail, read: " + out);
  return out.substr(at + 7);
}

function frame(len: i32, type: i32, flags: i32, stream: u32, payloadHex: string): string {
  const w = new ByteWriter();
  writeFrameHeader(w, len, type, flags, stream);
  return hexOf(w.toBytes()) + payloadHex.replaceAll(" ", "");
}

// What nghttp2 (Node's http2 server) wrote answering one GET, after a client SETTINGS with
// HEADER_TABLE_SIZE 0: SETTINGS, SETTINGS ACK, HEADERS (size update 0, :status 200, literals), DATA.
const NGHTTP2_BLOCK = "20880f108b1d75d0620d263d4c4d65640095f2b16aee7f4b5b5a1361474ac82d9dcc42ac93525f01330f1296d07abe941054d444a8200595040b8166e082a62d1bff0f27842d5dcfeb";
const NGHTTP2 = "000000040000000000" + "000000040100000000" + "000049010400000001" + NGHTTP2_BLOCK + "000005000100000001" + "68656c6c6f";

const NGHTTP2_FRAMES = "4 0 0 \n4 1 0 \n1 4 1 " + NGHTTP2_BLOCK + "\n0 1 1 68656c6c6f\n";

describe("h2 writers", () => {
  it("write the client preface", () => {
    const w = new ByteWriter();
    writePreface(w);
    expect(w.len).toBe(24);
    expect(hexOf(w.toBytes())).toBe("505249202a20485454502f322e300d0a0d0a534d0d0a0d0a");
    expect(CLIENT_PREFACE.length).toBe(24);
  });

  it("write SETTINGS and its ACK", () => {
    const w = new ByteWriter();
    writeSettings(w, [<u16>SettingId.HEADER_TABLE_SIZE, <u16>SettingId.ENABLE_PUSH, <u16>SettingId.INITIAL_WINDOW_SIZE], [0, 0, 0x7fffffff]);
    writeSettingsAck(w);
    writeSettings(w, [], []);
    expect(hexOf(w.toBytes())).toBe("000012040000000000" + "000100000000" + "000200000000" + "00047fffffff" + "000000040100000000" + "000000040000000000");
  });

  it("write WINDOW_UPDATE and PING", () => {
    const w = new ByteWriter();
    writeWindowUpdate(w, 0, 0x7fff0000);
    writeWindowUpdate(w, 3, 1);
    writePing(w, false, 0x0102030405060708);
    writePing(w, true, 0);
    expect(hexOf(w.toBytes())).toBe(
      "000004080000000000" + "7fff0000" + "000004080000000003" + "00000001" +
      "000008060000000000" + "0102030405060708" + "000008060100000000" + "0000000000000000",
    );
  });

  it("write a header block as one HEADERS frame when it fits", () => {
    const w = new ByteWriter();
    writeHeaders(w, 1, bytes("8286"), true, 16384);
    writeHeaders(w, 3, bytes("82"), false, 16384);
    writeHeaders(w, 5, new Uint8Array(0), false, 16384);
    expect(hexOf(w.toBytes())).toBe("000002010500000001" + "8286" + "000001010400000003" + "82" + "000000010400000005");
  });

  it("split a header block into HEADERS and CONTINUATIONs", () => {
    const w = new ByteWriter();
    writeHeaders(w, 1, bytes("00112233445566778899"), true, 4);
    expect(hexOf(w.toBytes())).toBe("000004010100000001" + "00112233" + "000004090000000001" + "44556677" + "000002090400000001" + "8899");
    w.clear();
    writeHeaders(w, 1, bytes("0011223344556677"), false, 4);
    expect(hexOf(w.toBytes())).toBe("000004010000000001" + "00112233" + "000004090400000001" + "44556677");
  });

  it("split DATA at maxFrameSize, END_STREAM on the last frame only", () => {
    const w = new ByteWriter();
    writeData(w, 1, bytes("0011223344"), true, 2);
    expect(hexOf(w.toBytes())).toBe("000002000000000001" + "0011" + "000002000000000001" + "2233" + "000001000100000001" + "44");
    w.clear();
    writeData(w, 1, bytes("0011"), false, 16384);
    expect(hexOf(w.toBytes())).toBe("000002000000000001" + "0011");
  });

  it("write an empty DATA only to end the stream", () => {
    const w = new ByteWriter();
    writeData(w, 3, new Uint8Array(0), false, 16384);
    expect(w.len).toBe(0);
    writeData(w, 3, new Uint8Array(0), true, 16384);
    expect(hexOf(w.toBytes())).toBe("000000000100000003");
  });

  it("clamp maxFrameSize to the protocol's range", () => {
    const w = new ByteWriter();
    writeData(w, 1, new Uint8Array(16385), false, 0);
    expect(w.len).toBe(9 + 16384 + 9 + 1, "0 means the default 16384");
  });
});

describe("h2 frame reader: what nghttp2 sends", () => {
  it("reads SETTINGS, ACK, HEADERS and DATA in one chunk, as views into it", () => {
    const input = bytes(NGHTTP2);
    const r = new H2FrameReader();
    r.begin(input);
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.SETTINGS);
    expect(settingsCount(r.payload)).toBe(0);
    expect(r.next()).toBe(1);
    expect(r.flags & Flag.ACK).toBe(Flag.ACK);
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.HEADERS);
    expect(changetype<usize>(r.payload.buffer)).toBe(changetype<usize>(input.buffer), "a view, not a copy");
    const h = new HeaderList();
    const d = new HpackDecoder(0);
    expect(d.decode(r.payload, h)).toBe(true, d.error);
    expect(h.get(":status")).toBe("200");
    expect(h.get("content-type")).toBe("application/grpc");
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.DATA);
    expect(r.flags).toBe(Flag.END_STREAM);
    expect(String.UTF8.decodeUnsafe(r.payload.dataStart, <usize>r.payload.length)).toBe("hello");
    expect(r.next()).toBe(0);
    expect(r.carried()).toBe(0);
  });

  it("reads the same frames whatever the chunk size, byte by byte included", () => {
    const input = bytes(NGHTTP2);
    for (let step = 1; step <= input.length; step++) {
      expect(readAll(input, step)).toBe(NGHTTP2_FRAMES, "chunk size " + step.toString());
    }
  });

  it("reads many frames coalesced in one chunk", () => {
    let hex = "";
    for (let i = 0; i < 100; i++) hex += frame(8, FrameType.PING, 0, 0, "00000000000000" + (i < 16 ? "0" : "") + i.toString(16));
    const r = new H2FrameReader();
    r.begin(bytes(hex));
    let n = 0;
    while (r.next() == 1) {
      expect(pingOpaque(r.payload)).toBe(<u64>n);
      n++;
    }
    expect(n).toBe(100);
  });

  it("carries a partial frame across begin() and reads it whole", () => {
    const input = bytes(NGHTTP2);
    const r = new H2FrameReader();
    r.begin(input.slice(0, 30)); // two SETTINGS and 12 bytes of HEADERS
    expect(r.next()).toBe(1);
    expect(r.next()).toBe(1);
    expect(r.next()).toBe(0);
    expect(r.carried()).toBe(12);
    r.begin(input.slice(30));
    expect(r.next()).toBe(1);
    expect(hexOf(r.payload)).toBe(NGHTTP2_BLOCK);
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.DATA);
    expect(r.next()).toBe(0);
  });

  it("keeps the unread rest of a chunk when begin() comes early", () => {
    const input = bytes(NGHTTP2);
    const r = new H2FrameReader();
    r.begin(input.slice(0, 40));
    expect(r.next()).toBe(1); // the rest (SETTINGS ACK, part of HEADERS) is not read yet
    r.begin(input.slice(40));
    let out = "";
    while (r.next() == 1) out += describe1(r);
    expect(out).toBe("4 1 0 \n1 4 1 " + NGHTTP2_BLOCK + "\n0 1 1 68656c6c6f\n");
  });

  it("reads chunks that come in one view moved onto each read's bytes, as abi.getDataBuffer hands them", () => {
    const input = bytes(NGHTTP2);
    const scratch = new Uint8Array(input.length);
    const view = new Window();
    const r = new H2FrameReader();
    let out = "";
    // A short first read, then a longer one in the same view: the first was read to its end.
    for (let pos = 0, step = 9; pos < input.length; pos += step, step = 64) {
      const n = min(step, input.length - pos);
      scratch.set(input.subarray(pos, pos + n));
      r.begin(view.moveTo(scratch, 0, n));
      while (r.next() == 1) out += describe1(r);
    }
    expect(out).toBe(readAll(input, input.length));
  });
});

describe("h2 frame reader: every frame type", () => {
  it("delivers each control frame with its fields", () => {
    const hex = frame(12, FrameType.SETTINGS, 0, 0, "000100001000 000400ffffff") +
      frame(4, FrameType.WINDOW_UPDATE, 0, 0, "80000100") +
      frame(4, FrameType.RST_STREAM, 0, 3, "00000008") +
      frame(8, FrameType.PING, Flag.ACK, 0, "0102030405060708") +
      frame(12, FrameType.GOAWAY, 0, 0, "80000007 0000000b 6361 6c6d") + // reserved bit set on the id
      frame(5, FrameType.PRIORITY, 0, 5, "0000000310");
    const r = new H2FrameReader();
    r.begin(bytes(hex));
    expect(r.next()).toBe(1);
    expect(settingsCount(r.payload)).toBe(2);
    expect(settingId(r.payload, 0)).toBe(SettingId.HEADER_TABLE_SIZE);
    expect(settingValue(r.payload, 0)).toBe(4096);
    expect(settingId(r.payload, 1)).toBe(SettingId.INITIAL_WINDOW_SIZE);
    expect(settingValue(r.payload, 1)).toBe(0xffffff);
    expect(settingId(r.payload, 2)).toBe(0, "out of range reads 0");
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.WINDOW_UPDATE);
    expect(windowIncrement(r.payload)).toBe(0x100, "the reserved bit is masked");
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.RST_STREAM);
    expect(r.streamId).toBe(3);
    expect(rstErrorCode(r.payload)).toBe(H2Error.CANCEL);
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.PING);
    expect(r.flags).toBe(Flag.ACK);
    expect(pingOpaque(r.payload)).toBe(0x0102030405060708);
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.GOAWAY);
    expect(goawayLastStreamId(r.payload)).toBe(7);
    expect(goawayErrorCode(r.payload)).toBe(H2Error.ENHANCE_YOUR_CALM);
    expect(hexOf(goawayDebug(r.payload))).toBe("63616c6d");
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.PRIORITY);
    expect(r.streamId).toBe(5);
    expect(r.next()).toBe(0);
  });

  it("masks the reserved bit of the stream id", () => {
    expect(readAll(bytes("000001000080000001" + "aa"), 100)).toBe("0 0 1 aa\n");
  });

  it("delivers unknown frame types as they are", () => {
    expect(readAll(bytes(frame(3, 0xa, 0xff, 9, "010203") + frame(0, 0xfa, 0, 0, "")), 100)).toBe("10 255 9 010203\n250 0 0 \n");
  });

  it("reads payload accessors of short payloads as 0", () => {
    const short = bytes("0001");
    expect(windowIncrement(short)).toBe(0);
    expect(rstErrorCode(short)).toBe(0);
    expect(goawayLastStreamId(short)).toBe(0);
    expect(goawayErrorCode(short)).toBe(0);
    expect(goawayDebug(short).length).toBe(0);
    expect(pingOpaque(short)).toBe(0);
    expect(settingValue(short, 0)).toBe(0);
  });
});

describe("h2 frame reader: padding and priority", () => {
  it("strips DATA padding", () => {
    expect(readAll(bytes(frame(6, FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, "03 aabb 000000")), 100)).toBe("0 1 1 aabb\n");
    expect(readAll(bytes(frame(1, FrameType.DATA, Flag.PADDED, 1, "00")), 100)).toBe("0 0 1 \n");
    expect(readAll(bytes(frame(4, FrameType.DATA, Flag.PADDED, 1, "03 000000")), 100)).toBe("0 0 1 \n");
  });

  it("strips HEADERS padding and priority fields", () => {
    expect(readAll(bytes(frame(5, FrameType.HEADERS, Flag.PADDED | Flag.END_HEADERS, 1, "02 8286 0000")), 100)).toBe("1 4 1 8286\n");
    expect(readAll(bytes(frame(7, FrameType.HEADERS, Flag.PRIORITY | Flag.END_HEADERS | Flag.END_STREAM, 3, "80000001 ff 8286")), 100))
      .toBe("1 5 3 8286\n");
    expect(readAll(bytes(frame(8, FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY | Flag.END_HEADERS, 3, "01 00000000 10 82 00")), 100))
      .toBe("1 4 3 82\n");
  });

  it("rejects padding that does not fit", () => {
    expect(failure(frame(3, FrameType.DATA, Flag.PADDED, 1, "03 0000"))).toBe("h2: DATA pad length 3 does not fit a payload of 3 bytes");
    expect(failure(frame(0, FrameType.DATA, Flag.PADDED, 1, ""))).toBe("h2: padded DATA frame has no pad length");
    expect(failure(frame(3, FrameType.HEADERS, Flag.PADDED | Flag.END_HEADERS, 1, "03 0000"))).toBe("h2: HEADERS pad length 3 does not fit a payload of 3 bytes");
    expect(failure(frame(8, FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY | Flag.END_HEADERS, 1, "03 00000000 10 00 00")))
      .toBe("h2: HEADERS pad length 3 does not fit a payload of 8 bytes");
    expect(failure(frame(4, FrameType.HEADERS, Flag.PRIORITY | Flag.END_HEADERS, 1, "00000000")))
      .toBe("h2: HEADERS payload of 4 bytes is shorter than its pad length and priority fields (5 bytes)");
    expect(failure(frame(0, FrameType.HEADERS, Flag.PADDED | Flag.END_HEADERS, 1, "")))
      .toBe("h2: HEADERS payload of 0 bytes is shorter than its pad length and priority fields (1 bytes)");
  });
});

describe("h2 frame reader: header blocks", () => {
  it("assembles HEADERS and CONTINUATIONs into one HEADERS frame", () => {
    const input = bytes(frame(3, FrameType.HEADERS, Flag.END_STREAM | Flag.PADDED, 1, "01 82 00") +
      frame(2, FrameType.CONTINUATION, 0, 1, "8684") +
      frame(0, FrameType.CONTINUATION, 0, 1, "") +
      frame(1, FrameType.CONTINUATION, Flag.END_HEADERS, 1, "be") +
      frame(1, FrameType.DATA, 0, 1, "aa"));
    for (let step = 1; step <= input.length; step++) {
      expect(readAll(input, step)).toBe("1 5 1 828684be\n0 0 1 aa\n", "chunk size " + step.toString());
    }
  });

  it("reports a header block in progress", () => {
    const r = new H2FrameReader();
    r.begin(bytes(frame(1, FrameType.HEADERS, 0, 1, "82")));
    expect(r.next()).toBe(0);
    expect(r.inHeaderBlock()).toBe(true);
    r.begin(bytes(frame(1, FrameType.CONTINUATION, Flag.END_HEADERS, 1, "86")));
    expect(r.next()).toBe(1);
    expect(r.inHeaderBlock()).toBe(false);
    expect(hexOf(r.payload)).toBe("8286");
  });

  it("writes what it reads: a split block round-trips", () => {
    const block = new Uint8Array(70000);
    for (let i = 0; i < block.length; i++) block[i] = <u8>(i * 7);
    const w = new ByteWriter();
    writeHeaders(w, 7, block, true, 16384);
    writeData(w, 7, block.subarray(0, 40000), true, 16384);
    const r = new H2FrameReader();
    r.begin(w.toBytes());
    expect(r.next()).toBe(1);
    expect(r.type).toBe(FrameType.HEADERS);
    expect(r.flags).toBe(Flag.END_HEADERS | Flag.END_STREAM);
    expect(hexOf(r.payload)).toBe(hexOf(block));
    let data = 0;
    while (r.next() == 1) {
      expect(r.type).toBe(FrameType.DATA);
      data += r.payload.length;
    }
    expect(data).toBe(40000);
  });

  it("rejects another frame inside a header block", () => {
    expect(failure(frame(1, FrameType.HEADERS, 0, 1, "82") + frame(1, FrameType.DATA, 0, 1, "00")))
      .toBe("h2: frame type 0 on stream 1 interrupts the header block of stream 1");
    expect(failure(frame(1, FrameType.HEADERS, 0, 1, "82") + frame(8, FrameType.PING, 0, 0, "0000000000000000")))
      .toBe("h2: frame type 6 on stream 0 interrupts the header block of stream 1");
  });

  it("rejects a CONTINUATION on another stream", () => {
    expect(failure(frame(1, FrameType.HEADERS, 0, 1, "82") + frame(1, FrameType.CONTINUATION, Flag.END_HEADERS, 3, "86")))
      .toBe("h2: frame type 9 on stream 3 interrupts the header block of stream 1");
  });

  it("rejects a CONTINUATION without a header block", () => {
    expect(failure(frame(1, FrameType.CONTINUATION, Flag.END_HEADERS, 1, "86"))).toBe("h2: CONTINUATION on stream 1 without a header block in progress");
    expect(failure(frame(1, FrameType.HEADERS, Flag.END_HEADERS, 1, "82") + frame(1, FrameType.CONTINUATION, Flag.END_HEADERS, 1, "86")))
      .toBe("h2: CONTINUATION on stream 1 without a header block in progress");
  });

  it("bounds the assembled block", () => {
    const r = new H2FrameReader(16384, 10);
    expect(failure(frame(6, FrameType.HEADERS, 0, 1, "000000000000") + frame(6, FrameType.CONTINUATION, 0, 1, "000000000000"), r))
      .toBe("h2: header block of stream 1 exceeds 10 bytes");
    expect(r.errorCode).toBe(H2Error.PROTOCOL_ERROR);
    expect(failure(frame(11, FrameType.HEADERS, 0, 1, "0000000000000000000000"), new H2FrameReader(16384, 10)))
      .toBe("h2: header block of stream 1 exceeds 10 bytes");
  });

  it("rejects PUSH_PROMISE", () => {
    expect(failure(frame(5, FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, "0000000282"))).toBe("h2: PUSH_PROMISE on stream 1, but push is disabled");
  });
});

describe("h2 frame reader: malformed frames", () => {
  it("rejects a frame longer than maxFrameSize from its header alone", () => {
    const r = new H2FrameReader(16384);
    r.begin(bytes("004001000000000001")); // 16385 bytes announced, none sent
    expect(r.next()).toBe(-1);
    expect(r.error).toBe("h2: frame length 16385 exceeds max frame size 16384");
    expect(r.errorCode).toBe(H2Error.FRAME_SIZE_ERROR);
    expect(r.carried()).toBe(9);
    const small = new H2FrameReader(100);
    small.begin(bytes("ffff"));
    expect(small.next()).toBe(0);
    small.begin(bytes("ff000000000000"));
    expect(small.next()).toBe(-1);
    expect(small.error).toBe("h2: frame length 16777215 exceeds max frame size 100");
  });

  it("accepts a frame of exactly maxFrameSize", () => {
    const w = new ByteWriter();
    writeData(w, 1, new Uint8Array(100), false, 100);
    const r = new H2FrameReader(100);
    r.begin(w.toBytes());
    expect(r.next()).toBe(1);
    expect(r.payload.length).toBe(100);
  });

  it("keeps failing after an error", () => {
    const r = new H2FrameReader();
    r.begin(bytes(frame(1, FrameType.CONTINUATION, 0, 1, "00")));
    expect(r.next()).toBe(-1);
    r.begin(bytes("000000040100000000"));
    expect(r.next()).toBe(-1);
  });

  it("checks SETTINGS lengths and stream", () => {
    expect(failure(frame(7, FrameType.SETTINGS, 0, 0, "00010000100000"))).toBe("h2: SETTINGS payload of 7 bytes is not a multiple of 6");
    expect(failure(frame(6, FrameType.SETTINGS, Flag.ACK, 0, "000100001000"))).toBe("h2: SETTINGS ACK with a payload of 6 bytes");
    expect(failure(frame(0, FrameType.SETTINGS, 0, 1, ""))).toBe("h2: SETTINGS frame on stream 1, not 0");
  });

  it("checks PING, WINDOW_UPDATE, RST_STREAM, GOAWAY and PRIORITY lengths", () => {
    const r = new H2FrameReader();
    expect(failure(frame(7, FrameType.PING, 0, 0, "00000000000000"), r)).toBe("h2: PING payload of 7 bytes, expected 8");
    expect(r.errorCode).toBe(H2Error.FRAME_SIZE_ERROR);
    expect(failure(frame(9, FrameType.PING, 0, 0, "000000000000000000"))).toBe("h2: PING payload of 9 bytes, expected 8");
    expect(failure(frame(3, FrameType.WINDOW_UPDATE, 0, 0, "000001"))).toBe("h2: WINDOW_UPDATE payload of 3 bytes, expected 4");
    expect(failure(frame(5, FrameType.RST_STREAM, 0, 1, "0000000800"))).toBe("h2: RST_STREAM payload of 5 bytes, expected 4");
    expect(failure(frame(7, FrameType.GOAWAY, 0, 0, "00000000000000"))).toBe("h2: GOAWAY payload of 7 bytes is shorter than 8");
    expect(failure(frame(4, FrameType.PRIORITY, 0, 1, "00000000"))).toBe("h2: PRIORITY payload of 4 bytes, expected 5");
  });

  it("checks which frames belong on stream 0", () => {
    const r = new H2FrameReader();
    expect(failure(frame(1, FrameType.DATA, 0, 0, "00"), r)).toBe("h2: DATA frame on stream 0");
    expect(r.errorCode).toBe(H2Error.PROTOCOL_ERROR);
    expect(failure(frame(1, FrameType.HEADERS, Flag.END_HEADERS, 0, "82"))).toBe("h2: HEADERS frame on stream 0");
    expect(failure(frame(4, FrameType.RST_STREAM, 0, 0, "00000000"))).toBe("h2: RST_STREAM frame on stream 0");
    expect(failure(frame(5, FrameType.PRIORITY, 0, 0, "0000000000"))).toBe("h2: PRIORITY frame on stream 0");
    expect(failure(frame(8, FrameType.PING, 0, 1, "0000000000000000"))).toBe("h2: PING frame on stream 1, not 0");
    expect(failure(frame(8, FrameType.GOAWAY, 0, 3, "0000000000000000"))).toBe("h2: GOAWAY frame on stream 3, not 0");
  });
});

describe("h2 frame reader: damaged input", () => {
  it("never traps on bit-flipped streams, in any chunking", () => {
    const good = bytes(NGHTTP2 + frame(3, FrameType.HEADERS, Flag.PADDED, 3, "01 82 00") + frame(1, FrameType.CONTINUATION, Flag.END_HEADERS, 3, "86") +
      frame(6, FrameType.DATA, Flag.PADDED, 3, "02 aabbcc 0000") + frame(8, FrameType.GOAWAY, 0, 0, "0000000300000000"));
    const masks: u8[] = [0x01, 0x08, 0x20, 0x80, 0xff];
    let errors = 0;
    for (let i = 0; i < good.length; i++) {
      for (let m = 0; m < masks.length; m++) {
        const bad = good.slice();
        bad[i] ^= masks[m];
        const out = readAll(bad, 1 + ((i + m) % 13), new H2FrameReader(1024, 4096));
        if (out.includes("error: h2: ")) errors++;
      }
    }
    expect(errors).toBeGreaterThan(0);
  });
});
