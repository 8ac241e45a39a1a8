/**
 * A standalone Envoy bootstrap from the same compiled listeners as the Istio output, for local
 * `envoy -c` runs: per routed Service port, a listener with the Meltemi Wasm filter in front of a
 * tcp_proxy (plain cluster + max_early_data_bytes, docs/DESIGN.md), and one cluster per Istio cluster
 * name the config uses, so the very same plugin config routes in both worlds.
 *
 * Endpoints, most specific first:
 *   1. options.endpoints, keyed "<host>" or "<host>|<subset>" (CLI: --endpoints host|subset=addr:port,...);
 *   2. Service annotations meltemi.dev/endpoints.<subset> and meltemi.dev/endpoints ("addr:port,addr:port";
 *      an entry without ":port" uses the cluster's port);
 *   3. otherwise the cluster resolves the host name itself (STRICT_DNS <host>:<port>).
 * Listener port: Service annotation meltemi.dev/listen-port (one metaprotocol port) or the Service port
 * plus options.portOffset, on options.listenAddress.
 */
import type { CompiledPort } from './render.mjs';
import type { RenderOptions } from './model.mjs';
import * as perRequest from './per-request.mjs';
import { statsConfig } from './stats-tags.mjs';

export interface EnvoyOptions {
  readonly listenAddress: string;
  readonly portOffset: number;
  readonly adminAddress: string;
  readonly adminPort: number;
  /** "<host>" or "<host>|<subset>" -> "addr:port" list. */
  readonly endpoints: Readonly<Record<string, readonly string[]>>;
  readonly connectTimeout: string;
  /** perConnection: wasm + tcp_proxy per port; perRequest: wasm (client) + HTTP/2 router per port (docs/per-request.md). */
  readonly mode: 'perConnection' | 'perRequest';
}

export const DEFAULT_ENVOY_OPTIONS: EnvoyOptions = {
  listenAddress: '127.0.0.1', portOffset: 0, adminAddress: '127.0.0.1', adminPort: 9901, endpoints: {}, connectTimeout: '5s',
  mode: 'perConnection',
};

export const ENDPOINTS_ANNOTATION = 'meltemi.dev/endpoints';
export const LISTEN_PORT_ANNOTATION = 'meltemi.dev/listen-port';

/** The local file Envoy loads: file:// URLs and plain paths; oci:// and http(s):// need Istio's agent. */
export function moduleFile(url: string): string {
  if (url.startsWith('file://')) return url.slice('file://'.length);
  if (/^[a-z]+:\/\//.test(url)) throw new Error(`meltemi envoy: module ${url}: a standalone Envoy loads local files only; pass --module file://<path>`);
  return url;
}

function parseCluster(name: string): { port: number; subset: string; host: string } {
  const [, port, subset, host] = name.split('|');
  return { port: Number(port), subset: subset ?? '', host: host ?? '' };
}

function endpointsFor(cluster: string, compiled: readonly CompiledPort[], e: EnvoyOptions): { address: string; port: number }[] {
  const { port, subset, host } = parseCluster(cluster);
  const svc = compiled.find((c) => c.host === host)?.service;
  const ann = svc?.metadata.annotations ?? {};
  const list = (subset && e.endpoints[`${host}|${subset}`]) || e.endpoints[host]
    || (subset && ann[`${ENDPOINTS_ANNOTATION}.${subset}`]?.split(',')) || ann[ENDPOINTS_ANNOTATION]?.split(',')
    || [`${host}:${port}`];
  return list.map((s) => s.trim()).filter(Boolean).map((s) => {
    const i = s.lastIndexOf(':');
    return i > 0 && /^\d+$/.test(s.slice(i + 1)) ? { address: s.slice(0, i), port: Number(s.slice(i + 1)) } : { address: s, port };
  });
}

const isIp = (a: string) => /^[\d.]+$/.test(a) || a.includes(':');

function listenPort(c: CompiledPort, e: EnvoyOptions): number {
  const metaPorts = (c.service.spec?.ports ?? []).filter((p) => p.name?.startsWith('tcp-metaprotocol-'));
  const fixed = metaPorts.length === 1 ? c.service.metadata.annotations?.[LISTEN_PORT_ANNOTATION] : undefined;
  return fixed !== undefined ? Number(fixed) : c.port + e.portOffset;
}

/**
 * Per-request mode: per port, a listener with the client role before an HTTP/2 router whose route
 * table is the plugin config's, and an internal listener with the server role before a tcp_proxy;
 * each Istio cluster name becomes a cluster of internal endpoints carrying the real addresses.
 */
function perRequestBootstrap(compiled: readonly CompiledPort[], o: RenderOptions, e: EnvoyOptions): object {
  const filename = moduleFile(o.moduleUrl);
  const listeners: object[] = [];
  const clusters: object[] = [perRequest.originalDstCluster(e.connectTimeout)];
  const seen = new Set<string>();
  for (const c of compiled) {
    const plugin = { ...c.pluginConfig, mode: 'perRequest' } as typeof c.pluginConfig;
    const server = `meltemi-server-${c.name}`;
    listeners.push({
      name: c.name,
      address: { socket_address: { address: e.listenAddress, port_value: listenPort(c, e) } },
      filter_chains: [{ filters: [
        perRequest.wasmFilter(perRequest.roleConfig(plugin, 'client'), filename, { failClosed: o.failStrategy !== 'FAIL_OPEN' }),
        perRequest.connectionManager(plugin, { statPrefix: c.name.replace(/[^a-zA-Z0-9_]/g, '_'), accessLog: c.accessLog }),
      ] }],
    });
    listeners.push(perRequest.serverListener(plugin, filename, { name: server }));
    const endpoints = Object.fromEntries(c.clusters.map((n) => [n, endpointsFor(n, compiled, e)]));
    for (const cluster of perRequest.perRequestClusters(plugin, endpoints, {}, server) as { name: string }[]) {
      if (seen.has(cluster.name)) continue;
      seen.add(cluster.name);
      clusters.push(cluster);
    }
  }
  return {
    node: { id: 'meltemi', cluster: 'meltemi' },
    admin: { address: { socket_address: { address: e.adminAddress, port_value: e.adminPort } } },
    stats_config: statsConfig(),
    bootstrap_extensions: [perRequest.INTERNAL_LISTENER_EXTENSION],
    static_resources: { listeners, clusters },
  };
}

export function envoyBootstrap(compiled: readonly CompiledPort[], o: RenderOptions, e: EnvoyOptions): object {
  if (e.mode === 'perRequest') return perRequestBootstrap(compiled, o, e);
  const filename = moduleFile(o.moduleUrl);
  const listeners = compiled.map((c) => {
    const port = listenPort(c, e);
    return {
      name: c.name,
      address: { socket_address: { address: e.listenAddress, port_value: port } },
      filter_chains: [{
        filters: [
          {
            name: 'envoy.filters.network.wasm',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm',
              config: {
                name: 'meltemi',
                root_id: 'meltemi',
                vm_config: { vm_id: 'meltemi', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename } } },
                configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: JSON.stringify(c.pluginConfig) },
                failure_policy: o.failStrategy === 'FAIL_CLOSE' ? 'FAIL_CLOSED' : o.failStrategy,
              },
            },
          },
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
              stat_prefix: c.name.replace(/[^a-zA-Z0-9_]/g, '_'),
              cluster: c.clusters[0],
              max_early_data_bytes: o.maxEarlyDataBytes,
            },
          },
        ],
      }],
    };
  });
  const names = [...new Set(compiled.flatMap((c) => c.clusters))];
  const clusters = names.map((name) => {
    const eps = endpointsFor(name, compiled, e);
    return {
      name,
      connect_timeout: e.connectTimeout,
      type: eps.every((x) => isIp(x.address)) ? 'STATIC' : 'STRICT_DNS',
      load_assignment: {
        cluster_name: name,
        endpoints: [{ lb_endpoints: eps.map((x) => ({ endpoint: { address: { socket_address: { address: x.address, port_value: x.port } } } })) }],
      },
    };
  });
  return {
    admin: { address: { socket_address: { address: e.adminAddress, port_value: e.adminPort } } },
    stats_config: statsConfig(),
    static_resources: { listeners, clusters },
  };
}
