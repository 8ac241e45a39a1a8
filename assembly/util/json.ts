// Strict JSON (RFC 8259) DOM parser for plugin configuration, plus a field-path-aware reader.
//
// Pure AssemblyScript with no host imports. It runs once per config load, so it favours clarity
// over speed. Nothing here traps on bad input: parse failures return null and leave one precise
// message naming the byte offset, e.g. `expected ',' or '}' at offset 17`.
//
// Strictness choices beyond the RFC grammar (all reject; none is silently accepted):
//   - duplicate object keys (RFC 8259 §4 leaves their meaning undefined; a config must not be ambiguous),
//   - escaped lone surrogates such as "\uD800" (they cannot be represented in UTF-8),
//   - invalid UTF-8 in strings (overlong forms, encoded surrogates, code points over U+10FFFF),
//   - numbers that overflow f64 (`1e400`), a byte-order mark, nesting deeper than maxDepth.

export enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** Largest integer an f64 holds exactly (2^53 - 1); isInteger() is false beyond it. */
const MAX_SAFE_INTEGER: f64 = 9007199254740991.0;

/** An immutable parsed JSON value. Accessors of the wrong kind return a neutral value, never trap. */
export class JsonValue {
  readonly kind: JsonKind;
  private _bool: bool = false;
  private _number: f64 = 0;
  private _string: string = "";
  /** Array elements, or object values (parallel to _keys). Null for scalars. */
  private _items: JsonValue[] | null = null;
  /** Object keys in document order. Null unless kind is Object. */
  private _keys: string[] | null = null;

  private constructor(kind: JsonKind) {
    this.kind = kind;
  }

  static makeNull(): JsonValue {
    return new JsonValue(JsonKind.Null);
  }

  static makeBool(b: bool): JsonValue {
    const v = new JsonValue(JsonKind.Bool);
    v._bool = b;
    return v;
  }

  static makeNumber(n: f64): JsonValue {
    const v = new JsonValue(JsonKind.Number);
    v._number = n;
    return v;
  }

  static makeString(s: string): JsonValue {
    const v = new JsonValue(JsonKind.String);
    v._string = s;
    return v;
  }

  static makeArray(items: JsonValue[]): JsonValue {
    const v = new JsonValue(JsonKind.Array);
    v._items = items;
    return v;
  }

  /** An object with keys and values in the given order; the caller guarantees unique keys. */
  static makeObject(keys: string[], values: JsonValue[]): JsonValue {
    const v = new JsonValue(JsonKind.Object);
    v._keys = keys;
    v._items = values;
    return v;
  }

  isNull(): bool { return this.kind == JsonKind.Null; }
  isBool(): bool { return this.kind == JsonKind.Bool; }
  isNumber(): bool { return this.kind == JsonKind.Number; }
  isString(): bool { return this.kind == JsonKind.String; }
  isArray(): bool { return this.kind == JsonKind.Array; }
  isObject(): bool { return this.kind == JsonKind.Object; }

  /** True for a number with no fractional part and magnitude at most 2^53 - 1 (`1`, `1.0`, `1e2`). */
  isInteger(): bool {
    if (this.kind != JsonKind.Number) return false;
    const n = this._number;
    return Math.abs(n) <= MAX_SAFE_INTEGER && Math.floor(n) == n;
  }

  /** The boolean; false for any other kind. */
  asBool(): bool { return this._bool; }
  /** The number; 0 for any other kind. */
  asNumber(): f64 { return this._number; }
  /** The number as i64; 0 unless isInteger(). */
  asInteger(): i64 { return this.isInteger() ? <i64>this._number : 0; }
  /** The string; "" for any other kind. */
  asString(): string { return this._string; }

  /** Number of array elements or object members; 0 for scalars. */
  get length(): i32 {
    const items = this._items;
    return items == null ? 0 : items.length;
  }

  /** The array element at index, or null when out of range or not an array. */
  at(index: i32): JsonValue | null {
    const items = this._items;
    if (this.kind != JsonKind.Array || items == null || index < 0 || index >= items.length) return null;
    return items[index];
  }

  /** A copy of the array elements; empty when not an array. */
  items(): JsonValue[] {
    const items = this._items;
    if (this.kind != JsonKind.Array || items == null) return [];
    return items.slice(0);
  }

  /** The member named key, or null when absent or not an object. */
  get(key: string): JsonValue | null {
    const keys = this._keys;
    const items = this._items;
    if (keys == null || items == null) return null;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] == key) return items[i];
    }
    return null;
  }

  has(key: string): bool {
    return this.get(key) != null;
  }

  /** A copy of the object keys in document order; empty when not an object. */
  keys(): string[] {
    const keys = this._keys;
    return keys == null ? [] : keys.slice(0);
  }

  /** "null", "boolean", "number", "string", "array" or "object". */
  typeName(): string {
    switch (this.kind) {
      case JsonKind.Null: return "null";
      case JsonKind.Bool: return "boolean";
      case JsonKind.Number: return "number";
      case JsonKind.String: return "string";
      case JsonKind.Array: return "array";
      default: return "object";
    }
  }

  /** Compact JSON text. Integers print without a fraction (`1`, not `1.0`). */
  stringify(): string {
    const parts = new Array<string>();
    this.writeTo(parts);
    return parts.join("");
  }

  /**
   * A short rendering for error messages: scalars as JSON (strings cut to 40 characters),
   * containers as `an array` / `an object`. E.g. `expected an integer, got "x"`.
   */
  describe(): string {
    switch (this.kind) {
      case JsonKind.Array: return "an array";
      case JsonKind.Object: return "an object";
      case JsonKind.String: {
        const s = this._string;
        return s.length > 40 ? quote(s.substring(0, 40)) + "..." : quote(s);
      }
      default: return this.stringify();
    }
  }

  private writeTo(out: string[]): void {
    switch (this.kind) {
      case JsonKind.Null: { out.push("null"); break; }
      case JsonKind.Bool: { out.push(this._bool ? "true" : "false"); break; }
      case JsonKind.Number: {
        out.push(this.isInteger() ? (<i64>this._number).toString() : this._number.toString());
        break;
      }
      case JsonKind.String: { out.push(quote(this._string)); break; }
      case JsonKind.Array: {
        const items = this.items();
        out.push("[");
        for (let i = 0; i < items.length; i++) {
          if (i > 0) out.push(",");
          items[i].writeTo(out);
        }
        out.push("]");
        break;
      }
      default: {
        const keys = this.keys();
        out.push("{");
        for (let i = 0; i < keys.length; i++) {
          if (i > 0) out.push(",");
          out.push(quote(keys[i]));
          out.push(":");
          const v = this.get(keys[i]);
          if (v != null) v.writeTo(out);
        }
        out.push("}");
      }
    }
  }
}

const HEX = "0123456789abcdef";

/** s as a JSON string literal: `"`, `\` and control characters escaped, the rest verbatim. */
export function quote(s: string): string {
  const parts = new Array<string>();
  parts.push("\"");
  let runStart = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc = "";
    if (c == 0x22) esc = "\\\"";
    else if (c == 0x5c) esc = "\\\\";
    else if (c == 0x0a) esc = "\\n";
    else if (c == 0x0d) esc = "\\r";
    else if (c == 0x09) esc = "\\t";
    else if (c == 0x08) esc = "\\b";
    else if (c == 0x0c) esc = "\\f";
    else if (c < 0x20) esc = "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else continue;
    parts.push(s.substring(runStart, i));
    parts.push(esc);
    runStart = i + 1;
  }
  parts.push(s.substring(runStart));
  parts.push("\"");
  return parts.join("");
}

// Byte values the parser compares against.
const QUOTE: i32 = 0x22;
const BACKSLASH: i32 = 0x5c;
const COMMA: i32 = 0x2c;
const COLON: i32 = 0x3a;
const MINUS: i32 = 0x2d;
const PLUS: i32 = 0x2b;
const DOT: i32 = 0x2e;
const DIGIT_0: i32 = 0x30;
const DIGIT_9: i32 = 0x39;
const LBRACE: i32 = 0x7b;
const RBRACE: i32 = 0x7d;
const LBRACKET: i32 = 0x5b;
const RBRACKET: i32 = 0x5d;
const END: i32 = -1;

/**
 * Parses UTF-8 JSON text into a JsonValue tree.
 *
 * One parser may be reused; each parse resets `error` and `errorOffset`. On failure parse
 * returns null, `error` holds `<what> at offset <byte offset>` and `errorOffset` the offset.
 * Messages (N is a byte offset into the input):
 *   input exceeds <maxBytes> bytes at offset <maxBytes>
 *   expected a value at offset N                 (also for empty input, `+1`, `.5`, a BOM)
 *   expected end of input at offset N            (trailing characters after the top-level value)
 *   expected ',' or ']' at offset N
 *   expected ',' or '}' at offset N
 *   expected a string key at offset N            (also after a trailing comma: `{"a":1,}`)
 *   expected ':' at offset N
 *   duplicate key "k" at offset N                (N is the key's opening quote)
 *   nesting deeper than <maxDepth> at offset N   (N is the bracket that goes too deep)
 *   expected 'true' at offset N                  (likewise 'false', 'null')
 *   leading zeros are not allowed at offset N
 *   expected a digit at offset N                 (after '-', '.', 'e', 'e+', 'e-')
 *   number out of range at offset N              (overflows f64, e.g. 1e400)
 *   unterminated string at offset N              (N is the opening quote)
 *   unescaped control character at offset N
 *   invalid escape at offset N                   (N is the backslash)
 *   invalid \u escape at offset N                (fewer than 4 hex digits; N is the backslash)
 *   unpaired surrogate at offset N               (N is the backslash of the \u escape)
 *   invalid UTF-8 at offset N                    (N is the first byte of the bad sequence)
 */
export class JsonParser {
  /** Empty after a successful parse, else the message for the first error. */
  error: string = "";
  /** Byte offset of the first error, or -1. */
  errorOffset: i32 = -1;

  private bytes: Uint8Array = new Uint8Array(0);
  private pos: i32 = 0;
  private depth: i32 = 0;

  /**
   * @param maxDepth deepest allowed nesting of arrays and objects (the top level counts as 1)
   * @param maxBytes largest accepted input
   */
  constructor(readonly maxDepth: i32 = 32, readonly maxBytes: i32 = 1 << 20) {}

  /** Parses a JS-side string (encoded to UTF-8 first, so offsets are UTF-8 byte offsets). */
  parse(text: string): JsonValue | null {
    return this.parseBytes(Uint8Array.wrap(String.UTF8.encode(text)));
  }

  /** Parses UTF-8 bytes as handed over by the host. */
  parseBytes(bytes: Uint8Array): JsonValue | null {
    this.error = "";
    this.errorOffset = -1;
    this.bytes = bytes;
    this.pos = 0;
    this.depth = 0;
    if (bytes.length > this.maxBytes) {
      return this.fail("input exceeds " + this.maxBytes.toString() + " bytes", this.maxBytes);
    }
    this.skipSpace();
    const value = this.parseValue();
    if (value == null) return null;
    this.skipSpace();
    if (this.pos < bytes.length) return this.fail("expected end of input", this.pos);
    return value;
  }

  /** Convenience: parse with default limits, returning the value or null (error discarded). */
  static parse(text: string): JsonValue | null {
    return new JsonParser().parse(text);
  }

  private fail(what: string, offset: i32): JsonValue | null {
    if (this.errorOffset < 0) {
      this.error = what + " at offset " + offset.toString();
      this.errorOffset = offset;
    }
    return null;
  }

  /** The byte at pos, or END past the input. */
  private peek(): i32 {
    return this.pos < this.bytes.length ? <i32>this.bytes[this.pos] : END;
  }

  private byteAt(offset: i32): i32 {
    return offset >= 0 && offset < this.bytes.length ? <i32>this.bytes[offset] : END;
  }

  private skipSpace(): void {
    while (true) {
      const c = this.peek();
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return;
      this.pos++;
    }
  }

  private parseValue(): JsonValue | null {
    const c = this.peek();
    if (c == LBRACE) return this.parseObject();
    if (c == LBRACKET) return this.parseArray();
    if (c == QUOTE) {
      const s = this.parseString();
      return s == null ? null : JsonValue.makeString(s);
    }
    if (c == MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) return this.parseNumber();
    if (c == 0x74) return this.parseLiteral("true", JsonValue.makeBool(true));
    if (c == 0x66) return this.parseLiteral("false", JsonValue.makeBool(false));
    if (c == 0x6e) return this.parseLiteral("null", JsonValue.makeNull());
    return this.fail("expected a value", this.pos);
  }

  private parseLiteral(word: string, value: JsonValue): JsonValue | null {
    for (let i = 0; i < word.length; i++) {
      if (this.byteAt(this.pos + i) != word.charCodeAt(i)) return this.fail("expected '" + word + "'", this.pos);
    }
    this.pos += word.length;
    return value;
  }

  private enter(): bool {
    if (this.depth >= this.maxDepth) {
      this.fail("nesting deeper than " + this.maxDepth.toString(), this.pos);
      return false;
    }
    this.depth++;
    return true;
  }

  private parseArray(): JsonValue | null {
    if (!this.enter()) return null;
    this.pos++; // '['
    const items = new Array<JsonValue>();
    this.skipSpace();
    if (this.peek() == RBRACKET) {
      this.pos++;
      this.depth--;
      return JsonValue.makeArray(items);
    }
    while (true) {
      this.skipSpace();
      const item = this.parseValue();
      if (item == null) return null;
      items.push(item);
      this.skipSpace();
      const c = this.peek();
      if (c == COMMA) { this.pos++; continue; }
      if (c == RBRACKET) { this.pos++; break; }
      return this.fail("expected ',' or ']'", this.pos);
    }
    this.depth--;
    return JsonValue.makeArray(items);
  }

  private parseObject(): JsonValue | null {
    if (!this.enter()) return null;
    this.pos++; // '{'
    const keys = new Array<string>();
    const values = new Array<JsonValue>();
    this.skipSpace();
    if (this.peek() == RBRACE) {
      this.pos++;
      this.depth--;
      return JsonValue.makeObject(keys, values);
    }
    while (true) {
      this.skipSpace();
      if (this.peek() != QUOTE) return this.fail("expected a string key", this.pos);
      const keyOffset = this.pos;
      const key = this.parseString();
      if (key == null) return null;
      if (keys.includes(key)) return this.fail("duplicate key " + quote(key), keyOffset);
      this.skipSpace();
      if (this.peek() != COLON) return this.fail("expected ':'", this.pos);
      this.pos++;
      this.skipSpace();
      const value = this.parseValue();
      if (value == null) return null;
      keys.push(key);
      values.push(value);
      this.skipSpace();
      const c = this.peek();
      if (c == COMMA) { this.pos++; continue; }
      if (c == RBRACE) { this.pos++; break; }
      return this.fail("expected ',' or '}'", this.pos);
    }
    this.depth--;
    return JsonValue.makeObject(keys, values);
  }

  private isDigit(c: i32): bool {
    return c >= DIGIT_0 && c <= DIGIT_9;
  }

  /** Consumes one or more digits, or fails with `expected a digit`. */
  private digits(): bool {
    if (!this.isDigit(this.peek())) {
      this.fail("expected a digit", this.pos);
      return false;
    }
    while (this.isDigit(this.peek())) this.pos++;
    return true;
  }

  private parseNumber(): JsonValue | null {
    const start = this.pos;
    if (this.peek() == MINUS) this.pos++;
    if (this.peek() == DIGIT_0) {
      this.pos++;
      if (this.isDigit(this.peek())) return this.fail("leading zeros are not allowed", this.pos - 1);
    } else if (!this.digits()) {
      return null;
    }
    if (this.peek() == DOT) {
      this.pos++;
      if (!this.digits()) return null;
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const sign = this.peek();
      if (sign == PLUS || sign == MINUS) this.pos++;
      if (!this.digits()) return null;
    }
    // The slice is ASCII and matches the JSON number grammar, which parseFloat accepts as is.
    const text = String.UTF8.decodeUnsafe(this.bytes.dataStart + <usize>start, <usize>(this.pos - start));
    const n = parseFloat(text);
    if (!isFinite(n)) return this.fail("number out of range", start);
    return JsonValue.makeNumber(n);
  }

  private hexDigit(c: i32): i32 {
    if (c >= DIGIT_0 && c <= DIGIT_9) return c - DIGIT_0;
    if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
    if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
    return -1;
  }

  /** Reads the 4 hex digits after `\u` at offset; -1 when any is missing or not hex. */
  private hex4(offset: i32): i32 {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const d = this.hexDigit(this.byteAt(offset + i));
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    return v;
  }

  /** Length of the continuation bytes of a UTF-8 sequence starting with lead, or -1 if lead is invalid. */
  private static trailLength(lead: i32): i32 {
    if (lead >= 0xc2 && lead <= 0xdf) return 1;
    if (lead >= 0xe0 && lead <= 0xef) return 2;
    if (lead >= 0xf0 && lead <= 0xf4) return 3;
    return -1;
  }

  /**
   * Decodes one multi-byte UTF-8 sequence at pos into a code point, advancing pos past it;
   * -1 (pos unchanged) for an invalid, overlong, surrogate or out-of-range sequence.
   */
  private decodeUtf8(): i32 {
    const lead = this.peek();
    const trail = JsonParser.trailLength(lead);
    if (trail < 0) return -1;
    // The allowed range of the second byte narrows for E0, ED, F0, F4 (Unicode Table 3-7).
    let lo = 0x80;
    let hi = 0xbf;
    if (lead == 0xe0) lo = 0xa0;
    else if (lead == 0xed) hi = 0x9f;
    else if (lead == 0xf0) lo = 0x90;
    else if (lead == 0xf4) hi = 0x8f;
    let cp = lead & (0x3f >> trail);
    for (let i = 1; i <= trail; i++) {
      const b = this.byteAt(this.pos + i);
      if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return -1;
      cp = (cp << 6) | (b & 0x3f);
    }
    this.pos += trail + 1;
    return cp;
  }

  /** Parses the string whose opening quote is at pos; null (with error) on failure. */
  private parseString(): string | null {
    const open = this.pos;
    this.pos++;
    const units = new Array<i32>(); // UTF-16 code units of the result
    while (true) {
      const c = this.peek();
      if (c == END) {
        this.fail("unterminated string", open);
        return null;
      }
      if (c == QUOTE) {
        this.pos++;
        return String.fromCharCodes(units);
      }
      if (c < 0x20) {
        this.fail("unescaped control character", this.pos);
        return null;
      }
      if (c == BACKSLASH) {
        if (!this.parseEscape(units)) return null;
        continue;
      }
      if (c < 0x80) {
        units.push(c);
        this.pos++;
        continue;
      }
      const cp = this.decodeUtf8();
      if (cp < 0) {
        this.fail("invalid UTF-8", this.pos);
        return null;
      }
      if (cp >= 0x10000) {
        units.push(0xd800 + ((cp - 0x10000) >> 10));
        units.push(0xdc00 + ((cp - 0x10000) & 0x3ff));
      } else {
        units.push(cp);
      }
    }
  }

  /** Parses the escape whose backslash is at pos, appending its code unit(s). */
  private parseEscape(units: i32[]): bool {
    const at = this.pos;
    const e = this.byteAt(at + 1);
    let unit = -1;
    if (e == QUOTE) unit = QUOTE;
    else if (e == BACKSLASH) unit = BACKSLASH;
    else if (e == 0x2f) unit = 0x2f;     // \/
    else if (e == 0x62) unit = 0x08;     // \b
    else if (e == 0x66) unit = 0x0c;     // \f
    else if (e == 0x6e) unit = 0x0a;     // \n
    else if (e == 0x72) unit = 0x0d;     // \r
    else if (e == 0x74) unit = 0x09;     // \t
    if (unit >= 0) {
      units.push(unit);
      this.pos += 2;
      return true;
    }
    if (e != 0x75) { // \u
      this.fail("invalid escape", at);
      return false;
    }
    const u = this.hex4(at + 2);
    if (u < 0) {
      this.fail("invalid \\u escape", at);
      return false;
    }
    if (u >= 0xdc00 && u <= 0xdfff) {
      this.fail("unpaired surrogate", at);
      return false;
    }
    if (u >= 0xd800 && u <= 0xdbff) {
      // A high surrogate must be followed at once by an escaped low surrogate.
      if (this.byteAt(at + 6) != BACKSLASH || this.byteAt(at + 7) != 0x75) {
        this.fail("unpaired surrogate", at);
        return false;
      }
      const low = this.hex4(at + 8);
      if (low < 0) {
        this.fail("invalid \\u escape", at + 6);
        return false;
      }
      if (low < 0xdc00 || low > 0xdfff) {
        this.fail("unpaired surrogate", at);
        return false;
      }
      units.push(u);
      units.push(low);
      this.pos += 12;
      return true;
    }
    units.push(u);
    this.pos += 6;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Config reading with field paths in error messages.

/**
 * Collects the first error met while reading a config document, prefixed with the path of the
 * field at fault: `routes[1].route[0].weight: expected an integer, got "x"`.
 *
 *   const reader = ConfigReader.parse(bytes);       // or new ConfigReader(jsonValue)
 *   const root = reader.root();
 *   const prefix = root.get("statPrefix").stringOr("meltemi");
 *   const routes = root.get("routes").array();      // required
 *   for (let i = 0; i < routes.length; i++) {
 *     const weight = routes[i].get("weight").integerIn(0, 100, 1);
 *   }
 *   if (!reader.ok) return reader.error;
 *
 * Reading never traps and never stops early: after an error every accessor keeps returning its
 * default (or an absent field), so the caller checks `ok` once at the end. Only the first error is
 * kept (later ones are usually its consequences); `errorCount` counts them all.
 */
export class ConfigReader {
  /** Empty while ok, else `<path>: <message>` for the first error. */
  error: string = "";
  errorCount: i32 = 0;

  constructor(private readonly doc: JsonValue | null) {}

  /** Parses UTF-8 config bytes; a syntax error becomes `invalid JSON: <parser message>`. */
  static parse(bytes: Uint8Array, maxDepth: i32 = 32, maxBytes: i32 = 1 << 20): ConfigReader {
    const parser = new JsonParser(maxDepth, maxBytes);
    const doc = parser.parseBytes(bytes);
    const reader = new ConfigReader(doc);
    if (doc == null) reader.report("invalid JSON: " + parser.error);
    return reader;
  }

  get ok(): bool {
    return this.errorCount == 0;
  }

  /** The whole document, with the empty path (messages then read `<root>: ...`). */
  root(): ConfigField {
    return new ConfigField(this, "", this.doc);
  }

  /** Records an error message as is (already carrying its path). */
  report(message: string): void {
    if (this.errorCount == 0) this.error = message;
    this.errorCount++;
  }
}

/**
 * A possibly absent value at a path in a config document. Navigation (`get`, `at`, `array`,
 * `entries`) never fails on absence; typed reads decide: `string()`/`integer()`/... require the
 * field, `stringOr(def)`/`integerOr(def)`/... make it optional. JSON null counts as present.
 */
export class ConfigField {
  constructor(
    readonly reader: ConfigReader,
    /** e.g. `routes[1].route[0].weight`; "" for the root. */
    readonly path: string,
    /** The value, or null when the field is absent. */
    readonly value: JsonValue | null,
  ) {}

  get present(): bool {
    return this.value != null;
  }

  /** Reports `<path>: <message>` and returns false, for validation the typed reads do not cover. */
  fail(message: string): bool {
    this.reader.report((this.path.length > 0 ? this.path : "<root>") + ": " + message);
    return false;
  }

  /** The member key of this object (absent if this is absent; an error if this is not an object). */
  get(key: string): ConfigField {
    const path = this.path.length > 0 ? this.path + "." + key : key;
    const v = this.value;
    if (v == null) return new ConfigField(this.reader, path, null);
    if (!v.isObject()) {
      this.typeError("an object", v);
      return new ConfigField(this.reader, path, null);
    }
    return new ConfigField(this.reader, path, v.get(key));
  }

  /** The element at index of this array (absent when out of range). */
  at(index: i32): ConfigField {
    const path = this.path + "[" + index.toString() + "]";
    const v = this.value;
    if (v == null) return new ConfigField(this.reader, path, null);
    if (!v.isArray()) {
      this.typeError("an array", v);
      return new ConfigField(this.reader, path, null);
    }
    return new ConfigField(this.reader, path, v.at(index));
  }

  /** The elements of a required array, each with its indexed path; empty on error. */
  array(): ConfigField[] {
    if (!this.require()) return [];
    return this.arrayOrEmpty();
  }

  /** The elements of an optional array (empty when absent). */
  arrayOrEmpty(): ConfigField[] {
    const v = this.value;
    const out = new Array<ConfigField>();
    if (v == null) return out;
    if (!v.isArray()) {
      this.typeError("an array", v);
      return out;
    }
    for (let i = 0; i < v.length; i++) out.push(this.at(i));
    return out;
  }

  /** The members of an optional object in document order, each with its path; empty when absent. */
  entries(): ConfigField[] {
    const v = this.value;
    const out = new Array<ConfigField>();
    if (v == null) return out;
    if (!v.isObject()) {
      this.typeError("an object", v);
      return out;
    }
    const keys = v.keys();
    for (let i = 0; i < keys.length; i++) out.push(this.get(keys[i]));
    return out;
  }

  /** The last path segment: the member key, or "" for the root and array elements. */
  get key(): string {
    const p = this.path;
    if (p.endsWith("]")) return "";
    const dot = p.lastIndexOf(".");
    return dot < 0 ? p : p.substring(dot + 1);
  }

  /** Reports `unknown field "k"` for the first member not in known (catches typos in configs). */
  onlyKeys(known: string[]): bool {
    const v = this.value;
    if (v == null || !v.isObject()) return true;
    const keys = v.keys();
    for (let i = 0; i < keys.length; i++) {
      if (!known.includes(keys[i])) return this.fail("unknown field " + quote(keys[i]));
    }
    return true;
  }

  /** Requires an object here (for sections whose members are read with get). */
  object(): bool {
    if (!this.require()) return false;
    const v = this.value!;
    return v.isObject() ? true : this.typeError("an object", v);
  }

  string(): string {
    return this.require() ? this.stringOr("") : "";
  }

  stringOr(def: string): string {
    const v = this.value;
    if (v == null) return def;
    if (!v.isString()) {
      this.typeError("a string", v);
      return def;
    }
    return v.asString();
  }

  /** A required string that must be one of allowed: `expected one of "a", "b", got "c"`. */
  oneOf(allowed: string[]): string {
    return this.require() ? this.oneOfOr(allowed, "") : "";
  }

  oneOfOr(allowed: string[], def: string): string {
    const v = this.value;
    if (v == null) return def;
    if (v.isString() && allowed.includes(v.asString())) return v.asString();
    const names = new Array<string>();
    for (let i = 0; i < allowed.length; i++) names.push(quote(allowed[i]));
    this.typeError("one of " + names.join(", "), v);
    return def;
  }

  bool(): bool {
    return this.require() ? this.boolOr(false) : false;
  }

  boolOr(def: bool): bool {
    const v = this.value;
    if (v == null) return def;
    if (!v.isBool()) {
      this.typeError("a boolean", v);
      return def;
    }
    return v.asBool();
  }

  number(): f64 {
    return this.require() ? this.numberOr(0) : 0;
  }

  numberOr(def: f64): f64 {
    const v = this.value;
    if (v == null) return def;
    if (!v.isNumber()) {
      this.typeError("a number", v);
      return def;
    }
    return v.asNumber();
  }

  integer(): i64 {
    return this.require() ? this.integerOr(0) : 0;
  }

  integerOr(def: i64): i64 {
    const v = this.value;
    if (v == null) return def;
    if (!v.isInteger()) {
      this.typeError("an integer", v);
      return def;
    }
    return v.asInteger();
  }

  /** An optional integer in [min, max]: `expected an integer in [0, 100], got 101`. */
  integerIn(min: i64, max: i64, def: i64): i64 {
    const v = this.value;
    if (v == null) return def;
    const n = v.asInteger();
    if (!v.isInteger() || n < min || n > max) {
      this.typeError("an integer in [" + min.toString() + ", " + max.toString() + "]", v);
      return def;
    }
    return n;
  }

  /** Reports `required field is missing` when absent. */
  private require(): bool {
    return this.value != null ? true : this.fail("required field is missing");
  }

  private typeError(expected: string, got: JsonValue): bool {
    return this.fail("expected " + expected + ", got " + got.describe());
  }
}
