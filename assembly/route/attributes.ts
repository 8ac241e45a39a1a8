// Reading `match` blocks (`{"attributes": {"<key>": {"exact"|"prefix"|"regex": ...}}}`) from the
// plugin config: shared by routes, rate-limit conditions and authorization rules.
import { ConfigField } from "../util/json";
import { Regex } from "../util/regex";
import { AttributeMatch, MatchKind } from "./condition";

/** The conditions of a `match` object (absent: none, which matches everything). */
export function readMatchBlock(match: ConfigField): AttributeMatch[] {
  match.onlyKeys(["attributes"]);
  const out: AttributeMatch[] = [];
  const attrs = match.get("attributes").entries();
  for (let i = 0; i < attrs.length; i++) out.push(readMatch(attrs[i]));
  return out;
}

export function readMatch(f: ConfigField): AttributeMatch {
  f.object();
  f.onlyKeys(["exact", "prefix", "regex"]);
  if (f.get("exact").present) {
    if (f.get("prefix").present || f.get("regex").present) f.fail("expected only one of exact, prefix, regex");
    return new AttributeMatch(f.key, MatchKind.Exact, f.get("exact").string());
  }
  if (f.get("prefix").present) {
    if (f.get("regex").present) f.fail("expected only one of exact, prefix, regex");
    return new AttributeMatch(f.key, MatchKind.Prefix, f.get("prefix").string());
  }
  const regexField = f.get("regex");
  if (regexField.present) {
    const pattern = regexField.string();
    const m = new AttributeMatch(f.key, MatchKind.Regex, pattern);
    const compiled = Regex.compile(pattern);
    if (compiled == null) regexField.fail(Regex.lastError);
    m.regex = compiled;
    return m;
  }
  return new AttributeMatch(f.key, MatchKind.Present, "");
}

