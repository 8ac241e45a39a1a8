// Per-request mode with real Apache Dubbo 3.3.5 peers: the calls of ONE consumer connection are
// split, balanced, hashed, timed out and policed each on its own; many calls in flight with
// out-of-order replies; heartbeats; oneway; a provider killed mid-run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt, startProvider } from '../peers/dubbo/index.mjs';
import { waitFor } from '../harness/index.mjs';
import { startProviders, stopProviders, dubboPerRequest, GREET } from './lib/dubbo-mesh.mjs';

let providers;

before(async () => {
  ensureBuilt();
  // v1 delays each call 0..3 ms so pipelined replies come back out of order.
  providers = await startProviders({ v1: { jitterMs: 3 }, v2: {}, v3: {} });
}, { timeout: 10 * 60_000 });

after(() => stopProviders(providers));

const JVM = { timeout: 180_000 };
const perRequest = (routes, extra = {}) => ({ codec: 'dubbo', mode: 'perRequest', routes, ...extra });

test('a 20/80 split acts per call: 2000 async calls, 64 in flight, on one connection, no mismatch', JVM, async (t) => {
  const plugin = perRequest([{ name: 'split', route: [{ cluster: 'v1', weight: 20 }, { cluster: 'v2', weight: 80 }] }]);
  const mesh = await dubboPerRequest(t, { plugin, providers });
  const sum = await mesh.consume({ async: true, calls: 2000, concurrency: 64, connections: 1, summary: true });
  t.diagnostic(`consumer: ${JSON.stringify(sum)}`);
  assert.equal(sum.ok, 2000, JSON.stringify(sum));
  assert.equal(sum.mismatches, 0);
  // Binomial(2000, 0.2): mean 400, sd 17.9; 4 sd either way.
  assert.ok(Math.abs(sum.servers.v1 - 400) <= 72, `v1 answered ${sum.servers.v1}`);
  assert.equal(sum.servers.v1 + sum.servers.v2, 2000);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'split', meltemi_status: 'reply' }), 2000);
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('calls are balanced over a cluster\'s providers, and a hash on an attachment pins them', JVM, async (t) => {
  const plugin = perRequest([
    { name: 'pinned', match: { attributes: { 'x-user': {} } }, hashKey: 'x-user', route: [{ cluster: 'pool' }] },
    { name: 'spread', route: [{ cluster: 'pool' }] },
  ]);
  const mesh = await dubboPerRequest(t, { plugin, providers, clusters: { pool: ['v1', 'v2', 'v3'] } });
  const [spread, alice, bob] = await Promise.all([
    mesh.consume({ async: true, calls: 300, concurrency: 8, connections: 1, summary: true }),
    mesh.consume({ async: true, calls: 100, concurrency: 8, connections: 1, summary: true, attachments: { 'x-user': 'alice' } }),
    mesh.consume({ async: true, calls: 100, concurrency: 8, connections: 1, summary: true, attachments: { 'x-user': 'bob' } }),
  ]);
  t.diagnostic(`spread ${JSON.stringify(spread.servers)} alice ${JSON.stringify(alice.servers)} bob ${JSON.stringify(bob.servers)}`);
  for (const v of ['v1', 'v2', 'v3']) assert.ok((spread.servers[v] ?? 0) >= 60, `${v} got ${spread.servers[v]} of 300`);
  assert.equal(Object.keys(alice.servers).length, 1, 'every call with x-user=alice reached one provider');
  assert.equal(Object.keys(bob.servers).length, 1);
  assert.equal(alice.ok + bob.ok + spread.ok, 500);
});

test('per call: authorization, rate limit and mutation act through the server role; denied calls get Dubbo errors', JVM, async (t) => {
  const plugin = perRequest([
    {
      name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'v1' }],
      authorization: { rules: [{ name: 'no-echo', action: 'DENY', match: { attributes: { method: { exact: 'echo' } } } }] },
    },
    {
      name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }],
      requestMutation: [{ key: 'tenant', value: 'acme' }],
      responseMutation: [{ key: 'x-served-by', value: 'meltemi' }],
      localRateLimit: { tokenBucket: { maxTokens: 10, tokensPerFill: 1, fillIntervalMs: 3600000 } },
    },
  ]);
  const mesh = await dubboPerRequest(t, { plugin, providers });
  const lines = await mesh.consume({ calls: 20, method: 'sayHello,echo', arg: 'p-{i}', attachments: { tenant: 'blue' } });
  const hellos = lines.filter((l) => l.method === 'sayHello');
  const echoes = lines.filter((l) => l.method === 'echo');
  for (const l of echoes) assert.match(l.error ?? '', /meltemi: request denied by authorization rule no-echo/, JSON.stringify(l));
  const ok = hellos.filter((l) => l.ok);
  assert.equal(ok.length, 10, 'ten tokens, ten calls');
  for (const l of ok) {
    assert.equal(l.server, 'v2');
    assert.equal(l.attachments.tenant, 'acme', 'requestMutation reached the provider');
    assert.equal(l.responseAttachments?.['x-served-by'], 'meltemi', 'responseMutation reached the consumer');
  }
  for (const l of hellos.filter((x) => !x.ok)) assert.match(l.error, /rate limit exceeded on route hello/);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_authz_denied_total'), 10);
  assert.equal(s.get('meltemi_ratelimited_total'), hellos.filter((x) => !x.ok).length);
});

test('a route timeout fails that call with a Dubbo timeout; heartbeats on the idle connection are answered', JVM, async (t) => {
  const slow = await startProvider({ name: 'slow', jitterMs: 1500 });
  t.after(() => slow.stop());
  const plugin = perRequest([{ name: 'slow', timeoutMs: 200, route: [{ cluster: 'slow' }] }]);
  const mesh = await dubboPerRequest(t, { plugin, providers: { slow } });
  const lines = await mesh.consume({ calls: 6, rounds: 2, idleMs: 3500, heartbeatMs: 1000, arg: 't-{i}' });
  const timedOut = lines.filter((l) => !l.ok);
  for (const l of timedOut) {
    assert.match(l.error, /upstream answered 504/, JSON.stringify(l));
    assert.ok(l.latencyMs < 1000, `answered after ${l.latencyMs} ms`);
  }
  assert.ok(timedOut.length >= 6, `${timedOut.length} of 12 calls timed out`);
  const s = await mesh.envoy.metrics();
  assert.ok(s.get('meltemi_heartbeat_total') >= 1, 'the consumer\'s heartbeat was answered');
});

test('oneway calls reach the provider and end their streams; calls after them are answered', JVM, async (t) => {
  const plugin = perRequest([{ name: 'all', route: [{ cluster: 'v2' }] }]);
  const mesh = await dubboPerRequest(t, { plugin, providers });
  await mesh.consume({ oneway: true, calls: 50, arg: 'o-{i}' });
  const after = await mesh.consume({ calls: 3 });
  assert.ok(after.every((l) => l.ok));
  // A oneway call's stream ends when the probe sent after it is answered, independently of the
  // calls after it: wait for the last of them, not for a fixed time.
  await waitFor(async () => (await mesh.envoy.value('meltemi_active_requests')) === 0, { message: 'every oneway stream ended' });
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'oneway' }), 50);
});

test('a provider killed mid-run: calls in flight may fail with a Dubbo error, later calls go to the other, nothing hangs', JVM, async (t) => {
  const doomed = await startProvider({ name: 'doomed' });
  t.after(() => doomed.stop());
  const plugin = perRequest([{ name: 'pool', route: [{ cluster: 'pool' }] }]);
  const mesh = await dubboPerRequest(t, { plugin, providers: { v2: providers.v2, doomed }, clusters: { pool: ['v2', 'doomed'] } });
  const run = mesh.consume({ async: true, duration: '6s', concurrency: 16, connections: 1, summary: true, timeoutMs: 3000 });
  await waitFor(async () => (await mesh.metric('meltemi_responses_total', { meltemi_route: 'pool', meltemi_status: 'reply' })) > 500, { timeout: 60_000, message: 'calls flowing' });
  await doomed.stop();
  const sum = await run;
  t.diagnostic(`consumer: ${JSON.stringify(sum)}`);
  assert.equal(sum.mismatches, 0);
  assert.ok(sum.errors <= 64, `${sum.errors} calls failed`);
  assert.ok(sum.ok > 1000);
  assert.ok(sum.servers.v2 > sum.servers.doomed, 'after the kill, v2 answered');
  const s = await mesh.envoy.metrics();
  assert.equal(s.value('meltemi_active_requests'), 0, 'nothing left hanging');
});
