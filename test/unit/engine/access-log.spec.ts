import { jsonString, metadataObject, requestPart, AccessEntry, ACCESS_PREFIX } from "../../../assembly/engine/access-log";
import { Metadata } from "../../../assembly/core/metadata";

describe("jsonString", () => {
  it("quotes a plain string as it is", () => {
    expect(jsonString("dev.meltemi.demo.GreetService")).toBe("\"dev.meltemi.demo.GreetService\"");
    expect(jsonString("")).toBe("\"\"");
  });

  it("escapes quotes and backslashes", () => {
    expect(jsonString("a\"b\\c")).toBe("\"a\\\"b\\\\c\"");
  });

  it("escapes newlines, tabs and every other control byte, so a line stays one line", () => {
    expect(jsonString("x\ny\r\tz")).toBe("\"x\\ny\\r\\tz\"");
    expect(jsonString("\x00\x01\x1f")).toBe("\"\\u0000\\u0001\\u001f\"");
  });

  it("keeps a surrogate pair (one character) and escapes an unpaired surrogate", () => {
    expect(jsonString("\uD83D\uDE00")).toBe("\"\uD83D\uDE00\"");
    expect(jsonString("a\uD83Db")).toBe("\"a\\ud83db\"");
    expect(jsonString("\uDE00")).toBe("\"\\ude00\"");
  });

  it("keeps non-ASCII text", () => {
    expect(jsonString("Καλημέρα")).toBe("\"Καλημέρα\"");
  });
});

describe("requestPart", () => {
  it("writes id, operation, size and every metadata key", () => {
    const m = new Metadata();
    m.requestId = 7;
    m.set("interface", "dev.meltemi.demo.GreetService");
    m.set("method", "sayHello");
    m.set("x-tag", "\"}{");
    expect(requestPart(m, "interface", "method", 120)).toBe(
      "\"id\":7,\"service\":\"dev.meltemi.demo.GreetService\",\"method\":\"sayHello\",\"request_bytes\":120,"
      + "\"meta\":{\"interface\":\"dev.meltemi.demo.GreetService\",\"method\":\"sayHello\",\"x-tag\":\"\\\"}{\"}");
  });

  it("writes null for an operation key the frame lacks, or a codec without one", () => {
    const m = new Metadata();
    m.set("method", "echo");
    expect(requestPart(m, "service", "method", 30)).toBe("\"id\":0,\"service\":null,\"method\":\"echo\",\"request_bytes\":30,\"meta\":{\"method\":\"echo\"}");
    expect(requestPart(new Metadata(), "", "", 0)).toBe("\"id\":0,\"service\":null,\"method\":null,\"request_bytes\":0,\"meta\":{}");
  });

  it("writes an empty object for a frame without metadata", () => {
    expect(metadataObject(new Metadata())).toBe("{}");
  });
});

describe("AccessEntry", () => {
  it("writes the prefix, then one JSON object with the connection's and the answer's fields", () => {
    const e = new AccessEntry();
    e.conn = "3.7";
    e.peer = "127.0.0.1:50000";
    e.route = "canary";
    e.cluster = "v2";
    e.request = "\"id\":1,\"service\":null,\"method\":\"echo\",\"request_bytes\":30,\"meta\":{\"method\":\"echo\"}";
    e.status = "reply";
    e.startMs = 1764590400123;
    e.durationMs = 2;
    e.responseBytes = 41;
    expect(e.toLine()).toBe(ACCESS_PREFIX + "{\"start_time\":\"2025-12-01T12:00:00.123Z\",\"conn\":\"3.7\",\"peer\":\"127.0.0.1:50000\","
      + "\"route\":\"canary\",\"cluster\":\"v2\",\"status\":\"reply\",\"duration_ms\":2,\"response_bytes\":41,"
      + "\"id\":1,\"service\":null,\"method\":\"echo\",\"request_bytes\":30,\"meta\":{\"method\":\"echo\"}}");
  });

  it("writes the reason of a local reply and null for an unknown peer", () => {
    const e = new AccessEntry();
    e.status = "local_reply";
    e.reason = "meltemi: request denied by authorization rule \"no-hello\"";
    e.request = "\"id\":0,\"service\":null,\"method\":null,\"request_bytes\":0,\"meta\":{}";
    const line = e.toLine();
    expect(line.includes(",\"peer\":null,")).toBe(true);
    expect(line.includes(",\"reason\":\"meltemi: request denied by authorization rule \\\"no-hello\\\"\",")).toBe(true);
  });
});
