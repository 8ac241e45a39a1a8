import { H1RequestParser, writeResponse } from "../../../assembly/http/h1";
import { ByteWriter } from "../../../assembly/core/bytes";
import { hexOf } from "../bytes";

function text(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

function str(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

/** A request as one line: `METHOD path | name=value ... | body`. */
function summary(p: H1RequestParser): string {
  let s = p.method + " " + p.path + " |";
  for (let i = 0; i < p.headers.length; i++) s += " " + p.headers.names[i] + "=" + p.headers.values[i];
  return s + " | " + str(p.body) + "\n";
}

/** Pushes `input` in chunks of `step` bytes; returns the requests read, then "error: ..." if one stopped it. */
function parseAll(input: string, step: i32, p: H1RequestParser = new H1RequestParser()): string {
  const bytes = text(input);
  let out = "";
  for (let pos = 0; pos < bytes.length; pos += step) {
    p.push(bytes.slice(pos, min(pos + step, bytes.length)));
    while (true) {
      const k = p.next();
      if (k == 1) {
        out += summary(p);
        continue;
      }
      if (k < 0) return out + "error: " + p.error;
      break;
    }
  }
  return out;
}

/** The error parsing `input` in one chunk stops with. */
function failure(input: string, p: H1RequestParser = new H1RequestParser()): string {
  const out = parseAll(input, 1 << 30, p);
  const at = out.indexOf("error: ");
  expect(at >= 0).toBe(true, "parsing should fail, got: " + out);
  return out.substr(at + 7);
}

const GET = "GET /healthz HTTP/1.1\r\nHost: svc\r\n\r\n";
const POST = "POST /svc.Greeter/SayHello HTTP/1.1\r\nhost: svc:9090\r\nContent-Type: application/x-thrift\r\nContent-Length: 5\r\n\r\nhello";
const CHUNKED = "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
  "5;name=value\r\nhello\r\n" + "1 ; x\r\n,\r\n" + "0006\r\n world\r\n" + "0\r\nx-trailer: 1\r\n\r\n";

describe("http1 request parser: framing", () => {
  it("parses a request without a body", () => {
    expect(parseAll(GET, 1000)).toBe("GET /healthz | host=svc | \n");
  });

  it("parses a content-length body, lower-casing names", () => {
    expect(parseAll(POST, 1000)).toBe("POST /svc.Greeter/SayHello | host=svc:9090 content-type=application/x-thrift content-length=5 | hello\n");
  });

  it("parses a chunked body with extensions and trailers", () => {
    expect(parseAll(CHUNKED, 1000)).toBe("POST /up | transfer-encoding=chunked | hello, world\n");
  });

  it("gives the same requests whatever the chunk size, byte by byte included", () => {
    const all = GET + POST + CHUNKED + GET;
    const want = parseAll(all, 100000);
    expect(want.split("\n").length).toBe(5);
    for (let step = 1; step <= 64; step++) expect(parseAll(all, step)).toBe(want, "chunk size " + step.toString());
  });

  it("delivers pipelined requests in turn and keeps what follows", () => {
    const p = new H1RequestParser();
    p.push(text(GET + POST + "GET /next HT"));
    expect(p.next()).toBe(1);
    expect(p.path).toBe("/healthz");
    expect(p.headers.get("host")).toBe("svc");
    expect(p.next()).toBe(1);
    expect(p.method).toBe("POST");
    expect(str(p.body)).toBe("hello");
    expect(p.headers.get("host")).toBe("svc:9090", "the previous request's headers are gone");
    expect(p.headers.length).toBe(3);
    expect(p.next()).toBe(0);
    expect(p.buffered()).toBe(12);
    p.push(text("TP/1.1\r\n\r\n"));
    expect(p.next()).toBe(1);
    expect(p.path).toBe("/next");
    expect(p.headers.length).toBe(0);
    expect(p.body.length).toBe(0);
    expect(p.buffered()).toBe(0);
  });

  it("skips empty lines before a request line", () => {
    expect(parseAll("\r\n\r\n" + GET, 1000)).toBe("GET /healthz | host=svc | \n");
  });

  it("trims value whitespace and keeps repeated names", () => {
    expect(parseAll("GET / HTTP/1.1\r\nA:  1 \t\r\nb:\r\na: 2\r\nX-Obs: caf\u00e9\r\n\r\n", 1000)).toBe("GET / | a=1 b= a=2 x-obs=caf\u00e9 | \n");
  });

  it("keeps only the headers asked for, and the framing ones; the others still count and are checked", () => {
    const p = new H1RequestParser();
    p.keepOnly = ["x-meltemi-route", "x-other"];
    expect(parseAll("POST / HTTP/1.1\r\nX-Request-Id: 1\r\nx-meltemi-route: r\r\nhost: m\r\nX-Other: o\r\ncontent-length: 2\r\n\r\nok", 1000, p))
      .toBe("POST / | x-meltemi-route=r x-other=o content-length=2 | ok\n");
    const limited = new H1RequestParser();
    limited.keepOnly = ["x-keep"];
    expect(failure("GET / HTTP/1.1\r\n" + "a: 1\r\n".repeat(101) + "\r\n", limited)).toBe("http1: more than 100 headers");
    const checked = new H1RequestParser();
    checked.keepOnly = ["x-keep"];
    expect(failure("GET / HTTP/1.1\r\nx-dropped: a\u0001b\r\n\r\n", checked)).toBe("http1: invalid character 0x01 in the value of header \"x-dropped\"");
  });

  it("gives the known names of every call (as strings made once) and any other name alike", () => {
    expect(parseAll("GET / HTTP/1.1\r\nX-Meltemi-Route: a\r\nx-meltemi-peer: b\r\nx-meltemi-route-2: c\r\nhost: d\r\n\r\n", 1000))
      .toBe("GET / | x-meltemi-route=a x-meltemi-peer=b x-meltemi-route-2=c host=d | \n");
  });

  it("accepts repeated identical content-length headers", () => {
    expect(parseAll("PUT /x HTTP/1.1\r\ncontent-length: 2\r\nContent-Length: 2\r\n\r\nok", 1000)).toBe("PUT /x | content-length=2 content-length=2 | ok\n");
  });

  it("accepts a body of exactly the limit", () => {
    expect(parseAll("POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\nabcd", 1000, new H1RequestParser(4))).toBe("POST / | content-length=4 | abcd\n");
    expect(parseAll("POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n", 1000, new H1RequestParser(4)))
      .toBe("POST / | transfer-encoding=Chunked | abcd\n");
  });
});

describe("http1 request parser: errors", () => {
  it("rejects both content-length and transfer-encoding", () => {
    expect(failure("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"))
      .toBe("http1: request has both content-length and transfer-encoding");
  });

  it("rejects a body over the limit before it arrives", () => {
    const p = new H1RequestParser(1024);
    p.push(text("POST / HTTP/1.1\r\ncontent-length: 1025\r\n\r\n"));
    expect(p.next()).toBe(-1);
    expect(p.error).toBe("http1: body of 1025 bytes exceeds the limit 1024");
    expect(failure("POST / HTTP/1.1\r\ncontent-length: 999999999999999\r\n\r\n", new H1RequestParser(1024)))
      .toBe("http1: body of 999999999999999 bytes exceeds the limit 1024");
  });

  it("rejects a chunked body over the limit", () => {
    expect(failure("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n", new H1RequestParser(4)))
      .toBe("http1: chunked body of at least 5 bytes exceeds the limit 4");
    expect(failure("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", new H1RequestParser(4)))
      .toBe("http1: chunked body of at least 15 bytes exceeds the limit 4");
  });

  it("rejects bad content-length values", () => {
    expect(failure("POST / HTTP/1.1\r\ncontent-length: abc\r\n\r\n")).toBe("http1: invalid content-length \"abc\"");
    expect(failure("POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n")).toBe("http1: invalid content-length \"-1\"");
    expect(failure("POST / HTTP/1.1\r\ncontent-length: 5, 5\r\n\r\n")).toBe("http1: invalid content-length \"5, 5\"");
    expect(failure("POST / HTTP/1.1\r\ncontent-length:\r\n\r\n")).toBe("http1: invalid content-length \"\"");
    expect(failure("POST / HTTP/1.1\r\ncontent-length: 1234567890123456\r\n\r\n")).toBe("http1: invalid content-length \"1234567890123456\"");
    expect(failure("POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n")).toBe("http1: conflicting content-length values \"5\" and \"6\"");
  });

  it("accepts only chunked as a transfer coding", () => {
    expect(failure("POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n")).toBe("http1: unsupported transfer-encoding \"gzip, chunked\"");
    expect(failure("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n"))
      .toBe("http1: unsupported transfer-encoding \"chunked\"");
  });

  it("rejects malformed chunks", () => {
    const head = "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";
    expect(failure(head + "xyz\r\n")).toBe("http1: invalid chunk size line \"xyz\"");
    expect(failure(head + "\r\n")).toBe("http1: invalid chunk size line \"\"");
    expect(failure(head + "5 \r\n")).toBe("http1: invalid chunk size line \"5 \"");
    expect(failure(head + "5x\r\n")).toBe("http1: invalid chunk size line \"5x\"");
    expect(failure(head + "3\r\nabcX\r\n")).toBe("http1: chunk data not followed by CRLF");
    expect(failure(head + "3\nabc\r\n")).toBe("http1: line not ended by CRLF");
    expect(failure(head + "1;" + "e".repeat(5000))).toBe("http1: chunk size line exceeds 4096 bytes");
    expect(failure(head + "1;" + "e".repeat(5000) + "\r\n")).toBe("http1: chunk size line exceeds 4096 bytes");
  });

  it("bounds trailers with the header budget", () => {
    expect(failure("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx: " + "t".repeat(200) + "\r\n\r\n", new H1RequestParser(1024, 200)))
      .toBe("http1: trailer section exceeds 200 bytes");
  });

  it("rejects obs-fold and bad header lines", () => {
    expect(failure("GET / HTTP/1.1\r\na: 1\r\n  continued\r\n\r\n")).toBe("http1: obsolete line folding in the header section");
    expect(failure("GET / HTTP/1.1\r\na: 1\r\n\tcontinued\r\n\r\n")).toBe("http1: obsolete line folding in the header section");
    expect(failure("GET / HTTP/1.1\r\nhost : x\r\n\r\n")).toBe("http1: invalid header name in \"host : x\"");
    expect(failure("GET / HTTP/1.1\r\n: x\r\n\r\n")).toBe("http1: invalid header name in \": x\"");
    expect(failure("GET / HTTP/1.1\r\nna(me: x\r\n\r\n")).toBe("http1: invalid header name in \"na(me: x\"");
    expect(failure("GET / HTTP/1.1\r\nnocolon\r\n\r\n")).toBe("http1: header line without a colon \"nocolon\"");
    expect(failure("GET / HTTP/1.1\r\nx: a\u0000b\r\n\r\n")).toBe("http1: invalid character 0x00 in the value of header \"x\"");
    expect(failure("GET / HTTP/1.1\r\nx: a\rb\r\n\r\n")).toBe("http1: invalid character 0x0d in the value of header \"x\"");
    expect(failure("GET / HTTP/1.1\nhost: x\n\n")).toBe("http1: line not ended by CRLF");
  });

  it("rejects malformed request lines and other versions", () => {
    expect(failure("GET /\r\n\r\n")).toBe("http1: malformed request line \"GET /\"");
    expect(failure("GET  / HTTP/1.1\r\n\r\n")).toBe("http1: malformed request line \"GET  / HTTP/1.1\"");
    expect(failure(" GET / HTTP/1.1\r\n\r\n")).toBe("http1: malformed request line \" GET / HTTP/1.1\"");
    expect(failure("G(T / HTTP/1.1\r\n\r\n")).toBe("http1: malformed request line \"G(T / HTTP/1.1\"");
    expect(failure("GET /\u0001 HTTP/1.1\r\n\r\n")).toBe("http1: malformed request line \"GET /. HTTP/1.1\"");
    expect(failure("GET / HTTP/1.0\r\n\r\n")).toBe("http1: unsupported HTTP version \"HTTP/1.0\"");
    expect(failure("GET / HTTP/1.1 \r\n\r\n")).toBe("http1: unsupported HTTP version \"HTTP/1.1 \"");
    expect(failure("GET / http/1.1\r\n\r\n")).toBe("http1: unsupported HTTP version \"http/1.1\"");
    expect(failure("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).toBe("http1: unsupported HTTP version \"HTTP/2.0\"");
  });

  it("quotes at most 40 bytes of bad input", () => {
    expect(failure("GET / HTTP/1.1\r\n" + "x".repeat(50) + "\r\n\r\n")).toBe("http1: header line without a colon \"" + "x".repeat(40) + "...\"");
  });

  it("bounds the header section, complete or not", () => {
    const small = new H1RequestParser(1024, 64);
    small.push(text("GET / HTTP/1.1\r\nx: " + "v".repeat(60)));
    expect(small.next()).toBe(-1);
    expect(small.error).toBe("http1: header section exceeds 64 bytes");
    expect(failure("GET / HTTP/1.1\r\na: 1\r\nb: " + "v".repeat(50) + "\r\n\r\n", new H1RequestParser(1024, 64)))
      .toBe("http1: header section exceeds 64 bytes");
    expect(failure("GET / HTTP/1.1\r\n" + "a: 1\r\n".repeat(101) + "\r\n")).toBe("http1: more than 100 headers");
    expect(parseAll("GET / HTTP/1.1\r\n" + "a: 1\r\n".repeat(100) + "\r\n", 1000).length).toBeGreaterThan(0);
  });

  it("keeps failing after an error", () => {
    const p = new H1RequestParser();
    p.push(text("BAD\r\n"));
    expect(p.next()).toBe(-1);
    p.push(text(GET));
    expect(p.next()).toBe(-1);
  });
});

describe("http1 responses", () => {
  it("writes the status line, headers, content-length and body", () => {
    const w = new ByteWriter();
    const dropped = writeResponse(w, 200, "OK", ["content-type", "x-meltemi-upstream"], ["application/x-thrift", "10.0.0.1:9090"], text("pong"));
    expect(dropped).toBe(0);
    expect(str(w.toBytes())).toBe("HTTP/1.1 200 OK\r\ncontent-type: application/x-thrift\r\nx-meltemi-upstream: 10.0.0.1:9090\r\ncontent-length: 4\r\n\r\npong");
  });

  it("writes an empty body", () => {
    const w = new ByteWriter();
    writeResponse(w, 503, "Service Unavailable", [], [], new Uint8Array(0));
    expect(str(w.toBytes())).toBe("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
  });

  it("leaves out headers that would break framing", () => {
    const w = new ByteWriter();
    const names = ["Content-Length", "transfer-encoding", "bad name", "x-split", "ok", ""];
    const values = ["99", "chunked", "v", "a\r\nx-injected: 1", "fine", "v"];
    expect(writeResponse(w, 200, "OK", names, values, text("x"))).toBe(5);
    expect(str(w.toBytes())).toBe("HTTP/1.1 200 OK\r\nok: fine\r\ncontent-length: 1\r\n\r\nx");
  });

  it("sanitises the status and reason", () => {
    const w = new ByteWriter();
    writeResponse(w, 42, "Bad\r\nx: y", [], [], new Uint8Array(0));
    expect(str(w.toBytes())).toBe("HTTP/1.1 500 \r\ncontent-length: 0\r\n\r\n");
  });

  it("is read back by the request parser's framing rules (round trip of a body)", () => {
    const body = new Uint8Array(300);
    for (let i = 0; i < body.length; i++) body[i] = <u8>i;
    const w = new ByteWriter();
    writeResponse(w, 200, "OK", [], [], body);
    const out = w.toBytes();
    expect(hexOf(out.subarray(out.length - 300))).toBe(hexOf(body));
    expect(str(out.subarray(0, out.length - 300))).toBe("HTTP/1.1 200 OK\r\ncontent-length: 300\r\n\r\n");
  });
});

describe("http1 request parser: damaged input", () => {
  it("never traps on bit-flipped requests, in any chunking", () => {
    const good = text(POST + CHUNKED + GET);
    const masks: u8[] = [0x01, 0x20, 0x80, 0xff];
    let errors = 0;
    for (let i = 0; i < good.length; i++) {
      for (let m = 0; m < masks.length; m++) {
        const bad = good.slice();
        bad[i] ^= masks[m];
        const p = new H1RequestParser(64, 256, 8);
        for (let pos = 0, step = 1 + ((i + m) % 11); pos < bad.length; pos += step) {
          p.push(bad.subarray(pos, min(pos + step, bad.length)));
          let k = 0;
          while ((k = p.next()) == 1) {}
          if (k < 0) {
            expect(p.error.startsWith("http1: ")).toBe(true, p.error);
            errors++;
            break;
          }
        }
      }
    }
    expect(errors).toBeGreaterThan(0);
  });
});
