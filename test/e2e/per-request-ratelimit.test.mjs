// A global rate limit in per-request mode: Envoy's own rate limit filter asks the real rate limit
// service (github.com/envoyproxy/ratelimit, built by test/ratelimit/fetch-ratelimit.sh, backed by a
// real redis-server) for every call; a call over the limit gets the protocol's rate-limit error and
// the connection stays open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvoy, perRequestBootstrap, staticClusters } from '../harness/index.mjs';
import { startRateLimit, hourlyLimit } from '../ratelimit/service.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { startRedis } from './lib/redis.mjs';

test('a global rate limit through the real rate limit service answers calls over the limit with the protocol\'s error', async (t) => {
  const redis = await startRedis(t);
  const rls = await startRateLimit(t, redis.port, hourlyLimit({ key: 'method', value: 'sayHello', requests: 3 }));
  const app = await startThriftServer({ name: 'v1' });
  t.after(() => app.stop());
  const plugin = {
    codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'v1' }] }],
    globalRateLimit: { domain: 'meltemi', rateLimitService: 'ratelimit', requestTimeoutMs: 2000, descriptors: [{ property: 'method', descriptorKey: 'method' }] },
  };
  const rlsCluster = staticClusters({ ratelimit: [{ port: rls.grpc }] })[0];
  rlsCluster.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin, clusters: { v1: [{ port: app.port }] }, extraClusters: [rlsCluster] }),
  });
  const c = await thriftClient({ port: await envoy.listenerPort('meltemi') });
  t.after(() => c.close());
  const hellos = [];
  for (let i = 0; i < 5; i++) hellos.push(await c.sayHello(`h${i}`).then((v) => v, (e) => e));
  assert.deepEqual(hellos.slice(0, 3), ['v1: hello h0', 'v1: hello h1', 'v1: hello h2']);
  for (const e of hellos.slice(3)) {
    assert.ok(e instanceof Error, `over the limit: ${e}`);
    assert.match(e.message, /meltemi: upstream answered 429/);
  }
  // Calls the service has no descriptor for are not limited, and the connection is still open.
  for (let i = 0; i < 5; i++) assert.equal(await c.echo(`e${i}`), `e${i}`);
  assert.equal(c.isClosed, false);
  const s = await envoy.stats();
  assert.equal(s.get('cluster.v1.ratelimit.over_limit'), 2);
  assert.equal(s.get('cluster.v1.ratelimit.ok'), 8);
});
