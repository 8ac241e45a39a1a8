/**
 * The warning `meltemi render` prints for a client WasmPlugin without `scope`. Istio applies a
 * network WasmPlugin by port, so an unscoped one routes every TCP service on that port in its
 * namespace. Services read from Git usually carry no spec.clusterIP (the cluster assigns it), so the
 * same MetaRouter that is scoped under `meltemi run` renders unscoped offline: say so, and what to do.
 */
import type { KubeObject } from './model.mjs';

interface PluginSpec { readonly match?: { ports?: { number: number }[] }[]; readonly pluginConfig?: { scope?: unknown; role?: string } }

/** One line per unscoped client WasmPlugin not already warned about by render (ServiceEntry ports). */
export function unscopedWarnings(resources: readonly KubeObject[], alreadyWarned: readonly string[]): Map<KubeObject, string> {
  const out = new Map<KubeObject, string>();
  for (const r of resources) {
    if (r.kind !== 'WasmPlugin') continue;
    const spec = r.spec as PluginSpec;
    if (!spec.pluginConfig || spec.pluginConfig.scope !== undefined || spec.pluginConfig.role === 'server') continue;
    const port = spec.match?.[0]?.ports?.[0]?.number;
    if (alreadyWarned.some((w) => w.includes(`WasmPlugin for port ${port} is not scoped`))) continue;
    out.set(r, `WasmPlugin ${r.metadata.namespace}/${r.metadata.name} has no scope (the Service in the input has no spec.clusterIP), ` +
      `so every TCP service on port ${port} in its namespace gets this route table: add the Service's spec.clusterIP ` +
      `(kubectl get service -o yaml gives it), or let the controller render it from the cluster (meltemi run)`);
  }
  return out;
}
