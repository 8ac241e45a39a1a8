// Apache Dubbo 2.7.23, the release many legacy meshes still run, through the real Envoy and the
// real Meltemi filter, next to Apache Dubbo 3.3.5: a 2.7 consumer (test/peers/dubbo27/) routed per
// connection and per request to a 2.7 and a 3.3.5 provider (the reply names the provider, and the
// 2.7 one names its release), and a 3.3.5 consumer to the 2.7 provider; attachment routing and
// mutation; a refused call as the 2.7 consumer's RpcException; 32 calls in flight on one 2.7
// connection split per call across the two releases; heartbeats; oneway. The peers talk to each
// other directly in test/peers/dubbo27/.
//
// JVM startups dominate the cost: one 2.7 and one 3.3.5 provider for the whole file, an Envoy
// (cheap) per test, and the consumers of a test started together.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt } from '../peers/dubbo/index.mjs';
import { waitFor } from '../harness/index.mjs';
import { startProviders, stopProviders, dubboEnvoy, dubboPerRequest, opMetric, GREET, ORDER } from './lib/dubbo-mesh.mjs';

let providers;

before(async () => {
  ensureBuilt('3', '2.7'); // no-op when the jars are fresh
  // Both export each service without a group and in group gold, at 1.0.0 and 2.0.0, and set a
  // response attachment naming themselves. heartbeatMs 1000: each closes a connection idle for
  // 3 s, so an idle connection survives only if the consumer's heartbeats reach a provider or are
  // answered. p27 delays each call 0..3 ms: pipelined replies come back out of order.
  const common = { group: ',gold', version: '1.0.0,2.0.0', heartbeatMs: 1000 };
  providers = await startProviders({
    p27: { dubbo: '2.7', jitterMs: 3, replyAttachments: { 'x-from': 'p27' }, ...common },
    p33: { replyAttachments: { 'x-from': 'p33' }, ...common },
  });
}, { timeout: 10 * 60_000 });

after(() => stopProviders(providers));

const JVM = { timeout: 120_000 };
/** The 2.7.23 consumer. */
const OLD = { dubbo: '2.7' };
/** What each provider's replies say about it: its name, and the release the 2.7 one reports. */
const RELEASE = { p27: '2.7.23', p33: undefined };

/**
 * The text of the error the 2.7 consumer raises for an error status carrying `message` (3.3.5
 * words it "Failed to invoke the method M in the service ..."; see dubbo.test.mjs).
 */
function remotingError27(method, message) {
  const quoted = message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^org\\.apache\\.dubbo\\.rpc\\.RpcException: Failed to invoke remote method: ${method}, provider: dubbo://.*, cause: org\\.apache\\.dubbo\\.remoting\\.RemotingException: ${quoted}$`);
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

function assertAnsweredBy(l, server, what) {
  assert.equal(l.ok, true, `${what}: ${JSON.stringify(l)}`);
  assert.equal(l.match, true, `${what}: the reply belongs to its request`);
  assert.equal(l.server, server, `${what}: answered by ${l.server}`);
  assert.equal(l.dubbo, RELEASE[server], `${what}: the provider's release`);
}

test('per connection: a 2.7 consumer is routed by interface, method, version and group to a 2.7 or a 3.3.5 provider (and a 3.3.5 consumer to the 2.7 one)', JVM, async (t) => {
  const plugin = {
    codec: 'dubbo',
    routes: [
      { name: 'gold-group', match: { attributes: { group: { exact: 'gold' } } }, route: [{ cluster: 'p27' }] },
      { name: 'orders', match: { attributes: { interface: { exact: ORDER } } }, route: [{ cluster: 'p33' }] },
      { name: 'version-2', match: { attributes: { version: { exact: '2.0.0' } } }, route: [{ cluster: 'p33' }] },
      { name: 'greet', match: { attributes: { interface: { exact: GREET }, method: { prefix: 'say' } } }, route: [{ cluster: 'p27' }] },
    ],
  };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const order = { interface: ORDER, method: 'getOrder' };
  const runs = {
    greet: {},
    orders: order,
    'version-2': { version: '2.0.0' },
    'gold-group': { ...order, group: 'gold', version: '2.0.0' }, // the group route comes first
  };
  const expected = { greet: 'p27', orders: 'p33', 'version-2': 'p33', 'gold-group': 'p27' };
  // Three consumer JVMs at a time (2 cores); the last run is a 3.3.5 consumer to the 2.7 provider.
  const tasks = Object.entries(runs).map(([route, o]) => async () => [route, await mesh.consume({ ...OLD, calls: 3, arg: `${route}-{i}`, ...o })]);
  tasks.push(async () => ['3.3.5 consumer', await mesh.consume({ calls: 3, arg: 'new-{i}' })]);
  const { '3.3.5 consumer': fromNew, ...results } = Object.fromEntries(await inPool(3, tasks));

  for (const [route, lines] of Object.entries(results)) {
    assert.equal(lines.length, 3, route);
    for (const l of lines) assertAnsweredBy(l, expected[route], route);
  }
  assert.equal(fromNew.length, 3);
  for (const l of fromNew) {
    assert.equal(l.ok, true, `3.3.5 consumer: ${JSON.stringify(l)}`);
    assert.equal(l.match, true);
    assert.equal(l.server, 'p27', '3.3.5 consumer, greet route: the 2.7 provider');
    assert.equal(l.invocationAttachments.timeout, '5000', 'what the 3.3.5 consumer sends and 2.7 does not');
  }
  assert.equal(results['version-2'][0].version, '2.0.0');
  assert.equal(results['gold-group'][0].group, 'gold');
  assert.equal(results['gold-group'][0].version, '2.0.0');
  assert.equal(results['gold-group'][0].reply, 'order gold-group-0');
  assert.equal(results.orders[0].reply, 'order orders-0');
  // The 2.7 consumer sends no timeout attachment, 3.3.5's does: what reached the providers.
  assert.equal(results.greet[0].invocationAttachments.timeout, undefined);
  assert.equal(results.greet[0].invocationAttachments.version, '1.0.0');

  const s = await mesh.envoy.metrics();
  const perRoute = { ...Object.fromEntries(Object.keys(runs).map((r) => [r, 1])), greet: 2 };
  for (const [route, connections] of Object.entries(perRoute)) {
    assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: route }), connections, route);
    assert.equal(s.get('meltemi_requests_total', { meltemi_route: route, meltemi_kind: 'call' }), 3 * connections, route);
    assert.equal(s.get('meltemi_responses_total', { meltemi_route: route, meltemi_status: 'reply' }), 3 * connections, route);
  }
  assert.equal(s.get(...opMetric(GREET, 'sayHello')), 9);
  assert.equal(s.get(...opMetric(ORDER, 'getOrder')), 6);
  assert.equal(s.value('meltemi_no_route_total'), 0);
  assert.equal(s.value('meltemi_route_mismatch_total'), 0);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('per connection: routed by an attachment the 2.7 consumer sets; requestMutation reaches the provider, responseMutation the 2.7 consumer', JVM, async (t) => {
  const plugin = {
    codec: 'dubbo',
    routes: [
      {
        name: 'canary', match: { attributes: { 'x-canary': { exact: 'yes' } } }, route: [{ cluster: 'p33' }],
        requestMutation: [{ key: 'x-meltemi-route', value: 'canary' }, { key: 'tenant', value: 'acme' }],
        responseMutation: [{ key: 'x-from', value: 'meltemi' }],
      },
      {
        name: 'stable', match: { attributes: { interface: { exact: GREET } } }, route: [{ cluster: 'p27' }],
        requestMutation: [{ key: 'x-meltemi-route', value: 'stable' }],
      },
    ],
  };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const attachments = { tenant: 'blue', 'x-user': 'alice' };
  // Sync calls on four threads (the consumer reports response attachments for sync calls), and a
  // pipelined run: 2.7 writes the user's keys in the middle of the map, between its own.
  const [canary, pipelined, stable] = await Promise.all([
    mesh.consume({ ...OLD, calls: 20, concurrency: 4, arg: 'c-{i}', attachments: { ...attachments, 'x-canary': 'yes' } }),
    mesh.consume({ ...OLD, async: true, calls: 100, concurrency: 16, arg: 'p-{i}', attachments: { ...attachments, 'x-canary': 'yes' } }),
    mesh.consume({ ...OLD, calls: 3, arg: 's-{i}', attachments }),
  ]);
  for (const l of [...canary, ...pipelined]) {
    assertAnsweredBy(l, 'p33', 'canary');
    assert.equal(l.attachments['x-canary'], 'yes');
    assert.equal(l.attachments.tenant, 'acme', 'the consumer\'s tenant=blue was overwritten');
    assert.equal(l.attachments['x-meltemi-route'], 'canary', 'added by the route');
    assert.equal(l.attachments['x-user'], 'alice', 'untouched attachments pass as they were');
    // 2.7's own attachments, read off the wire by the 3.3.5 provider, survive the rewrite.
    assert.equal(l.invocationAttachments.path, GREET);
    assert.equal(l.invocationAttachments.interface, GREET);
    assert.equal(l.invocationAttachments.version, '1.0.0');
    assert.equal(l.invocationAttachments['remote.application'], 'meltemi-consumer');
  }
  for (const l of pipelined) assert.equal(l.invocationAttachments.async, 'true', '2.7 marks async calls on the wire');
  for (const l of canary) {
    assert.equal(l.responseAttachments?.['x-from'], 'meltemi', `the provider's x-from=p33 was overwritten: ${JSON.stringify(l.responseAttachments)}`);
  }
  assert.equal(stable.length, 3);
  for (const l of stable) {
    assertAnsweredBy(l, 'p27', 'stable');
    assert.equal(l.attachments.tenant, 'blue', 'no tenant rewrite on this route');
    assert.equal(l.attachments['x-meltemi-route'], 'stable');
    assert.equal(l.responseAttachments?.['x-from'], 'p27', 'no responseMutation on this route');
  }
  t.diagnostic(`2.7 -> 3.3.5 through Meltemi, the provider saw ${JSON.stringify(canary[0].invocationAttachments)}`);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'canary', meltemi_status: 'reply' }), 120);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'stable', meltemi_status: 'reply' }), 3);
  assert.equal(s.value('meltemi_mutation_failed_total'), 0);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('a call Meltemi refuses reaches the 2.7 consumer as an RpcException with Meltemi\'s message; the next call on the connection succeeds', JVM, async (t) => {
  const plugin = {
    codec: 'dubbo',
    routes: [
      {
        name: 'guarded', match: { attributes: { interface: { exact: GREET } } }, route: [{ cluster: 'p27' }],
        authorization: { rules: [{ name: 'no-hello', action: 'DENY', match: { attributes: { method: { exact: 'sayHello' } } } }] },
      },
      {
        name: 'orders', match: { attributes: { interface: { exact: ORDER } } }, route: [{ cluster: 'p33' }],
        authorization: { rules: [{ name: 'no-group', action: 'DENY', match: { attributes: { group: { exact: 'gold' } } } }] },
      },
    ],
  };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  const [greet, orders] = await Promise.all([
    mesh.consume({ ...OLD, method: 'sayHello,echo', calls: 6, arg: 'd-{i}' }),
    mesh.consume({ ...OLD, interface: ORDER, method: 'getOrder', group: 'gold', calls: 2 }),
  ]);
  assert.deepEqual(greet.map((l) => l.ok), [false, true, false, true, false, true]);
  for (const l of greet) {
    if (l.method === 'sayHello') assert.match(l.error, remotingError27('sayHello', 'meltemi: request denied by authorization rule no-hello'));
    else assert.equal(l.match, true, JSON.stringify(l));
  }
  for (const l of orders) {
    assert.equal(l.ok, false, JSON.stringify(l));
    assert.match(l.error, remotingError27('getOrder', 'meltemi: request denied by authorization rule no-group'));
  }
  t.diagnostic(`deny: ${greet[0].error.replace(/provider: \S+/, 'provider: ...')}`);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_authz_denied_total'), 5);
  assert.equal(s.get('meltemi_local_reply_total'), 5);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'guarded' }), 1, 'the deny did not close the connection');
  assert.equal(s.get('meltemi_connections_total'), 2);
  assert.equal(s.get(...opMetric(GREET, 'echo', 'response', 'reply')), 3, 'the allowed calls reached the provider');
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('per request: 32 calls in flight on ONE 2.7 connection split by method and weight between a 2.7 and a 3.3.5 provider, every reply its own', JVM, async (t) => {
  const plugin = {
    codec: 'dubbo',
    mode: 'perRequest',
    routes: [
      { name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'p27' }] },
      { name: 'split', route: [{ cluster: 'p27', weight: 50 }, { cluster: 'p33', weight: 50 }] },
    ],
  };
  const mesh = await dubboPerRequest(t, { plugin, providers });
  const n = 600;
  const lines = await mesh.consume({ ...OLD, async: true, method: 'sayHello,echo', calls: n, concurrency: 32, connections: 1, arg: 'r-{i}' });
  assert.equal(lines.length, n);
  const servers = {};
  for (const l of lines) {
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.match, true, `call ${l.i} got another call's reply: ${JSON.stringify(l)}`);
    if (l.method === 'sayHello') {
      assert.equal(l.reply, `hello r-${l.i}`);
      assert.equal(l.dubbo, RELEASE[l.server]);
      servers[l.server] = (servers[l.server] ?? 0) + 1;
    }
  }
  t.diagnostic(`sayHello answered by ${JSON.stringify(servers)}`);
  // Binomial(300, 0.5): mean 150, sd 8.7; 4 sd either way.
  assert.ok(Math.abs((servers.p27 ?? 0) - 150) <= 35, `p27 answered ${servers.p27} of 300`);
  assert.equal((servers.p27 ?? 0) + (servers.p33 ?? 0), 300);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_connections_total'), 1, 'one consumer connection');
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'echo', meltemi_status: 'reply' }), 300);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'split', meltemi_cluster: 'p27', meltemi_status: 'reply' }), servers.p27);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'split', meltemi_cluster: 'p33', meltemi_status: 'reply' }), servers.p33);
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('heartbeats from a 2.7 consumer keep its idle connection up through both modes; the 2.7 and 3.3.5 providers\' idle limits do not cut it', JVM, async (t) => {
  const perConnection = await dubboEnvoy(t, { plugin: { codec: 'dubbo', routes: [{ name: 'all', route: [{ cluster: 'p27' }] }] }, providers });
  const perRequest = await dubboPerRequest(t, {
    plugin: { codec: 'dubbo', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'p27', weight: 50 }, { cluster: 'p33', weight: 50 }] }] },
    providers,
  });
  // Idle for 4.5 s between two rounds, heartbeat every 1 s. The providers close a connection idle
  // for 3 s (per connection, unless the heartbeats reach them); the 2.7 consumer reconnects when it
  // has read nothing for 3 s, checked every 1 s (unless its heartbeats are answered: measured, with
  // the answers dropped it reconnected within 4.5 s, not within 3.5 s).
  const idle = { ...OLD, calls: 4, rounds: 2, idleMs: 4500, heartbeatMs: 1000, arg: 'hb-{i}' };
  const [pc, pr] = await Promise.all([perConnection.consume(idle), perRequest.consume(idle)]);

  assert.equal(pc.length, 8);
  for (const l of pc) assertAnsweredBy(l, 'p27', 'per connection');
  assert.equal(new Set(pc.map((l) => l.remote)).size, 1, 'per connection: one upstream connection before and after the idle time');
  const s1 = await perConnection.envoy.metrics();
  const fromClient = s1.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'heartbeat' }) ?? 0;
  const fromServer = s1.get('meltemi_responses_total', { meltemi_route: 'all', meltemi_status: 'heartbeat' }) ?? 0;
  t.diagnostic(`per connection: heartbeats ${fromClient} from the 2.7 consumer, ${fromServer} answers from the 2.7 provider`);
  assert.ok(fromClient >= 2, `the consumer's heartbeats passed to the provider: ${fromClient}`);
  assert.equal(fromServer, fromClient, 'the 2.7 provider answered each');
  assert.equal(s1.get('meltemi_connections_total'), 1);
  assert.equal(s1.value('meltemi_decode_error_total'), 0);
  assert.equal(s1.value('meltemi_unmatched_response_total'), 0);

  assert.equal(pr.length, 8);
  for (const l of pr) assertAnsweredBy(l, l.server, 'per request');
  const s2 = await perRequest.envoy.metrics();
  t.diagnostic(`per request: ${s2.get('meltemi_heartbeat_total')} heartbeats answered by the client role; servers ${JSON.stringify(pr.map((l) => l.server))}`);
  assert.ok(s2.get('meltemi_heartbeat_total') >= 2, 'the consumer\'s heartbeats were answered');
  assert.equal(s2.get('meltemi_connections_total'), 1, 'per request: the consumer kept its one connection');
  assert.equal(s2.get('meltemi_responses_total', { meltemi_route: 'all', meltemi_status: 'reply' }), 8);
  assert.equal(s2.value('meltemi_active_requests'), 0);
});

test('per request: oneway calls from a 2.7 consumer reach both providers and end their streams; calls after them are answered', JVM, async (t) => {
  const plugin = { codec: 'dubbo', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'p27', weight: 50 }, { cluster: 'p33', weight: 50 }] }] };
  const mesh = await dubboPerRequest(t, { plugin, providers });
  const oneway = await mesh.consume({ ...OLD, oneway: true, calls: 50, arg: 'o-{i}' });
  assert.equal(oneway.length, 50);
  assert.ok(oneway.every((l) => l.ok && l.oneway), JSON.stringify(oneway.find((l) => !l.ok)));
  // A oneway call's stream ends when the heartbeat probe sent after it is answered: wait for the
  // last of them, not for a fixed time.
  await waitFor(async () => (await mesh.envoy.value('meltemi_active_requests')) === 0, { message: 'every oneway stream ended' });
  const after = await mesh.consume({ ...OLD, calls: 4, arg: 'a-{i}' });
  for (const l of after) assertAnsweredBy(l, l.server, 'after oneway');
  const s = await mesh.envoy.metrics();
  const to = (cluster) => s.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_cluster: cluster, meltemi_kind: 'oneway' }) ?? 0;
  t.diagnostic(`oneway: ${to('p27')} to p27 (2.7), ${to('p33')} to p33 (3.3.5)`);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'oneway' }), 50);
  assert.ok(to('p27') > 0 && to('p33') > 0, 'both releases got oneway calls');
  assert.equal(s.value('meltemi_active_requests'), 0);
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
});
