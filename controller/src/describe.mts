/**
 * `meltemi describe`: which route one request takes under a MetaRouter, and why. The decision is the
 * filter's own: the built module (build/meltemi.wasm) is configured with the WasmPlugin's plugin
 * config exactly as a proxy is, and its exported meltemi_explain runs the same route table
 * (assembly/route/explain.ts) on the request's attributes or on a captured frame, which the
 * config's codec decodes as a proxy would.
 */
import { FilterCheck, type Configured } from './filter-check.mjs';
import { ROUTER_NAME_LABEL, ROUTER_NS_LABEL, type KubeObject } from './model.mjs';

/** A request: its routable attributes (interface, method, ...), or the bytes of one frame. */
export type Request = { readonly attributes: Readonly<Record<string, string>> } | { readonly frame: Uint8Array };

export interface Condition { readonly key: string; readonly kind: string; readonly value?: string; readonly actual: string | null; readonly holds: boolean }
export interface Explanation {
  readonly error?: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly evaluated: readonly { readonly index: number; readonly name: string; readonly matched: boolean; readonly conditions: readonly Condition[] }[];
  readonly route: string | null;
  readonly reason: string;
  readonly destinations: readonly { readonly cluster: string; readonly weight: number; readonly share: number }[];
  readonly policies: Readonly<Record<string, unknown>>;
  readonly serviceRateLimit?: unknown;
}

interface ExplainExports {
  readonly meltemi_explain?: (root: number, ptr: number, size: number, kind: number) => number;
  readonly meltemi_explain_size: () => number;
}

/** The filter's explanation of `request` under `pluginConfig`; throws when the filter refuses the config. */
export function explain(pluginConfig: unknown, request: Request, filter: FilterCheck = FilterCheck.load()): Explanation {
  const { exports, error }: Configured = filter.configure(pluginConfig);
  if (error) throw new Error(`the filter refuses the plugin config: ${error}`);
  const x = exports as unknown as ExplainExports;
  if (!x.meltemi_explain) throw new Error('this filter build has no meltemi_explain export (built before meltemi describe)');
  const input = 'frame' in request
    ? Buffer.from(request.frame)
    : Buffer.from(Object.entries(request.attributes).map(([k, v]) => `${k}\0${v}\0`).join(''), 'utf8');
  const ptr = input.length > 0 ? exports.malloc(input.length) : 0;
  if (input.length > 0) new Uint8Array(exports.memory.buffer, ptr, input.length).set(input);
  const at = x.meltemi_explain(1, ptr, input.length, 'frame' in request ? 1 : 0);
  const text = Buffer.from(exports.memory.buffer, at, x.meltemi_explain_size()).toString('utf8');
  return JSON.parse(text) as Explanation;
}

/**
 * The client-side WasmPlugins (not the per-request server role's) that render or the cluster made for
 * MetaRouter `namespace/name`, optionally only the one of `port`.
 */
export function pluginsOf(resources: readonly KubeObject[], namespace: string, name: string, port?: number): KubeObject[] {
  return resources.filter((r) => r.kind === 'WasmPlugin'
    && r.metadata.labels?.[ROUTER_NS_LABEL] === namespace && r.metadata.labels?.[ROUTER_NAME_LABEL] === name
    && (r.spec as { pluginConfig?: { role?: string } }).pluginConfig?.role !== 'server'
    && !r.metadata.labels?.['meltemi.dev/canary']   // the same config on a second module
    && (port === undefined || portOf(r) === port));
}

/** The port a WasmPlugin applies to (its match's first port). */
export function portOf(plugin: KubeObject): number | undefined {
  return (plugin.spec as { match?: { ports?: { number: number }[] }[] }).match?.[0]?.ports?.[0]?.number;
}

/** The explanation as lines for a terminal. */
export function describeText(plugin: KubeObject, e: Explanation): string {
  const lines: string[] = [`WasmPlugin ${plugin.metadata.namespace}/${plugin.metadata.name} (port ${portOf(plugin) ?? '?'})`];
  if (e.error) return [...lines, `error: ${e.error}`].join('\n') + '\n';
  if ((plugin.spec as { pluginConfig?: { mode?: string } }).pluginConfig?.mode === 'perRequest') {
    lines.push('mode perRequest: Envoy\'s router decides each call, from the route table (RDS) rendered from these same routes; weights are drawn per call');
  }
  lines.push(`request: ${Object.entries(e.metadata).map(([k, v]) => `${k}=${v}`).join(' ') || '(no attributes)'}`);
  for (const r of e.evaluated) {
    lines.push(`  routes[${r.index}] ${r.name}: ${r.matched ? 'matches' : 'no match'}`);
    if (r.conditions.length === 0) lines.push('    (no conditions: matches every request)');
    for (const c of r.conditions) {
      const want = c.kind === 'present' ? 'present' : `${c.kind} ${JSON.stringify(c.value)}`;
      lines.push(`    ${c.holds ? 'ok  ' : 'FAIL'} ${c.key} ${want}: ${c.actual === null ? 'absent' : JSON.stringify(c.actual)}`);
    }
  }
  lines.push(`route: ${e.route ?? '(none: refused)'}, because ${e.reason}`);
  for (const d of e.destinations) lines.push(`  -> ${d.cluster}  weight ${d.weight} (${Math.round(d.share * 1000) / 10}%)`);
  const policies = Object.entries(e.policies);
  if (policies.length > 0) lines.push('policies:');
  for (const [k, v] of policies) lines.push(`  ${k}: ${JSON.stringify(v)}`);
  if (e.serviceRateLimit) lines.push(`service rate limit: ${JSON.stringify(e.serviceRateLimit)}`);
  return lines.join('\n') + '\n';
}
