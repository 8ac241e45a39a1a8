import { Regex, MAX_PROGRAM } from "../../../assembly/util/regex";

/** Compiles a pattern that must be valid; on failure the test fails and the result matches nothing. */
function re(pattern: string): Regex {
  const r = Regex.compile(pattern);
  expect(Regex.lastError).toBe("", "unexpected compile error for " + pattern);
  return r == null ? Regex.compile("[^\\s\\S]")! : r;
}

function full(pattern: string, s: string): bool {
  return re(pattern).fullMatch(s);
}

/** Compiles a pattern that must be invalid and returns the error. */
function err(pattern: string): string {
  expect(Regex.compile(pattern)).toBeNull("expected a compile error for " + pattern);
  return Regex.lastError;
}

describe("Regex: matching", () => {
  it("matches literals in full", () => {
    expect(full("sayHello", "sayHello")).toBe(true);
    expect(full("sayHello", "sayHello2")).toBe(false);
    expect(full("sayHello", "xsayHello")).toBe(false);
    expect(full("say", "")).toBe(false);
    expect(full("", "")).toBe(true);
    expect(full("", "a")).toBe(false);
  });

  it("matches any code unit but newline with '.'", () => {
    expect(full("a.c", "abc")).toBe(true);
    expect(full("a.c", "a.c")).toBe(true);
    expect(full("a.c", "a\nc")).toBe(false);
    expect(full("a.c", "ac")).toBe(false);
  });

  it("matches classes, ranges and negation", () => {
    const r = re("[a-z0-9_]+");
    expect(r.fullMatch("get_user2")).toBe(true);
    expect(r.fullMatch("getUser")).toBe(false);
    expect(full("[^a-c]", "d")).toBe(true);
    expect(full("[^a-c]", "b")).toBe(false);
    expect(full("[^a-c]", "\n")).toBe(true);
    expect(full("[]a]+", "]a]")).toBe(true);
    expect(full("[^]a]", "]")).toBe(false);
    expect(full("[-a]+", "-a")).toBe(true);
    expect(full("[a-]+", "a-")).toBe(true);
    expect(full("[a\\-z]+", "-az")).toBe(true);
    expect(full("[a\\-z]", "b")).toBe(false);
    expect(full("[.]", "x")).toBe(false);
    expect(full("[\\]\\\\]+", "]\\")).toBe(true);
    expect(full("[[]", "[")).toBe(true);
  });

  it("matches Perl classes inside and outside brackets", () => {
    expect(full("\\d+", "0123456789")).toBe(true);
    expect(full("\\d", "a")).toBe(false);
    expect(full("\\D", "a")).toBe(true);
    expect(full("\\D", "5")).toBe(false);
    expect(full("\\w+", "Az09_")).toBe(true);
    expect(full("\\w", "-")).toBe(false);
    expect(full("\\W", "-")).toBe(true);
    expect(full("\\s+", " \t\n\r\f")).toBe(true);
    expect(full("\\s", "\v")).toBe(false);
    expect(full("\\S", " ")).toBe(false);
    expect(full("[\\d.]+", "1.2.3")).toBe(true);
    expect(full("[^\\d]", "5")).toBe(false);
    expect(full("[\\D]", "x")).toBe(true);
    expect(full("[\\D]", "7")).toBe(false);
    expect(full("[\\s\\S]", "\n")).toBe(true);
    expect(full("[\\W\\d]", "3")).toBe(true);
    expect(full("[\\W\\d]", "a")).toBe(false);
  });

  it("matches escaped punctuation and control escapes", () => {
    expect(full("a\\.b", "a.b")).toBe(true);
    expect(full("a\\.b", "axb")).toBe(false);
    expect(full("\\\\", "\\")).toBe(true);
    expect(full("\\-\\[\\]\\(\\)\\{\\}\\*\\+\\?\\|\\^\\$\\/", "-[](){}*+?|^$/")).toBe(true);
    expect(full("\\n\\t\\r\\f\\v", "\n\t\r\f\v")).toBe(true);
    expect(full("\\x41\\x7a", "Az")).toBe(true);
  });

  it("treats anchors as beginning and end of text", () => {
    expect(full("^abc$", "abc")).toBe(true);
    expect(full("^abc", "abc")).toBe(true);
    expect(full("a^b", "ab")).toBe(false);
    expect(full("a$b", "ab")).toBe(false);
    expect(full("\\Aab\\z", "ab")).toBe(true);
    expect(full("(^a|b)+", "abab")).toBe(false);
    expect(full("(^a|b)+", "abb")).toBe(true);
  });

  it("matches word boundaries", () => {
    expect(re("\\bfoo\\b").find("a foo b")).toBe(true);
    expect(re("\\bfoo\\b").find("afoo")).toBe(false);
    expect(re("\\Boo\\b").find("foo")).toBe(true);
    expect(full("\\b", "")).toBe(false);
    expect(full("\\B", "")).toBe(true);
  });

  it("matches groups and alternation", () => {
    const r = re("(get|set)(User|Order)s?");
    expect(r.fullMatch("getUser")).toBe(true);
    expect(r.fullMatch("setOrders")).toBe(true);
    expect(r.fullMatch("putUser")).toBe(false);
    expect(r.fullMatch("getUserss")).toBe(false);
    expect(full("(?:ab)+", "ababab")).toBe(true);
    expect(full("(?:ab)+", "aba")).toBe(false);
    expect(full("(?P<verb>get|put)X", "putX")).toBe(true);
    expect(full("(?<verb>get|put)X", "getX")).toBe(true);
    expect(full("a|", "")).toBe(true);
    expect(full("|a", "a")).toBe(true);
    expect(full("()", "")).toBe(true);
    expect(full("a||b", "b")).toBe(true);
    expect(full("(a|b|c|d)", "d")).toBe(true);
  });

  it("matches quantifiers", () => {
    expect(full("ab*c", "ac")).toBe(true);
    expect(full("ab*c", "abbbc")).toBe(true);
    expect(full("ab+c", "ac")).toBe(false);
    expect(full("ab+c", "abc")).toBe(true);
    expect(full("ab?c", "abc")).toBe(true);
    expect(full("ab?c", "abbc")).toBe(false);
    expect(full("a{3}", "aaa")).toBe(true);
    expect(full("a{3}", "aa")).toBe(false);
    expect(full("a{3}", "aaaa")).toBe(false);
    expect(full("a{2,}", "a")).toBe(false);
    expect(full("a{2,}", "aaaaaa")).toBe(true);
    expect(full("a{2,4}", "aaaa")).toBe(true);
    expect(full("a{2,4}", "aaaaa")).toBe(false);
    expect(full("a{0,2}", "")).toBe(true);
    expect(full("a{0}b", "b")).toBe(true);
    expect(full("a{0,0}b", "ab")).toBe(false);
    expect(full("(ab){2}", "abab")).toBe(true);
    expect(full("[0-9]{1,3}(\\.[0-9]{1,3}){3}", "10.0.12.255")).toBe(true);
    expect(full("[0-9]{1,3}(\\.[0-9]{1,3}){3}", "10.0.12")).toBe(false);
  });

  it("accepts lazy quantifiers as greedy", () => {
    expect(full("a*?b", "aab")).toBe(true);
    expect(full("a+?", "aaa")).toBe(true);
    expect(full("a??b", "b")).toBe(true);
    expect(full("a{1,2}?", "aa")).toBe(true);
  });

  it("treats a brace that is not a repeat as a literal", () => {
    expect(full("a{", "a{")).toBe(true);
    expect(full("a{,3}", "a{,3}")).toBe(true);
    expect(full("a{x}", "a{x}")).toBe(true);
    expect(full("{", "{")).toBe(true);
    expect(full("a}", "a}")).toBe(true);
    expect(full("]", "]")).toBe(true);
  });

  it("quantifies empty-width expressions without looping", () => {
    expect(full("(a*)*", "aaa")).toBe(true);
    expect(full("(a*)+b", "b")).toBe(true);
    expect(full("(|a)*", "aa")).toBe(true);
    expect(full("()*", "")).toBe(true);
    expect(full("^*a", "a")).toBe(true);
    expect(full("(a?){5}a{5}", "aaaaa")).toBe(true);
  });

  it("works on UTF-16 code units", () => {
    expect(full("é+", "éé")).toBe(true);
    expect(full("caf.", "café")).toBe(true);
    expect(full("😀", "😀")).toBe(true);
    expect(full(".", "😀")).toBe(false);
    expect(full("..", "😀")).toBe(true);
    expect(full("[à-ÿ]+", "éü")).toBe(true);
    expect(full("[^a]", "é")).toBe(true);
    expect(full("\\w", "é")).toBe(false);
    expect(full("\\W", "é")).toBe(true);
  });

  it("finds unanchored matches", () => {
    const r = re("b+c");
    expect(r.find("aabbbcdd")).toBe(true);
    expect(r.find("aabd")).toBe(false);
    expect(re("").find("")).toBe(true);
    expect(re("^a").find("ba")).toBe(false);
    expect(re("a$").find("ba")).toBe(true);
    expect(r.fullMatch("bc")).toBe(true);
  });

  it("is reusable across inputs", () => {
    const r = re("(a|b)*c");
    for (let i = 0; i < 100; i++) {
      expect(r.fullMatch("ababc")).toBe(true);
      expect(r.fullMatch("ababd")).toBe(false);
    }
  });

  it("runs pathological patterns in linear time", () => {
    const a40 = "a".repeat(40);
    expect(full("(a*)*b", a40)).toBe(false);
    expect(full("(a*)*b", a40 + "b")).toBe(true);
    expect(full("(a+)+b", a40)).toBe(false);
    expect(full("(a|aa)+b", a40)).toBe(false);
    expect(full("(a|a?)+b", a40)).toBe(false);
    expect(full("(.*a){20}", a40)).toBe(true);
    expect(full("(.*a){20}", "a".repeat(19))).toBe(false);
    // 30 optional a's then 30 a's: exponential for backtrackers, 2^30 paths.
    expect(full("a?".repeat(30) + "a".repeat(30), "a".repeat(30))).toBe(true);
    // A long input through a larger program.
    const long = "ab".repeat(5000);
    expect(full("(a|b|ab|ba)*(x|y)", long)).toBe(false);
    expect(re("(a*)*b").find("a".repeat(2000))).toBe(false);
  });

  it("reports the program size", () => {
    expect(re("abc").programSize).toBe(4);
    expect(re("a{3}").programSize).toBe(4);
    expect(re("").programSize).toBe(1);
  });

  it("compiles a pattern right at the program limit", () => {
    // 'a' x (MAX_PROGRAM - 1) plus Match
    expect(Regex.compile("a{999}".repeat(10) + "a".repeat(MAX_PROGRAM - 1 - 9990))).not.toBeNull();
  });

  it("keeps the pattern", () => {
    expect(re("a+").pattern).toBe("a+");
  });
});

describe("Regex: syntax errors", () => {
  it("rejects a missing ')'", () => {
    expect(err("(ab")).toBe("regex: missing ')' at offset 0");
    expect(err("x(a(b)")).toBe("regex: missing ')' at offset 1");
    expect(err("(?:a")).toBe("regex: missing ')' at offset 0");
  });

  it("rejects an unexpected ')'", () => {
    expect(err("ab)")).toBe("regex: unexpected ')' at offset 2");
    expect(err(")")).toBe("regex: unexpected ')' at offset 0");
    expect(err("(a))")).toBe("regex: unexpected ')' at offset 3");
  });

  it("rejects a missing ']'", () => {
    expect(err("[abc")).toBe("regex: missing ']' at offset 0");
    expect(err("a[]")).toBe("regex: missing ']' at offset 1");
    expect(err("[^]")).toBe("regex: missing ']' at offset 0");
    expect(err("[a-")).toBe("regex: missing ']' at offset 0");
  });

  it("rejects a quantifier with nothing to repeat", () => {
    expect(err("*a")).toBe("regex: nothing to repeat at offset 0");
    expect(err("+")).toBe("regex: nothing to repeat at offset 0");
    expect(err("a|?")).toBe("regex: nothing to repeat at offset 2");
    expect(err("(*)")).toBe("regex: nothing to repeat at offset 1");
    expect(err("{2}")).toBe("regex: nothing to repeat at offset 0");
  });

  it("rejects repeated quantifiers", () => {
    expect(err("a**")).toBe("regex: repeated quantifier at offset 2");
    expect(err("a+*")).toBe("regex: repeated quantifier at offset 2");
    expect(err("a*?+")).toBe("regex: repeated quantifier at offset 3");
    expect(err("a*??")).toBe("regex: repeated quantifier at offset 3");
    expect(err("a{2}{3}")).toBe("regex: repeated quantifier at offset 4");
    expect(err("a{2}*")).toBe("regex: repeated quantifier at offset 4");
  });

  it("rejects repeat counts over the limit", () => {
    expect(err("a{1001}")).toBe("regex: repeat count exceeds 1000 at offset 1");
    expect(err("a{2,1001}")).toBe("regex: repeat count exceeds 1000 at offset 1");
    expect(err("a{99999999999}")).toBe("regex: repeat count exceeds 1000 at offset 1");
    expect(re("a{1000}").programSize).toBe(1001);
  });

  it("rejects an inverted repeat range", () => {
    expect(err("a{3,2}")).toBe("regex: invalid repeat range {3,2} at offset 1");
  });

  it("rejects a trailing backslash", () => {
    expect(err("ab\\")).toBe("regex: trailing backslash at offset 2");
    expect(err("[a\\")).toBe("regex: trailing backslash at offset 2");
  });

  it("rejects unknown escapes", () => {
    expect(err("a\\q")).toBe("regex: unknown escape \\q at offset 1");
    expect(err("\\pL")).toBe("regex: unknown escape \\p at offset 0");
    expect(err("\\0")).toBe("regex: unknown escape \\0 at offset 0");
    expect(err("[\\q]")).toBe("regex: unknown escape \\q at offset 1");
    expect(err("[\\b]")).toBe("regex: unknown escape \\b in class at offset 1");
  });

  it("rejects a malformed \\x escape", () => {
    expect(err("\\x4")).toBe("regex: invalid \\x escape at offset 0");
    expect(err("a\\xg1")).toBe("regex: invalid \\x escape at offset 1");
  });

  it("rejects backreferences", () => {
    expect(err("(a)\\1")).toBe("regex: backreferences are not supported at offset 3");
    expect(err("[\\2]")).toBe("regex: backreferences are not supported at offset 1");
  });

  it("rejects lookarounds", () => {
    expect(err("a(?=b)")).toBe("regex: lookarounds are not supported at offset 1");
    expect(err("(?!b)")).toBe("regex: lookarounds are not supported at offset 0");
    expect(err("(?<=b)a")).toBe("regex: lookarounds are not supported at offset 0");
    expect(err("(?<!b)a")).toBe("regex: lookarounds are not supported at offset 0");
  });

  it("rejects flag groups and other (? syntax", () => {
    expect(err("(?i)abc")).toBe("regex: unsupported group syntax (?i at offset 0");
    expect(err("a(?")).toBe("regex: unsupported group syntax (? at offset 1");
    expect(err("(?#comment)")).toBe("regex: unsupported group syntax (?# at offset 0");
  });

  it("rejects malformed named groups", () => {
    expect(err("(?P<>a)")).toBe("regex: invalid named group at offset 0");
    expect(err("(?P<a-b>a)")).toBe("regex: invalid named group at offset 0");
    expect(err("(?Pa)")).toBe("regex: invalid named group at offset 0");
    expect(err("(?<name")).toBe("regex: invalid named group at offset 0");
  });

  it("rejects POSIX classes", () => {
    expect(err("[[:alpha:]]")).toBe("regex: POSIX classes are not supported at offset 1");
  });

  it("rejects inverted class ranges", () => {
    expect(err("[z-a]")).toBe("regex: invalid class range z-a at offset 1");
    expect(err("[a-\\d]")).toBe("regex: invalid class range at offset 3");
  });

  it("rejects nesting over the limit", () => {
    expect(Regex.compile("(".repeat(100) + "a" + ")".repeat(100))).not.toBeNull();
    expect(err("(".repeat(101) + "a" + ")".repeat(101))).toBe("regex: nesting deeper than 100 at offset 100");
  });

  it("rejects programs over the size limit", () => {
    expect(err("a{1000}a{1000}".repeat(5) + "b")).toBe("regex: pattern too large (over 10000 instructions) at offset 0");
    expect(err("((a{1000}){1000}){1000}")).toBe("regex: pattern too large (over 10000 instructions) at offset 0");
  });

  it("clears the error after a successful compile", () => {
    err("(");
    expect(Regex.compile("a")).not.toBeNull();
    expect(Regex.lastError).toBe("");
  });
});
