import { writeJsonString, writeMetadataObject, writeRequestPart, writeIsoTime, writeDecimal, statusName, AccessEntry, ACCESS_PREFIX, LOCAL_REPLY, NO_ANSWER } from "../../../assembly/engine/access-log";
import { Metadata } from "../../../assembly/core/metadata";
import { ByteWriter } from "../../../assembly/core/bytes";

/** What `w` holds, as text. */
function text(w: ByteWriter): string {
  return String.UTF8.decode(w.toBytes().buffer);
}

function json(s: string): string {
  const w = new ByteWriter();
  writeJsonString(w, s);
  return text(w);
}

function iso(ms: i64): string {
  const w = new ByteWriter();
  writeIsoTime(w, ms);
  return text(w);
}

describe("writeJsonString", () => {
  it("quotes a plain string as it is", () => {
    expect(json("dev.meltemi.demo.GreetService")).toBe("\"dev.meltemi.demo.GreetService\"");
    expect(json("")).toBe("\"\"");
  });

  it("escapes quotes and backslashes", () => {
    expect(json("a\"b\\c")).toBe("\"a\\\"b\\\\c\"");
  });

  it("escapes newlines, tabs and every other control byte, so a line stays one line", () => {
    expect(json("x\ny\r\tz")).toBe("\"x\\ny\\r\\tz\"");
    expect(json("\x00\x01\x1f")).toBe("\"\\u0000\\u0001\\u001f\"");
  });

  it("keeps a surrogate pair (one character) and escapes an unpaired surrogate", () => {
    expect(json("\uD83D\uDE00")).toBe("\"\uD83D\uDE00\"");
    expect(json("a\uD83Db")).toBe("\"a\\ud83db\"");
    expect(json("\uDE00")).toBe("\"\\ude00\"");
  });

  it("keeps non-ASCII text", () => {
    expect(json("Καλημέρα \"x\"")).toBe("\"Καλημέρα \\\"x\\\"\"");
  });
});

describe("writeDecimal and writeIsoTime", () => {
  it("writes numbers in decimal", () => {
    const w = new ByteWriter();
    writeDecimal(w, 0);
    w.u8(0x20);
    writeDecimal(w, 1234567890);
    w.u8(0x20);
    writeDecimal(w, u64.MAX_VALUE);
    expect(text(w)).toBe("0 1234567890 18446744073709551615");
  });

  it("writes ISO-8601 UTC timestamps to the millisecond", () => {
    expect(iso(0)).toBe("\"1970-01-01T00:00:00.000Z\"");
    expect(iso(1764590400123)).toBe("\"2025-12-01T12:00:00.123Z\"");
    expect(iso(1709251199999)).toBe("\"2024-02-29T23:59:59.999Z\"");
    expect(iso(951868800000)).toBe("\"2000-03-01T00:00:00.000Z\"");
    expect(iso(-1)).toBe("\"1969-12-31T23:59:59.999Z\"");
  });

  it("agrees with the standard library's Date on a range of days", () => {
    for (let ms: i64 = 0; ms < 4102444800000; ms += 86400000 * 37 + 3723004) {
      expect(iso(ms)).toBe("\"" + new Date(ms).toISOString() + "\"");
    }
  });
});

describe("writeRequestPart", () => {
  it("writes id, operation, size and every metadata key", () => {
    const m = new Metadata();
    m.requestId = 7;
    m.set("interface", "dev.meltemi.demo.GreetService");
    m.set("method", "sayHello");
    m.set("x-tag", "\"}{");
    const w = new ByteWriter();
    writeRequestPart(w, m, "interface", "method", 120);
    expect(text(w)).toBe(
      "\"id\":7,\"service\":\"dev.meltemi.demo.GreetService\",\"method\":\"sayHello\",\"request_bytes\":120,"
      + "\"meta\":{\"interface\":\"dev.meltemi.demo.GreetService\",\"method\":\"sayHello\",\"x-tag\":\"\\\"}{\"}");
  });

  it("writes null for an operation key the frame lacks, or a codec without one", () => {
    const m = new Metadata();
    m.set("method", "echo");
    const w = new ByteWriter();
    writeRequestPart(w, m, "service", "method", 30);
    expect(text(w)).toBe("\"id\":0,\"service\":null,\"method\":\"echo\",\"request_bytes\":30,\"meta\":{\"method\":\"echo\"}");
    w.clear();
    writeRequestPart(w, new Metadata(), "", "", 0);
    expect(text(w)).toBe("\"id\":0,\"service\":null,\"method\":null,\"request_bytes\":0,\"meta\":{}");
  });

  it("writes an empty object for a frame without metadata", () => {
    const w = new ByteWriter();
    writeMetadataObject(w, new Metadata());
    expect(text(w)).toBe("{}");
  });
});

describe("AccessEntry", () => {
  it("writes the prefix, then one JSON object with the connection's and the answer's fields", () => {
    const e = new AccessEntry();
    e.conn = "3.7";
    e.peer = "127.0.0.1:50000";
    e.route = "canary";
    e.cluster = "v2";
    e.request = Uint8Array.wrap(String.UTF8.encode("\"id\":1,\"service\":null,\"method\":\"echo\",\"request_bytes\":30,\"meta\":{\"method\":\"echo\"}"));
    e.status = "reply";
    e.startMs = 1764590400123;
    e.durationMs = 2;
    e.responseBytes = 41;
    const w = new ByteWriter();
    e.write(w);
    expect(text(w)).toBe(ACCESS_PREFIX + "{\"start_time\":\"2025-12-01T12:00:00.123Z\",\"conn\":\"3.7\",\"peer\":\"127.0.0.1:50000\","
      + "\"route\":\"canary\",\"cluster\":\"v2\",\"status\":\"reply\",\"duration_ms\":2,\"response_bytes\":41,"
      + "\"id\":1,\"service\":null,\"method\":\"echo\",\"request_bytes\":30,\"meta\":{\"method\":\"echo\"}}");
  });

  it("writes the reason of a local reply and null for an unknown peer", () => {
    const e = new AccessEntry();
    e.status = "local_reply";
    e.reason = "meltemi: request denied by authorization rule \"no-hello\"";
    e.request = Uint8Array.wrap(String.UTF8.encode("\"id\":0,\"service\":null,\"method\":null,\"request_bytes\":0,\"meta\":{}"));
    const w = new ByteWriter();
    e.write(w);
    const line = text(w);
    expect(line.includes(",\"peer\":null,")).toBe(true);
    expect(line.includes(",\"reason\":\"meltemi: request denied by authorization rule \\\"no-hello\\\"\",")).toBe(true);
  });
});

describe("statusName", () => {
  it("names message kinds, local replies and no answer", () => {
    expect(statusName(2)).toBe("reply");
    expect(statusName(3)).toBe("exception");
    expect(statusName(LOCAL_REPLY)).toBe("local_reply");
    expect(statusName(NO_ANSWER)).toBe("none");
  });
});
