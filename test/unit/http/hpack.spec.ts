import { HpackDecoder, HpackEncoder, writeHpackInt, staticNameIndex, staticFieldIndex } from "../../../assembly/http/hpack";
import { HeaderList } from "../../../assembly/http/headers";
import { ByteWriter } from "../../../assembly/core/bytes";
import { bytes, hexOf } from "../bytes";

/** `name: value` lines of a header list, for whole-list comparisons. */
function lines(h: HeaderList): string {
  let s = "";
  for (let i = 0; i < h.length; i++) s += h.names[i] + ": " + h.values[i] + "\n";
  return s;
}

/** The dynamic table, newest entry first, in the same form. */
function table(d: HpackDecoder): string {
  let s = "";
  for (let k = 0; k < d.dynamicCount; k++) s += d.dynamicName(k) + ": " + d.dynamicValue(k) + "\n";
  return s;
}

/** Decodes `hex` with `d`, expecting success; returns the list as lines. */
function decoded(d: HpackDecoder, hex: string): string {
  const h = new HeaderList();
  expect(d.decode(bytes(hex), h)).toBe(true, d.error);
  return lines(h);
}

/** The error decoding `hex` with a fresh decoder (table limit `limit`) fails with. */
function failure(hex: string, limit: i32 = 4096): string {
  const d = new HpackDecoder(limit);
  expect(d.decode(bytes(hex), new HeaderList())).toBe(false, "decoding " + hex + " should fail");
  return d.error;
}

describe("hpack: RFC 7541 C.2 single fields", () => {
  it("C.2.1 literal with indexing", () => {
    const d = new HpackDecoder();
    expect(decoded(d, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")).toBe("custom-key: custom-header\n");
    expect(table(d)).toBe("custom-key: custom-header\n");
    expect(d.dynamicSize).toBe(55);
  });

  it("C.2.2 literal without indexing", () => {
    const d = new HpackDecoder();
    expect(decoded(d, "040c 2f73 616d 706c 652f 7061 7468")).toBe(":path: /sample/path\n");
    expect(d.dynamicCount).toBe(0);
  });

  it("C.2.3 literal never indexed", () => {
    const d = new HpackDecoder();
    expect(decoded(d, "1008 7061 7373 776f 7264 0673 6563 7265 74")).toBe("password: secret\n");
    expect(d.dynamicCount).toBe(0);
  });

  it("C.2.4 indexed field", () => {
    const d = new HpackDecoder();
    expect(decoded(d, "82")).toBe(":method: GET\n");
    expect(d.dynamicCount).toBe(0);
  });
});

const REQ1 = ":method: GET\n:scheme: http\n:path: /\n:authority: www.example.com\n";
const REQ2 = REQ1 + "cache-control: no-cache\n";
const REQ3 = ":method: GET\n:scheme: https\n:path: /index.html\n:authority: www.example.com\ncustom-key: custom-value\n";

describe("hpack: RFC 7541 C.3 requests without Huffman", () => {
  it("decodes three requests on one connection", () => {
    const d = new HpackDecoder();
    expect(decoded(d, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")).toBe(REQ1);
    expect(table(d)).toBe(":authority: www.example.com\n");
    expect(d.dynamicSize).toBe(57);
    expect(decoded(d, "8286 84be 5808 6e6f 2d63 6163 6865")).toBe(REQ2);
    expect(table(d)).toBe("cache-control: no-cache\n:authority: www.example.com\n");
    expect(d.dynamicSize).toBe(110);
    expect(decoded(d, "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")).toBe(REQ3);
    expect(table(d)).toBe("custom-key: custom-value\ncache-control: no-cache\n:authority: www.example.com\n");
    expect(d.dynamicSize).toBe(164);
  });
});

describe("hpack: RFC 7541 C.4 requests with Huffman", () => {
  it("decodes three requests on one connection", () => {
    const d = new HpackDecoder();
    expect(decoded(d, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).toBe(REQ1);
    expect(d.dynamicSize).toBe(57);
    expect(decoded(d, "8286 84be 5886 a8eb 1064 9cbf")).toBe(REQ2);
    expect(d.dynamicSize).toBe(110);
    expect(decoded(d, "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")).toBe(REQ3);
    expect(table(d)).toBe("custom-key: custom-value\ncache-control: no-cache\n:authority: www.example.com\n");
    expect(d.dynamicSize).toBe(164);
  });
});

const RESP1 = ":status: 302\ncache-control: private\ndate: Mon, 21 Oct 2013 20:13:21 GMT\nlocation: https://www.example.com\n";
const RESP2 = ":status: 307\ncache-control: private\ndate: Mon, 21 Oct 2013 20:13:21 GMT\nlocation: https://www.example.com\n";
const COOKIE = "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1\n";
const RESP3 = ":status: 200\ncache-control: private\ndate: Mon, 21 Oct 2013 20:13:22 GMT\nlocation: https://www.example.com\ncontent-encoding: gzip\n" + COOKIE;
const TABLE1 = "location: https://www.example.com\ndate: Mon, 21 Oct 2013 20:13:21 GMT\ncache-control: private\n:status: 302\n";
const TABLE2 = ":status: 307\nlocation: https://www.example.com\ndate: Mon, 21 Oct 2013 20:13:21 GMT\ncache-control: private\n";
const TABLE3 = COOKIE + "content-encoding: gzip\ndate: Mon, 21 Oct 2013 20:13:22 GMT\n";

describe("hpack: RFC 7541 C.5 responses without Huffman, table size 256", () => {
  it("decodes three responses, evicting as the RFC shows", () => {
    const d = new HpackDecoder(256);
    expect(decoded(d, "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))
      .toBe(RESP1);
    expect(table(d)).toBe(TABLE1);
    expect(d.dynamicSize).toBe(222);
    // ":status: 307" evicts ":status: 302"
    expect(decoded(d, "4803 3330 37c1 c0bf")).toBe(RESP2);
    expect(table(d)).toBe(TABLE2);
    expect(d.dynamicSize).toBe(222);
    expect(decoded(d, "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31"))
      .toBe(RESP3);
    expect(table(d)).toBe(TABLE3);
    expect(d.dynamicSize).toBe(215);
  });
});

describe("hpack: RFC 7541 C.6 responses with Huffman, table size 256", () => {
  it("decodes three responses, evicting as the RFC shows", () => {
    const d = new HpackDecoder(256);
    expect(decoded(d, "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"))
      .toBe(RESP1);
    expect(table(d)).toBe(TABLE1);
    expect(d.dynamicSize).toBe(222);
    expect(decoded(d, "4883 640e ffc1 c0bf")).toBe(RESP2);
    expect(table(d)).toBe(TABLE2);
    expect(d.dynamicSize).toBe(222);
    expect(decoded(d, "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"))
      .toBe(RESP3);
    expect(table(d)).toBe(TABLE3);
    expect(d.dynamicSize).toBe(215);
  });
});

describe("hpack: what Envoy's nghttp2 sends", () => {
  it("decodes a response block that starts with a table size update to 0", () => {
    // Captured from nghttp2 answering a client that advertised SETTINGS_HEADER_TABLE_SIZE 0: a
    // size update to 0, ":status: 200" indexed, then literals without indexing, Huffman-coded.
    const BLOCK = "20 88 0f10 8b 1d75d0620d263d4c4d6564 00 95 f2b16aee7f4b5b5a1361474ac82d9dcc42ac93525f 01 33" +
    " 0f12 96 d07abe941054d444a8200595040b8166e082a62d1bff 0f27 84 2d5dcfeb";
    const d = new HpackDecoder(0);
    const h = new HeaderList();
    expect(d.decode(bytes(BLOCK), h)).toBe(true, d.error);
    expect(lines(h)).toBe(":status: 200\ncontent-type: application/grpc\nx-envoy-upstream-service-time: 3\ndate: Mon, 21 Oct 2013 20:13:21 GMT\nserver: envoy\n");
    expect(h.get(":status")).toBe("200");
    expect(h.get("grpc-status")).toBeNull();
    expect(d.dynamicCount).toBe(0);
    expect(d.dynamicMaxSize).toBe(0);
  });

  it("keeps only the fields asked for, still checking the others (keepOnly)", () => {
    const BLOCK = "20 88 0f10 8b 1d75d0620d263d4c4d6564 00 95 f2b16aee7f4b5b5a1361474ac82d9dcc42ac93525f 01 33" +
    " 0f12 96 d07abe941054d444a8200595040b8166e082a62d1bff 0f27 84 2d5dcfeb";
    const d = new HpackDecoder(0);
    d.keepOnly = [":status", "server"];
    expect(decoded(d, BLOCK)).toBe(":status: 200\nserver: envoy\n");
    // A dropped field's bad Huffman still fails the block (the date value's last byte made EOS-invalid).
    const bad = new HpackDecoder(0);
    bad.keepOnly = [":status"];
    expect(bad.decode(bytes("88 0f12 81 ff"), new HeaderList())).toBe(false);
    // With a dynamic table, an indexed literal is kept in the table whatever the list keeps.
    const indexed = new HpackDecoder(4096);
    indexed.keepOnly = [":status"];
    expect(decoded(indexed, "40 0a 637573746f6d2d6b6579 0d 637573746f6d2d686561646572")).toBe("");
    expect(indexed.dynamicValue(0)).toBe("custom-header");
  });

  it("accepts two size updates at the start of a block", () => {
    const d = new HpackDecoder(4096);
    expect(decoded(d, "20 3fe11f 82")).toBe(":method: GET\n");
    expect(d.dynamicMaxSize).toBe(4096);
  });

  it("evicts when a size update shrinks the table", () => {
    const d = new HpackDecoder();
    decoded(d, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
    decoded(d, "8286 84be 5808 6e6f 2d63 6163 6865");
    expect(d.dynamicSize).toBe(110);
    // 60 keeps only the newest entry (53 octets)
    expect(decoded(d, "3f1d 82")).toBe(":method: GET\n");
    expect(table(d)).toBe("cache-control: no-cache\n");
    expect(d.dynamicSize).toBe(53);
    expect(failure("3f1d be", 4096)).toBe("hpack: header index 62 is beyond the 61 static and 0 dynamic entries");
  });

  it("empties the table for an entry larger than the table", () => {
    const d = new HpackDecoder(64);
    decoded(d, "4003 616263 03 646566"); // abc: def, 38 octets
    expect(d.dynamicCount).toBe(1);
    // a 40-octet value: 3 + 40 + 32 = 75 > 64
    expect(decoded(d, "4003 616263 28 " + "78".repeat(40))).toBe("abc: " + "x".repeat(40) + "\n");
    expect(d.dynamicCount).toBe(0);
    expect(d.dynamicSize).toBe(0);
  });

  it("uses a dynamic entry's name for a literal", () => {
    const d = new HpackDecoder();
    expect(decoded(d, "4003 616263 03 646566 7e 03 676869")).toBe("abc: def\nabc: ghi\n");
    expect(table(d)).toBe("abc: ghi\nabc: def\n");
    expect(decoded(d, "0f2f 01 7a")).toBe("abc: z\n"); // index 62 without indexing
  });
});

describe("hpack: malformed blocks", () => {
  it("rejects index 0", () => {
    expect(failure("80")).toBe("hpack: header index 0 is invalid");
    expect(failure("82 80")).toBe("hpack: header index 0 is invalid");
  });

  it("rejects an index beyond the static and dynamic tables", () => {
    expect(failure("be")).toBe("hpack: header index 62 is beyond the 61 static and 0 dynamic entries");
    expect(failure("4003 616263 03 646566 bf")).toBe("hpack: header index 63 is beyond the 61 static and 1 dynamic entries");
    expect(failure("7f00 01 61")).toBe("hpack: header index 63 is beyond the 61 static and 0 dynamic entries");
    expect(failure("ff ff ff 07")).toBe("hpack: header index 131198 is beyond the 61 static and 0 dynamic entries");
  });

  it("rejects a table size update above the advertised limit", () => {
    expect(failure("3fe21f")).toBe("hpack: dynamic table size update to 4097 exceeds the advertised limit 4096");
    expect(failure("21", 0)).toBe("hpack: dynamic table size update to 1 exceeds the advertised limit 0");
  });

  it("rejects a table size update after a field", () => {
    expect(failure("82 20")).toBe("hpack: dynamic table size update after a header field, at offset 1");
  });

  it("rejects integers over 2^28 and overlong integers", () => {
    expect(failure("ff ffffffff 0f")).toBe("hpack: integer 4294967422 at offset 0 exceeds 2^28");
    expect(failure("20 3f ffffffff 01")).toBe("hpack: integer 536870942 at offset 1 exceeds 2^28");
    expect(failure("ff 8080808080 00")).toBe("hpack: integer at offset 0 has more than 5 continuation bytes");
  });

  it("accepts 2^28 itself", () => {
    // a size update to 2^28 (31 + 268435425) is an integer the decoder reads, then refuses as a size
    expect(failure("3f e1 ff ff 7f")).toBe("hpack: dynamic table size update to 268435456 exceeds the advertised limit 4096");
  });

  it("rejects truncated integers", () => {
    expect(failure("ff")).toBe("hpack: integer at offset 0 is truncated");
    expect(failure("82 ff 80")).toBe("hpack: integer at offset 1 is truncated");
    expect(failure("04 7f")).toBe("hpack: integer at offset 1 is truncated");
  });

  it("rejects truncated literals", () => {
    expect(failure("04 0c 2f73")).toBe("hpack: string length 12 at offset 1 exceeds the 2 bytes remaining");
    expect(failure("04")).toBe("hpack: string literal missing at offset 1");
    expect(failure("00 03 616263")).toBe("hpack: string literal missing at offset 5");
    expect(failure("40 0a 6375")).toBe("hpack: string length 10 at offset 1 exceeds the 2 bytes remaining");
    expect(failure("04 8c f1e3c2e5f23a6ba0ab90f4")).toBe("hpack: string length 12 at offset 1 exceeds the 11 bytes remaining");
  });

  it("rejects bad Huffman strings, naming the offset", () => {
    expect(failure("04 81 ff")).toBe("hpack: Huffman padding of 8 bits is longer than 7, at offset 1");
    expect(failure("82 04 81 18")).toBe("hpack: Huffman padding is not all ones, at offset 2");
    expect(failure("04 84 ffffffff")).toBe("hpack: Huffman string contains the EOS symbol, at offset 1");
  });

  it("bounds the decoded header list", () => {
    const d = new HpackDecoder(4096, 100);
    const h = new HeaderList();
    // :method: GET counts 7 + 3 + 32 = 42
    expect(d.decode(bytes("82 82 82"), h)).toBe(false);
    expect(d.error).toBe("hpack: header list size 126 exceeds the limit 100");
    expect(h.length).toBe(2, "the fields before the fault are kept");
  });

  it("stops a block that repeats one large dynamic entry", () => {
    const d = new HpackDecoder(4096);
    const big = "4001 61 7fa11e " + "62".repeat(4000); // a: 4000 x "b", 4033 octets
    expect(decoded(d, big)).toBe("a: " + "b".repeat(4000) + "\n");
    const h = new HeaderList();
    expect(d.decode(bytes("be".repeat(1000)), h)).toBe(false);
    expect(d.error).toBe("hpack: header list size 68561 exceeds the limit 65536");
    expect(h.length).toBe(16);
  });
});

describe("hpack: encoder", () => {
  it("writes prefixed integers as RFC 7541 C.1 shows", () => {
    const w = new ByteWriter();
    writeHpackInt(w, 0x00, 5, 10);
    writeHpackInt(w, 0x00, 5, 1337);
    writeHpackInt(w, 0x00, 8, 42);
    writeHpackInt(w, 0xe0, 5, 31);
    expect(hexOf(w.toBytes())).toBe("0a" + "1f9a0a" + "2a" + "ff00");
  });

  it("finds static names and exact static fields", () => {
    expect(staticNameIndex(":authority")).toBe(1);
    expect(staticNameIndex(":method")).toBe(2);
    expect(staticNameIndex(":status")).toBe(8);
    expect(staticNameIndex("content-length")).toBe(28);
    expect(staticNameIndex("content-type")).toBe(31);
    expect(staticNameIndex("www-authenticate")).toBe(61);
    expect(staticNameIndex("te")).toBe(0);
    expect(staticFieldIndex(":method", "POST")).toBe(3);
    expect(staticFieldIndex(":scheme", "http")).toBe(6);
    expect(staticFieldIndex(":status", "500")).toBe(14);
    expect(staticFieldIndex("accept-encoding", "gzip, deflate")).toBe(16);
    expect(staticFieldIndex(":method", "PUT")).toBe(0);
    expect(staticFieldIndex("x-custom", "")).toBe(0);
  });

  it("encodes static indexes and literals without indexing", () => {
    const names = [":method", ":scheme", ":path", ":authority", "content-type", "te", "x-custom"];
    const values = ["POST", "http", "/svc/Method", "host:80", "application/grpc", "trailers", "v"];
    const w = new ByteWriter();
    new HpackEncoder().encode(names, values, w);
    expect(hexOf(w.toBytes())).toBe(
      "83" + "86" +
      "040b" + hexOf(Uint8Array.wrap(String.UTF8.encode("/svc/Method"))) +
      "0107" + "686f73743a3830" +
      "0f1010" + "6170706c69636174696f6e2f67727063" +
      "00" + "02" + "7465" + "08" + "747261696c657273" +
      "00" + "08" + "782d637573746f6d" + "01" + "76",
    );
  });

  it("round-trips through the decoder without touching its table", () => {
    const names = [":method", ":scheme", ":path", ":authority", "content-length", "x-long", "x-empty", "x-utf8"];
    const values = ["POST", "https", "/a/b?c=d", "svc.ns.svc.cluster.local:9090", "12", "v".repeat(300), "", "h\u00e9llo"];
    const w = new ByteWriter();
    new HpackEncoder().encode(names, values, w);
    const d = new HpackDecoder();
    const h = new HeaderList();
    expect(d.decode(w.toBytes(), h)).toBe(true, d.error);
    expect(h.length).toBe(names.length);
    for (let i = 0; i < names.length; i++) {
      expect(h.names[i]).toBe(names[i]);
      expect(h.values[i]).toBe(values[i]);
    }
    expect(d.dynamicCount).toBe(0);
  });

  it("signals a smaller peer table with a size update at the next block only", () => {
    const e = new HpackEncoder();
    e.peerTableSize(8192); // larger than the default: nothing to signal
    const w = new ByteWriter();
    e.encode([":method"], ["GET"], w);
    expect(hexOf(w.toBytes())).toBe("82");
    e.peerTableSize(0);
    w.clear();
    e.encode([":method"], ["GET"], w);
    expect(hexOf(w.toBytes())).toBe("2082");
    w.clear();
    e.encode([":method"], ["GET"], w);
    expect(hexOf(w.toBytes())).toBe("82");
  });
});

describe("hpack: damaged input", () => {
  it("never traps on truncated or bit-flipped blocks", () => {
    const blocks = [
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
      "20880f108b1d75d0620d263d4c4d65640095f2b16aee7f4b5b5a1361474ac82d9dcc42ac93525f01330f1296d07abe941054d444a8200595040b8166e082a62d1bff0f27842d5dcfeb",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ];
    const masks: u8[] = [0x01, 0x10, 0x40, 0x80, 0xff];
    let failures = 0;
    for (let b = 0; b < blocks.length; b++) {
      const good = bytes(blocks[b]);
      for (let n = 0; n < good.length; n++) {
        if (!new HpackDecoder(256).decode(good.subarray(0, n), new HeaderList())) failures++;
      }
      for (let i = 0; i < good.length; i++) {
        for (let m = 0; m < masks.length; m++) {
          const bad = good.slice();
          bad[i] ^= masks[m];
          const d = new HpackDecoder(256);
          if (!d.decode(bad, new HeaderList())) {
            failures++;
            expect(d.error.startsWith("hpack: ")).toBe(true, d.error);
          }
        }
      }
    }
    expect(failures).toBeGreaterThan(0);
  });
});
