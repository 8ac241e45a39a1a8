// Envoy bootstrap builders (plain objects; startEnvoy writes them as JSON, which is YAML).
// The Meltemi wiring follows docs/DESIGN.md: wasm network filter, then tcp_proxy with a
// plain `cluster` and `max_early_data_bytes`.
import { repoPath } from './envoy.mjs';
import { statsConfig } from '../../dist/controller/stats-tags.mjs';

export { statsConfig };

const LOOPBACK = '127.0.0.1';

export function socketAddress(port, address = LOOPBACK) {
  return { socket_address: { address, port_value: port } };
}

/** A bootstrap with one loopback listener running `filters`, and static `clusters`. */
function oneListener({ adminPort, listenPort, listenerName, clusters, filters }) {
  return {
    admin: adminBlock(adminPort),
    stats_config: statsConfig(),
    static_resources: {
      listeners: [{ name: listenerName, address: socketAddress(listenPort), filter_chains: [{ filters }] }],
      clusters: staticClusters(clusters),
    },
  };
}

function adminBlock(adminPort) {
  return { address: socketAddress(adminPort ?? 0) };
}

/**
 * STATIC clusters from {name: [{host, port}]} (a single {host, port} is accepted too).
 */
export function staticClusters(clusters = {}, { connectTimeout = '1s' } = {}) {
  return Object.entries(clusters).map(([name, eps]) => ({
    name,
    type: 'STATIC',
    connect_timeout: connectTimeout,
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [].concat(eps).map(({ host = LOOPBACK, port }) => ({
          endpoint: { address: socketAddress(port, host) },
        })),
      }],
    },
  }));
}

/** A tcp_proxy network filter entry. */
export function tcpProxyFilter({ cluster, statPrefix = 'meltemi', maxEarlyDataBytes, accessLog = false, idleTimeout } = {}) {
  const cfg = {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    stat_prefix: statPrefix,
    cluster,
  };
  if (maxEarlyDataBytes !== undefined) cfg.max_early_data_bytes = maxEarlyDataBytes;
  if (idleTimeout) cfg.idle_timeout = idleTimeout;
  if (accessLog) cfg.access_log = [stdoutAccessLog(accessLog)];
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: cfg };
}

/** Stdout access log; `format` (string) overrides the default one-liner. */
export function stdoutAccessLog(format) {
  const text = typeof format === 'string'
    ? format
    : 'ACCESS %DOWNSTREAM_REMOTE_ADDRESS% -> %UPSTREAM_CLUSTER% %UPSTREAM_HOST% rx=%BYTES_RECEIVED% tx=%BYTES_SENT% flags=%RESPONSE_FLAGS%\n';
  return {
    name: 'envoy.access_loggers.stdout',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
      log_format: { text_format_source: { inline_string: text } },
    },
  };
}

/**
 * The Meltemi wasm network filter entry.
 * @param {object|string} plugin  plugin config (schema/plugin-config.schema.json); a string is
 *        passed verbatim (to test malformed JSON)
 * @param {{wasmPath?: string, name?: string, rootId?: string, vmId?: string, failOpen?: boolean}} [opts]
 *        wasmPath defaults to build/meltemi.wasm, resolved against the repo root.
 */
export function meltemiFilterConfig(plugin, { wasmPath = 'build/meltemi.wasm', name = 'meltemi', rootId = 'meltemi', vmId = 'meltemi', failOpen } = {}) {
  const config = {
    name,
    root_id: rootId,
    vm_config: {
      vm_id: vmId,
      runtime: 'envoy.wasm.runtime.v8',
      code: { local: { filename: repoPath(wasmPath) } },
    },
    configuration: {
      '@type': 'type.googleapis.com/google.protobuf.StringValue',
      value: typeof plugin === 'string' ? plugin : JSON.stringify(plugin),
    },
  };
  if (failOpen !== undefined) config.fail_open = failOpen;
  return {
    name: 'envoy.filters.network.wasm',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm',
      config,
    },
  };
}

/**
 * Listener (wasm filter → tcp_proxy) plus STATIC clusters, as in docs/DESIGN.md.
 * @param {object} o
 * @param {number} [o.listenPort=0]  0 lets Envoy pick; read it back with envoy.listenerPort()
 * @param {number} [o.adminPort=0]
 * @param {object|string} o.plugin
 * @param {Record<string, Array<{host?: string, port: number}>>} o.clusters
 * @param {string} [o.defaultCluster]  tcp_proxy's plain cluster; default plugin.defaultCluster,
 *        else the first cluster
 * @param {string} [o.wasmPath]
 * @param {number} [o.maxEarlyDataBytes=65536]
 * @param {boolean|string} [o.accessLog]  tcp_proxy stdout access log (shows %UPSTREAM_CLUSTER%)
 */
export function meltemiBootstrap({
  listenPort = 0,
  adminPort = 0,
  plugin,
  clusters,
  defaultCluster,
  wasmPath,
  maxEarlyDataBytes = 65536,
  accessLog = false,
  statPrefix = 'meltemi',
  listenerName = 'meltemi',
  filterOptions = {},
} = {}) {
  if (!clusters || !Object.keys(clusters).length) throw new TypeError('meltemiBootstrap: clusters required');
  const cluster = defaultCluster
    ?? (plugin && typeof plugin === 'object' ? plugin.defaultCluster : undefined)
    ?? Object.keys(clusters)[0];
  return oneListener({ adminPort, listenPort, listenerName, clusters, filters: [
            meltemiFilterConfig(plugin, { wasmPath, ...filterOptions }),
            tcpProxyFilter({ cluster, statPrefix, maxEarlyDataBytes, accessLog }),
          ] });
}

/**
 * Plain tcp_proxy reference: listener → cluster. Either `clusters` + `cluster`, or `upstream: {host, port}`.
 */
export function tcpProxyBootstrap({
  listenPort = 0,
  adminPort = 0,
  clusters,
  cluster,
  upstream,
  accessLog = false,
  statPrefix = 'tcp',
  listenerName = 'tcp',
} = {}) {
  if (upstream) clusters = { [cluster ?? 'upstream']: [upstream] };
  if (!clusters || !Object.keys(clusters).length) throw new TypeError('tcpProxyBootstrap: clusters or upstream required');
  cluster ??= Object.keys(clusters)[0];
  return oneListener({ adminPort, listenPort, listenerName, clusters, filters: [tcpProxyFilter({ cluster, statPrefix, accessLog })] });
}

/**
 * Envoy's native thrift_proxy routing by method name (the benchmark baseline).
 * @param {object} o
 * @param {Array<{method: string, cluster: string, name?: string}>} [o.routes]  exact method → cluster;
 *        a catch-all to defaultCluster (method_name "" matches any) is appended.
 * @param {string} [o.transport='AUTO_TRANSPORT']  FRAMED, UNFRAMED, HEADER or AUTO_TRANSPORT
 * @param {string} [o.protocol='AUTO_PROTOCOL']    BINARY, COMPACT, TWITTER or AUTO_PROTOCOL
 */
export function thriftProxyBootstrap({
  listenPort = 0,
  adminPort = 0,
  clusters,
  routes = [],
  defaultCluster,
  transport = 'AUTO_TRANSPORT',
  protocol = 'AUTO_PROTOCOL',
  statPrefix = 'thrift',
  listenerName = 'thrift',
} = {}) {
  if (!clusters || !Object.keys(clusters).length) throw new TypeError('thriftProxyBootstrap: clusters required');
  defaultCluster ??= Object.keys(clusters)[0];
  const rts = routes.map((r) => ({ match: { method_name: r.method }, route: { cluster: r.cluster } }));
  rts.push({ match: { method_name: '' }, route: { cluster: defaultCluster } });
  return oneListener({ adminPort, listenPort, listenerName, clusters, filters: [{
            name: 'envoy.filters.network.thrift_proxy',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy',
              stat_prefix: statPrefix,
              transport,
              protocol,
              route_config: { name: 'routes', routes: rts },
              thrift_filters: [{
                name: 'envoy.filters.thrift.router',
                typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.router.v3.Router' },
              }],
            },
          }] });
}

/**
 * Envoy's native redis_proxy (the benchmark baseline for the Redis codec): every command to one
 * cluster, or by key prefix to others. Envoy's redis_proxy splits pipelines per command and
 * answers PING itself; it is a command proxy, not a per-connection router like Meltemi.
 * @param {object} o
 * @param {Array<{prefix: string, cluster: string}>} [o.prefixRoutes]  key prefix → cluster
 * @param {string} [o.defaultCluster]  catch-all cluster; default the first cluster
 * @param {string} [o.opTimeout='5s']
 */
export function redisProxyBootstrap({
  listenPort = 0,
  adminPort = 0,
  clusters,
  prefixRoutes = [],
  defaultCluster,
  opTimeout = '5s',
  statPrefix = 'redis',
  listenerName = 'redis',
  commandStats = false,
} = {}) {
  if (!clusters || !Object.keys(clusters).length) throw new TypeError('redisProxyBootstrap: clusters required');
  defaultCluster ??= Object.keys(clusters)[0];
  return oneListener({ adminPort, listenPort, listenerName, clusters, filters: [{
            name: 'envoy.filters.network.redis_proxy',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy',
              stat_prefix: statPrefix,
              settings: { op_timeout: opTimeout, ...(commandStats ? { enable_command_stats: true } : {}) },
              prefix_routes: {
                routes: prefixRoutes.map((r) => ({ prefix: r.prefix, cluster: r.cluster })),
                catch_all_route: { cluster: defaultCluster },
              },
            },
          }] });
}

/**
 * Per-request mode (docs/per-request.md): a listener with the client role in front of an HTTP/2
 * http_connection_manager whose router balances each call over `clusters`, each endpoint reached
 * through the server role's internal listener. Rendered by the controller's own functions
 * (dist/controller/per-request.mjs, built by `make build`), so the tests run what users get.
 * @param {object} o
 * @param {object} o.plugin  plugin config (mode/role are set per role)
 * @param {Record<string, Array<{host?: string, port: number}>>} o.clusters
 * @param {Record<string, object>} [o.clusterOptions]  per cluster: lbPolicy, circuitBreakers, outlierDetection
 * @param {{cluster: string, port: number, refreshDelay?: string}} [o.rds]  REST RDS server on loopback
 * @param {object[]} [o.extraClusters]
 * @param {{path: string}} [o.accessLog]  Envoy's own JSON access log of the calls (controller/src/access-log.mts)
 */
export async function perRequestBootstrap({
  listenPort = 0,
  adminPort = 0,
  plugin,
  clusters,
  clusterOptions = {},
  rds,
  wasmPath = 'build/meltemi.wasm',
  listenerName = 'meltemi',
  extraClusters = [],
  accessLog,
} = {}) {
  const pr = await import(new URL('../../dist/controller/per-request.mjs', import.meta.url));
  const filename = repoPath(wasmPath);
  const endpoints = Object.fromEntries(Object.entries(clusters).map(([name, eps]) =>
    [name, [].concat(eps).map(({ host = LOOPBACK, port }) => ({ address: host, port }))]));
  const routed = pr.perRequestClusters(plugin, endpoints, clusterOptions);
  const extra = [...extraClusters];
  if (rds) extra.push(...staticClusters({ [rds.cluster]: [{ port: rds.port }] }));
  return {
    admin: adminBlock(adminPort),
    stats_config: statsConfig(),
    node: { id: 'meltemi-test', cluster: 'meltemi-test' },
    bootstrap_extensions: [pr.INTERNAL_LISTENER_EXTENSION],
    static_resources: {
      listeners: [
        {
          name: listenerName,
          address: socketAddress(listenPort),
          filter_chains: [{ filters: [
            pr.wasmFilter(pr.roleConfig(plugin, 'client'), filename),
            pr.connectionManager(plugin, { rds: rds ? { cluster: rds.cluster, refreshDelay: rds.refreshDelay } : undefined, accessLog }),
          ] }],
        },
        pr.serverListener(plugin, filename),
      ],
      clusters: [...routed, pr.originalDstCluster(), ...extra],
    },
  };
}
