// One Envoy, three listeners (thrift, dubbo, redis), each running build/meltemi.wasm (its own VM
// and statPrefix) in front of tcp_proxy, over real peers. Used by test/e2e/faults.test.mjs (two
// workers under a mixed load) and bench/soak.mjs.
import { meltemiFilterConfig, tcpProxyFilter, staticClusters, socketAddress, statsConfig } from '../../harness/index.mjs';

export const PROTOCOLS = ['thrift', 'dubbo', 'redis'];

/** Plugin configs for the three listeners; clusters are `<protocol>-v1` / `<protocol>-v2`. */
export function mixedPlugins() {
  return {
    thrift: {
      codec: 'thrift', statPrefix: 'thrift', maxFrameBytes: 1048576, firstRequestTimeoutMs: 3000,
      routes: [
        { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'thrift-v1', weight: 50 }, { cluster: 'thrift-v2', weight: 50 }] },
        { name: 'rest', route: [{ cluster: 'thrift-v1' }] },
      ],
    },
    dubbo: {
      codec: 'dubbo', statPrefix: 'dubbo', maxFrameBytes: 1048576, firstRequestTimeoutMs: 3000,
      routes: [
        { name: 'greet', match: { attributes: { interface: { exact: 'dev.meltemi.demo.GreetService' } } }, route: [{ cluster: 'dubbo-v1', weight: 50 }, { cluster: 'dubbo-v2', weight: 50 }] },
        { name: 'rest', route: [{ cluster: 'dubbo-v1' }] },
      ],
    },
    redis: {
      codec: 'redis', statPrefix: 'redis', maxFrameBytes: 1048576, firstRequestTimeoutMs: 3000,
      routes: [
        { name: 'sessions', match: { attributes: { key: { prefix: 'session:' } } }, route: [{ cluster: 'redis-v2' }] },
        { name: 'rest', route: [{ cluster: 'redis-v1' }] },
      ],
    },
  };
}

/**
 * @param {{ports: Record<string, {v1: number, v2: number}>, plugins?: object}} o  upstream ports per protocol
 * Listener stat prefixes are the protocol names (listener.<protocol>.…); connections are spread
 * evenly over the workers (exact_balance), so a test can require every worker to take some.
 */
export function mixedBootstrap({ ports, plugins = mixedPlugins() }) {
  const clusters = {};
  const listeners = PROTOCOLS.map((p) => {
    clusters[`${p}-v1`] = [{ port: ports[p].v1 }];
    clusters[`${p}-v2`] = [{ port: ports[p].v2 }];
    return {
      name: p,
      stat_prefix: p,
      address: socketAddress(0),
      enable_reuse_port: false,
      connection_balance_config: { exact_balance: {} },
      filter_chains: [{ filters: [
        meltemiFilterConfig(plugins[p], { vmId: p }),
        tcpProxyFilter({ cluster: `${p}-v1`, statPrefix: p, maxEarlyDataBytes: 65536 }),
      ] }],
    };
  });
  return {
    admin: { address: socketAddress(0) },
    stats_config: statsConfig(),
    static_resources: { listeners, clusters: staticClusters(clusters) },
  };
}
