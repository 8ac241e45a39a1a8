/**
 * How the filter's metric labels become Prometheus labels, in a standalone Envoy and in Istio.
 *
 * The filter writes each label into the stat name as `<label>=.=<value>;.;` (assembly/stats.ts).
 * Envoy's tag extraction (stats_config.stats_tags) takes such a pair out of the name into a tag
 * when a regex's first group matches it; /stats/prometheus prints tags as labels. The regex here is
 * the one Istio's bootstrap template (tools/packaging/common/envoy_bootstrap.json) renders for each
 * meshConfig.defaultConfig.extraStatTags entry, so both worlds extract the same labels. Istio's
 * stats matcher already keeps the filter's stats: its inclusion prefixes list "wasm", which
 * "wasmcustom." starts with.
 */

/** The labels of the filter's metrics, in the order the filter writes them (METRIC_LABELS in assembly/stats.ts). */
export const METRIC_LABELS = ['meltemi_service', 'meltemi_route', 'meltemi_cluster', 'meltemi_operation', 'meltemi_kind', 'meltemi_status'] as const;

/** One Envoy stats_tags entry: Istio's regex for an extraStatTags name. */
export function statTag(name: string): { readonly tag_name: string; readonly regex: string } {
  return { tag_name: name, regex: `(${name}=\\.=(.*?);\\.;)` };
}

/**
 * The bootstrap's stats_config for a standalone Envoy: Envoy's default tags (use_all_default_tags
 * stays true) plus one per Meltemi label.
 */
export function statsConfig(): { readonly stats_tags: readonly object[] } {
  return { stats_tags: METRIC_LABELS.map(statTag) };
}

/**
 * What Istio needs for the labels: the extraStatTags of the proxies' ProxyConfig (mesh-wide in
 * meshConfig.defaultConfig, or per workload with the proxy.istio.io/config annotation). Istio reads
 * it when it writes a proxy's bootstrap, so proxies started before the change keep their old tags
 * until they restart.
 */
export function istioMeshConfig(): { readonly defaultConfig: { readonly extraStatTags: readonly string[] } } {
  return { defaultConfig: { extraStatTags: [...METRIC_LABELS] } };
}
