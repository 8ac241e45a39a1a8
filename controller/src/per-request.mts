/**
 * Per-request mode in a standalone Envoy: the pieces a bootstrap needs, rendered from one plugin
 * config (schema/plugin-config.schema.json with `mode: "perRequest"`). Pure functions; the CLI
 * (`meltemi envoy --mode perRequest`) and the end-to-end tests use the same ones.
 *
 *   client --protocol--> listener: [meltemi wasm, role client] -> [http_connection_manager HTTP/2
 *     -> router, routes below] --HTTP/1.1--> cluster <name> (endpoints: the internal listener
 *     `meltemi-server`, each carrying its real address as tunnel metadata)
 *   internal listener meltemi-server: [meltemi wasm, role server] -> [tcp_proxy -> ORIGINAL_DST
 *     cluster dialing the address in the tunnel metadata] -> the real server
 *
 * The route table is Envoy's: one route per Meltemi route, matching the metadata headers the
 * client role writes (assembly/http/call-headers.ts), with weighted clusters, hash policy,
 * retries, mirror and timeout; each adds `x-meltemi-route: <name>` so that the server role
 * applies that route's policies. Served statically or by RDS, it can change under open
 * connections; the plugin config reaches new connections only.
 */
import type { PluginConfig, RouteConfig, StringMatchConfig } from './plugin-config.mjs';
import { callAccessLog, type AccessLogSpec } from './access-log.mjs';

export const SERVER_LISTENER = 'meltemi-server';
export const ORIGINAL_DST_CLUSTER = 'meltemi-original-dst';
export const ROUTE_HEADER = 'x-meltemi-route';
export const CLUSTER_HEADER = 'x-meltemi-cluster';
export const DEFAULT_ROUTE = '_default';

export interface PerRequestRoute extends RouteConfig {
  readonly hashKey?: string;
  readonly retry?: { readonly attempts?: number; readonly idempotent?: boolean; readonly perTryTimeoutMs?: number };
  readonly mirror?: { readonly cluster: string; readonly percent?: number };
}

export interface Endpoint { readonly address: string; readonly port: number }

/** The plugin config's globalRateLimit (schema/plugin-config.schema.json). */
export interface GlobalRateLimit {
  readonly domain: string;
  readonly rateLimitService: string;
  readonly requestTimeoutMs?: number;
  readonly denyOnFail?: boolean;
  readonly descriptors: readonly { readonly property: string; readonly descriptorKey: string }[];
}

const globalLimitOf = (plugin: PluginConfig): GlobalRateLimit | undefined => (plugin as { globalRateLimit?: GlobalRateLimit }).globalRateLimit;

const type = (t: string) => `type.googleapis.com/${t}`;
const overwrite = (key: string, value: string) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
const seconds = (ms: number) => `${ms / 1000}s`;

/** The header a metadata key travels as (the client role's rule: lower case). */
export function headerFor(key: string): string {
  const name = key.toLowerCase();
  if (!/^[a-z0-9!#$%&'*+\-.^_`|~]+$/.test(name) || /^(x-meltemi-|x-envoy-|x-forwarded-)/.test(name)
    || ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'content-length',
      'content-type', 'trailer', 'x-request-id', 'expect'].includes(name)) {
    throw new Error(`match key "${key}" cannot travel as an HTTP header in per-request mode`);
  }
  return name;
}

function headerMatch(key: string, m: StringMatchConfig): object {
  const name = headerFor(key);
  if (m.exact !== undefined) return { name, string_match: { exact: m.exact } };
  if (m.prefix !== undefined) return { name, string_match: { prefix: m.prefix } };
  if (m.regex !== undefined) return { name, string_match: { safe_regex: { regex: m.regex } } };
  return { name, present_match: true };
}

/** Envoy retry conditions that prove the server never got the call: any route may retry on them. */
export const RETRY_UNSENT: readonly string[] = ['connect-failure', 'refused-stream', 'reset-before-request'];
/** Conditions after which the server may have run the call: only a route whose calls may run twice retries on them. */
export const RETRY_SENT: readonly string[] = ['reset', 'gateway-error', 'unavailable'];

/** Retry conditions: what proves the server never got the call, plus resets when the route says a call may run twice. */
export function retryOn(idempotent: boolean): string {
  return idempotent ? 'connect-failure,refused-stream,reset,gateway-error,unavailable' : RETRY_UNSENT.join(',');
}

function routeAction(r: PerRequestRoute, clusterFor: (name: string) => string, limit?: GlobalRateLimit): Record<string, unknown> {
  const action: Record<string, unknown> = {};
  if (r.route.length === 1) {
    action.cluster = clusterFor(r.route[0].cluster);
  } else {
    action.weighted_clusters = {
      clusters: r.route.map((d) => ({
        name: clusterFor(d.cluster),
        weight: d.weight ?? 1,
        request_headers_to_add: [overwrite(CLUSTER_HEADER, d.cluster)],
      })),
    };
  }
  if (r.timeoutMs) action.timeout = seconds(r.timeoutMs);
  if (limit) {
    // One descriptor per call from its metadata headers; a call lacking one of them is not limited.
    action.rate_limits = [{ actions: limit.descriptors.map((d) => ({ request_headers: { header_name: headerFor(d.property), descriptor_key: d.descriptorKey } })) }];
  }
  if (r.hashKey) action.hash_policy = [{ header: { header_name: headerFor(r.hashKey) } }];
  if (r.retry) {
    action.retry_policy = {
      retry_on: retryOn(r.retry.idempotent ?? false),
      num_retries: r.retry.attempts ?? 1,
      ...(r.retry.perTryTimeoutMs ? { per_try_timeout: seconds(r.retry.perTryTimeoutMs) } : {}),
      retry_host_predicate: [{
        name: 'envoy.retry_host_predicates.previous_hosts',
        typed_config: { '@type': type('envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate') },
      }],
      // As Istio's own retry policies: with two endpoints, 3 left about 1 call in 40 on the bad one
      // after all its retries (LEAST_REQUEST re-picks it; docs/per-request.md "Retries").
      host_selection_retry_max_attempts: 5,
    };
  }
  if (r.mirror) {
    action.request_mirror_policies = [{
      cluster: clusterFor(r.mirror.cluster),
      runtime_fraction: { default_value: { numerator: r.mirror.percent ?? 100, denominator: 'HUNDRED' } },
    }];
  }
  return action;
}

/**
 * Envoy's RouteConfiguration for a per-request plugin config: the routes in order, then (with a
 * defaultCluster) a catch-all `_default`. A call no route takes gets Envoy's 404, which the client
 * role answers as the protocol's no-route error. `clusterFor` maps a config cluster name to the
 * Envoy cluster that reaches it (identity by default).
 */
export function routeConfiguration(plugin: PluginConfig, name = 'meltemi', clusterFor: (n: string) => string = (n) => n): object {
  // The route's name and (for one destination; weighted ones add their own) its cluster, for the
  // server role's policies, stats and access log.
  const named = (name: string, r: { route: readonly { cluster: string }[] }) => [
    overwrite(ROUTE_HEADER, name), ...(r.route.length === 1 ? [overwrite(CLUSTER_HEADER, r.route[0].cluster)] : []),
  ];
  const routes = (plugin.routes as readonly PerRequestRoute[] ?? []).map((r) => ({
    name: r.name,
    match: {
      prefix: '/',
      headers: Object.entries(r.match?.attributes ?? {}).map(([k, m]) => headerMatch(k, m)),
    },
    route: routeAction(r, clusterFor, globalLimitOf(plugin)),
    request_headers_to_add: named(r.name, r),
  }));
  if (plugin.defaultCluster && plugin.noRoute !== 'reject') {
    routes.push({
      name: DEFAULT_ROUTE,
      match: { prefix: '/', headers: [] },
      route: { cluster: clusterFor(plugin.defaultCluster) },
      request_headers_to_add: named(DEFAULT_ROUTE, { route: [{ cluster: plugin.defaultCluster }] }),
    });
  }
  return { name, virtual_hosts: [{ name: 'meltemi', domains: ['*'], routes }] };
}

/** The plugin config each role gets: the same config, its role named. */
export function roleConfig(plugin: PluginConfig, role: 'client' | 'server'): object {
  return { ...plugin, mode: 'perRequest', role };
}

export function wasmFilter(plugin: object, filename: string, { name = 'meltemi', vmId = 'meltemi', failClosed = true } = {}): object {
  return {
    name: 'envoy.filters.network.wasm',
    typed_config: {
      '@type': type('envoy.extensions.filters.network.wasm.v3.Wasm'),
      config: {
        name,
        root_id: 'meltemi',
        vm_config: { vm_id: vmId, runtime: 'envoy.wasm.runtime.v8', code: { local: { filename } } },
        configuration: { '@type': type('google.protobuf.StringValue'), value: JSON.stringify(plugin) },
        failure_policy: failClosed ? 'FAIL_CLOSED' : 'FAIL_OPEN',
      },
    },
  };
}

export interface RdsSource { readonly cluster: string; readonly refreshDelay?: string }

/**
 * The client side's http_connection_manager: HTTP/2 from the client role, the router, and the
 * route table inline or from RDS over REST (Envoy polls `cluster`; the table then changes under
 * open connections). No request ids: nothing reads them, and generating them costs per call.
 * With `accessLog`, Envoy writes one JSON line per call (access-log.mts).
 */
export function connectionManager(plugin: PluginConfig, { statPrefix = 'meltemi', rds, routeName = 'meltemi', clusterFor, accessLog }:
  { statPrefix?: string; rds?: RdsSource; routeName?: string; clusterFor?: (n: string) => string; accessLog?: AccessLogSpec } = {}): object {
  const routing = rds
    ? {
        rds: {
          route_config_name: routeName,
          config_source: {
            resource_api_version: 'V3',
            api_config_source: {
              api_type: 'REST', transport_api_version: 'V3', cluster_names: [rds.cluster], refresh_delay: rds.refreshDelay ?? '1s',
            },
          },
        },
      }
    : { route_config: routeConfiguration(plugin, routeName, clusterFor) };
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': type('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
      stat_prefix: statPrefix,
      codec_type: 'HTTP2',
      generate_request_id: false,
      http2_protocol_options: {
        max_concurrent_streams: 1024,
        initial_stream_window_size: 16 << 20,
        initial_connection_window_size: 24 << 20,
      },
      ...routing,
      ...(accessLog ? { access_log: [callAccessLog(accessLog)] } : {}),
      // Nothing downstream reads Envoy's own response headers (the client role turns the answer
      // back into the protocol), and per-status router stats double the stats work per call.
      server_header_transformation: 'PASS_THROUGH',
      http_filters: [
        ...globalRateLimitFilter(plugin),
        {
          name: 'envoy.filters.http.router',
          typed_config: { '@type': type('envoy.extensions.filters.http.router.v3.Router'), suppress_envoy_headers: true, dynamic_stats: false },
        },
      ],
    },
  };
}

/** Envoy's rate limit filter for the plugin config's globalRateLimit (none without one). */
function globalRateLimitFilter(plugin: PluginConfig): object[] {
  const limit = globalLimitOf(plugin);
  if (!limit) return [];
  return [{
    name: 'envoy.filters.http.ratelimit',
    typed_config: {
      '@type': type('envoy.extensions.filters.http.ratelimit.v3.RateLimit'),
      domain: limit.domain,
      failure_mode_deny: limit.denyOnFail ?? false,
      timeout: seconds(limit.requestTimeoutMs ?? 1000),
      rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: limit.rateLimitService } }, transport_api_version: 'V3' },
    },
  }];
}

/** The internal listener every routed cluster's endpoints point at: server role, then tcp_proxy to the real address. */
export function serverListener(plugin: PluginConfig, filename: string, { statPrefix = 'meltemi_server', name = SERVER_LISTENER } = {}): object {
  return {
    name,
    internal_listener: {},
    filter_chains: [{
      filters: [
        wasmFilter(roleConfig(plugin, 'server'), filename),
        {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: {
            '@type': type('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy'),
            stat_prefix: statPrefix,
            cluster: ORIGINAL_DST_CLUSTER,
          },
        },
      ],
    }],
  };
}

/** The cluster the server role's tcp_proxy dials: the address the router's chosen endpoint carries. */
export function originalDstCluster(connectTimeout = '1s'): object {
  return {
    name: ORIGINAL_DST_CLUSTER,
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: connectTimeout,
    original_dst_lb_config: { use_http_header: false, metadata_key: { key: 'tunnel', path: [{ key: 'address' }] } },
  };
}

export interface RoutedClusterOptions {
  readonly connectTimeout?: string;
  /** Envoy lb_policy; RING_HASH where a route hashes (set by perRequestClusters). */
  readonly lbPolicy?: string;
  /** Circuit breaker thresholds (Envoy's defaults when absent). */
  readonly circuitBreakers?: { readonly maxConnections?: number; readonly maxPendingRequests?: number; readonly maxRequests?: number };
  /**
   * Connections per endpoint (and worker). 1 for protocols whose replies pair by position (Redis):
   * the router then sends a client's calls to one server in the order they came, one at a time,
   * so a write and the read after it never race on two server connections.
   */
  readonly connectionsPerHost?: number;
  readonly outlierDetection?: object | null;
  /** Idle HTTP/1.1 connections (each one a real server connection) are closed after this. */
  readonly idleTimeout?: string;
  /** The internal listener the endpoints go through (one per plugin config). */
  readonly serverListener?: string;
}

/**
 * A cluster the router balances each call over: one endpoint per real server, each reaching it
 * through the internal listener. Outlier detection ejects a server whose calls keep failing
 * (a server that is down shows as resets: its internal connection is accepted, its real one not).
 */
export function routedCluster(name: string, endpoints: readonly Endpoint[], o: RoutedClusterOptions = {}): object {
  for (const e of endpoints) {
    // The server role's tcp_proxy dials the address the endpoint carries (ORIGINAL_DST): no DNS.
    if (!/^[\d.]+$/.test(e.address) && !e.address.includes(':')) {
      throw new Error(`per-request mode: cluster "${name}" endpoint ${e.address}:${e.port} must be an IP address (give --endpoints)`);
    }
  }
  const cluster: Record<string, unknown> = {
    name,
    type: 'STATIC',
    connect_timeout: o.connectTimeout ?? '1s',
    lb_policy: o.lbPolicy ?? 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { envoy_internal_address: { server_listener_name: o.serverListener ?? SERVER_LISTENER, endpoint_id: `${e.address}:${e.port}` } } },
          metadata: { filter_metadata: { tunnel: { address: `${e.address}:${e.port}` } } },
        })),
      }],
    },
    transport_socket: {
      name: 'envoy.transport_sockets.internal_upstream',
      typed_config: {
        '@type': type('envoy.extensions.transport_sockets.internal_upstream.v3.InternalUpstreamTransport'),
        passthrough_metadata: [{ kind: { host: {} }, name: 'tunnel' }],
        transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': type('envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer') } },
      },
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': type('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
        explicit_http_config: { http_protocol_options: {} },
        common_http_protocol_options: { idle_timeout: o.idleTimeout ?? '60s' },
      },
    },
  };
  if (o.outlierDetection !== null) {
    cluster.outlier_detection = o.outlierDetection ?? {
      consecutive_gateway_failure: 3,
      enforcing_consecutive_gateway_failure: 100,
      consecutive_5xx: 5,
      interval: '1s',
      base_ejection_time: '10s',
      max_ejection_percent: 50,
    };
  }
  const cb = o.circuitBreakers;
  if (cb || o.connectionsPerHost) {
    cluster.circuit_breakers = {
      ...(cb ? {
        thresholds: [{
          ...(cb.maxConnections !== undefined ? { max_connections: cb.maxConnections } : {}),
          ...(cb.maxPendingRequests !== undefined ? { max_pending_requests: cb.maxPendingRequests } : {}),
          ...(cb.maxRequests !== undefined ? { max_requests: cb.maxRequests } : {}),
        }],
      } : {}),
      ...(o.connectionsPerHost ? { per_host_thresholds: [{ max_connections: o.connectionsPerHost }] } : {}),
    };
  }
  return cluster;
}

/** Codecs whose replies pair with requests by position: their calls to one server must stay in order. */
export const ORDERED_CODECS: readonly string[] = ['redis'];

/**
 * Every cluster a per-request config names (routes, mirrors, default), RING_HASH where a route
 * hashes, one connection per endpoint for ordered codecs.
 */
export function perRequestClusters(plugin: PluginConfig, endpoints: Readonly<Record<string, readonly Endpoint[]>>,
  options: Readonly<Record<string, RoutedClusterOptions>> = {}, serverListenerName = SERVER_LISTENER): object[] {
  const routes = (plugin.routes ?? []) as readonly PerRequestRoute[];
  const names = new Set<string>();
  const hashed = new Set<string>();
  for (const r of routes) {
    for (const d of r.route) {
      names.add(d.cluster);
      if (r.hashKey) hashed.add(d.cluster);
    }
    if (r.mirror) names.add(r.mirror.cluster);
  }
  if (plugin.defaultCluster) names.add(plugin.defaultCluster);
  return [...names].map((n) => {
    const eps = endpoints[n];
    if (!eps?.length) throw new Error(`per-request mode: no endpoints for cluster "${n}"`);
    const ordered = ORDERED_CODECS.includes(plugin.codec) ? { connectionsPerHost: 1 } : {};
    return routedCluster(n, eps, { lbPolicy: hashed.has(n) ? 'RING_HASH' : undefined, serverListener: serverListenerName, ...ordered, ...options[n] });
  });
}

/** The bootstrap extension internal listeners need. */
export const INTERNAL_LISTENER_EXTENSION = {
  name: 'envoy.bootstrap.internal_listener',
  typed_config: { '@type': type('envoy.extensions.bootstrap.internal_listener.v3.InternalListener') },
};
