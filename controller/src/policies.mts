/**
 * Route policies: from a MetaRouter route's Kubernetes-style fields (durations as "1s", percentages as
 * Istio's {value: n}) to the filter's route policy fields (docs/policies.md, schema/plugin-config.schema.json).
 *
 *   MetaRouter route                                  plugin config route
 *   timeout: "3s"                                     timeoutMs: 3000
 *   fault.abort: {percentage: {value: 10}, message}   fault.abort: {percentage: 10, message}
 *   fault.delay: {percentage: {value}, fixedDelay}    fault.delay: {percentage, fixedDelayMs}
 *   localRateLimit.tokenBucket: {maxTokens, tokensPerFill, fillInterval: "1s"}   (Aeraki's names)
 *                                                     localRateLimit.tokenBucket: {..., fillIntervalMs}
 *   localRateLimit.conditions[]: {match, tokenBucket} the same, per condition
 *   authorization: {defaultAction, rules[{name, action, match, sources, principals}]}   unchanged
 *
 * Shapes the schema checks (ranges, required fields, enums) are left to pluginConfigProblems; this
 * module only converts, and reports what it cannot convert.
 */
import type { PolicyConfig } from './plugin-config.mjs';

export const POLICY_FIELDS = ['timeout', 'fault', 'localRateLimit', 'authorization'] as const;

const UNIT_MS: Readonly<Record<string, number>> = { h: 3600000, m: 60000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/** Milliseconds of a Go/protobuf duration ("1.5s", "1m30s", "250ms"), or undefined when malformed. */
export function durationMs(d: unknown): number | undefined {
  if (typeof d !== 'string' || !/^(\d+(\.\d+)?(h|ms|m|s|us|µs|ns))+$/.test(d)) return undefined;
  let ms = 0;
  for (const [, n, , unit] of d.matchAll(/(\d+(\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(n) * UNIT_MS[unit!]!;
  return Math.round(ms);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Istio's Percent {value: n}; a bare number is accepted too. */
const percent = (p: unknown): unknown => (isObj(p) && 'value' in p ? p.value : p);

function bucket(b: unknown, where: string, errors: string[]): unknown {
  if (!isObj(b)) return b;
  const { fillInterval, ...rest } = b;
  if (fillInterval === undefined) return rest;
  const ms = durationMs(fillInterval);
  if (ms === undefined || ms < 1) { errors.push(`${where}.fillInterval: expected a duration such as "1s" or "500ms", got ${JSON.stringify(fillInterval)}`); return rest; }
  return { ...rest, fillIntervalMs: ms };
}

/** The filter's policy fields for one route; problems are pushed onto `errors` as "<where>.<field>: ...". */
export function compilePolicies(route: Readonly<Obj>, where: string, errors: string[]): PolicyConfig {
  const out: Record<string, unknown> = {};
  if (route.timeout !== undefined) {
    const ms = durationMs(route.timeout);
    if (ms === undefined) errors.push(`${where}.timeout: expected a duration such as "3s", got ${JSON.stringify(route.timeout)}`);
    else out.timeoutMs = ms;
  }
  if (isObj(route.fault)) {
    const fault: Obj = {};
    const { abort, delay } = route.fault;
    if (isObj(abort)) fault.abort = { ...abort, ...(abort.percentage !== undefined ? { percentage: percent(abort.percentage) } : {}) };
    if (isObj(delay)) {
      const { fixedDelay, ...rest } = delay;
      const d: Obj = { ...rest, ...(delay.percentage !== undefined ? { percentage: percent(delay.percentage) } : {}) };
      if (fixedDelay !== undefined) {
        const ms = durationMs(fixedDelay);
        if (ms === undefined || ms < 1) errors.push(`${where}.fault.delay.fixedDelay: expected a duration such as "100ms", got ${JSON.stringify(fixedDelay)}`);
        else d.fixedDelayMs = ms;
      }
      fault.delay = d;
    }
    for (const [k, v] of Object.entries(route.fault)) if (k !== 'abort' && k !== 'delay') fault[k] = v;
    out.fault = fault;
  } else if (route.fault !== undefined) out.fault = route.fault;
  if (isObj(route.localRateLimit)) {
    const { tokenBucket, conditions, ...rest } = route.localRateLimit;
    out.localRateLimit = {
      ...rest,
      ...(tokenBucket !== undefined ? { tokenBucket: bucket(tokenBucket, `${where}.localRateLimit.tokenBucket`, errors) } : {}),
      ...(Array.isArray(conditions) ? {
        conditions: conditions.map((c: unknown, i) => isObj(c)
          ? { ...c, ...(c.tokenBucket !== undefined ? { tokenBucket: bucket(c.tokenBucket, `${where}.localRateLimit.conditions[${i}].tokenBucket`, errors) } : {}) }
          : c),
      } : conditions !== undefined ? { conditions } : {}),
    };
  } else if (route.localRateLimit !== undefined) out.localRateLimit = route.localRateLimit;
  if (route.authorization !== undefined) out.authorization = route.authorization;
  return out as PolicyConfig;
}
