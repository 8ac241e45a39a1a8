import { HuffmanDecoder, HUFFMAN_CODES, HUFFMAN_LENGTHS, HUFFMAN_EOS } from "../../../assembly/http/huffman";
import { ByteWriter } from "../../../assembly/core/bytes";
import { bytes, hexOf } from "../bytes";

/** Huffman-codes `src` with the RFC table, padding with ones (the spec's own encoder). */
function encode(src: Uint8Array): Uint8Array {
  const w = new ByteWriter();
  let acc: u64 = 0;
  let nbits: i32 = 0;
  for (let i = 0; i < src.length; i++) {
    const sym = <i32>src[i];
    acc = (acc << <u64>HUFFMAN_LENGTHS[sym]) | <u64>HUFFMAN_CODES[sym];
    nbits += <i32>HUFFMAN_LENGTHS[sym];
    while (nbits >= 8) {
      nbits -= 8;
      w.u8(<u32>(acc >> <u64>nbits) & 0xff);
    }
  }
  if (nbits > 0) w.u8(<u32>(((acc << <u64>(8 - nbits)) | ((1 << (8 - nbits)) - 1)) & 0xff));
  return w.toBytes();
}

/** The decoding of `hex` as text; fails the test when decoding fails. */
function decodeText(hex: string): string {
  const d = new HuffmanDecoder();
  const src = bytes(hex);
  const out = new ByteWriter();
  expect(d.decode(src, 0, src.length, out)).toBe(true, d.error);
  return String.UTF8.decodeUnsafe(out.buf.dataStart, <usize>out.len);
}

/** The error decoding `hex` fails with. */
function decodeError(hex: string): string {
  const d = new HuffmanDecoder();
  const src = bytes(hex);
  expect(d.decode(src, 0, src.length, new ByteWriter())).toBe(false, "decoding " + hex + " should fail");
  return d.error;
}

function text(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

describe("hpack huffman: table", () => {
  it("holds 257 codes of 5 to 30 bits, EOS being thirty ones", () => {
    expect(HUFFMAN_CODES.length).toBe(257);
    expect(HUFFMAN_LENGTHS.length).toBe(257);
    for (let s = 0; s <= HUFFMAN_EOS; s++) {
      const len = <i32>HUFFMAN_LENGTHS[s];
      expect(len >= 5 && len <= 30).toBe(true, "length of symbol " + s.toString());
      expect(HUFFMAN_CODES[s] >> <u32>len).toBe(0, "code of symbol " + s.toString() + " fits its length");
    }
    expect(HUFFMAN_CODES[HUFFMAN_EOS]).toBe(0x3fffffff);
    expect(HUFFMAN_LENGTHS[HUFFMAN_EOS]).toBe(30);
  });

  it("spot-checks codes against RFC 7541 Appendix B", () => {
    expect(HUFFMAN_CODES[48]).toBe(0x0); // '0' 00000
    expect(HUFFMAN_LENGTHS[48]).toBe(5);
    expect(HUFFMAN_CODES[97]).toBe(0x3); // 'a' 00011
    expect(HUFFMAN_CODES[32]).toBe(0x14); // ' ' 010100
    expect(HUFFMAN_CODES[0]).toBe(0x1ff8);
    expect(HUFFMAN_LENGTHS[0]).toBe(13);
    expect(HUFFMAN_CODES[255]).toBe(0x3ffffee);
    expect(HUFFMAN_LENGTHS[255]).toBe(26);
  });
});

describe("hpack huffman: decoding", () => {
  it("decodes the RFC 7541 C.4 and C.6 strings", () => {
    expect(decodeText("f1e3c2e5f23a6ba0ab90f4ff")).toBe("www.example.com");
    expect(decodeText("a8eb10649cbf")).toBe("no-cache");
    expect(decodeText("25a849e95ba97d7f")).toBe("custom-key");
    expect(decodeText("25a849e95bb8e8b4bf")).toBe("custom-value");
    expect(decodeText("6402")).toBe("302");
    expect(decodeText("aec3771a4b")).toBe("private");
    expect(decodeText("d07abe941054d444a8200595040b8166e082a62d1bff")).toBe("Mon, 21 Oct 2013 20:13:21 GMT");
    expect(decodeText("9d29ad171863c78f0b97c8e9ae82ae43d3")).toBe("https://www.example.com");
    expect(decodeText("640eff")).toBe("307");
    expect(decodeText("9bd9ab")).toBe("gzip");
    expect(decodeText("94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007"))
      .toBe("foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1");
  });

  it("decodes an empty string to nothing", () => {
    expect(decodeText("")).toBe("");
  });

  it("decodes every octet value, alone and all together", () => {
    const all = new Uint8Array(256);
    for (let i = 0; i < 256; i++) all[i] = <u8>i;
    const d = new HuffmanDecoder();
    const out = new ByteWriter();
    const enc = encode(all);
    expect(d.decode(enc, 0, enc.length, out)).toBe(true, d.error);
    expect(hexOf(out.toBytes())).toBe(hexOf(all));
    for (let i = 0; i < 256; i++) {
      const one = all.subarray(i, i + 1);
      const e = encode(one);
      out.clear();
      expect(d.decode(e, 0, e.length, out)).toBe(true, "symbol " + i.toString() + ": " + d.error);
      expect(hexOf(out.toBytes())).toBe(hexOf(one), "symbol " + i.toString());
    }
  });

  it("decodes only the given range and appends to what the writer holds", () => {
    const src = bytes("00 f1e3c2e5f23a6ba0ab90f4ff 00");
    const out = new ByteWriter();
    out.utf8(">");
    const d = new HuffmanDecoder();
    expect(d.decode(src, 1, src.length - 1, out)).toBe(true, d.error);
    expect(String.UTF8.decodeUnsafe(out.buf.dataStart, <usize>out.len)).toBe(">www.example.com");
  });

  it("round-trips a long header value", () => {
    const s = "application/grpc+proto; charset=utf-8 ".repeat(200);
    const enc = encode(text(s));
    const d = new HuffmanDecoder();
    const out = new ByteWriter();
    expect(d.decode(enc, 0, enc.length, out)).toBe(true, d.error);
    expect(String.UTF8.decodeUnsafe(out.buf.dataStart, <usize>out.len)).toBe(s);
  });
});

describe("hpack huffman: malformed input", () => {
  it("rejects the EOS symbol inside a string", () => {
    // thirty ones (EOS) then two ones of padding
    expect(decodeError("ffffffff")).toBe("hpack: Huffman string contains the EOS symbol");
    // 'a' (00011), EOS, five ones of padding
    expect(decodeError("1fffffffff")).toBe("hpack: Huffman string contains the EOS symbol");
  });

  it("rejects padding longer than 7 bits", () => {
    expect(decodeError("ff")).toBe("hpack: Huffman padding of 8 bits is longer than 7");
    // 'a' then eleven ones
    expect(decodeError("1fff")).toBe("hpack: Huffman padding of 11 bits is longer than 7");
    // "www.example.com" (7 bits of padding) with a whole extra byte of ones
    expect(decodeError("f1e3c2e5f23a6ba0ab90f4ffff")).toBe("hpack: Huffman padding of 15 bits is longer than 7");
  });

  it("rejects padding that is not all ones", () => {
    // 'a' then 000
    expect(decodeError("18")).toBe("hpack: Huffman padding is not all ones");
    // "no-cache" with its last padding bit cleared
    expect(decodeError("a8eb10649cbe")).toBe("hpack: Huffman padding is not all ones");
  });
});
