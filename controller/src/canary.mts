/**
 * A new filter version on some workloads first (`--canary-module-url` + `--canary-selector`).
 *
 * Istio applies every WasmPlugin that selects a workload, and a selector is match-labels only: a
 * second WasmPlugin for the canary workloads would stack a second Meltemi filter in front of the
 * first, both routing the same connection. So each client WasmPlugin `W` gets two companions:
 *   W-canary                 the same config on the canary module, selecting the canary workloads;
 *   EnvoyFilter W-canary     on those workloads only, REMOVEs W's filter from the outbound listener
 *                            of the port. Istio names that filter
 *                            `extensions.istio.io/trafficextension/<namespace>.<W>~istio-translated-wasmplugin`
 *                            since 1.30 (seen in test/controller/istio-status.test.mjs) and
 *                            `extensions.istio.io/wasmplugin/<namespace>.<W>` before: both are listed,
 *                            and a patch that matches nothing does nothing.
 * Every other workload keeps W. Removing the canary options removes both companions.
 * The per-request server role (W-server) is not canaried: it runs on the servers, not the clients.
 */
import type { KubeObject } from './model.mjs';

export interface CanaryOptions {
  readonly moduleUrl: string;
  readonly moduleSha256?: string;
  /** Labels of the canary workloads (all must match). */
  readonly selector: Readonly<Record<string, string>>;
}

export const CANARY_SUFFIX = '-canary';

interface PluginSpec { readonly match?: { ports?: { number: number }[] }[]; readonly pluginConfig?: { role?: string }; readonly sha256?: string; readonly url?: string }

/** Whether a rendered WasmPlugin is a canary companion. */
export const isCanary = (o: KubeObject): boolean => o.kind === 'WasmPlugin' && !!o.metadata.labels?.['meltemi.dev/canary'];

/** `resources` with the canary companions of every client WasmPlugin, each after its stable one. */
export function withCanary(resources: readonly KubeObject[], canary: CanaryOptions): KubeObject[] {
  const out: KubeObject[] = [];
  for (const r of resources) {
    out.push(r);
    const spec = r.spec as PluginSpec;
    if (r.kind !== 'WasmPlugin' || spec.pluginConfig?.role === 'server') continue;
    const { sha256: _stableSha, ...rest } = spec;
    const name = `${r.metadata.name}${CANARY_SUFFIX}`;
    const metadata = { ...r.metadata, name, labels: { ...r.metadata.labels, 'meltemi.dev/canary': 'true' } };
    out.push({
      ...r, metadata,
      spec: { ...rest, url: canary.moduleUrl, ...(canary.moduleSha256 ? { sha256: canary.moduleSha256 } : {}), selector: { matchLabels: { ...canary.selector } } },
    });
    const port = spec.match?.[0]?.ports?.[0]?.number;
    const stable = `${r.metadata.namespace}.${r.metadata.name}`;
    out.push({
      apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter',
      metadata: { ...r.metadata, name },
      spec: {
        workloadSelector: { labels: { ...canary.selector } },
        configPatches: [`extensions.istio.io/trafficextension/${stable}~istio-translated-wasmplugin`, `extensions.istio.io/wasmplugin/${stable}`].map((filter) => ({
          applyTo: 'NETWORK_FILTER',
          match: { context: 'SIDECAR_OUTBOUND', listener: { portNumber: port, filterChain: { filter: { name: filter } } } },
          patch: { operation: 'REMOVE' },
        })),
      },
    });
  }
  return out;
}
