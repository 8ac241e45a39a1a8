/**
 * Whether the proxies run a MetaRouter's config, from istiod's own record of every proxy's xDS
 * acknowledgements (`/debug/syncz` on istiod's HTTP debug port, 15014 in an Istio install).
 *
 * For every connected proxy and xDS type, syncz reports the nonce istiod last sent, the nonce the
 * proxy last ACKed, and `lastError`: Envoy's error_detail when it NACKed (refused) the update, until
 * the proxy's next ACK of that type. A WasmPlugin reaches Envoy by ECDS (one TypedExtensionConfig per
 * plugin, named `<namespace>.<WasmPlugin>` plus Istio's suffix), its EnvoyFilter by LDS; Envoy NACKs
 * an ECDS update whose Wasm filter fails to start, which includes the filter refusing its plugin
 * config in proxy_on_configure, and keeps running what it had.
 *
 * istiod builds ECDS whole (pilot/pkg/xds/ecds.go generates every resource a proxy watches on each
 * push), so a refused WasmPlugin is sent, and refused, again with any later ECDS push: lastError
 * stays until the config Envoy is sent is one it takes. That makes the check level-based: a MetaRouter
 * is Programmed when every proxy in its WasmPlugins' scope has ACKed ECDS, and Rejected, naming the
 * proxy and Envoy's words, while a proxy's ECDS or LDS error names one of its WasmPlugins
 * (`<namespace>.<name>`, the prefix of the ECDS resource name).
 */
import { readFileSync } from 'node:fs';
import type { Condition } from './model.mjs';

export const ECDS_TYPE = 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig';
export const LDS_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';

/** One proxy as syncz shows it. */
export interface ProxySync {
  readonly proxy: string;
  readonly resources?: Readonly<Record<string, { readonly sent?: string; readonly acked?: string; readonly lastError?: string }>>;
}

/**
 * The namespace of a proxy as syncz names it: `<pod>.<namespace>` (istiod's connection id), or a
 * full node id `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`.
 */
export function proxyNamespace(id: string): string {
  const parts = id.split('~');
  const podDotNs = parts.length >= 3 ? parts[2]! : parts[0]!;
  return podDotNs.slice(podDotNs.indexOf('.') + 1);
}

/**
 * GET <istiod>/debug/syncz; throws with the URL on any failure. Off localhost, istiod (1.31+,
 * ENABLE_DEBUG_ENDPOINT_AUTH) wants a bearer token it can authenticate, as for xDS (a projected
 * ServiceAccount token with audience istio-ca), from its root namespace or one listed in its
 * DEBUG_ENDPOINT_AUTH_ALLOWED_NAMESPACES; `tokenFile` is read on every call, since tokens rotate.
 */
export async function fetchSyncz(istiodUrl: string, tokenFile?: string, timeoutMs = 5000): Promise<ProxySync[]> {
  const url = new URL('/debug/syncz', istiodUrl).href;
  let r: Response;
  try {
    const headers: Record<string, string> = tokenFile ? { Authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` } : {};
    r = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new Error(`${url}: ${(e as Error).message}`);
  }
  const body = await r.text();
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${body.slice(0, 200)}`);
  const list = JSON.parse(body) as unknown;
  if (!Array.isArray(list)) throw new Error(`${url}: expected a JSON list of proxies`);
  return list as ProxySync[];
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const lastError = (p: ProxySync, type: string) => p.resources?.[type]?.lastError || undefined;
const pending = (p: ProxySync, type: string) => { const r = p.resources?.[type]; return !!r && !!r.sent && r.sent !== r.acked && !r.lastError; };

/**
 * The Programmed condition (without observedGeneration) of a MetaRouter whose objects are applied,
 * given istiod's syncz. `plugins` are its WasmPlugins; a plugin in the root namespace applies to
 * every proxy, any other to the proxies of its namespace.
 */
export function programmedCondition(plugins: readonly { readonly namespace: string; readonly name: string }[], proxies: readonly ProxySync[],
  rootNamespace = 'istio-system'): Omit<Condition, 'observedGeneration'> {
  // Whole names only: shop.meltemi-a-90 must not claim the NACK of shop.meltemi-a-9090.
  const names = plugins.map((p) => new RegExp(`(^|[\\s/])${escapeRegExp(`${p.namespace}.${p.name}`)}(~|$|[\\s:,])`));
  const ours = (error: string | undefined) => !!error && names.some((n) => n.test(error));
  const inScope = proxies.filter((p) => plugins.some((w) => w.namespace === rootNamespace || w.namespace === proxyNamespace(p.proxy)));
  const rejected: [string, string][] = [];
  for (const p of proxies) {
    const e = [ECDS_TYPE, LDS_TYPE].map((t) => lastError(p, t)).find(ours);
    if (e) rejected.push([p.proxy, e]);
  }
  if (rejected.length > 0) {
    const [[proxy, error]] = rejected as [[string, string]];
    const more = rejected.length > 1 ? ` (and ${rejected.length - 1} more prox${rejected.length === 2 ? 'y' : 'ies'})` : '';
    return { type: 'Programmed', status: 'False', reason: 'Rejected', message: `proxy ${proxy} rejected the config${more}: ${error} (the proxy's log has the reason)` };
  }
  // Envoy refuses an ECDS response as a whole: with another plugin refused, whether ours was taken is not known.
  const other = inScope.find((p) => lastError(p, ECDS_TYPE));
  if (other) {
    return { type: 'Programmed', status: 'Unknown', reason: 'ProxyRejectedOther', message: `proxy ${other.proxy} refused another extension config (${lastError(other, ECDS_TYPE)}); whether it runs this one is not known` };
  }
  const waiting = inScope.filter((p) => pending(p, ECDS_TYPE)).map((p) => p.proxy);
  if (waiting.length > 0) {
    return { type: 'Programmed', status: 'Unknown', reason: 'Pending', message: `waiting for ${waiting.length} prox${waiting.length === 1 ? 'y' : 'ies'} to acknowledge the config: ${waiting.slice(0, 3).join(', ')}` };
  }
  return {
    type: 'Programmed', status: 'True', reason: 'Programmed',
    message: inScope.length === 0
      ? 'WasmPlugin and EnvoyFilter are applied; no proxy in their scope is connected to istiod'
      : `WasmPlugin and EnvoyFilter are applied and acknowledged by ${inScope.length} prox${inScope.length === 1 ? 'y' : 'ies'}`,
  };
}
