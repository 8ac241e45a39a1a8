// HTTP/1.1 (RFC 9112) for the server role: requests from Envoy's router arrive one at a time per
// keep-alive connection, possibly pipelined or cut anywhere, and each gets one response with a
// content-length body. Parsing is strict where leniency enables request smuggling: no obs-fold,
// no whitespace before a header colon, no content-length with transfer-encoding, only "chunked".
import { ByteWriter, peekU8 } from "../core/bytes";
import { HeaderList } from "./headers";
import { knownName } from "./header-names";

export const DEFAULT_MAX_BODY: i32 = 4 << 20;
/** Default bound on a request line plus header section (and on a chunked body's trailers). */
export const DEFAULT_MAX_HEADER_BYTES: i32 = 64 * 1024;
export const DEFAULT_MAX_HEADERS: i32 = 100;
/** Bound on one chunk-size line, extensions included. */
const MAX_CHUNK_LINE: i32 = 4096;
/** Longest piece of offending input quoted in an error. */
const QUOTE_MAX: i32 = 40;

/** The body of a request without one (and between requests). */
const NO_BODY = new Uint8Array(0);
const CR: u32 = 0x0d;
const LF: u32 = 0x0a;
const SP: u32 = 0x20;
const HT: u32 = 0x09;

const enum State {
  /** Before the request line (empty lines are skipped). */
  RequestLine = 0,
  Headers = 1,
  /** A content-length body of `bodyLen` bytes starts at `pos`. */
  Body = 2,
  ChunkSize = 3,
  ChunkData = 4,
  /** The CRLF after a chunk's data. */
  ChunkEnd = 5,
  Trailers = 6,
}

/** RFC 9110 tchar: the characters of a token (method, header name). */
function isTchar(c: u32): bool {
  if (c - 0x30 < 10 || (c | 0x20) - 0x61 < 26) return true;
  switch (c) {
    case 0x21: case 0x23: case 0x24: case 0x25: case 0x26: case 0x27: case 0x2a: case 0x2b:
    case 0x2d: case 0x2e: case 0x5e: case 0x5f: case 0x60: case 0x7c: case 0x7e:
      return true;
  }
  return false;
}

/** A field value character: anything but controls (HT excepted) and DEL; obs-text is allowed. */
@inline function isValueChar(c: u32): bool {
  return (c >= SP && c != 0x7f) || c == HT;
}

/** `buf[start, end)` for an error message: at most QUOTE_MAX bytes, non-printables as '.'. */
function quote(buf: Uint8Array, start: i32, end: i32): string {
  const n = min(end - start, QUOTE_MAX);
  let s = "\"";
  for (let i = 0; i < n; i++) {
    const c = <u32>peekU8(buf, start + i);
    s += c >= SP && c < 0x7f ? String.fromCharCode(<i32>c) : ".";
  }
  return s + (end - start > QUOTE_MAX ? "...\"" : "\"");
}

/**
 * Parses requests from one connection. push() each chunk, then call next() until it returns 0:
 * 1 delivers a complete request in `method`, `path`, `headers` (names lower-cased, values
 * trimmed) and `body` (valid until the next push() or next()); 0 means more bytes are needed;
 * -1 is an error (`error`, prefixed "http1: "), after which next() keeps returning -1 and the
 * connection should answer 400 or close. Bytes after a request are kept for the next one.
 */
export class H1RequestParser {
  method: string = "";
  path: string = "";
  headers: HeaderList = new HeaderList();
  body: Uint8Array = new Uint8Array(0);
  error: string = "";
  maxBody: i32;
  maxHeaderBytes: i32;
  maxHeaders: i32;
  /**
   * When set, only these headers (and the framing ones) are kept in `headers`: the others are
   * checked and counted against maxHeaders, and no string is made of their values (a server
   * role reads five of the dozen headers each call carries).
   */
  keepOnly: string[] | null = null;
  /** Headers of the current request checked but not kept (see keepOnly). */
  private dropped: i32 = 0;

  /** Bytes held: [pos, end) of `buf` are unparsed. */
  private buf: Uint8Array = new Uint8Array(1024);
  private end: i32 = 0;
  private pos: i32 = 0;
  /** Where the search for the current line's LF resumes (pos <= scan <= end). */
  private scan: i32 = 0;
  private state: State = State.RequestLine;
  /** Request line, header and trailer bytes of the current request. */
  private headBytes: i32 = 0;
  private bodyLen: i32 = 0;
  private chunkLeft: i32 = 0;
  private chunked: ByteWriter = new ByteWriter(256);
  private scratch: ByteWriter = new ByteWriter(64);
  private delivered: bool = false;
  private failed: bool = false;

  constructor(maxBody: i32 = DEFAULT_MAX_BODY, maxHeaderBytes: i32 = DEFAULT_MAX_HEADER_BYTES, maxHeaders: i32 = DEFAULT_MAX_HEADERS) {
    this.maxBody = maxBody;
    this.maxHeaderBytes = maxHeaderBytes;
    this.maxHeaders = maxHeaders;
  }

  /** Appends `chunk` (copied). Ends the validity of the last request's `body`. */
  push(chunk: Uint8Array): void {
    const held = this.end - this.pos;
    if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.end);
      this.scan = max(this.scan - this.pos, 0);
      this.pos = 0;
      this.end = held;
    }
    const need = held + chunk.length;
    if (need > this.buf.length) {
      let cap = this.buf.length << 1;
      while (cap < need) cap <<= 1;
      const next = new Uint8Array(cap);
      memory.copy(next.dataStart, this.buf.dataStart, <usize>held);
      this.buf = next;
    }
    memory.copy(this.buf.dataStart + <usize>held, chunk.dataStart, <usize>chunk.length);
    this.end = need;
  }

  /** Bytes pushed but not yet part of a delivered request. */
  buffered(): i32 {
    return this.end - this.pos;
  }

  /** 1 when a request is complete, 0 when more bytes are needed, -1 on an error. */
  next(): i32 {
    if (this.failed) return -1;
    if (this.delivered) this.startRequest();
    while (true) {
      const state = this.state;
      if (state == State.Body) {
        if (this.end - this.pos < this.bodyLen) return 0;
        this.body = this.buf.subarray(this.pos, this.pos + this.bodyLen);
        this.pos += this.bodyLen;
        return this.complete();
      }
      if (state == State.ChunkData) {
        const take = min(this.end - this.pos, this.chunkLeft);
        if (take > 0) {
          this.chunked.bytes(this.buf.subarray(this.pos, this.pos + take));
          this.pos += take;
          this.chunkLeft -= take;
        }
        if (this.chunkLeft > 0) return 0;
        this.state = State.ChunkEnd;
        continue;
      }
      if (state == State.ChunkEnd) {
        if (this.end - this.pos < 2) return 0;
        if (<u32>peekU8(this.buf, this.pos) != CR || <u32>peekU8(this.buf, this.pos + 1) != LF) {
          return this.fail("http1: chunk data not followed by CRLF");
        }
        this.pos += 2;
        this.scan = this.pos;
        this.state = State.ChunkSize;
        continue;
      }
      // The other states consume whole lines.
      const lf = this.findLF();
      if (lf < 0) return this.needLine();
      const start = this.pos;
      if (lf == start || <u32>peekU8(this.buf, lf - 1) != CR) return this.fail("http1: line not ended by CRLF");
      const eol = lf - 1; // the CR
      this.pos = lf + 1;
      this.scan = this.pos;
      if (state != State.ChunkSize) {
        this.headBytes += this.pos - start;
        if (this.headBytes > this.maxHeaderBytes) return this.headerTooLarge();
      }
      let r = 0;
      if (state == State.RequestLine) r = eol == start ? 0 : this.requestLine(start, eol);
      else if (state == State.Headers) r = eol == start ? this.endOfHead() : this.headerLine(start, eol);
      else if (state == State.ChunkSize) r = this.chunkSize(start, eol);
      else if (eol == start) r = this.complete(); // the empty line after trailers (their content is ignored)
      if (r != 0) return r;
    }
    return 0;
  }

  /** Clears the delivered request's fields and the per-request state. */
  private startRequest(): void {
    this.delivered = false;
    this.method = "";
    this.path = "";
    this.headers.clear();
    this.dropped = 0;
    this.body = NO_BODY;
    this.chunked.clear();
    this.headBytes = 0;
    this.bodyLen = 0;
    this.chunkLeft = 0;
    this.state = State.RequestLine;
    this.scan = this.pos;
  }

  private complete(): i32 {
    if (this.state != State.Body) this.body = this.chunked.buf.subarray(0, this.chunked.len);
    this.delivered = true;
    return 1;
  }

  /** Index of the LF ending the line at `pos`, or -1 (the search resumes where it stopped). */
  private findLF(): i32 {
    const p = this.buf.dataStart;
    const end = this.end;
    for (let i = this.scan; i < end; i++) {
      if (<u32>load<u8>(p + <usize>i) == LF) return i;
    }
    this.scan = end;
    return -1;
  }

  /** No complete line yet: 0, unless the partial line already breaks a bound. */
  private needLine(): i32 {
    const partial = this.end - this.pos;
    if (this.state == State.ChunkSize) {
      if (partial > MAX_CHUNK_LINE) return this.fail("http1: chunk size line exceeds " + MAX_CHUNK_LINE.toString() + " bytes");
    } else if (this.headBytes + partial > this.maxHeaderBytes) {
      return this.headerTooLarge();
    }
    return 0;
  }

  private headerTooLarge(): i32 {
    const what = this.state == State.Trailers ? "trailer section" : "header section";
    return this.fail("http1: " + what + " exceeds " + this.maxHeaderBytes.toString() + " bytes");
  }

  /** `METHOD SP request-target SP HTTP/1.1` in [start, eol): 0, or -1. */
  private requestLine(start: i32, eol: i32): i32 {
    const buf = this.buf;
    let i = start;
    while (i < eol && isTchar(<u32>peekU8(buf, i))) i++;
    if (i == start || i == eol || <u32>peekU8(buf, i) != SP) return this.fail("http1: malformed request line " + quote(buf, start, eol));
    const methodEnd = i++;
    const targetStart = i;
    while (i < eol) {
      const c = <u32>peekU8(buf, i);
      if (c <= SP || c >= 0x7f) break;
      i++;
    }
    if (i == targetStart || i == eol || <u32>peekU8(buf, i) != SP) return this.fail("http1: malformed request line " + quote(buf, start, eol));
    const targetEnd = i++;
    if (eol - i != 8 || !this.isVersion11(i)) return this.fail("http1: unsupported HTTP version " + quote(buf, i, eol));
    this.method = String.UTF8.decodeUnsafe(buf.dataStart + <usize>start, <usize>(methodEnd - start));
    this.path = String.UTF8.decodeUnsafe(buf.dataStart + <usize>targetStart, <usize>(targetEnd - targetStart));
    this.state = State.Headers;
    return 0;
  }

  /** "HTTP/1.1" at `at` (the caller checked 8 bytes remain). */
  private isVersion11(at: i32): bool {
    const p = this.buf.dataStart + <usize>at;
    // "HTTP/1.1" as two big-endian words read little-endian
    return load<u32>(p) == 0x50545448 && load<u32>(p, 4) == 0x312e312f;
  }

  /** `name: OWS value OWS` in [start, eol): 0, or -1. */
  private headerLine(start: i32, eol: i32): i32 {
    const buf = this.buf;
    const first = <u32>peekU8(buf, start);
    if (first == SP || first == HT) return this.fail("http1: obsolete line folding in the header section");
    let i = start;
    while (i < eol && isTchar(<u32>peekU8(buf, i))) i++;
    if (i == eol) return this.fail("http1: header line without a colon " + quote(buf, start, eol));
    // An empty name, whitespace before the colon, or any other non-token byte.
    if (i == start || <u32>peekU8(buf, i) != 0x3a) return this.fail("http1: invalid header name in " + quote(buf, start, eol));
    if (this.headers.length + this.dropped >= this.maxHeaders) return this.fail("http1: more than " + this.maxHeaders.toString() + " headers");
    const nameEnd = i;
    let vs = i + 1;
    let ve = eol;
    while (vs < ve && (<u32>peekU8(buf, vs) == SP || <u32>peekU8(buf, vs) == HT)) vs++;
    while (ve > vs && (<u32>peekU8(buf, ve - 1) == SP || <u32>peekU8(buf, ve - 1) == HT)) ve--;
    for (let j = vs; j < ve; j++) {
      const c = <u32>peekU8(buf, j);
      if (!isValueChar(c)) {
        return this.fail("http1: invalid character 0x" + (c < 16 ? "0" : "") + c.toString(16) + " in the value of header " + quote(buf, start, nameEnd));
      }
    }
    const name = this.lowerName(buf, start, nameEnd);
    const keep = this.keepOnly;
    if (keep != null && !keep.includes(name) && name != "content-length" && name != "transfer-encoding") {
      this.dropped++;
      return 0;
    }
    this.headers.add(name, String.UTF8.decodeUnsafe(buf.dataStart + <usize>vs, <usize>(ve - vs)));
    return 0;
  }

  /**
   * A header name in lower case (tchars are ASCII): Envoy writes names in lower case already, and
   * the names of every call come from a short list (header-names.ts), so most cost no string.
   */
  private lowerName(buf: Uint8Array, start: i32, end: i32): string {
    let upper = false;
    for (let j = start; j < end; j++) {
      if (<u32>peekU8(buf, j) - 0x41 < 26) {
        upper = true;
        break;
      }
    }
    let src = buf;
    let from = start;
    if (upper) {
      const s = this.scratch;
      s.clear();
      for (let j = start; j < end; j++) {
        const c = <u32>peekU8(buf, j);
        s.u8(c - 0x41 < 26 ? c | 0x20 : c);
      }
      src = s.buf;
      from = 0;
    }
    const to = from + end - start;
    const known = knownName(src, from, to);
    return known != null ? known : String.UTF8.decodeUnsafe(src.dataStart + <usize>from, <usize>(to - from));
  }

  /** The empty line after the headers: picks the body framing. 0, 1 (no body), or -1. */
  private endOfHead(): i32 {
    const h = this.headers;
    const te = h.count("transfer-encoding");
    const cl = h.count("content-length");
    if (te > 0 && cl > 0) return this.fail("http1: request has both content-length and transfer-encoding");
    if (te > 0) {
      const v = h.get("transfer-encoding")!;
      if (te > 1 || v.toLowerCase() != "chunked") return this.fail("http1: unsupported transfer-encoding \"" + v + "\"");
      this.state = State.ChunkSize;
      return 0;
    }
    if (cl == 0) {
      this.state = State.Body;
      this.bodyLen = 0;
      return 0;
    }
    let value: string = "";
    for (let i = 0, n = h.length; i < n; i++) {
      if (h.names[i] != "content-length") continue;
      const v = h.values[i];
      if (value.length > 0 && v != value) return this.fail("http1: conflicting content-length values \"" + value + "\" and \"" + v + "\"");
      value = v;
    }
    // Digits only (no sign, no list); 15 of them cannot overflow an i64.
    if (value.length == 0 || value.length > 15) return this.fail("http1: invalid content-length \"" + value + "\"");
    let n: i64 = 0;
    for (let i = 0; i < value.length; i++) {
      const d = <u32>value.charCodeAt(i) - 0x30;
      if (d > 9) return this.fail("http1: invalid content-length \"" + value + "\"");
      n = n * 10 + <i64>d;
    }
    if (n > <i64>this.maxBody) return this.fail("http1: body of " + n.toString() + " bytes exceeds the limit " + this.maxBody.toString());
    this.state = State.Body;
    this.bodyLen = <i32>n;
    return 0;
  }

  /** `chunk-size [BWS ; extensions]` in [start, eol): 0, or -1. */
  private chunkSize(start: i32, eol: i32): i32 {
    const buf = this.buf;
    if (eol - start > MAX_CHUNK_LINE) return this.fail("http1: chunk size line exceeds " + MAX_CHUNK_LINE.toString() + " bytes");
    let i = start;
    let size: i64 = 0;
    while (i < eol) {
      const c = <u32>peekU8(buf, i);
      let d: u32 = 0;
      if (c - 0x30 < 10) d = c - 0x30;
      else if ((c | 0x20) - 0x61 < 6) d = (c | 0x20) - 0x61 + 10;
      else break;
      size = (size << 4) | <i64>d;
      // Past the limit the digits need not be read on: the body is refused either way.
      if (size + <i64>this.chunked.len > <i64>this.maxBody) {
        return this.fail("http1: chunked body of at least " + (size + <i64>this.chunked.len).toString() + " bytes exceeds the limit " +
          this.maxBody.toString());
      }
      i++;
    }
    if (i == start) return this.fail("http1: invalid chunk size line " + quote(buf, start, eol));
    let j = i;
    while (j < eol && (<u32>peekU8(buf, j) == SP || <u32>peekU8(buf, j) == HT)) j++;
    if (j < eol && <u32>peekU8(buf, j) != 0x3b) return this.fail("http1: invalid chunk size line " + quote(buf, start, eol));
    if (j == eol && j != i) return this.fail("http1: invalid chunk size line " + quote(buf, start, eol)); // BWS only before ';'
    if (size == 0) {
      this.state = State.Trailers;
      return 0;
    }
    this.chunkLeft = <i32>size;
    this.state = State.ChunkData;
    return 0;
  }

  private fail(message: string): i32 {
    this.error = message;
    this.failed = true;
    return -1;
  }
}

/** ASCII case-insensitive equality of `s` with the lower-case `lower`. */
function equalsLower(s: string, lower: string): bool {
  const n = s.length;
  if (n != lower.length) return false;
  for (let i = 0; i < n; i++) {
    let c = <u32>s.charCodeAt(i);
    if (c - 0x41 < 26) c |= 0x20;
    if (c != <u32>lower.charCodeAt(i)) return false;
  }
  return true;
}

function isToken(s: string): bool {
  const n = s.length;
  if (n == 0) return false;
  for (let i = 0; i < n; i++) if (!isTchar(<u32>s.charCodeAt(i))) return false;
  return true;
}

/** True when `s` can go in a field value or reason phrase as is (no CR, LF, NUL or other controls). */
function isFieldText(s: string): bool {
  for (let i = 0, n = s.length; i < n; i++) if (!isValueChar(<u32>s.charCodeAt(i))) return false;
  return true;
}

/**
 * Appends `HTTP/1.1 <status> <reason>`, the headers, `content-length: <body length>`, the empty
 * line and `body`. A status outside 100..999 is written as 500, a reason with control
 * characters as empty. Headers that would break framing are left out: any content-length or
 * transfer-encoding (the written content-length is the only one), a name that is not a token,
 * a value with control characters. Returns how many headers were left out.
 */
export function writeResponse(w: ByteWriter, status: i32, reason: string, names: string[], values: string[], body: Uint8Array): i32 {
  w.utf8("HTTP/1.1 ");
  w.utf8((status >= 100 && status <= 999 ? status : 500).toString());
  w.u8(SP);
  if (isFieldText(reason)) w.utf8(reason);
  w.u16(0x0d0a);
  let dropped = 0;
  const n = min(names.length, values.length);
  for (let i = 0; i < n; i++) {
    const name = unchecked(names[i]);
    const value = unchecked(values[i]);
    if (!isToken(name) || !isFieldText(value) || equalsLower(name, "content-length") || equalsLower(name, "transfer-encoding")) {
      dropped++;
      continue;
    }
    w.utf8(name);
    w.u16(0x3a20); // ": "
    w.utf8(value);
    w.u16(0x0d0a);
  }
  w.utf8("content-length: ");
  w.utf8(body.length.toString());
  w.u32(0x0d0a0d0a);
  w.bytes(body);
  return dropped;
}
