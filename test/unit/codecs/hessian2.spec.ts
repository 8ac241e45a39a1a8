import { Hessian2Reader, MAX_DEPTH } from "../../../assembly/codecs/hessian2";
import { writeString, writeInt } from "../../../assembly/codecs/hessian2-writer";
import { ByteWriter } from "../../../assembly/core/bytes";
import { hexOf } from "../bytes";

/** Bytes from hex; spaces are ignored so fixtures can be annotated field by field. */
function bytes(hex: string): Uint8Array {
  const clean = hex.replaceAll(" ", "");
  const out = new Uint8Array(clean.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = <u8>I32.parseInt(clean.substr(i << 1, 2), 16);
  return out;
}

function reader(hex: string): Hessian2Reader {
  const r = new Hessian2Reader();
  r.reset(bytes(hex), 0);
  return r;
}

/** Skips one value that must be valid; returns the bytes consumed. */
function skipped(hex: string): i32 {
  const r = reader(hex);
  expect(r.skip()).toBe(true, hex + ": " + r.error);
  return r.pos;
}

/** Skips one value that must be invalid; returns the error. */
function skipError(hex: string): string {
  const r = reader(hex);
  expect(r.skip()).toBe(false, "expected an error for " + hex);
  return r.error;
}

function readStr(hex: string): string {
  const r = reader(hex);
  expect(r.readString()).toBe(true, hex + ": " + r.error);
  return r.str;
}

function readIntOf(hex: string): i32 {
  const r = reader(hex);
  expect(r.readInt()).toBe(true, hex + ": " + r.error);
  return r.int;
}

function written(s: string): Uint8Array {
  const w = new ByteWriter();
  writeString(w, s);
  return w.toBytes();
}

describe("hessian2: strings", () => {
  it("reads the compact, medium and chunked forms", () => {
    expect(readStr("00")).toBe("");
    expect(readStr("05 616c696365")).toBe("alice");
    expect(readStr("30 20" + "61".repeat(32))).toBe("a".repeat(32));
    expect(readStr("52 0002 6162  53 0001 63")).toBe("abc");
    expect(readStr("52 0002 6162  01 63")).toBe("abc"); // a final chunk may be compact
    expect(readStr("52 0001 61  30 02 6263")).toBe("abc");
  });

  it("reads null as an empty string and says it was null", () => {
    const r = reader("4e");
    expect(r.readString()).toBe(true);
    expect(r.str).toBe("");
    expect(r.wasNull).toBe(true);
    expect(r.pos).toBe(1);
  });

  it("counts UTF-16 units: 2- and 3-byte UTF-8, and surrogate pairs as Java writes them", () => {
    expect(readStr("02 c3a9 e282ac")).toBe("é€");
    // U+1F600 as two 3-byte surrogates (CESU-8, Java's Hessian2Output) and as one 4-byte sequence.
    expect(readStr("02 eda0bd edb880")).toBe("😀");
    expect(readStr("02 f09f9880")).toBe("😀");
  });

  it("rejects a value that is not a string", () => {
    const r = reader("91");
    expect(r.readString()).toBe(false);
    expect(r.error).toBe("hessian2: expected a string, got type byte 0x91 at offset 0");
  });

  it("writes the shortest form and reads back what it wrote", () => {
    expect(hexOf(written(""))).toBe("00");
    expect(hexOf(written("abc"))).toBe("03616263");
    expect(hexOf(written("é"))).toBe("01c3a9");
    expect(hexOf(written("😀"))).toBe("02eda0bdedb880");
    expect(hexOf(written("a".repeat(31))).substr(0, 2)).toBe("1f");
    expect(hexOf(written("a".repeat(32))).substr(0, 4)).toBe("3020");
    expect(hexOf(written("a".repeat(1023))).substr(0, 4)).toBe("33ff");
    expect(hexOf(written("a".repeat(1024))).substr(0, 6)).toBe("530400");
    const lengths: i32[] = [0, 1, 31, 32, 1023, 1024, 0x8000, 0x8001, 0x10005];
    for (let i = 0; i < lengths.length; i++) {
      const s = "é".repeat(lengths[i]);
      const r = new Hessian2Reader();
      r.reset(written(s), 0);
      expect(r.readString()).toBe(true, r.error);
      expect(r.str).toBe(s, "length " + lengths[i].toString());
      expect(r.atEnd()).toBe(true);
    }
  });

  it("chunks long strings at 0x8000 units without splitting a surrogate pair", () => {
    const s = "a".repeat(0x7fff) + "😀" + "b";
    const b = written(s);
    // 'R' 0x7fff: the pair moves whole to the final chunk.
    expect(hexOf(b.subarray(0, 3))).toBe("527fff");
    const r = new Hessian2Reader();
    r.reset(b, 0);
    expect(r.readString()).toBe(true, r.error);
    expect(r.str).toBe(s);
  });
});

describe("hessian2: strings remembered from the previous frame", () => {
  // readString takes the n-th string of a frame from the previous frame's n-th string when their
  // bytes match: every outcome must be what decoding gives.
  it("reads repeated strings, and a changed string at the same place, as decoding does", () => {
    const r = new Hessian2Reader();
    r.reset(bytes("05 32 2e 30 2e 32 03 61 62 63"), 0); // "2.0.2", "abc"
    expect(r.readString()).toBe(true);
    expect(r.readString()).toBe(true);
    expect(r.str).toBe("abc");
    r.reset(bytes("05 32 2e 30 2e 32 03 61 62 63 01 c3 a9"), 0); // the same two, then "é"
    expect(r.readString()).toBe(true);
    expect(r.str).toBe("2.0.2");
    expect(r.pos).toBe(6);
    expect(r.readString()).toBe(true);
    expect(r.str).toBe("abc");
    expect(r.readString()).toBe(true);
    expect(r.str).toBe("é");
    expect(r.pos).toBe(13);
    r.reset(bytes("05 32 2e 30 2e 32 03 61 62 64"), 0); // second string changed: "abd"
    expect(r.readString()).toBe(true);
    expect(r.readString()).toBe(true);
    expect(r.str).toBe("abd");
    expect(r.pos).toBe(10);
  });

  it("does not take a remembered string the frame cuts short, or from another position", () => {
    const r = new Hessian2Reader();
    r.reset(bytes("03 61 62 63 01 78"), 0); // "abc", "x"
    expect(r.readString()).toBe(true);
    expect(r.readString()).toBe(true);
    r.reset(bytes("03 61 62"), 0); // "abc" cut short
    expect(r.readString()).toBe(false);
    expect(r.error.length).toBeGreaterThan(0);
    r.reset(bytes("01 78 03 61 62 63"), 0); // the two in the other order
    expect(r.readString()).toBe(true);
    expect(r.str).toBe("x");
    expect(r.readString()).toBe(true);
    expect(r.str).toBe("abc");
    r.reset(bytes("4e 01 78"), 0); // null where "x" was, then "x" where "abc" was
    expect(r.readString()).toBe(true);
    expect(r.wasNull).toBe(true);
    expect(r.str).toBe("");
    expect(r.readString()).toBe(true);
    expect(r.wasNull).toBe(false);
    expect(r.str).toBe("x");
  });
});

describe("hessian2: ints", () => {
  it("reads every int form", () => {
    expect(readIntOf("90")).toBe(0);
    expect(readIntOf("80")).toBe(-16);
    expect(readIntOf("bf")).toBe(47);
    expect(readIntOf("c8 30")).toBe(48);
    expect(readIntOf("c0 00")).toBe(-2048);
    expect(readIntOf("cf ff")).toBe(2047);
    expect(readIntOf("d0 00 00")).toBe(-262144);
    expect(readIntOf("d7 ff ff")).toBe(262143);
    expect(readIntOf("49 80000000")).toBe(i32.MIN_VALUE);
  });

  it("writes the shortest form and reads back what it wrote", () => {
    const values: i32[] = [0, -16, 47, 48, -17, 2047, -2048, 2048, -2049, 262143, -262144, 262144, i32.MAX_VALUE, i32.MIN_VALUE];
    const sizes: i32[] = [1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 5, 5, 5];
    for (let i = 0; i < values.length; i++) {
      const w = new ByteWriter();
      writeInt(w, values[i]);
      expect(w.len).toBe(sizes[i], values[i].toString());
      const r = new Hessian2Reader();
      r.reset(w.toBytes(), 0);
      expect(r.readInt()).toBe(true, r.error);
      expect(r.int).toBe(values[i]);
    }
  });

  it("rejects a value that is not an int", () => {
    const r = reader("4c 0000000000000001");
    expect(r.readInt()).toBe(false);
    expect(r.error).toBe("hessian2: expected an int, got type byte 0x4c at offset 0");
  });
});

describe("hessian2: skipping values", () => {
  it("skips scalars of every form", () => {
    expect(skipped("4e")).toBe(1); // null
    expect(skipped("54")).toBe(1); // true
    expect(skipped("46")).toBe(1); // false
    expect(skipped("9a ff")).toBe(1); // one-octet int
    expect(skipped("c8 01")).toBe(2); // two-octet int
    expect(skipped("d4 00 01")).toBe(3); // three-octet int
    expect(skipped("49 00000001")).toBe(5); // int
    expect(skipped("e0")).toBe(1); // one-octet long
    expect(skipped("f8 01")).toBe(2); // two-octet long
    expect(skipped("3c 00 01")).toBe(3); // three-octet long
    expect(skipped("59 00000001")).toBe(5); // long as int
    expect(skipped("4c 0000000000000001")).toBe(9); // long
    expect(skipped("5b")).toBe(1); // double 0.0
    expect(skipped("5c")).toBe(1); // double 1.0
    expect(skipped("5d 80")).toBe(2); // double as byte
    expect(skipped("5e 0080")).toBe(3); // double as short
    expect(skipped("5f 00000001")).toBe(5); // double as int millis
    expect(skipped("44 3ff0000000000000")).toBe(9); // double
    expect(skipped("4a 00000000000000ff")).toBe(9); // date in ms
    expect(skipped("4b 000000ff")).toBe(5); // date in minutes
  });

  it("skips strings and binaries in every chunk form", () => {
    expect(skipped("03 616263 90")).toBe(4);
    expect(skipped("31 00" + "61".repeat(256))).toBe(258);
    expect(skipped("52 0001 c3a9  53 0001 e282ac")).toBe(11);
    expect(skipped("23 010203")).toBe(4); // compact binary
    expect(skipped("34 05 0102030405")).toBe(7); // medium binary
    expect(skipped("41 0002 0102  42 0001 03")).toBe(9); // chunked binary
    expect(skipped("41 0001 01  21 02")).toBe(6); // chunked, compact final chunk
  });

  it("skips lists of every form", () => {
    expect(skipped("57 91 92 5a")).toBe(4); // variable untyped
    expect(skipped("58 92 91 92")).toBe(4); // fixed untyped
    expect(skipped("7a 91 92")).toBe(3); // compact fixed untyped, 2 items
    expect(skipped("55 03 5b4c49 91 5a")).toBe(7); // variable typed "[LI"
    expect(skipped("56 03 5b4c49 91 93")).toBe(7); // fixed typed, 1 item
    expect(skipped("71 03 5b4c49 91")).toBe(6); // compact fixed typed, 1 item
    expect(skipped("57 71 03 5b4c49 91 71 90 92 5a")).toBe(11); // second list refers to type 0
  });

  it("skips maps, class definitions, objects and refs", () => {
    expect(skipped("48 01 61 91 01 62 4e 5a")).toBe(8); // untyped map
    expect(skipped("4d 03 4d6170 01 61 91 5a")).toBe(9); // typed map
    // class "P" with fields x, y; an instance by 'O' and by compact ref, then a ref to the first.
    expect(skipped("57 43 01 50 92 01 78 01 79  4f 90 91 92  60 93 94  51 91 5a")).toBe(19);
    expect(skipped("43 01 50 90  60")).toBe(5); // a class without fields
  });

  it("keeps class definitions across values of one frame and forgets them on reset", () => {
    const r = reader("43 01 50 91 01 78 60 91  60 92");
    expect(r.skip()).toBe(true, r.error);
    expect(r.skip()).toBe(true, r.error);
    expect(r.atEnd()).toBe(true);
    r.reset(bytes("60 92"), 0);
    expect(r.skip()).toBe(false);
    expect(r.error).toBe("hessian2: object of class definition 0 but only 0 defined at offset 0");
  });

  it("says when a value depended on earlier values", () => {
    const r = reader("48 01 61 91 5a");
    expect(r.skip()).toBe(true);
    expect(r.usedContext).toBe(false);
    r.reset(bytes("57 51 90 5a"), 0);
    expect(r.skip()).toBe(true);
    expect(r.usedContext).toBe(true);
  });
});

describe("hessian2: malformed and hostile values", () => {
  it("rejects unknown type bytes", () => {
    expect(skipError("45")).toBe("hessian2: unknown type byte 0x45 at offset 0");
    expect(skipError("40")).toBe("hessian2: unknown type byte 0x40 at offset 0");
    expect(skipError("5a")).toBe("hessian2: unknown type byte 0x5a at offset 0");
    expect(skipError("57 91 50")).toBe("hessian2: unknown type byte 0x50 at offset 2");
  });

  it("rejects truncated values", () => {
    expect(skipError("")).toBe("hessian2: truncated value at offset 0");
    expect(skipError("44 0000")).toBe("hessian2: truncated double at offset 0");
    expect(skipError("d0 00")).toBe("hessian2: truncated int at offset 0");
    expect(skipError("4c 00")).toBe("hessian2: truncated long at offset 0");
    expect(skipError("4b 00")).toBe("hessian2: truncated date at offset 0");
    expect(skipError("52 0001 61")).toBe("hessian2: truncated string at offset 0");
    expect(skipError("02 61 c3")).toBe("hessian2: truncated string at offset 0");
    expect(skipError("57 91")).toBe("hessian2: truncated list at offset 0");
    expect(skipError("48 91 92")).toBe("hessian2: truncated map at offset 0");
    expect(skipError("48 91")).toBe("hessian2: truncated value at offset 2");
    expect(skipError("43 01 50")).toBe("hessian2: truncated int at offset 3");
  });

  it("rejects lengths larger than the bytes left", () => {
    expect(skipError("05 6162")).toBe("hessian2: string length 5 exceeds the 2 bytes left at offset 0");
    expect(skipError("53 ffff 61")).toBe("hessian2: string length 65535 exceeds the 1 bytes left at offset 0");
    expect(skipError("42 ffff 01")).toBe("hessian2: binary length 65535 exceeds the 1 bytes left at offset 0");
    expect(skipError("58 49 7fffffff 90")).toBe("hessian2: list length 2147483647 exceeds the 1 bytes left at offset 0");
    expect(skipError("43 01 50 49 7fffffff")).toBe("hessian2: class field count 2147483647 exceeds the 0 bytes left at offset 0");
  });

  it("rejects negative lengths and counts", () => {
    expect(skipError("58 8f 90")).toBe("hessian2: negative list length -1 at offset 0");
    expect(skipError("43 01 50 8f")).toBe("hessian2: class definition with -1 fields at offset 0");
  });

  it("rejects refs to values, types and classes that do not exist", () => {
    expect(skipError("51 90")).toBe("hessian2: ref 0 but only 0 values to refer to at offset 0");
    expect(skipError("57 51 91 5a")).toBe("hessian2: ref 1 but only 1 values to refer to at offset 1");
    expect(skipError("51 8f")).toBe("hessian2: ref -1 but only 0 values to refer to at offset 0");
    expect(skipError("55 91 5a")).toBe("hessian2: type ref 1 but only 0 types defined at offset 0");
    expect(skipError("6f")).toBe("hessian2: object of class definition 15 but only 0 defined at offset 0");
    expect(skipError("4f 49 7fffffff")).toBe("hessian2: object of class definition 2147483647 but only 0 defined at offset 0");
  });

  it("rejects nesting deeper than the limit", () => {
    const ok = "57".repeat(MAX_DEPTH) + "5a".repeat(MAX_DEPTH);
    expect(skipped(ok)).toBe(MAX_DEPTH * 2);
    expect(skipError("57".repeat(MAX_DEPTH + 1) + "5a".repeat(MAX_DEPTH + 1))).toBe("hessian2: nesting deeper than 64 at offset 64");
    expect(skipError("48 90".repeat(MAX_DEPTH + 1))).toBe("hessian2: nesting deeper than 64 at offset 128");
    // An object whose only field is an object of the same class, 65 deep.
    expect(skipError("43 01 50 91 01 78 " + "60".repeat(MAX_DEPTH + 1) + "4e")).toBe("hessian2: nesting deeper than 64 at offset 70");
  });

  it("survives a million-deep nesting attempt without recursing past the limit", () => {
    expect(skipError("57".repeat(100000))).toBe("hessian2: nesting deeper than 64 at offset 64");
  });

  it("rejects bad UTF-8 and bad chunk sequences", () => {
    expect(skipError("02 ff 61")).toBe("hessian2: bad UTF-8 byte 0xff in string at offset 0");
    expect(skipError("01 f09f9880")).toBe("hessian2: bad UTF-8 byte 0xf0 in string at offset 0");
    expect(skipError("52 0001 61 91")).toBe("hessian2: string chunk followed by type byte 0x91 at offset 0");
    expect(skipError("41 0001 01 91")).toBe("hessian2: binary chunk followed by type byte 0x91 at offset 0");
    expect(skipError("43 91 01 78")).toBe("hessian2: expected a string class name, got type byte 0x91 at offset 1");
  });

  it("bounds the class definitions of one frame", () => {
    expect(skipError("43 01 50 90 ".repeat(4097) + "4e")).toBe("hessian2: more than 4096 class definitions at offset 16384");
  });
});
