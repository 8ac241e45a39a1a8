/**
 * The Istio objects a compiled port becomes: the WasmPlugin that loads the filter and the
 * EnvoyFilter that readies the outbound tcp_proxy (per connection), or, per request, the client
 * WasmPlugin, the EnvoyFilter that replaces tcp_proxy by an HTTP/2 connection manager taking its
 * routes by RDS, and the server WasmPlugin. Labels, annotations and owner references tie each to
 * its MetaRouter.
 */
import {
  API_VERSION, MANAGED_BY, MANAGED_BY_LABEL, OWNER_ANNOTATION, ROUTER_NAME_LABEL, ROUTER_NS_LABEL,
  type KubeObject, type MetaRouter, type RenderOptions, type Service,
} from './model.mjs';
import { connectionManager } from './per-request.mjs';
import type { PluginConfig } from './plugin-config.mjs';
import type { CompiledPort } from './render.mjs';

/** Label values are capped at 63 characters; longer names are cut and suffixed with a short hash. */
function labelValue(s: string): string {
  if (s.length <= 63) return s;
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return `${s.slice(0, 54)}-${h.toString(16).padStart(8, '0')}`;
}

function metadataFor(c: CompiledPort, router: MetaRouter) {
  const ns = router.metadata.namespace ?? 'default';
  const owned = c.namespace === ns && router.metadata.uid;
  return {
    name: c.name,
    namespace: c.namespace,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [ROUTER_NS_LABEL]: labelValue(ns), [ROUTER_NAME_LABEL]: labelValue(router.metadata.name) },
    annotations: { [OWNER_ANNOTATION]: c.router },
    ...(owned ? {
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'MetaRouter', name: router.metadata.name, uid: router.metadata.uid!, controller: true, blockOwnerDeletion: true }],
    } : {}),
  };
}

export function wasmPlugin(c: CompiledPort, router: MetaRouter, o: RenderOptions): KubeObject {
  return {
    apiVersion: 'extensions.istio.io/v1alpha1',
    kind: 'WasmPlugin',
    metadata: metadataFor(c, router),
    spec: {
      url: o.moduleUrl,
      ...(o.moduleSha256 ? { sha256: o.moduleSha256 } : {}),
      pluginName: 'meltemi',
      type: 'NETWORK',
      failStrategy: o.failStrategy,
      match: [{ mode: 'CLIENT', ports: [{ number: c.port }] }],
      pluginConfig: c.pluginConfig.mode === 'perRequest' ? { ...scoped(c.pluginConfig, c.service, !c.listeners), role: 'client' } : scoped(c.pluginConfig, c.service),
    },
  };
}

/**
 * Istio applies the WasmPlugin to every outbound chain on the port, so other TCP services sharing
 * the port would be routed to this host's clusters. The filter's `scope` lets through, untouched,
 * connections not addressed to this Service: its ClusterIPs (what a redirected connection's
 * original destination is) or loopback (a sidecar listener bound for this Service alone, as with
 * INTERCEPTION_MODE NONE). Headless Services have no ClusterIP to tell them apart: no scope.
 */
export function scoped(config: PluginConfig, svc: Service, loopback = true): PluginConfig {
  const ips = (svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : []))
    .filter((ip) => ip && ip !== 'None');
  if (ips.length === 0) return config;
  // On a shared per-request port (shared-port.mts) every service has its own listener, and loopback
  // would admit the other services' connections too (their listeners may be bound to it).
  return { ...config, scope: { destinations: loopback ? [...ips, '127.0.0.0/8', '::1/128'] : [...ips] } };
}

/**
 * Lets the Wasm filter see the first frame before tcp_proxy connects upstream: MERGE max_early_data_bytes
 * into the outbound tcp_proxy of this port. Matched on port and filter type only, never on
 * Istio-generated filter names (they change between Istio versions).
 */
export function envoyFilter(c: CompiledPort, router: MetaRouter, o: RenderOptions): KubeObject {
  return outboundTcpProxyPatch(c, router, 'MERGE', {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
      max_early_data_bytes: o.maxEarlyDataBytes,
    },
  });
}

/**
 * An EnvoyFilter patching the outbound tcp_proxy of the port (matched on port and filter type only),
 * or of the compiled port's own listeners when it names them (a shared per-request port).
 */
function outboundTcpProxyPatch(c: CompiledPort, router: MetaRouter, operation: 'MERGE' | 'REPLACE', value: object): KubeObject {
  const patch = (name?: string) => ({
    applyTo: 'NETWORK_FILTER',
    match: {
      context: 'SIDECAR_OUTBOUND',
      listener: { ...(name ? { name } : {}), portNumber: c.port, filterChain: { filter: { name: 'envoy.filters.network.tcp_proxy' } } },
    },
    patch: { operation, value },
  });
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: metadataFor(c, router),
    spec: { configPatches: c.listeners ? c.listeners.map(patch) : [patch()] },
  };
}

/** The RDS name of a per-request port's route table (what the EnvoyFilter's HCM asks for). */
export const rdsName = (c: CompiledPort): string => `meltemi/${c.namespace}/${c.name}`;

/** The static cluster a sidecar's bootstrap must have, pointing at the controller's RDS port. */
export const RDS_CLUSTER = 'meltemi-rds';

/**
 * Per-request mode, client side: the outbound tcp_proxy of the port is replaced by an HTTP/2
 * connection manager whose router takes its routes by RDS from the controller (cluster
 * meltemi-rds in the sidecar's bootstrap). The EnvoyFilter itself never changes with the routes:
 * an EnvoyFilter change replaces the listener and drains its connections, an RDS change does not.
 * The router's clusters are Istio's own, so a DestinationRule's traffic policy acts per call.
 */
export function perRequestEnvoyFilter(c: CompiledPort, router: MetaRouter, _o: RenderOptions): KubeObject {
  const hcm = connectionManager(c.pluginConfig, {
    statPrefix: c.name.replace(/[^a-zA-Z0-9_]/g, '_'), rds: { cluster: RDS_CLUSTER }, routeName: rdsName(c), accessLog: c.accessLog,
  });
  return outboundTcpProxyPatch(c, router, 'REPLACE', hcm);
}

/**
 * Per-request mode, server side: the server role on the inbound chains of the Service's
 * workloads (its selector), where the route's policies run and non-Meltemi clients pass through.
 */
export function serverWasmPlugin(c: CompiledPort, router: MetaRouter, o: RenderOptions): KubeObject | undefined {
  const selector = c.service.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) return undefined;
  const base = wasmPlugin(c, router, o);
  return {
    ...base,
    metadata: { ...base.metadata, name: `${c.name}-server` },
    spec: {
      ...(base.spec as Record<string, unknown>),
      selector: { matchLabels: { ...selector } },
      match: [{ mode: 'SERVER' }],
      pluginConfig: { ...c.pluginConfig, role: 'server' },
    },
  };
}

