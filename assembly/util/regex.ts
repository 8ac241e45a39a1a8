// Linear-time regular expressions for route matching: RE2-like syntax, Pike VM, no backtracking.
//
// Pure AssemblyScript with no host imports. Compile once at config time; match on the hot path.
// Matching runs in O(pattern × input) time whatever the pattern, so `(a*)*b` against a long run
// of `a`s is as fast as `ab`, and it allocates nothing: thread lists are preallocated per Regex.
//
// Input unit: UTF-16 code units of an AssemblyScript string. ASCII behaves exactly as in RE2.
// Outside ASCII, a pattern literal matches itself (a non-BMP literal as its surrogate pair), while
// `.` and classes consume one code unit, so a non-BMP character needs `..` or a surrogate range.
//
// Supported (as in RE2 unless noted):
//   literals; `.` (any code unit but `\n`); classes `[a-z0-9_]`, `[^...]`, a `]` first is literal,
//   a `-` first or last is literal; escapes `\d \w \s \D \W \S` (ASCII, also inside classes),
//   `\n \r \t \f \v`, `\xHH`, any escaped punctuation (`\. \\ \- \[ \( \{ \* \$ ...`);
//   assertions `^ $` (beginning / end of text; no multi-line mode), `\A \z`, `\b \B` (ASCII words);
//   groups `( )`, `(?: )`, `(?P<name> )`, `(?<name> )` (nothing is captured); alternation `|`
//   (empty branches allowed); quantifiers `* + ?`, `{m}`, `{m,}`, `{m,n}` with m, n <= 1000, and
//   their lazy forms `*? +? ?? {m,n}?` (same truth value as greedy when nothing is captured).
//   A `{` that does not start a valid repeat is a literal, as in RE2.
// Rejected with a message: backreferences, lookarounds, flag groups such as `(?i)`, POSIX classes
// `[[:alpha:]]`, `\p{...}` and other unknown escapes, possessive/double quantifiers, and patterns
// whose program exceeds MAX_PROGRAM instructions (repeats are expanded, so `(a{1000}){1000}` is).
//
// Errors read `regex: <what> at offset <code-unit offset in the pattern>`, e.g.
// `regex: backreferences are not supported at offset 3`; see Regex.compile for the list.

/** Largest compiled program, in instructions. Bounds both memory and per-character match work. */
export const MAX_PROGRAM: i32 = 10000;
/** Largest m or n in `{m,n}`. */
export const MAX_REPEAT: i32 = 1000;
/** Deepest group nesting the recursive parser accepts. */
export const MAX_NESTING: i32 = 100;

// ---- AST --------------------------------------------------------------------------------------

const enum NodeKind {
  Empty,   // matches the empty string
  Char,    // value: the code unit
  Any,     // `.`
  Class,   // value: class index
  Assert,  // value: an Assertion
  Concat,  // children in order
  Alt,     // children as alternatives
  Repeat,  // children[0] repeated min..max times (max -1 = unbounded)
}

const enum Assertion {
  BeginText,
  EndText,
  WordBoundary,
  NotWordBoundary,
}

class Node {
  children: Node[] = [];
  min: i32 = 0;
  max: i32 = 0;
  constructor(public kind: NodeKind, public value: i32 = 0) {}
}

// ---- Program ----------------------------------------------------------------------------------

const enum Op {
  Char,    // arg: code unit
  Any,     // any code unit except '\n'
  Class,   // arg: class index
  Assert,  // arg: Assertion
  Split,   // continue at arg and at arg2
  Jmp,     // continue at arg
  Match,
}

// ---- Character classes ------------------------------------------------------------------------

const MAX_UNIT: i32 = 0xffff;

/** Normalizes a flat [lo, hi, lo, hi, ...] list: sorted by lo, overlapping/adjacent ranges merged. */
function normalizeRanges(ranges: i32[]): i32[] {
  const n = ranges.length >> 1;
  // Insertion sort on pairs: classes are small and compiled once.
  const sorted = new Array<i32>();
  for (let i = 0; i < n; i++) {
    const lo = ranges[2 * i];
    const hi = ranges[2 * i + 1];
    let j = sorted.length >> 1;
    sorted.push(0);
    sorted.push(0);
    while (j > 0 && sorted[2 * (j - 1)] > lo) {
      sorted[2 * j] = sorted[2 * (j - 1)];
      sorted[2 * j + 1] = sorted[2 * (j - 1) + 1];
      j--;
    }
    sorted[2 * j] = lo;
    sorted[2 * j + 1] = hi;
  }
  const out = new Array<i32>();
  for (let i = 0; i < n; i++) {
    const lo = sorted[2 * i];
    const hi = sorted[2 * i + 1];
    const last = out.length - 1;
    if (last > 0 && lo <= out[last] + 1) {
      if (hi > out[last]) out[last] = hi;
    } else {
      out.push(lo);
      out.push(hi);
    }
  }
  return out;
}

/** The complement of normalized ranges within [0, MAX_UNIT]. */
function complementRanges(ranges: i32[]): i32[] {
  const out = new Array<i32>();
  let next = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i] > next) {
      out.push(next);
      out.push(ranges[i] - 1);
    }
    next = ranges[i + 1] + 1;
  }
  if (next <= MAX_UNIT) {
    out.push(next);
    out.push(MAX_UNIT);
  }
  return out;
}

/** Appends the ranges of a Perl class letter (d, w, s, or upper case for the complement). */
function appendPerlClass(letter: i32, out: i32[]): void {
  const base = new Array<i32>();
  const lower = letter | 0x20;
  if (lower == 0x64) { // d
    base.push(0x30); base.push(0x39);
  } else if (lower == 0x77) { // w
    base.push(0x30); base.push(0x39);
    base.push(0x41); base.push(0x5a);
    base.push(0x5f); base.push(0x5f);
    base.push(0x61); base.push(0x7a);
  } else { // s: \t \n \f \r and space, as RE2 (no \v)
    base.push(0x09); base.push(0x0a);
    base.push(0x0c); base.push(0x0d);
    base.push(0x20); base.push(0x20);
  }
  const ranges = letter == lower ? base : complementRanges(base);
  for (let i = 0; i < ranges.length; i++) out.push(ranges[i]);
}

function isWordUnit(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f;
}

function isHex(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexValue(c: i32): i32 {
  if (c <= 0x39) return c - 0x30;
  return (c | 0x20) - 0x61 + 10;
}

// ---- Parser -----------------------------------------------------------------------------------

/** Punctuation that may be escaped to stand for itself (RE2 allows any ASCII punctuation). */
function isPunct(c: i32): bool {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

class Parser {
  error: string = "";
  pos: i32 = 0;
  depth: i32 = 0;
  /** Class ranges, one normalized flat list per class index. */
  classes: Array<i32[]> = [];

  constructor(private pattern: string) {}

  private fail(what: string, offset: i32): Node {
    if (this.error.length == 0) this.error = "regex: " + what + " at offset " + offset.toString();
    return new Node(NodeKind.Empty);
  }

  private failed(): bool {
    return this.error.length > 0;
  }

  /** The code unit at pos, or -1 past the end. */
  private peek(): i32 {
    return this.pos < this.pattern.length ? this.pattern.charCodeAt(this.pos) : -1;
  }

  private at(offset: i32): i32 {
    return offset >= 0 && offset < this.pattern.length ? this.pattern.charCodeAt(offset) : -1;
  }

  parse(): Node {
    const node = this.parseAlt();
    if (this.failed()) return node;
    if (this.pos < this.pattern.length) return this.fail("unexpected ')'", this.pos); // only ')' stops parseAlt early
    return node;
  }

  private parseAlt(): Node {
    const first = this.parseConcat();
    if (this.peek() != 0x7c) return first; // '|'
    const alt = new Node(NodeKind.Alt);
    alt.children.push(first);
    while (!this.failed() && this.peek() == 0x7c) {
      this.pos++;
      alt.children.push(this.parseConcat());
    }
    return alt;
  }

  private parseConcat(): Node {
    const concat = new Node(NodeKind.Concat);
    while (!this.failed()) {
      const c = this.peek();
      if (c < 0 || c == 0x7c || c == 0x29) break; // end, '|', ')'
      concat.children.push(this.parseRepeat());
    }
    if (concat.children.length == 1) return concat.children[0];
    if (concat.children.length == 0) return new Node(NodeKind.Empty);
    return concat;
  }

  /**
   * Parses `{m}`, `{m,}` or `{m,n}` at pos into [m, n] (n -1 when unbounded) and advances past it;
   * returns null and leaves pos alone when the text is not a repeat (then `{` is a literal).
   * Sets the error (and returns null) for a valid-looking repeat with bad counts.
   */
  private parseBraces(): i32[] | null {
    const start = this.pos;
    let p = start + 1;
    let m = 0;
    let digits = 0;
    while (this.at(p) >= 0x30 && this.at(p) <= 0x39) {
      if (m <= MAX_REPEAT) m = m * 10 + (this.at(p) - 0x30);
      p++;
      digits++;
    }
    if (digits == 0) return null;
    let n = m;
    if (this.at(p) == 0x2c) { // ','
      p++;
      n = -1;
      let ndigits = 0;
      let value = 0;
      while (this.at(p) >= 0x30 && this.at(p) <= 0x39) {
        if (value <= MAX_REPEAT) value = value * 10 + (this.at(p) - 0x30);
        p++;
        ndigits++;
      }
      if (ndigits > 0) n = value;
    }
    if (this.at(p) != 0x7d) return null; // '}'
    if (m > MAX_REPEAT || n > MAX_REPEAT) {
      this.fail("repeat count exceeds " + MAX_REPEAT.toString(), start);
      return null;
    }
    if (n >= 0 && n < m) {
      this.fail("invalid repeat range " + this.pattern.substring(start, p + 1), start);
      return null;
    }
    this.pos = p + 1;
    return [m, n];
  }

  /** True when pos starts a quantifier (`*`, `+`, `?` or a valid `{...}`), without consuming it. */
  private atQuantifier(): bool {
    const c = this.peek();
    if (c == 0x2a || c == 0x2b || c == 0x3f) return true;
    if (c != 0x7b) return false;
    const save = this.pos;
    const braces = this.parseBraces();
    this.pos = save;
    return braces != null;
  }

  private parseRepeat(): Node {
    if (this.atQuantifier()) return this.fail("nothing to repeat", this.pos);
    if (this.failed()) return new Node(NodeKind.Empty);
    let node = this.parseAtom();
    if (this.failed() || !this.atQuantifier()) return node;
    const c = this.peek();
    let min = 0;
    let max = -1;
    if (c == 0x2a) { this.pos++; }                          // *
    else if (c == 0x2b) { this.pos++; min = 1; }            // +
    else if (c == 0x3f) { this.pos++; max = 1; }            // ?
    else {
      const braces = this.parseBraces();
      if (braces == null) return node;
      min = braces[0];
      max = braces[1];
    }
    if (this.peek() == 0x3f) this.pos++; // lazy: same truth value without captures
    if (this.atQuantifier()) return this.fail("repeated quantifier", this.pos);
    if (this.failed()) return node;
    const rep = new Node(NodeKind.Repeat);
    rep.children.push(node);
    rep.min = min;
    rep.max = max;
    return rep;
  }

  private parseAtom(): Node {
    const start = this.pos;
    const c = this.peek();
    if (c == 0x28) return this.parseGroup();            // (
    if (c == 0x5b) return this.parseClass();            // [
    this.pos++;
    if (c == 0x2e) return new Node(NodeKind.Any);       // .
    if (c == 0x5e) return new Node(NodeKind.Assert, Assertion.BeginText); // ^
    if (c == 0x24) return new Node(NodeKind.Assert, Assertion.EndText);   // $
    if (c != 0x5c) return new Node(NodeKind.Char, c);   // not a backslash: literal
    const e = this.peek();
    if (e < 0) return this.fail("trailing backslash", start);
    if (e == 0x41) { this.pos++; return new Node(NodeKind.Assert, Assertion.BeginText); }      // \A
    if (e == 0x7a) { this.pos++; return new Node(NodeKind.Assert, Assertion.EndText); }        // \z
    if (e == 0x62) { this.pos++; return new Node(NodeKind.Assert, Assertion.WordBoundary); }   // \b
    if (e == 0x42) { this.pos++; return new Node(NodeKind.Assert, Assertion.NotWordBoundary); } // \B
    const ranges = new Array<i32>();
    if (!this.parseEscape(start, ranges)) return new Node(NodeKind.Empty);
    if (ranges.length == 2 && ranges[0] == ranges[1]) return new Node(NodeKind.Char, ranges[0]);
    return this.addClass(ranges, false);
  }

  /**
   * Parses the escape whose backslash is at start (pos just past the backslash), appending the
   * ranges it stands for: one unit for a literal, several for `\d`-style classes.
   */
  private parseEscape(start: i32, out: i32[]): bool {
    const e = this.peek();
    if (e < 0) {
      this.fail("trailing backslash", start);
      return false;
    }
    this.pos++;
    let unit = -1;
    if (e >= 0x31 && e <= 0x39) {
      this.fail("backreferences are not supported", start);
      return false;
    }
    if (e == 0x64 || e == 0x44 || e == 0x77 || e == 0x57 || e == 0x73 || e == 0x53) {
      appendPerlClass(e, out);
      return true;
    }
    if (e == 0x6e) unit = 0x0a;                 // \n
    else if (e == 0x72) unit = 0x0d;            // \r
    else if (e == 0x74) unit = 0x09;            // \t
    else if (e == 0x66) unit = 0x0c;            // \f
    else if (e == 0x76) unit = 0x0b;            // \v
    else if (e == 0x78) {                       // \xHH
      const h1 = this.peek();
      const h2 = this.at(this.pos + 1);
      if (!isHex(h1) || !isHex(h2)) {
        this.fail("invalid \\x escape", start);
        return false;
      }
      this.pos += 2;
      unit = (hexValue(h1) << 4) | hexValue(h2);
    } else if (isPunct(e)) unit = e;
    if (unit < 0) {
      this.fail("unknown escape \\" + String.fromCharCode(e), start);
      return false;
    }
    out.push(unit);
    out.push(unit);
    return true;
  }

  private parseGroup(): Node {
    const open = this.pos;
    this.pos++; // (
    if (this.peek() == 0x3f) { // (?
      const k = this.at(this.pos + 1);
      if (k == 0x3a) {                                     // (?:
        this.pos += 2;
      } else if (k == 0x3d || k == 0x21) {                 // (?= (?!
        return this.fail("lookarounds are not supported", open);
      } else if (k == 0x3c && (this.at(this.pos + 2) == 0x3d || this.at(this.pos + 2) == 0x21)) { // (?<= (?<!
        return this.fail("lookarounds are not supported", open);
      } else if (k == 0x50 || k == 0x3c) {                 // (?P<name> or (?<name>
        let p = this.pos + (k == 0x50 ? 2 : 1);
        if (this.at(p) != 0x3c) return this.fail("invalid named group", open);
        p++;
        const nameStart = p;
        while (isWordUnit(this.at(p))) p++;
        if (p == nameStart || this.at(p) != 0x3e) return this.fail("invalid named group", open);
        this.pos = p + 1;
      } else {
        return this.fail("unsupported group syntax (?" + (k < 0 ? "" : String.fromCharCode(k)), open);
      }
    }
    if (this.depth >= MAX_NESTING) return this.fail("nesting deeper than " + MAX_NESTING.toString(), open);
    this.depth++;
    const inner = this.parseAlt();
    this.depth--;
    if (this.failed()) return inner;
    if (this.peek() != 0x29) return this.fail("missing ')'", open);
    this.pos++;
    return inner;
  }

  private parseClass(): Node {
    const open = this.pos;
    this.pos++; // [
    let negated = false;
    if (this.peek() == 0x5e) { negated = true; this.pos++; }
    const ranges = new Array<i32>();
    let first = true;
    while (true) {
      const c = this.peek();
      if (c < 0) return this.fail("missing ']'", open);
      if (c == 0x5d && !first) { this.pos++; break; }
      first = false;
      if (c == 0x5b && this.at(this.pos + 1) == 0x3a) return this.fail("POSIX classes are not supported", this.pos);
      const itemAt = this.pos;
      const lo = this.parseClassUnit(ranges);
      if (this.failed()) return new Node(NodeKind.Empty);
      if (lo < 0) continue; // a \d-style class, already appended
      // A range `lo-hi`, unless '-' is the last character before ']'.
      if (this.peek() == 0x2d && this.at(this.pos + 1) != 0x5d && this.at(this.pos + 1) >= 0) {
        this.pos++;
        const hiAt = this.pos;
        const scratch = new Array<i32>();
        const hi = this.parseClassUnit(scratch);
        if (this.failed()) return new Node(NodeKind.Empty);
        if (hi < 0) return this.fail("invalid class range", hiAt);
        if (hi < lo) return this.fail("invalid class range " + this.pattern.substring(itemAt, this.pos), itemAt);
        ranges.push(lo);
        ranges.push(hi);
      } else {
        ranges.push(lo);
        ranges.push(lo);
      }
    }
    return this.addClass(ranges, negated);
  }

  /**
   * Parses one class member at pos: returns its code unit, or -1 after appending the ranges of a
   * `\d`-style escape to out (or on error).
   */
  private parseClassUnit(out: i32[]): i32 {
    const c = this.peek();
    this.pos++;
    if (c != 0x5c) return c;
    const start = this.pos - 1;
    const e = this.peek();
    if (e == 0x62 || e == 0x42 || e == 0x41 || e == 0x7a) {
      this.fail("unknown escape \\" + String.fromCharCode(e) + " in class", start);
      return -1;
    }
    const tmp = new Array<i32>();
    if (!this.parseEscape(start, tmp)) return -1;
    if (tmp.length == 2 && tmp[0] == tmp[1]) return tmp[0];
    for (let i = 0; i < tmp.length; i++) out.push(tmp[i]);
    return -1;
  }

  private addClass(ranges: i32[], negated: bool): Node {
    let norm = normalizeRanges(ranges);
    if (negated) norm = complementRanges(norm);
    this.classes.push(norm);
    return new Node(NodeKind.Class, this.classes.length - 1);
  }
}

// ---- Compiler ---------------------------------------------------------------------------------

class Compiler {
  ops: i32[] = [];
  args: i32[] = [];
  args2: i32[] = [];
  tooBig: bool = false;

  private emit(op: Op, arg: i32 = 0, arg2: i32 = 0): i32 {
    if (this.ops.length >= MAX_PROGRAM) {
      this.tooBig = true;
      return this.ops.length;
    }
    this.ops.push(op);
    this.args.push(arg);
    this.args2.push(arg2);
    return this.ops.length - 1;
  }

  private patch(pc: i32, arg: i32, arg2: i32): void {
    if (pc < this.ops.length) {
      this.args[pc] = arg;
      this.args2[pc] = arg2;
    }
  }

  compile(node: Node): void {
    this.gen(node);
    this.emit(Op.Match);
  }

  private gen(node: Node): void {
    if (this.tooBig) return;
    switch (node.kind) {
      case NodeKind.Empty: return;
      case NodeKind.Char: { this.emit(Op.Char, node.value); return; }
      case NodeKind.Any: { this.emit(Op.Any); return; }
      case NodeKind.Class: { this.emit(Op.Class, node.value); return; }
      case NodeKind.Assert: { this.emit(Op.Assert, node.value); return; }
      case NodeKind.Concat: {
        for (let i = 0; i < node.children.length && !this.tooBig; i++) this.gen(node.children[i]);
        return;
      }
      case NodeKind.Alt: {
        // split L1, next; L1: a; jmp end; next: split L2, next2; ... last: z; end:
        const jumps = new Array<i32>();
        const n = node.children.length;
        for (let i = 0; i < n - 1 && !this.tooBig; i++) {
          const split = this.emit(Op.Split);
          this.gen(node.children[i]);
          jumps.push(this.emit(Op.Jmp));
          this.patch(split, split + 1, this.ops.length);
        }
        if (n > 0) this.gen(node.children[n - 1]);
        for (let i = 0; i < jumps.length; i++) this.patch(jumps[i], this.ops.length, 0);
        return;
      }
      default: this.genRepeat(node.children[0], node.min, node.max);
    }
  }

  private genRepeat(child: Node, min: i32, max: i32): void {
    // Mandatory copies; with an unbounded max the last one loops back (x{2,} = x x+).
    const loopLast = max < 0 && min > 0;
    const plain = loopLast ? min - 1 : min;
    for (let i = 0; i < plain && !this.tooBig; i++) this.gen(child);
    if (loopLast) {
      const top = this.ops.length;
      this.gen(child);
      const split = this.emit(Op.Split);
      this.patch(split, top, split + 1);
      return;
    }
    if (max < 0) {
      // x*: L: split body, end; body: x; jmp L; end:
      const split = this.emit(Op.Split);
      this.gen(child);
      const jmp = this.emit(Op.Jmp, split);
      this.patch(split, split + 1, jmp + 1);
      this.patch(jmp, split, 0);
      return;
    }
    // Optional copies nested: x{0,3} = (x(x(x)?)?)?
    const splits = new Array<i32>();
    for (let i = min; i < max && !this.tooBig; i++) {
      splits.push(this.emit(Op.Split));
      this.gen(child);
    }
    for (let i = 0; i < splits.length; i++) this.patch(splits[i], splits[i] + 1, this.ops.length);
  }
}

// ---- Regex ------------------------------------------------------------------------------------

/** Last compile error (module-level so `Regex.compile` can stay a plain static factory). */
let compileError: string = "";

/**
 * A compiled pattern. Matching is O(program × input), never backtracks, and allocates nothing.
 * Not reentrant: a Regex owns its thread lists (fine for single-threaded Wasm; do not call
 * fullMatch from inside another fullMatch of the same Regex).
 */
export class Regex {
  /** Per instruction: Op, first argument, second argument (Split only). */
  private ops: StaticArray<i32>;
  private args: StaticArray<i32>;
  private args2: StaticArray<i32>;
  /** Per class: 128-bit ASCII bitmap in classBits[4*k .. 4*k+3]; other units as ranges. */
  private classBits: StaticArray<u32>;
  private classRangeStart: StaticArray<i32>;
  private classRangeEnd: StaticArray<i32>;
  private classRanges: StaticArray<i32>;
  // Pike VM state, sized to the program n: two sparse sets of pcs (list 0 in [0, n), list 1 in
  // [n, 2n) of both arrays, so swapping lists swaps an integer, not references) and the addThread
  // work stack. Invariants the unchecked loads below rely on: every pc stored or dereferenced is
  // in [0, n) (checked once when popped); a list holds each pc at most once, so its size <= n;
  // the stack never exceeds 2n + 1 entries (see addThread); class indexes come from the compiler.
  private dense: StaticArray<i32>;
  private sparse: StaticArray<i32>;
  private stack: StaticArray<i32>;

  /** The pattern as given. */
  readonly pattern: string;

  /** The error of the last failed compile (or "" after a successful one). */
  static get lastError(): string {
    return compileError;
  }

  /**
   * Compiles pattern, or returns null and sets Regex.lastError to one of (N = code-unit offset):
   *   regex: missing ')' at offset N                  (N is the opening parenthesis)
   *   regex: unexpected ')' at offset N
   *   regex: missing ']' at offset N                  (N is the opening bracket)
   *   regex: nothing to repeat at offset N
   *   regex: repeated quantifier at offset N          (N is the second one: `a**`, `a+*`, `a{2}*`, `a*??`)
   *   regex: repeat count exceeds 1000 at offset N
   *   regex: invalid repeat range {3,2} at offset N
   *   regex: trailing backslash at offset N
   *   regex: unknown escape \q at offset N             (also `\b \B \A \z` inside a class: `... in class`)
   *   regex: invalid \x escape at offset N
   *   regex: backreferences are not supported at offset N
   *   regex: lookarounds are not supported at offset N
   *   regex: unsupported group syntax (?i at offset N
   *   regex: invalid named group at offset N
   *   regex: POSIX classes are not supported at offset N
   *   regex: invalid class range z-a at offset N
   *   regex: nesting deeper than 100 at offset N
   *   regex: pattern too large (over 10000 instructions) at offset 0
   */
  static compile(pattern: string): Regex | null {
    const parser = new Parser(pattern);
    const ast = parser.parse();
    if (parser.error.length > 0) {
      compileError = parser.error;
      return null;
    }
    const compiler = new Compiler();
    compiler.compile(ast);
    if (compiler.tooBig) {
      compileError = "regex: pattern too large (over " + MAX_PROGRAM.toString() + " instructions) at offset 0";
      return null;
    }
    compileError = "";
    return new Regex(pattern, compiler, parser.classes);
  }

  private constructor(pattern: string, c: Compiler, classes: Array<i32[]>) {
    this.pattern = pattern;
    const n = c.ops.length;
    this.ops = StaticArray.fromArray<i32>(c.ops);
    this.args = StaticArray.fromArray<i32>(c.args);
    this.args2 = StaticArray.fromArray<i32>(c.args2);
    this.dense = new StaticArray<i32>(2 * n);
    this.sparse = new StaticArray<i32>(2 * n);
    this.stack = new StaticArray<i32>(2 * n + 2);

    const k = classes.length;
    const bits = new StaticArray<u32>(4 * k);
    const starts = new StaticArray<i32>(k);
    const ends = new StaticArray<i32>(k);
    const wide = new Array<i32>();
    for (let ci = 0; ci < k; ci++) {
      const ranges = classes[ci];
      starts[ci] = wide.length;
      for (let r = 0; r < ranges.length; r += 2) {
        const lo = ranges[r];
        const hi = ranges[r + 1];
        for (let u = lo; u <= hi && u < 128; u++) bits[4 * ci + (u >> 5)] |= (<u32>1) << (u & 31);
        if (hi >= 128) {
          wide.push(lo < 128 ? 128 : lo);
          wide.push(hi);
        }
      }
      ends[ci] = wide.length;
    }
    this.classBits = bits;
    this.classRangeStart = starts;
    this.classRangeEnd = ends;
    this.classRanges = StaticArray.fromArray<i32>(wide);
  }

  /** Number of instructions in the compiled program (for tests and limits). */
  get programSize(): i32 {
    return this.ops.length;
  }

  /** True when the whole of s matches (Envoy safe_regex semantics). */
  fullMatch(s: string): bool {
    return this.run(s, true);
  }

  /** True when some substring of s matches (unanchored search). */
  find(s: string): bool {
    return this.run(s, false);
  }

  private classHas(ci: i32, c: i32): bool {
    if (c < 128) return (unchecked(this.classBits[4 * ci + (c >> 5)]) & ((<u32>1) << (c & 31))) != 0;
    const end = unchecked(this.classRangeEnd[ci]);
    for (let r = unchecked(this.classRangeStart[ci]); r < end; r += 2) {
      if (c >= unchecked(this.classRanges[r]) && c <= unchecked(this.classRanges[r + 1])) return true;
    }
    return false;
  }

  private assertionHolds(kind: i32, s: string, i: i32): bool {
    const len = s.length;
    if (kind == Assertion.BeginText) return i == 0;
    if (kind == Assertion.EndText) return i == len;
    const before = i > 0 && isWordUnit(s.charCodeAt(i - 1));
    const after = i < len && isWordUnit(s.charCodeAt(i));
    return (before != after) == (kind == Assertion.WordBoundary);
  }

  /**
   * Adds pc0 and everything reachable from it through Jmp, Split and satisfied assertions to the
   * list at base (0 or n), which holds size pcs, at input position i; returns the new size.
   * Iterative: each pc is expanded at most once per list and pushes at most two successors, so
   * the stack holds at most 2n + 1 entries.
   */
  private addThread(base: i32, size: i32, pc0: i32, s: string, i: i32): i32 {
    const n = this.ops.length;
    const dense = this.dense;
    const sparse = this.sparse;
    const stack = this.stack;
    let sp = 0;
    unchecked(stack[sp++] = pc0);
    while (sp > 0) {
      const pc = unchecked(stack[--sp]);
      if (<u32>pc >= <u32>n) continue;
      const slot = unchecked(sparse[base + pc]);
      if (<u32>slot < <u32>size && unchecked(dense[base + slot]) == pc) continue; // already listed
      unchecked(sparse[base + pc] = size);
      unchecked(dense[base + size] = pc);
      size++;
      const op = unchecked(this.ops[pc]);
      if (op == Op.Jmp) {
        unchecked(stack[sp++] = unchecked(this.args[pc]));
      } else if (op == Op.Split) {
        unchecked(stack[sp++] = unchecked(this.args2[pc]));
        unchecked(stack[sp++] = unchecked(this.args[pc]));
      } else if (op == Op.Assert) {
        if (this.assertionHolds(unchecked(this.args[pc]), s, i)) unchecked(stack[sp++] = pc + 1);
      }
    }
    return size;
  }

  private run(s: string, full: bool): bool {
    const len = s.length;
    const n = this.ops.length;
    let cur = 0;           // base of the current list
    let next = n;          // base of the next list
    let curSize = this.addThread(cur, 0, 0, s, 0);
    for (let i = 0; i <= len; i++) {
      if (!full && i > 0) curSize = this.addThread(cur, curSize, 0, s, i); // a new attempt here
      if (curSize == 0) return false;
      const c = i < len ? <i32>s.charCodeAt(i) : -1;
      let nextSize = 0;
      for (let t = 0; t < curSize; t++) {
        const pc = unchecked(this.dense[cur + t]);
        const op = unchecked(this.ops[pc]);
        let advance = false;
        if (op == Op.Match) {
          if (!full || i == len) return true;
        } else if (c >= 0) {
          if (op == Op.Char) advance = c == unchecked(this.args[pc]);
          else if (op == Op.Any) advance = c != 0x0a;
          else if (op == Op.Class) advance = this.classHas(unchecked(this.args[pc]), c);
        }
        if (advance) nextSize = this.addThread(next, nextSize, pc + 1, s, i + 1);
      }
      const swap = cur; cur = next; next = swap;
      curSize = nextSize;
    }
    return false;
  }
}
