// A global rate limit in per-request mode: Envoy's own rate limit filter asks the real rate limit
// service (github.com/envoyproxy/ratelimit, built by test/ratelimit/fetch-ratelimit.sh, backed by a
// real redis-server) for every call; a call over the limit gets the protocol's rate-limit error and
// the connection stays open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEnvoy, perRequestBootstrap, freePort, waitFor, repoPath, staticClusters } from '../harness/index.mjs';
import { registerChild, unregisterChild } from '../harness/cleanup.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { startRedis } from './lib/redis.mjs';

/** The real rate limit service with `config` (its YAML), on free loopback ports; stopped with `t`. */
async function startRateLimit(t, redisPort, config) {
  const bin = execFileSync('bash', [repoPath('test/ratelimit/fetch-ratelimit.sh')], { encoding: 'utf8' }).trim().split('\n').pop();
  const root = mkdtempSync(join(tmpdir(), 'meltemi-rls-'));
  mkdirSync(join(root, 'ratelimit', 'config'), { recursive: true });
  writeFileSync(join(root, 'ratelimit', 'config', 'meltemi.yaml'), config);
  const [grpc, http, debug] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(bin, [], {
    detached: true, stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH, USE_STATSD: 'false', LOG_LEVEL: 'warn', REDIS_SOCKET_TYPE: 'tcp', REDIS_URL: `127.0.0.1:${redisPort}`,
      RUNTIME_ROOT: root, RUNTIME_SUBDIRECTORY: 'ratelimit', RUNTIME_WATCH_ROOT: 'false', RUNTIME_IGNOREDOTFILES: 'true',
      GRPC_HOST: '127.0.0.1', GRPC_PORT: String(grpc), HOST: '127.0.0.1', PORT: String(http), DEBUG_HOST: '127.0.0.1', DEBUG_PORT: String(debug),
    },
  });
  registerChild(child.pid);
  let stderr = '';
  child.stderr.on('data', (c) => { stderr += c; });
  const exited = new Promise((r) => child.once('exit', r));
  t.after(async () => { try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ } await exited; unregisterChild(child.pid); });
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`ratelimit exited: ${stderr}`);
    const r = await fetch(`http://127.0.0.1:${http}/healthcheck`).catch(() => null);
    return r?.status === 200;
  }, { timeout: 20_000, message: 'the rate limit service to be healthy' });
  return { grpc };
}

test('a global rate limit through the real rate limit service answers calls over the limit with the protocol\'s error', async (t) => {
  const redis = await startRedis(t);
  const rls = await startRateLimit(t, redis.port, [
    'domain: meltemi',
    'descriptors:',
    '  - key: method',
    '    value: sayHello',
    '    rate_limit: { unit: hour, requests_per_unit: 3 }',
  ].join('\n') + '\n');
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
