// Dubbo through the real Envoy and the real Meltemi filter, with real Apache Dubbo 3.3.5 peers
// (test/peers/dubbo/): routing by interface, attachment, version and group; attachment mutation of
// requests as the provider sees it and of responses as the consumer sees it; heartbeats; long
// pipelined runs; bad bytes; policies answered locally with Dubbo errors; and a first calls/s figure
// against plain tcp_proxy.
//
// JVM startups dominate the cost: the two providers are started once for the whole file, every
// test gets its own Envoy (cheap) and makes several calls per consumer process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt } from '../peers/dubbo/index.mjs';
import { tcpExchange, tcpConnect, waitFor } from '../harness/index.mjs';
import { startProviders, stopProviders, dubboEnvoy, opMetric, fixture, GREET, ORDER } from './lib/dubbo-mesh.mjs';

/**
 * v1 adds 0..3 ms jitter per call so pipelined replies come back out of order, and sets two
 * response attachments of its own (for responseMutation to overwrite one and leave the other).
 */
let providers;

before(async () => {
  ensureBuilt(); // no-op when the jar is fresh
  providers = await startProviders({
    v1: { jitterMs: 3, group: ',gold', replyAttachments: { 'x-served-by': 'v1', 'x-shard': '7' } },
    v2: { version: '1.0.0,2.0.0' },
  });
}, { timeout: 10 * 60_000 });

after(() => stopProviders(providers));

const JVM = { timeout: 120_000 };

/** The text of the error a Dubbo consumer raises for an error status carrying `message`. */
function remotingError(message) {
  return new RegExp(`^org\\.apache\\.dubbo\\.rpc\\.RpcException: Failed to invoke the method \\w+ .* cause: org\\.apache\\.dubbo\\.remoting\\.RemotingException: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

/** Runs the task functions, at most `n` at a time; resolves with their results in order. */
async function inPool(n, tasks) {
  const out = new Array(tasks.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, async () => {
    while (next < tasks.length) {
      const k = next++;
      out[k] = await tasks[k]();
    }
  }));
  return out;
}

test('routes each connection by interface, attachment, version and group; the provider that answers says so', JVM, async (t) => {
  const plugin = {
    codec: 'dubbo',
    routes: [
      { name: 'gold-group', match: { attributes: { group: { exact: 'gold' } } }, route: [{ cluster: 'v1' }] },
      { name: 'canary', match: { attributes: { 'x-canary': { exact: 'yes' } } }, route: [{ cluster: 'v2' }] },
      { name: 'orders', match: { attributes: { interface: { exact: ORDER } } }, route: [{ cluster: 'v2' }] },
      { name: 'version-2', match: { attributes: { version: { regex: '2\\.[0-9.]+' } } }, route: [{ cluster: 'v2' }] },
      { name: 'greet', match: { attributes: { interface: { exact: GREET }, method: { prefix: 'say' } } }, route: [{ cluster: 'v1' }] },
    ],
  };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const order = { interface: ORDER, method: 'getOrder' };
  const runs = {
    greet: {},
    orders: order,
    canary: { attachments: { 'x-canary': 'yes' } },
    'version-2': { version: '2.0.0' },
    'gold-group': { ...order, group: 'gold' }, // the group route comes before the interface route
  };
  const expected = { greet: 'v1', orders: 'v2', canary: 'v2', 'version-2': 'v2', 'gold-group': 'v1' };
  // Three consumer JVMs at a time: the machine has 2 cores shared with the other test files.
  const results = Object.fromEntries(await inPool(3, Object.entries(runs).map(([route, o]) =>
    async () => [route, await mesh.consume({ calls: 3, arg: `${route}-{i}`, ...o })])));

  for (const [route, lines] of Object.entries(results)) {
    assert.equal(lines.length, 3, route);
    for (const l of lines) {
      assert.equal(l.ok, true, `${route}: ${JSON.stringify(l)}`);
      assert.equal(l.match, true, `${route}: reply belongs to its request`);
      assert.equal(l.server, expected[route], `${route}: answered by ${l.server}`);
    }
  }
  assert.equal(results.canary[0].attachments['x-canary'], 'yes');
  assert.equal(results['version-2'][0].version, '2.0.0');
  assert.equal(results['gold-group'][0].group, 'gold');
  assert.equal(results['gold-group'][0].reply, 'order gold-group-0');

  const s = await mesh.envoy.metrics();
  for (const route of Object.keys(runs)) {
    assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: route }), 1, route);
    assert.equal(s.get('meltemi_requests_total', { meltemi_route: route, meltemi_kind: 'call' }), 3, route);
    assert.equal(s.get('meltemi_responses_total', { meltemi_route: route, meltemi_status: 'reply' }), 3, route);
  }
  assert.equal(s.get(...opMetric(GREET, 'sayHello')), 9);
  assert.equal(s.get(...opMetric(GREET, 'sayHello', 'response', 'reply')), 9);
  assert.equal(s.get(...opMetric(ORDER, 'getOrder')), 6);
  assert.equal(s.get(...opMetric(ORDER, 'getOrder', 'response', 'reply')), 6);
  assert.equal(s.value('meltemi_no_route_total'), 0);
  assert.equal(s.value('meltemi_route_mismatch_total'), 0);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('requestMutation adds and overwrites attachments; the provider receives them on every pipelined call', JVM, async (t) => {
  const plugin = {
    codec: 'dubbo',
    routes: [{
      name: 'mutate',
      match: { attributes: { interface: { exact: GREET } } },
      route: [{ cluster: 'v1' }],
      requestMutation: [{ key: 'x-meltemi-route', value: 'canary' }, { key: 'tenant', value: 'acme' }],
    }],
  };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const n = 200;
  const lines = await mesh.consume({
    async: true, calls: n, concurrency: 16, arg: 'm-{i}',
    attachments: { tenant: 'blue', 'x-user': 'alice' },
  });
  assert.equal(lines.length, n);
  for (const l of lines) {
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.match, true);
    assert.equal(l.server, 'v1');
    assert.equal(l.attachments.tenant, 'acme', 'the consumer\'s tenant=blue was overwritten');
    assert.equal(l.attachments['x-meltemi-route'], 'canary', 'added by the route');
    assert.equal(l.attachments['x-user'], 'alice', 'untouched attachments pass as they were');
    // The framework's own attachments (read off the wire by the provider) survive the rewrite.
    assert.equal(l.invocationAttachments.path, GREET);
    assert.equal(l.invocationAttachments.interface, GREET);
    assert.equal(l.invocationAttachments.version, '1.0.0');
    assert.equal(l.invocationAttachments.tenant, 'acme');
  }
  t.diagnostic(`provider saw attachments ${JSON.stringify(lines[0].attachments)}`);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'mutate', meltemi_status: 'reply' }), n);
  assert.equal(s.value('meltemi_mutation_failed_total'), 0);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('responseMutation adds and overwrites response attachments; the consumer sees them on every call, on its own route only', JVM, async (t) => {
  const plugin = {
    codec: 'dubbo',
    routes: [
      {
        name: 'mutate', match: { attributes: { interface: { exact: GREET } } }, route: [{ cluster: 'v1' }],
        responseMutation: [{ key: 'x-served-by', value: 'meltemi' }, { key: 'x-meltemi-route', value: 'mutate' }],
      },
      { name: 'plain', match: { attributes: { interface: { exact: ORDER } } }, route: [{ cluster: 'v1' }] },
    ],
  };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  // Sync calls from four threads over the consumer's one connection (the consumer reports
  // response attachments for sync calls only).
  const n = 40;
  const [mutated, plain] = await Promise.all([
    mesh.consume({ calls: n, concurrency: 4, arg: 'r-{i}' }),
    mesh.consume({ interface: ORDER, method: 'getOrder', calls: 3 }),
  ]);
  assert.equal(mutated.length, n);
  for (const l of mutated) {
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.match, true);
    assert.equal(l.server, 'v1');
    assert.equal(l.responseAttachments?.['x-served-by'], 'meltemi', `the provider's x-served-by=v1 was overwritten: ${JSON.stringify(l.responseAttachments)}`);
    assert.equal(l.responseAttachments['x-meltemi-route'], 'mutate', 'added by the route');
    assert.equal(l.responseAttachments['x-shard'], '7', 'the provider\'s other attachment passes as it was');
  }
  t.diagnostic(`consumer saw response attachments ${JSON.stringify(mutated[0].responseAttachments)}`);
  // The same provider's answers on a route without responseMutation reach the consumer untouched.
  assert.equal(plain.length, 3);
  for (const l of plain) {
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.responseAttachments?.['x-served-by'], 'v1', JSON.stringify(l.responseAttachments));
    assert.equal(l.responseAttachments['x-meltemi-route'], undefined);
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'mutate', meltemi_status: 'reply' }), n);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'plain', meltemi_status: 'reply' }), 3);
  assert.equal(s.value('meltemi_mutation_failed_total'), 0);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('heartbeats on an idle connection pass through; calls before and after succeed on the same connection', JVM, async (t) => {
  const plugin = { codec: 'dubbo', routes: [{ name: 'all', route: [{ cluster: 'v1' }] }] };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const lines = await mesh.consume({ calls: 3, rounds: 2, idleMs: 3500, heartbeatMs: 1000, arg: 'hb-{i}' });
  assert.equal(lines.length, 6);
  for (const l of lines) {
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.match, true);
    assert.equal(l.server, 'v1');
  }
  assert.equal(new Set(lines.map((l) => l.remote)).size, 1, 'one upstream connection before and after the idle time');
  const s = await mesh.envoy.metrics();
  const heartbeats = s.get('meltemi_heartbeat_total');
  t.diagnostic(`heartbeat frames counted: ${heartbeats}`);
  assert.ok(heartbeats >= 2, `expected a heartbeat request and its answer, got ${heartbeats}`);
  // Per route too: keep-alives from the consumer as request.heartbeat, the provider's as response.heartbeat.
  const fromClient = s.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'heartbeat' }) ?? 0;
  const fromServer = s.get('meltemi_responses_total', { meltemi_route: 'all', meltemi_status: 'heartbeat' }) ?? 0;
  t.diagnostic(`route.all heartbeats: request ${fromClient}, response ${fromServer}`);
  assert.ok(fromClient >= 1, 'route.all.request.heartbeat counts the consumer\'s keep-alives');
  assert.ok(fromServer >= 1, 'route.all.response.heartbeat counts the provider\'s answers');
  assert.equal(fromClient + fromServer, heartbeats, 'every heartbeat on the routed connection is counted on its route');
  assert.equal(s.get('meltemi_connections_total'), 1);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'call' }), 6);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'all', meltemi_status: 'reply' }), 6);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('2000 pipelined async calls on one connection: every response matched to its own request', JVM, async (t) => {
  const plugin = { codec: 'dubbo', routes: [{ name: 'all', route: [{ cluster: 'v1' }] }] };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const sum = await mesh.consume({ async: true, calls: 2000, concurrency: 64, connections: 1, summary: true });
  t.diagnostic(`consumer: ${JSON.stringify(sum)}`);
  assert.equal(sum.calls, 2000);
  assert.equal(sum.ok, 2000, JSON.stringify(sum));
  assert.equal(sum.errors, 0);
  assert.equal(sum.mismatches, 0);
  assert.deepEqual(sum.servers, { v1: 2000 });
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_connections_total'), 1);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'call' }), 2000);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'all', meltemi_status: 'reply' }), 2000);
  assert.equal(s.get(...opMetric(GREET, 'sayHello', 'response', 'reply')), 2000);
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
  assert.equal(s.value('meltemi_untracked_request_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('malformed bytes close only their own socket while a concurrent consumer\'s calls all succeed', JVM, async (t) => {
  const plugin = { codec: 'dubbo', routes: [{ name: 'all', route: [{ cluster: 'v1' }] }] };
  const mesh = await dubboEnvoy(t, { plugin, providers, concurrency: 2 });
  let consumerDone = false;
  const consumer = mesh.consume({ duration: '4s', concurrency: 2, summary: true }).finally(() => { consumerDone = true; });
  await waitFor(async () => (await mesh.metric('meltemi_responses_total', { meltemi_route: 'all', meltemi_status: 'reply' })) > 0, { timeout: 60_000, message: 'consumer calls flowing' });

  const http = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const garbage = await Promise.all(Array.from({ length: 5 }, () => tcpExchange({ port: mesh.port, data: http, timeout: 5000 })));
  for (const r of garbage) {
    assert.equal(r.closedByPeer, true, 'Envoy closed the garbage connection');
    assert.equal(r.timedOut, false);
    assert.equal(r.data.length, 0);
  }
  // A real request (captured from Dubbo 3.3.5) and then garbage on the same socket: the request is
  // answered by the provider, then the socket is closed.
  const request = await fixture('request-attachments.hex');
  const raw = await tcpConnect({ port: mesh.port });
  t.after(() => raw.close());
  raw.write(Buffer.concat([request, http]));
  const header = await raw.read(16, 10_000);
  assert.equal(header.readUInt16BE(0), 0xdabb);
  assert.equal(header[3], 20, 'status OK');
  assert.deepEqual(header.subarray(4, 12), request.subarray(4, 12), 'the answer carries the request id');
  const body = await raw.read(header.readUInt32BE(12), 10_000);
  assert.match(body.toString('latin1'), /"server":"v1","reply":"hello alice"/);
  assert.equal(await raw.waitForClose(15_000), true, 'closed after the answer');
  assert.equal(consumerDone, false, 'the bad sockets came and went while the consumer was calling');

  const sum = await consumer;
  t.diagnostic(`consumer: ${JSON.stringify(sum)}`);
  assert.ok(sum.calls > 0);
  assert.equal(sum.errors, 0, JSON.stringify(sum));
  assert.equal(sum.mismatches, 0);
  assert.equal(sum.ok, sum.calls);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_decode_error_total'), 6);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'all', meltemi_status: 'reply' }), sum.calls + 1);
  await mesh.envoy.waitForLog(/bad first request frame: dubbo: bad magic 0x4745; closing connection/);
  await mesh.envoy.waitForLog(/bad request frame: dubbo: bad magic 0x4745; closing connection/);
});

test('policies answer with Dubbo errors: deny one method and allow the next on one connection, fault abort, rate limit', JVM, async (t) => {
  const abortMessage = 'meltemi-e2e: injected abort';
  const plugin = {
    codec: 'dubbo',
    routes: [
      {
        name: 'orders-abort', match: { attributes: { interface: { exact: ORDER } } }, route: [{ cluster: 'v2' }],
        fault: { abort: { percentage: 100, message: abortMessage } },
      },
      {
        name: 'limited', match: { attributes: { 'x-limit': { exact: 'yes' } } }, route: [{ cluster: 'v2' }],
        localRateLimit: { tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 1000 } },
      },
      {
        name: 'guarded', match: { attributes: { interface: { exact: GREET } } }, route: [{ cluster: 'v1' }],
        authorization: { rules: [{ name: 'no-hello', action: 'DENY', match: { attributes: { method: { exact: 'sayHello' } } } }] },
      },
    ],
  };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const [denyLines, abortLines, rlLines] = await Promise.all([
    mesh.consume({ method: 'sayHello,echo', calls: 6, arg: 'd-{i}' }),
    mesh.consume({ interface: ORDER, method: 'getOrder', calls: 3 }),
    mesh.consume({ calls: 20, attachments: { 'x-limit': 'yes' } }),
  ]);

  // Deny: sayHello (even calls) gets the error, echo (odd calls) right after it on the same
  // connection succeeds.
  assert.equal(denyLines.length, 6);
  for (const l of denyLines) {
    if (l.method === 'sayHello') {
      assert.equal(l.ok, false, JSON.stringify(l));
      assert.match(l.error, remotingError('meltemi: request denied by authorization rule no-hello'));
    } else {
      assert.equal(l.ok, true, JSON.stringify(l));
      assert.equal(l.match, true);
    }
  }
  assert.deepEqual(denyLines.map((l) => l.ok), [false, true, false, true, false, true]);
  t.diagnostic(`deny: ${denyLines[0].error}`);

  // Abort: every call on the route fails with the configured message; the connection survives it.
  assert.equal(abortLines.length, 3);
  for (const l of abortLines) {
    assert.equal(l.ok, false, JSON.stringify(l));
    assert.match(l.error, remotingError(abortMessage));
  }
  t.diagnostic(`abort: ${abortLines[0].error}`);

  // Rate limit: the bucket starts full (5), so the first 5 pass; the rest within the same second
  // are rejected. The calls are sequential: at most 5 more pass per second they span.
  assert.equal(rlLines.length, 20);
  for (const l of rlLines.slice(0, 5)) assert.equal(l.ok, true, JSON.stringify(l));
  const rejected = rlLines.filter((l) => !l.ok);
  for (const l of rejected) assert.match(l.error, remotingError('meltemi: rate limit exceeded on route limited'));
  const spanMs = rlLines.slice(1).reduce((a, l) => a + l.latencyMs, 0);
  const maxOk = 5 * (2 + Math.floor(spanMs / 1000));
  assert.ok(rejected.length >= 20 - maxOk && rejected.length > 0, `${rejected.length} rejected over ${spanMs} ms`);
  t.diagnostic(`rate limit: ${20 - rejected.length} passed, ${rejected.length} rejected: ${rejected[0].error}`);

  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_authz_denied_total'), 3);
  assert.equal(s.get('meltemi_fault_abort_total'), 3);
  assert.equal(s.get('meltemi_ratelimited_total'), rejected.length);
  assert.equal(s.value('meltemi_ratelimit_contended_total'), 0, 'emitted, and no request passed for lack of a bucket update');
  assert.equal(s.get('meltemi_local_reply_total'), 3 + 3 + rejected.length);
  // One connection per consumer: the local replies never closed one.
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'guarded' }), 1);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'orders-abort' }), 1);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'limited' }), 1);
  assert.equal(s.get('meltemi_connections_total'), 3);
  // Only allowed calls reached a provider and were answered by it.
  assert.equal(s.get(...opMetric(GREET, 'echo', 'response', 'reply')), 3);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'guarded', meltemi_status: 'reply' }), 3);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'orders-abort', meltemi_status: 'reply' }), undefined);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'limited', meltemi_status: 'reply' }), 20 - rejected.length);
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('a first figure: calls per second through plain tcp_proxy and through the Meltemi filter (no assertion on timing)', { timeout: 180_000 }, async (t) => {
  const settings = { method: 'echo', payload: 1024, async: true, concurrency: 32, duration: '5s', warmup: 200, summary: true };
  const plain = await dubboEnvoy(t, { plugin: null, providers, cluster: 'v2' });
  const base = await plain.consume(settings);
  await plain.envoy.stop();
  const plugin = { codec: 'dubbo', routes: [{ name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'v2' }] }] };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const filtered = await mesh.consume(settings);
  for (const [what, sum] of [['tcp_proxy', base], ['meltemi', filtered]]) {
    t.diagnostic(`${what}: ${sum.throughput} calls/s (${sum.ok} calls in ${sum.durationMs} ms, p50 ${sum.p50Ms} ms, p99 ${sum.p99Ms} ms; async, concurrency 32, 1 KiB echo)`);
    assert.equal(sum.errors, 0, `${what}: ${JSON.stringify(sum)}`);
    assert.equal(sum.mismatches, 0);
    assert.ok(sum.ok > 0);
  }
  t.diagnostic(`meltemi/tcp_proxy: ${(filtered.throughput / base.throughput).toFixed(2)}`);
  assert.equal(await mesh.metric('meltemi_responses_total', { meltemi_route: 'echo', meltemi_status: 'reply' }), filtered.ok + 200);
  // The route reads only `method`, so these calls passed by their first 256 bytes (Dubbo's prefix
  // decoding): a wrong method there would count as a mismatch with the connection's route.
  assert.equal(await mesh.value('meltemi_route_mismatch_total'), 0);
});
