/**
 * The controller never sends a config the proxies' filter lacks a field for. Every WasmPlugin's
 * final plugin config (scope included) is handed to the filter build the proxies run, through its
 * own proxy_on_configure (filter-check.mts): by default the build next to the controller, or the one
 * the operator declares with --filter-wasm (a copy of the module at --module-url) while proxies still
 * run an older filter. A MetaRouter whose config that filter refuses is not accepted, with the
 * filter's own words, which name the field (`<root>: unknown field "scope"`); its objects from the
 * last accepted spec stay (fail static), so nothing the old filter would NACK reaches a proxy.
 *
 * No table of "which field came in which version" is kept: the declared build is the table.
 */
import { FilterCheck, DEFAULT_FILTER_WASM } from './filter-check.mjs';
import { OWNER_ANNOTATION, type Condition, type KubeObject } from './model.mjs';
import { rdsName } from './istio-objects.mjs';
import type { RenderOutput } from './render.mjs';

/** A filter build the proxies run, and which WasmPlugins it runs (default: all). */
export interface DeclaredFilter {
  /** A local copy of the module (a path or file:// URL). */
  readonly wasm: string | URL;
  /** How the message names it (e.g. "--filter-wasm /opt/meltemi-0.1.0.wasm"). */
  readonly label: string;
  readonly runs?: (plugin: KubeObject) => boolean;
}

const loaded = new Map<string, FilterCheck>();
const load = (wasm: string | URL) => {
  const k = String(wasm);
  let f = loaded.get(k);
  if (!f) loaded.set(k, f = FilterCheck.load(typeof wasm === 'string' && wasm.startsWith('file://') ? new URL(wasm) : wasm));
  return f;
};

/**
 * The controller renders the whole desired state on every pass (each event, each resync, each
 * status poll) and configs rarely change, so verdicts are kept per (filter, config text): a check
 * costs a fresh Wasm instance, about 2 ms. Dropped whole when it grows past MAX_VERDICTS.
 */
const verdicts = new Map<string, string | undefined>();
const MAX_VERDICTS = 4096;
function verdict(wasm: string | URL, config: unknown): string | undefined {
  const key = `${String(wasm)}\n${JSON.stringify(config)}`;
  if (verdicts.has(key)) return verdicts.get(key);
  if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
  const v = load(wasm).check(config);
  verdicts.set(key, v);
  return v;
}

/**
 * Plugin-config fields that only name metrics (the `meltemi_service` label): a filter from before
 * them refuses them as unknown, and loses nothing but the label when they are left out. So they are
 * dropped from a WasmPlugin whose declared filters refuse them, instead of refusing the MetaRouter.
 */
const LABEL_FIELDS: readonly string[] = ['service'];

/** `config` without LABEL_FIELDS when one of `filters` refuses one of them; else `config` itself. */
function withoutLabelFields<T extends object>(config: T, filters: readonly DeclaredFilter[]): T {
  const present = LABEL_FIELDS.filter((k) => k in config);
  if (present.length === 0) return config;
  const refused = filters.some((f) => present.some((k) => verdict(f.wasm, config)?.includes(`unknown field "${k}"`)));
  return refused ? dropLabelFields(config) : config;
}

function dropLabelFields<T extends object>(config: T): T {
  return Object.fromEntries(Object.entries(config).filter(([k]) => !LABEL_FIELDS.includes(k))) as T;
}

/** A WasmPlugin with its plugin config passed through withoutLabelFields for the filters that run it. */
function pluginWithoutLabelFields(r: KubeObject, filters: readonly DeclaredFilter[]): KubeObject {
  const config = (r.spec as { pluginConfig?: object } | undefined)?.pluginConfig;
  if (r.kind !== 'WasmPlugin' || !config) return r;
  const stripped = withoutLabelFields(config, filters.filter((f) => !f.runs || f.runs(r)));
  return stripped === config ? r : { ...r, spec: { ...(r.spec as object), pluginConfig: stripped } } as KubeObject;
}

export const BUNDLED_FILTER: DeclaredFilter = { wasm: DEFAULT_FILTER_WASM, label: 'the filter build next to the controller' };

/**
 * `out` with every MetaRouter whose WasmPlugins a declared filter refuses turned into a rejected one
 * (Accepted False, reason FilterRefuses, its objects, routes and warnings dropped).
 */
export function againstDeclaredFilters(out: RenderOutput, filters: readonly DeclaredFilter[]): RenderOutput {
  const refused = new Map<string, string[]>();
  const resources = out.resources.map((r) => pluginWithoutLabelFields(r, filters));
  // The standalone bootstrap (meltemi envoy) is built from `compiled`: each port loses what its
  // WasmPlugin lost.
  const compiledAll = out.compiled.map((p) => {
    const plugin = resources.find((r) => r.kind === 'WasmPlugin' && r.metadata.name === p.name && r.metadata.namespace === p.namespace);
    const sent = (plugin?.spec as { pluginConfig?: object } | undefined)?.pluginConfig;
    if (!sent || LABEL_FIELDS.every((k) => !(k in p.pluginConfig) || k in sent)) return p;
    return { ...p, pluginConfig: dropLabelFields(p.pluginConfig) };
  });
  for (const r of resources) {
    if (r.kind !== 'WasmPlugin') continue;
    const owner = r.metadata.annotations?.[OWNER_ANNOTATION] ?? '';
    for (const f of filters) {
      if (f.runs && !f.runs(r)) continue;
      const problem = verdict(f.wasm, (r.spec as { pluginConfig: unknown }).pluginConfig);
      if (!problem) continue;
      const list = refused.get(owner) ?? [];
      list.push(`WasmPlugin ${r.metadata.namespace}/${r.metadata.name}: ${f.label} refuses its config: ${problem} (upgrade the filter before using what needs it: docs/upgrades.md)`);
      refused.set(owner, list);
    }
  }
  if (refused.size === 0) return { ...out, resources, compiled: compiledAll };
  const conditions = new Map<string, Condition>(out.conditions);
  for (const [router, problems] of refused) {
    const c = out.conditions.get(router);
    conditions.set(router, { type: 'Accepted', status: 'False', reason: 'FilterRefuses', message: problems.join('; '), ...(c?.observedGeneration !== undefined ? { observedGeneration: c.observedGeneration } : {}) });
  }
  const keep = (o: KubeObject) => !refused.has(o.metadata.annotations?.[OWNER_ANNOTATION] ?? '');
  const compiled = compiledAll.filter((p) => !refused.has(p.router));
  const droppedRoutes = new Set(out.compiled.filter((p) => refused.has(p.router)).map(rdsName));
  return {
    resources: resources.filter(keep),
    compiled,
    conditions,
    warnings: new Map([...out.warnings].filter(([k]) => !refused.has(k))),
    routes: new Map([...out.routes].filter(([name]) => !droppedRoutes.has(name))),
  };
}
