/**
 * Which fields a MetaRouter and an ApplicationProtocol may carry, and the walk that checks them:
 * Aeraki's names and Meltemi's route policies. Nothing is dropped silently: an unknown name is an
 * error naming its path (with a did-you-mean), a known one this version does not program a warning.
 */
import { POLICY_FIELDS } from './policies.mjs';

/**
 * Every field name a MetaRouter may carry: Aeraki's metaprotocol.aeraki.io/v1alpha1 MetaRouter and
 * Meltemi's route policies (fault, authorization, per-route localRateLimit). `true`: programmed, not
 * looked into further (match attributes are a map, checked by matchConfig); `'ignored'`: known but not
 * programmed by this version (a warning, not looked into); an object: its known subfields (for arrays,
 * of each item). Any other name is an error: a typo must not pass as "ignored".
 */
export type FieldTree = { readonly [field: string]: true | 'ignored' | FieldTree };
const MATCH_FIELDS: FieldTree = { attributes: true };
const BUCKET_FIELDS: FieldTree = { maxTokens: true, tokensPerFill: true, fillInterval: true };
const KV_FIELDS: FieldTree = { key: true, value: true };
export const ROUTE_FIELDS: FieldTree = {
  name: true,
  match: MATCH_FIELDS,
  route: { destination: { host: true, subset: true, port: { number: true } }, weight: true },
  timeout: true,
  requestMutation: KV_FIELDS,
  responseMutation: KV_FIELDS,
  mirror: 'ignored',
  mirrorPercentage: 'ignored',
  fault: { abort: { percentage: { value: true }, message: true }, delay: { percentage: { value: true }, fixedDelay: true } },
  localRateLimit: { tokenBucket: BUCKET_FIELDS, conditions: { match: MATCH_FIELDS, tokenBucket: BUCKET_FIELDS } },
  authorization: { defaultAction: true, rules: { name: true, action: true, match: MATCH_FIELDS, sources: true, principals: true } },
  // Istio VirtualService's HTTPRetry names plus Meltemi's idempotent; per request only (retries.mts).
  retries: { attempts: true, perTryTimeout: true, retryOn: true, idempotent: true },
};
export const SPEC_FIELDS: FieldTree = {
  hosts: true, routes: ROUTE_FIELDS, mode: true, localRateLimit: 'ignored', globalRateLimit: 'ignored',
  // Meltemi's (access-log.mts): Aeraki's MetaRouter has no access log field.
  accessLog: { enabled: true, path: true },
};
const PER_REQUEST_ROUTE_FIELDS: FieldTree = {
  ...ROUTE_FIELDS, mirror: { host: true, subset: true, port: { number: true } }, mirrorPercentage: { value: true },
};
// Per request the server role enforces spec.localRateLimit once per server, as Aeraki does.
export const PER_REQUEST_SPEC_FIELDS: FieldTree = {
  ...SPEC_FIELDS, routes: PER_REQUEST_ROUTE_FIELDS, localRateLimit: ROUTE_FIELDS.localRateLimit as FieldTree,
  // Envoy's own rate limit filter, per call: Aeraki's fields but `match` (not programmed yet).
  globalRateLimit: { domain: true, rateLimitService: true, requestTimeout: true, denyOnFail: true, descriptors: { property: true, descriptorKey: true }, match: 'ignored' },
};
export const APPLICATION_PROTOCOL_FIELDS: FieldTree = { protocol: true, codec: true, codecOptions: true };
// Every policy compilePolicies converts has a place in the tree.
for (const f of POLICY_FIELDS) if (ROUTE_FIELDS[f] === undefined) throw new Error(`ROUTE_FIELDS lacks ${f}`);

/** Why some fields Aeraki users may bring are not programmed, and what to use instead. */
const IGNORED_HINTS: Readonly<Record<string, string>> = {
  'spec.localRateLimit': ' (Aeraki limits the whole service; Meltemi limits per route: routes[].localRateLimit)',
};

const isPlainObject = (v: unknown): v is Readonly<Record<string, unknown>> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Edit distance, for "did you mean" on unknown fields. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/**
 * Walks `value` against `tree`, keys in sorted order: pushes "<path>: unknown field" onto `errors` for
 * every name the tree does not know, and "<path>: ignored, not implemented yet" onto `ignored` for
 * every known field this version does not program.
 */
export function checkFields(value: unknown, tree: FieldTree, path: string, errors: string[], ignored: string[]): void {
  if (Array.isArray(value)) { value.forEach((v, i) => checkFields(v, tree, `${path}[${i}]`, errors, ignored)); return; }
  if (!isPlainObject(value)) return;
  // Sorted: the API server hands back objects with their keys sorted, files keep the author's order.
  for (const [k, v] of Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const t = tree[k];
    const at = `${path}.${k}`;
    if (t === undefined) {
      const near = Object.keys(tree).filter((n) => distance(k, n) <= 2).sort((a, b) => distance(k, a) - distance(k, b));
      errors.push(`${at}: unknown field${near.length > 0 ? ` (did you mean ${near[0]}?)` : ''}`);
    } else if (t === 'ignored') ignored.push(`${at}: ignored, not implemented yet${IGNORED_HINTS[at] ?? ''}`);
    else if (t !== true) checkFields(v, t, at, errors, ignored);
  }
}

