// Per-request mode across two "sidecars", as in a mesh: the client's Envoy (client role + router)
// sends each call over a real socket to the server's Envoy listener (server role + tcp_proxy to
// the app), which also serves clients that speak the protocol themselves (outside the mesh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvoy, freePort, staticClusters, socketAddress, repoPath, statsConfig } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';

test('a server-side listener with the server role takes routed calls over a real socket and passes raw Thrift clients through', async (t) => {
  const pr = await import('../../dist/controller/per-request.mjs');
  const app = await startThriftServer({ name: 'app' });
  t.after(() => app.stop());
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'server-sidecar' }] }] };
  const wasm = repoPath('build/meltemi.wasm');
  const inbound = await freePort();
  const sidecarCluster = staticClusters({ 'server-sidecar': [{ port: inbound }] })[0];
  sidecarCluster.typed_extension_protocol_options = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http_protocol_options: {} },
    },
  };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: {
      stats_config: statsConfig(),
      static_resources: {
        listeners: [
          {
            name: 'client-sidecar', address: socketAddress(0),
            filter_chains: [{ filters: [pr.wasmFilter(pr.roleConfig(plugin, 'client'), wasm), pr.connectionManager(plugin)] }],
          },
          {
            name: 'server-sidecar', address: socketAddress(inbound),
            filter_chains: [{ filters: [
              pr.wasmFilter(pr.roleConfig(plugin, 'server'), wasm),
              { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'inbound', cluster: 'app' } },
            ] }],
          },
        ],
        clusters: [sidecarCluster, ...staticClusters({ app: [{ port: app.port }] })],
      },
    },
  });
  const viaMesh = await thriftClient({ port: await envoy.listenerPort('client-sidecar') });
  t.after(() => viaMesh.close());
  const direct = await thriftClient({ port: inbound });
  t.after(() => direct.close());
  assert.equal(await viaMesh.sayHello('mesh'), 'app: hello mesh');
  assert.equal(await direct.sayHello('outside'), 'app: hello outside', 'a raw Thrift client passes through the server role');
  await direct.ping('oneway outside');
  assert.equal(await direct.echo('again'), 'again');
  assert.equal(await viaMesh.echo('again'), 'again');
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'call' }), 2, 'the routed calls were handled as calls');
  assert.equal(s.get('meltemi_out_of_scope_total'), 1, 'the raw connection was passed through');
});

test('a service-wide rate limit in the server role holds once per server, whatever the number of client sidecars', async (t) => {
  const pr = await import('../../dist/controller/per-request.mjs');
  const app = await startThriftServer({ name: 'app' });
  t.after(() => app.stop());
  const wasm = repoPath('build/meltemi.wasm');
  const plugin = {
    codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'server-sidecar' }] }],
    localRateLimit: { tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 3_600_000 } },
  };
  const inbound = await freePort();
  const http1 = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http_protocol_options: {} } } };
  await startEnvoy({
    t, logLevel: 'warning',
    config: { static_resources: {
      listeners: [{ name: 'server-sidecar', address: socketAddress(inbound), filter_chains: [{ filters: [
        pr.wasmFilter(pr.roleConfig(plugin, 'server'), wasm),
        { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'inbound', cluster: 'app' } },
      ] }] }],
      clusters: staticClusters({ app: [{ port: app.port }] }),
    } },
  });
  // Two clients, each behind its own sidecar (its own Envoy, its own Wasm VM).
  const clientSidecar = async () => {
    const cluster = { ...staticClusters({ 'server-sidecar': [{ port: inbound }] })[0], typed_extension_protocol_options: http1 };
    const e = await startEnvoy({ t, logLevel: 'warning', config: { static_resources: {
      listeners: [{ name: 'client', address: socketAddress(0), filter_chains: [{ filters: [pr.wasmFilter(pr.roleConfig(plugin, 'client'), wasm), pr.connectionManager(plugin)] }] }],
      clusters: [cluster],
    } } });
    const c = await thriftClient({ port: await e.listenerPort('client') });
    t.after(() => c.close());
    return c;
  };
  const clients = [await clientSidecar(), await clientSidecar()];
  const results = [];
  for (let i = 0; i < 6; i++) for (const c of clients) results.push(await c.sayHello(`r${i}`).then(() => 'ok', (e) => e.message));
  assert.equal(results.filter((r) => r === 'ok').length, 5, `${JSON.stringify(results)}`);
  for (const r of results.filter((x) => x !== 'ok')) assert.equal(r, 'meltemi: service rate limit exceeded');
});
