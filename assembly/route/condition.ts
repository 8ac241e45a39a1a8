// One attribute condition of a `match` block, shared by routes, rate-limit conditions and
// authorization rules. Depends on nothing but Metadata, so the policies and the route table can
// both use it without importing each other.
import { Metadata } from "../core/metadata";
import { Regex } from "../util/regex";

/** Regex verdicts remembered per condition (a power of two). */
const MEMO_SIZE: i32 = 4;

export const enum MatchKind { Present = 0, Exact = 1, Prefix = 2, Regex = 3 }

/** One `match.attributes.<key>` condition. */
export class AttributeMatch {
  regex: Regex | null = null;
  // The last values a regex was run on, and its verdicts: requests mostly repeat a handful of
  // values (Redis GET and SET, a service's few methods), and comparing a short string is far
  // cheaper than running the automaton. Strings are immutable, so a verdict stays true.
  private seen: StaticArray<string | null> = new StaticArray<string | null>(MEMO_SIZE);
  private verdicts: StaticArray<bool> = new StaticArray<bool>(MEMO_SIZE);
  private nextSlot: i32 = 0;

  constructor(public key: string, public kind: MatchKind, public value: string) {}

  matches(meta: Metadata): bool {
    const v = meta.get(this.key);
    if (v == null) return false;
    switch (this.kind) {
      case MatchKind.Present: return true;
      case MatchKind.Exact: return v == this.value;
      case MatchKind.Prefix: return v.startsWith(this.value);
      default: return this.regexMatches(v);
    }
  }

  private regexMatches(v: string): bool {
    const seen = this.seen;
    for (let i = 0; i < MEMO_SIZE; i++) {
      const s = unchecked(seen[i]);
      if (s != null && s == v) return unchecked(this.verdicts[i]);
    }
    const verdict = (<Regex>this.regex).fullMatch(v);
    const slot = this.nextSlot;
    unchecked((seen[slot] = v));
    unchecked((this.verdicts[slot] = verdict));
    this.nextSlot = (slot + 1) & (MEMO_SIZE - 1);
    return verdict;
  }
}

/** All conditions hold (an empty list holds for every request). */
export function allHold(conditions: AttributeMatch[], meta: Metadata): bool {
  for (let i = 0, n = conditions.length; i < n; i++) {
    if (!unchecked(conditions[i]).matches(meta)) return false;
  }
  return true;
}
