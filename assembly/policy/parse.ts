// Reads a route's traffic policies from the plugin config (schema/plugin-config.schema.json,
// route.fault / localRateLimit / authorization / timeoutMs). Every error names its field.
import { ConfigField } from "../util/json";
import { Route } from "../route/match";
import { readMatchBlock } from "../route/attributes";
import { FaultPolicy, PERCENT_SCALE } from "./fault";
import { BucketSpec, RateLimitCondition, RateLimitPolicy } from "./ratelimit";
import { AuthzAction, AuthzPolicy, AuthzRule } from "./authz";
import { Cidr, parseCidr } from "./cidr";

export const POLICY_KEYS = ["fault", "localRateLimit", "authorization", "timeoutMs"];
const DAY_MS: i64 = 86400000;

export function readPolicies(route: ConfigField, into: Route): void {
  const fault = route.get("fault");
  if (fault.present) into.fault = readFault(fault);
  const rl = route.get("localRateLimit");
  if (rl.present) into.rateLimit = readRateLimit(rl);
  const authz = route.get("authorization");
  if (authz.present) into.authz = readAuthz(authz);
  into.timeoutMs = <u32>route.get("timeoutMs").integerIn(0, DAY_MS, 0);
}

function readFault(f: ConfigField): FaultPolicy {
  f.object();
  f.onlyKeys(["abort", "delay"]);
  const p = new FaultPolicy();
  const abort = f.get("abort");
  if (abort.present) {
    abort.object();
    abort.onlyKeys(["percentage", "message"]);
    p.abortPerMillion = readPercentage(abort.get("percentage"));
    p.abortMessage = abort.get("message").stringOr(p.abortMessage);
  }
  const delay = f.get("delay");
  if (delay.present) {
    delay.object();
    delay.onlyKeys(["percentage", "fixedDelayMs"]);
    p.delayPerMillion = readPercentage(delay.get("percentage"));
    p.delayMs = <u32>delay.get("fixedDelayMs").integerIn(1, DAY_MS, 1);
    if (!delay.get("fixedDelayMs").present) delay.get("fixedDelayMs").fail("required field is missing");
  }
  if (!abort.present && !delay.present) f.fail("expected abort or delay");
  return p;
}

/** A percentage in [0, 100] (default 100) as millionths. */
function readPercentage(f: ConfigField): u32 {
  const v = f.numberOr(100);
  if (v < 0 || v > 100) {
    f.fail("expected a number in [0, 100], got " + f.value!.describe());
    return 0;
  }
  return <u32>Math.round(v * <f64>PERCENT_SCALE / 100);
}

function readBucket(f: ConfigField): BucketSpec {
  f.object();
  f.onlyKeys(["maxTokens", "tokensPerFill", "fillIntervalMs"]);
  const max = f.get("maxTokens");
  if (!max.present) max.fail("required field is missing");
  const maxTokens = <u32>max.integerIn(1, 1000000000, 1);
  const perFill = <u32>f.get("tokensPerFill").integerIn(1, 1000000000, maxTokens);
  const interval = f.get("fillIntervalMs");
  if (!interval.present) interval.fail("required field is missing");
  return new BucketSpec(maxTokens, perFill, <u32>interval.integerIn(1, DAY_MS, 1000));
}

/** A `localRateLimit` block: a route's, or the listener's service-wide one (route/config.ts). */
export function readRateLimit(f: ConfigField): RateLimitPolicy {
  f.object();
  f.onlyKeys(["tokenBucket", "conditions"]);
  const p = new RateLimitPolicy();
  if (f.get("tokenBucket").present) p.defaultBucket = readBucket(f.get("tokenBucket"));
  const conds = f.get("conditions").arrayOrEmpty();
  for (let i = 0; i < conds.length; i++) {
    const c = conds[i];
    c.object();
    c.onlyKeys(["match", "tokenBucket"]);
    const bucket = c.get("tokenBucket");
    if (!bucket.present) bucket.fail("required field is missing");
    const cond = new RateLimitCondition(readBucket(bucket));
    cond.matches = readMatchBlock(c.get("match"));
    p.conditions.push(cond);
  }
  if (p.defaultBucket == null && p.conditions.length == 0) f.fail("expected tokenBucket or conditions");
  return p;
}

function readAuthz(f: ConfigField): AuthzPolicy {
  f.object();
  f.onlyKeys(["defaultAction", "rules"]);
  const p = new AuthzPolicy();
  p.defaultAction = f.get("defaultAction").oneOfOr(["ALLOW", "DENY"], "ALLOW") == "ALLOW" ? AuthzAction.Allow : AuthzAction.Deny;
  const rules = f.get("rules").arrayOrEmpty();
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    r.object();
    r.onlyKeys(["name", "action", "match", "sources", "principals"]);
    const rule = new AuthzRule();
    rule.name = r.get("name").stringOr("rule-" + i.toString());
    rule.action = r.get("action").oneOf(["ALLOW", "DENY"]) == "ALLOW" ? AuthzAction.Allow : AuthzAction.Deny;
    rule.matches = readMatchBlock(r.get("match"));
    readCidrs(r.get("sources"), rule.sources);
    const principals = r.get("principals").arrayOrEmpty();
    for (let j = 0; j < principals.length; j++) rule.principals.push(principals[j].string());
    p.rules.push(rule);
  }
  return p;
}

/** An optional list of IP addresses or CIDR ranges (no ports), appended to `into`. */
export function readCidrs(f: ConfigField, into: Cidr[]): void {
  const items = f.arrayOrEmpty();
  for (let i = 0; i < items.length; i++) {
    const text = items[i].string();
    const cidr = parseCidr(text);
    if (cidr == null) items[i].fail("expected an IP address or CIDR range, got \"" + text + "\"");
    else into.push(cidr);
  }
}
