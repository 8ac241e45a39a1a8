// A small Dubbo mesh for end-to-end tests: real Apache Dubbo 3.3.5 providers (test/peers/dubbo/)
// behind the real Envoy running build/meltemi.wasm, and the real Dubbo consumer calling through
// Envoy's listener with a direct URL.
//
// JVM startups are the cost: start the providers once per test file (before/after hooks) and give
// each test its own Envoy (cheap) with its own plugin config.
import { startEnvoy, meltemiBootstrap, perRequestBootstrap, tcpProxyBootstrap } from '../../harness/index.mjs';
import { startProvider, runConsumer } from '../../peers/dubbo/index.mjs';

export const GREET = 'dev.meltemi.demo.GreetService';
export const ORDER = 'dev.meltemi.demo.OrderService';

/** Starts providers in parallel: {v1: opts, v2: opts} → {v1: provider, v2: provider}. */
export async function startProviders(specs) {
  const entries = await Promise.allSettled(Object.entries(specs).map(async ([name, o]) => [name, await startProvider({ name, ...o })]));
  const started = Object.fromEntries(entries.filter((e) => e.status === 'fulfilled').map((e) => e.value));
  const failed = entries.find((e) => e.status === 'rejected');
  if (failed) {
    await stopProviders(started);
    throw failed.reason;
  }
  return started;
}

export async function stopProviders(providers) {
  await Promise.all(Object.values(providers ?? {}).map((p) => p.stop()));
}

/**
 * An Envoy with the Meltemi filter (or, with `plugin: null`, plain tcp_proxy to `cluster`) in
 * front of already started providers; clusters are named after the providers. Stopped when the
 * test ends.
 * @param {import('node:test').TestContext} t
 * @param {object} o
 * @param {object|null} o.plugin   plugin config, or null for the tcp_proxy baseline
 * @param {Record<string, {port: number}>} o.providers
 * @param {string} [o.cluster]     tcp_proxy baseline: the cluster to forward to
 */
export async function dubboEnvoy(t, { plugin, providers, cluster, concurrency = 1, logLevel = 'warning', componentLogLevel = 'wasm:info' }) {
  const clusters = Object.fromEntries(Object.entries(providers).map(([n, p]) => [n, [{ port: p.port }]]));
  const config = plugin === null
    ? tcpProxyBootstrap({ clusters, cluster })
    : meltemiBootstrap({ plugin, clusters });
  return meshAround(t, await startEnvoy({ t, concurrency, logLevel, componentLogLevel, config }), plugin === null ? 'tcp' : 'meltemi');
}

/**
 * Per-request mode (plugin.mode "perRequest") in front of started providers: `clusters` maps a
 * cluster name to provider names (several: the router balances each call over them); by default
 * one cluster per provider, named after it.
 */
export async function dubboPerRequest(t, { plugin, providers, clusters, clusterOptions, concurrency = 1, logLevel = 'warning', componentLogLevel = 'wasm:info' }) {
  const names = clusters ?? Object.fromEntries(Object.keys(providers).map((n) => [n, [n]]));
  const endpoints = Object.fromEntries(Object.entries(names).map(([c, ps]) => [c, ps.map((p) => ({ port: providers[p].port }))]));
  const config = await perRequestBootstrap({ plugin, clusters: endpoints, clusterOptions });
  return meshAround(t, await startEnvoy({ t, concurrency, logLevel, componentLogLevel, config }), 'meltemi');
}

async function meshAround(t, envoy, listener) {
  const port = await envoy.listenerPort(listener);
  const url = `dubbo://127.0.0.1:${port}`;
  return {
    envoy,
    port,
    url,
    /** Runs the real consumer against Envoy's listener (see test/peers/dubbo/index.mjs runConsumer). */
    consume(opts, run) {
      return runConsumer({ url, ...opts }, run);
    },
    /**
     * A Meltemi metric from /stats/prometheus (the sum of the series with `labels`); undefined when
     * none was defined, as a labelled series is until first use (never read as 0: see value()).
     */
    async metric(name, labels = {}) {
      return envoy.metric(name, labels);
    },
    /** metric(), for the filter's unlabelled metrics (always defined): throws when there is none. */
    async value(name, labels = {}) {
      return envoy.value(name, labels);
    },
  };
}

/** Per-operation counter: [metric name, labels] for Metrics.get(...opMetric(...)). */
export function opMetric(iface, method, dir = 'request', kind = 'call') {
  const operation = `${iface}/${method}`;
  return dir === 'request'
    ? ['meltemi_operation_requests_total', { meltemi_operation: operation, meltemi_kind: kind }]
    : ['meltemi_operation_responses_total', { meltemi_operation: operation, meltemi_status: kind }];
}

/** Reads a Dubbo wire capture from test/fixtures/dubbo/ (hex text) as bytes. */
export async function fixture(name) {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(new URL(`../../fixtures/dubbo/${name}`, import.meta.url), 'utf8');
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}
