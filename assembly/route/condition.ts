// One attribute condition of a `match` block, shared by routes, rate-limit conditions and
// authorization rules. Depends on nothing but Metadata, so the policies and the route table can
// both use it without importing each other.
import { Metadata } from "../core/metadata";
import { Regex } from "../util/regex";

export const enum MatchKind { Present = 0, Exact = 1, Prefix = 2, Regex = 3 }

/** One `match.attributes.<key>` condition. */
export class AttributeMatch {
  regex: Regex | null = null;

  constructor(public key: string, public kind: MatchKind, public value: string) {}

  matches(meta: Metadata): bool {
    const v = meta.get(this.key);
    if (v == null) return false;
    switch (this.kind) {
      case MatchKind.Present: return true;
      case MatchKind.Exact: return v == this.value;
      case MatchKind.Prefix: return v.startsWith(this.value);
      default: return (<Regex>this.regex).fullMatch(v);
    }
  }
}

/** All conditions hold (an empty list holds for every request). */
export function allHold(conditions: AttributeMatch[], meta: Metadata): bool {
  for (let i = 0, n = conditions.length; i < n; i++) {
    if (!unchecked(conditions[i]).matches(meta)) return false;
  }
  return true;
}
