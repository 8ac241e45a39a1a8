import { JsonParser, JsonValue, JsonKind, ConfigReader, ConfigField, quote } from "../../../assembly/util/json";

/** Parses text that must be valid; fails the test (and returns a null value) otherwise. */
function ok(text: string): JsonValue {
  const p = new JsonParser();
  const v = p.parse(text);
  expect(p.error).toBe("", "unexpected error for " + text);
  return v == null ? JsonValue.makeString("<parse failed>") : v;
}

/** Parses text that must be invalid and returns the error message. */
function err(text: string): string {
  const p = new JsonParser();
  const v = p.parse(text);
  expect(v).toBeNull("expected an error for " + text);
  return p.error;
}

function errBytes(bytes: u8[]): string {
  const buf = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buf[i] = bytes[i];
  const p = new JsonParser();
  expect(p.parseBytes(buf)).toBeNull();
  return p.error;
}

function reader(text: string): ConfigReader {
  return ConfigReader.parse(Uint8Array.wrap(String.UTF8.encode(text)));
}

function nested(open: string, close: string, depth: i32): string {
  return open.repeat(depth) + close.repeat(depth);
}

describe("JsonParser: values", () => {
  it("parses literals", () => {
    expect(ok("true").asBool()).toBe(true);
    expect(ok("false").isBool()).toBe(true);
    expect(ok("false").asBool()).toBe(false);
    expect(ok("null").isNull()).toBe(true);
    expect(ok("null").kind).toBe(JsonKind.Null);
  });

  it("parses numbers as f64", () => {
    expect(ok("0").asNumber()).toBe(0.0);
    expect(ok("-12").asNumber()).toBe(-12.0);
    expect(ok("1.5").asNumber()).toBe(1.5);
    expect(ok("-0.25").asNumber()).toBe(-0.25);
    expect(ok("1e2").asNumber()).toBe(100.0);
    expect(ok("1E+2").asNumber()).toBe(100.0);
    expect(ok("-12.5e-1").asNumber()).toBe(-1.25);
    expect(ok("0.1").asNumber()).toBe(0.1);
    expect(ok("1e-400").asNumber()).toBe(0.0);
  });

  it("tells integers apart", () => {
    expect(ok("7").isInteger()).toBe(true);
    expect(ok("7").asInteger()).toBe(7);
    expect(ok("-3").asInteger()).toBe(-3);
    expect(ok("1.0").isInteger()).toBe(true);
    expect(ok("2e3").asInteger()).toBe(2000);
    expect(ok("9007199254740991").isInteger()).toBe(true);
    expect(ok("9007199254740992").isInteger()).toBe(false);
    expect(ok("1.5").isInteger()).toBe(false);
    expect(ok("1.5").asInteger()).toBe(0);
    expect(ok("\"1\"").isInteger()).toBe(false);
  });

  it("decodes every escape", () => {
    expect(ok("\"a\\\"b\\\\c\\/d\"").asString()).toBe("a\"b\\c/d");
    expect(ok("\"\\b\\f\\n\\r\\t\"").asString()).toBe("\b\f\n\r\t");
    expect(ok("\"\\u0041\\u00e9\\u00E9\"").asString()).toBe("Aéé");
    expect(ok("\"\\u0000\"").asString().charCodeAt(0)).toBe(0);
  });

  it("joins escaped surrogate pairs", () => {
    const s = ok("\"\\ud83d\\ude00\"").asString();
    expect(s).toBe("😀");
    expect(s.length).toBe(2);
  });

  it("decodes raw UTF-8", () => {
    expect(ok("\"é\"").asString()).toBe("é");
    expect(ok("\"€\"").asString()).toBe("€");
    expect(ok("\"😀x\"").asString()).toBe("😀x");
  });

  it("keeps object keys in document order", () => {
    const v = ok("{\"b\":1,\"a\":2,\"c\":{\"x\":[]}}");
    expect(v.isObject()).toBe(true);
    expect(v.keys()).toStrictEqual(["b", "a", "c"]);
    expect(v.length).toBe(3);
    expect(v.get("a")!.asNumber()).toBe(2.0);
    expect(v.has("c")).toBe(true);
    expect(v.has("z")).toBe(false);
    expect(v.get("z")).toBeNull();
    expect(v.get("c")!.get("x")!.isArray()).toBe(true);
  });

  it("parses arrays", () => {
    const v = ok("[1, \"two\", [true], {}]");
    expect(v.length).toBe(4);
    const items = v.items();
    expect(items.length).toBe(4);
    expect(items[1].asString()).toBe("two");
    expect(v.at(2)!.at(0)!.asBool()).toBe(true);
    expect(v.at(3)!.isObject()).toBe(true);
    expect(v.at(4)).toBeNull();
    expect(v.at(-1)).toBeNull();
    expect(ok("[]").length).toBe(0);
    expect(ok("{}").keys().length).toBe(0);
  });

  it("skips the four whitespace characters", () => {
    const v = ok(" \t\r\n{ \"a\" :\n[ 1 , 2 ] } \n");
    expect(v.get("a")!.length).toBe(2);
  });

  it("returns neutral values from accessors of the wrong kind", () => {
    const s = ok("\"x\"");
    expect(s.asNumber()).toBe(0.0);
    expect(s.asBool()).toBe(false);
    expect(s.get("x")).toBeNull();
    expect(s.at(0)).toBeNull();
    expect(s.keys().length).toBe(0);
    expect(s.items().length).toBe(0);
    expect(ok("1").asString()).toBe("");
    expect(ok("{\"a\":1}").items().length).toBe(0);
    expect(ok("{\"a\":1}").at(0)).toBeNull();
  });

  it("names its types", () => {
    expect(ok("null").typeName()).toBe("null");
    expect(ok("true").typeName()).toBe("boolean");
    expect(ok("1").typeName()).toBe("number");
    expect(ok("\"\"").typeName()).toBe("string");
    expect(ok("[]").typeName()).toBe("array");
    expect(ok("{}").typeName()).toBe("object");
  });

  it("stringifies compactly, integers without a fraction", () => {
    const text = "{\"b\":[1,-2.5,true,null],\"a\":\"q\\\"\\\\\\n\\u0001é\",\"c\":{}}";
    expect(ok(text).stringify()).toBe(text);
    expect(ok("1.0").stringify()).toBe("1");
    expect(ok(" [ ] ").stringify()).toBe("[]");
  });

  it("describes values for error messages", () => {
    expect(ok("\"x\"").describe()).toBe("\"x\"");
    expect(ok("12").describe()).toBe("12");
    expect(ok("false").describe()).toBe("false");
    expect(ok("[1]").describe()).toBe("an array");
    expect(ok("{}").describe()).toBe("an object");
    expect(ok("\"" + "a".repeat(50) + "\"").describe()).toBe("\"" + "a".repeat(40) + "\"...");
  });

  it("quotes strings", () => {
    expect(quote("a\"b\\\t\u001f")).toBe("\"a\\\"b\\\\\\t\\u001f\"");
  });

  it("accepts nesting up to the depth limit", () => {
    expect(ok(nested("[", "]", 32)).isArray()).toBe(true);
    expect(new JsonParser(2).parse("{\"a\":[1]}")).not.toBeNull();
  });

  it("accepts input up to the size limit", () => {
    expect(new JsonParser(32, 8).parse("[1,2,33]")).not.toBeNull();
  });

  it("reports offsets in UTF-8 bytes", () => {
    // "é" is two bytes, so the stray x sits at byte 6 (UTF-16 index 5).
    expect(err("[\"é\" x]")).toBe("expected ',' or ']' at offset 6");
  });

  it("resets the error when reused", () => {
    const p = new JsonParser();
    expect(p.parse("[")).toBeNull();
    expect(p.errorOffset).toBe(1);
    expect(p.parse("[]")).not.toBeNull();
    expect(p.error).toBe("");
    expect(p.errorOffset).toBe(-1);
  });

  it("has a static shorthand", () => {
    expect(JsonParser.parse("[1]")!.length).toBe(1);
    expect(JsonParser.parse("[1")).toBeNull();
  });
});

describe("JsonParser: errors", () => {
  it("rejects input over the size limit", () => {
    const p = new JsonParser(32, 8);
    expect(p.parse("[1,2,3,4]")).toBeNull();
    expect(p.error).toBe("input exceeds 8 bytes at offset 8");
  });

  it("expects a value", () => {
    expect(err("")).toBe("expected a value at offset 0");
    expect(err("   ")).toBe("expected a value at offset 3");
    expect(err("+1")).toBe("expected a value at offset 0");
    expect(err(".5")).toBe("expected a value at offset 0");
    expect(err("[1,]")).toBe("expected a value at offset 3");
    expect(err("{\"a\":}")).toBe("expected a value at offset 5");
    expect(err("'a'")).toBe("expected a value at offset 0");
    expect(err("\uFEFF1")).toBe("expected a value at offset 0");
    expect(err("NaN")).toBe("expected a value at offset 0");
  });

  it("expects end of input after the value", () => {
    expect(err("1 2")).toBe("expected end of input at offset 2");
    expect(err("{}}")).toBe("expected end of input at offset 2");
    expect(err("[]x")).toBe("expected end of input at offset 2");
  });

  it("expects ',' or ']' in arrays", () => {
    expect(err("[1 2]")).toBe("expected ',' or ']' at offset 3");
    expect(err("[1")).toBe("expected ',' or ']' at offset 2");
    expect(err("[")).toBe("expected a value at offset 1");
  });

  it("expects ',' or '}' in objects", () => {
    expect(err("{\"a\":1 \"b\":2}")).toBe("expected ',' or '}' at offset 7");
    expect(err("{\"a\":1")).toBe("expected ',' or '}' at offset 6");
    expect(err("{\"routes\":[{\"name\":1]}")).toBe("expected ',' or '}' at offset 20");
  });

  it("expects string keys", () => {
    expect(err("{a:1}")).toBe("expected a string key at offset 1");
    expect(err("{\"a\":1,}")).toBe("expected a string key at offset 7");
    expect(err("{1:1}")).toBe("expected a string key at offset 1");
    expect(err("{")).toBe("expected a string key at offset 1");
  });

  it("expects ':' after a key", () => {
    expect(err("{\"a\" 1}")).toBe("expected ':' at offset 5");
    expect(err("{\"a\"")).toBe("expected ':' at offset 4");
  });

  it("rejects duplicate keys", () => {
    expect(err("{\"a\":1,\"b\":2,\"a\":3}")).toBe("duplicate key \"a\" at offset 13");
  });

  it("rejects nesting over the depth limit", () => {
    expect(err(nested("[", "]", 33))).toBe("nesting deeper than 32 at offset 32");
    expect(err(nested("{\"a\":", "}", 33))).toBe("nesting deeper than 32 at offset 160");
    const p = new JsonParser(2);
    expect(p.parse("[{\"a\":[]}]")).toBeNull();
    expect(p.error).toBe("nesting deeper than 2 at offset 6");
  });

  it("rejects misspelled literals", () => {
    expect(err("tru")).toBe("expected 'true' at offset 0");
    expect(err("[truE]")).toBe("expected 'true' at offset 1");
    expect(err("fals")).toBe("expected 'false' at offset 0");
    expect(err("nul")).toBe("expected 'null' at offset 0");
    expect(err("nulll")).toBe("expected end of input at offset 4");
  });

  it("rejects malformed numbers", () => {
    expect(err("01")).toBe("leading zeros are not allowed at offset 0");
    expect(err("-007")).toBe("leading zeros are not allowed at offset 1");
    expect(err("-")).toBe("expected a digit at offset 1");
    expect(err("-a")).toBe("expected a digit at offset 1");
    expect(err("1.")).toBe("expected a digit at offset 2");
    expect(err("1.e5")).toBe("expected a digit at offset 2");
    expect(err("1e")).toBe("expected a digit at offset 2");
    expect(err("1e+")).toBe("expected a digit at offset 3");
    expect(err("[1E-x]")).toBe("expected a digit at offset 4");
    expect(err("0x10")).toBe("expected end of input at offset 1");
  });

  it("rejects numbers that overflow f64", () => {
    expect(err("[1, 1e400]")).toBe("number out of range at offset 4");
    expect(err("-1e309")).toBe("number out of range at offset 0");
  });

  it("rejects unterminated strings at the opening quote", () => {
    expect(err("\"abc")).toBe("unterminated string at offset 0");
    expect(err("[\"a\", \"b")).toBe("unterminated string at offset 6");
    expect(err("\"abc\\")).toBe("invalid escape at offset 4");
  });

  it("rejects raw control characters in strings", () => {
    expect(err("\"a\nb\"")).toBe("unescaped control character at offset 2");
    expect(err("\"\t\"")).toBe("unescaped control character at offset 1");
    expect(err("\"\u0000\"")).toBe("unescaped control character at offset 1");
  });

  it("rejects unknown escapes", () => {
    expect(err("\"\\x41\"")).toBe("invalid escape at offset 1");
    expect(err("\"ab\\'\"")).toBe("invalid escape at offset 3");
    expect(err("\"\\U0041\"")).toBe("invalid escape at offset 1");
  });

  it("rejects short or non-hex \\u escapes", () => {
    expect(err("\"\\u12\"")).toBe("invalid \\u escape at offset 1");
    expect(err("\"\\u12G4\"")).toBe("invalid \\u escape at offset 1");
    expect(err("\"\\u")).toBe("invalid \\u escape at offset 1");
    expect(err("\"\\ud83d\\uzz00\"")).toBe("invalid \\u escape at offset 7");
  });

  it("rejects unpaired surrogates", () => {
    expect(err("\"\\ud83d\"")).toBe("unpaired surrogate at offset 1");
    expect(err("\"\\ud83dx\"")).toBe("unpaired surrogate at offset 1");
    expect(err("\"\\ud83d\\n\"")).toBe("unpaired surrogate at offset 1");
    expect(err("\"\\ud83d\\u0041\"")).toBe("unpaired surrogate at offset 1");
    expect(err("\"ab\\ude00\"")).toBe("unpaired surrogate at offset 3");
  });

  it("rejects invalid UTF-8", () => {
    // '"' 'a' then the bad sequence; the offset names its first byte.
    expect(errBytes([0x22, 0x61, 0x80, 0x22])).toBe("invalid UTF-8 at offset 2");        // stray continuation
    expect(errBytes([0x22, 0xc0, 0xaf, 0x22])).toBe("invalid UTF-8 at offset 1");        // overlong '/'
    expect(errBytes([0x22, 0xe0, 0x80, 0xaf, 0x22])).toBe("invalid UTF-8 at offset 1");  // overlong 3-byte
    expect(errBytes([0x22, 0xed, 0xa0, 0x80, 0x22])).toBe("invalid UTF-8 at offset 1");  // encoded surrogate
    expect(errBytes([0x22, 0xf4, 0x90, 0x80, 0x80, 0x22])).toBe("invalid UTF-8 at offset 1"); // > U+10FFFF
    expect(errBytes([0x22, 0xf5, 0x80, 0x80, 0x80, 0x22])).toBe("invalid UTF-8 at offset 1");
    expect(errBytes([0x22, 0xe2, 0x82, 0x22])).toBe("invalid UTF-8 at offset 1");        // truncated
    expect(errBytes([0x22, 0xe2, 0x82])).toBe("invalid UTF-8 at offset 1");              // truncated at end
    expect(errBytes([0xc3, 0xa9])).toBe("expected a value at offset 0");                 // outside a string
  });
});

describe("ConfigReader", () => {
  it("names the field path in type errors", () => {
    const r = reader("{\"routes\":[{\"route\":[]},{\"route\":[{\"weight\":\"x\"}]}]}");
    const routes = r.root().get("routes").array();
    expect(routes.length).toBe(2);
    for (let i = 0; i < routes.length; i++) {
      const targets = routes[i].get("route").array();
      for (let j = 0; j < targets.length; j++) targets[j].get("weight").integerOr(1);
    }
    expect(r.ok).toBe(false);
    expect(r.error).toBe("routes[1].route[0].weight: expected an integer, got \"x\"");
  });

  it("reads typed fields and defaults", () => {
    const r = reader("{\"name\":\"a\",\"n\":3,\"f\":0.5,\"on\":true,\"mode\":\"x\",\"list\":[1,2]}");
    const root = r.root();
    expect(root.object()).toBe(true);
    expect(root.get("name").string()).toBe("a");
    expect(root.get("n").integer()).toBe(3);
    expect(root.get("f").number()).toBe(0.5);
    expect(root.get("on").bool()).toBe(true);
    expect(root.get("mode").oneOf(["x", "y"])).toBe("x");
    expect(root.get("n").integerIn(0, 3, 9)).toBe(3);
    expect(root.get("list").at(1).integer()).toBe(2);
    expect(root.get("missing").stringOr("dflt")).toBe("dflt");
    expect(root.get("missing").integerOr(7)).toBe(7);
    expect(root.get("missing").numberOr(1.5)).toBe(1.5);
    expect(root.get("missing").boolOr(true)).toBe(true);
    expect(root.get("missing").oneOfOr(["x"], "x")).toBe("x");
    expect(root.get("missing").integerIn(0, 1, 1)).toBe(1);
    expect(root.get("missing").arrayOrEmpty().length).toBe(0);
    expect(root.get("missing").entries().length).toBe(0);
    expect(root.get("missing").get("deeper").present).toBe(false);
    expect(root.get("list").at(5).present).toBe(false);
    expect(r.ok).toBe(true);
    expect(r.error).toBe("");
  });

  it("lists object members with their paths", () => {
    const r = reader("{\"clusters\":{\"b\":1,\"a\":2}}");
    const members = r.root().get("clusters").entries();
    expect(members.length).toBe(2);
    expect(members[0].path).toBe("clusters.b");
    expect(members[0].key).toBe("b");
    expect(members[1].integer()).toBe(2);
    expect(r.root().get("clusters").at(0).key).toBe("");
  });

  it("reports missing required fields", () => {
    const r = reader("{\"routes\":[{}]}");
    r.root().get("routes").at(0).get("name").string();
    expect(r.error).toBe("routes[0].name: required field is missing");
    const r2 = reader("{}");
    r2.root().get("routes").array();
    expect(r2.error).toBe("routes: required field is missing");
    const r3 = reader("{}");
    expect(r3.root().get("section").object()).toBe(false);
    expect(r3.error).toBe("section: required field is missing");
  });

  it("names the expected type and shows what it got", () => {
    expect(first("{\"a\":1}", (f: ConfigField): void => { f.get("a").string(); })).toBe("a: expected a string, got 1");
    expect(first("{\"a\":\"1\"}", (f: ConfigField): void => { f.get("a").number(); })).toBe("a: expected a number, got \"1\"");
    expect(first("{\"a\":null}", (f: ConfigField): void => { f.get("a").bool(); })).toBe("a: expected a boolean, got null");
    expect(first("{\"a\":1.5}", (f: ConfigField): void => { f.get("a").integer(); })).toBe("a: expected an integer, got 1.5");
    expect(first("{\"a\":{}}", (f: ConfigField): void => { f.get("a").array(); })).toBe("a: expected an array, got an object");
    expect(first("{\"a\":[]}", (f: ConfigField): void => { f.get("a").entries(); })).toBe("a: expected an object, got an array");
    expect(first("{\"a\":[]}", (f: ConfigField): void => { f.get("a").get("b"); })).toBe("a: expected an object, got an array");
    expect(first("{\"a\":{}}", (f: ConfigField): void => { f.get("a").at(0); })).toBe("a: expected an array, got an object");
    expect(first("{\"a\":true}", (f: ConfigField): void => { f.get("a").object(); })).toBe("a: expected an object, got true");
    expect(first("{\"w\":101}", (f: ConfigField): void => { f.get("w").integerIn(0, 100, 1); }))
      .toBe("w: expected an integer in [0, 100], got 101");
    expect(first("{\"w\":\"5\"}", (f: ConfigField): void => { f.get("w").integerIn(0, 100, 1); }))
      .toBe("w: expected an integer in [0, 100], got \"5\"");
    expect(first("{\"m\":\"z\"}", (f: ConfigField): void => { f.get("m").oneOf(["x", "y"]); }))
      .toBe("m: expected one of \"x\", \"y\", got \"z\"");
  });

  it("names the root as <root>", () => {
    expect(first("1", (f: ConfigField): void => { f.get("a"); })).toBe("<root>: expected an object, got 1");
    expect(first("[]", (f: ConfigField): void => { f.object(); })).toBe("<root>: expected an object, got an array");
  });

  it("reports unknown fields", () => {
    const r = reader("{\"routes\":[{\"name\":\"a\",\"mtach\":{}}]}");
    expect(r.root().get("routes").at(0).onlyKeys(["name", "match", "route"])).toBe(false);
    expect(r.error).toBe("routes[0]: unknown field \"mtach\"");
    expect(reader("{\"a\":1}").root().onlyKeys(["a"])).toBe(true);
  });

  it("reports custom validation against the field", () => {
    const r = reader("{\"name\":\"\"}");
    const name = r.root().get("name");
    if (name.string().length == 0) name.fail("must not be empty");
    expect(r.error).toBe("name: must not be empty");
  });

  it("keeps the first error and counts the rest", () => {
    const r = reader("{\"a\":\"x\",\"b\":\"y\"}");
    expect(r.root().get("a").integerOr(5)).toBe(5);
    expect(r.root().get("b").integerOr(6)).toBe(6);
    expect(r.error).toBe("a: expected an integer, got \"x\"");
    expect(r.errorCount).toBe(2);
  });

  it("turns a syntax error into its first error and reads on safely", () => {
    const r = reader("{\"routes\": [1,]}");
    expect(r.ok).toBe(false);
    expect(r.error).toBe("invalid JSON: expected a value at offset 14");
    expect(r.root().get("routes").array().length).toBe(0);
    expect(r.root().get("statPrefix").stringOr("meltemi")).toBe("meltemi");
    expect(r.error).toBe("invalid JSON: expected a value at offset 14");
  });

  it("wraps an already parsed document", () => {
    const r = new ConfigReader(JsonParser.parse("{\"a\":1}"));
    expect(r.root().get("a").integer()).toBe(1);
    expect(r.ok).toBe(true);
  });
});

/** Runs read against a fresh reader over text and returns its first error. */
function first(text: string, read: (f: ConfigField) => void): string {
  const r = reader(text);
  read(r.root());
  return r.error;
}
