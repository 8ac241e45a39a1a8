// Per-request mode with real Apache Thrift peers (npm thrift): every call of ONE client connection
// is routed, balanced, retried, mirrored and timed out on its own by Envoy's router, and Envoy's
// own errors come back as TApplicationException on a connection that stays open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvoy, perRequestBootstrap, freePort, tcpExchange, waitFor, requireStat } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { answeredBy } from './lib/mesh.mjs';

async function servers(t, names, opts = {}) {
  const out = {};
  for (const name of names) {
    out[name] = await startThriftServer({ name, ...opts });
    t.after(() => out[name].stop());
  }
  return out;
}

async function perRequestMesh(t, { plugin, clusters, clusterOptions, concurrency = 1 }) {
  const envoy = await startEnvoy({
    t, concurrency, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin, clusters, clusterOptions }),
  });
  return { envoy, port: await envoy.listenerPort('meltemi') };
}

async function client(t, port, opts = {}) {
  const c = await thriftClient({ port, ...opts });
  t.after(() => c.close());
  return c;
}

/** `n` calls of `fn(i)` on one connection, `depth` in flight at a time; resolves to their results in order. */
async function inFlight(n, depth, fn) {
  const results = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: depth }, async () => {
    while (next < n) {
      const i = next++;
      results[i] = await fn(i).then((v) => ({ ok: true, v }), (e) => ({ ok: false, e }));
    }
  }));
  return results;
}

const count = (xs) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map());
const at = (port) => [{ port }];

test('routes each call of one connection by its own method, for every transport and protocol', async (t) => {
  for (const [transport, protocol, multiplexed] of [['framed', 'binary', false], ['buffered', 'compact', false], ['framed', 'compact', true], ['buffered', 'binary', true]]) {
    await t.test(`${transport} ${protocol}${multiplexed ? ' multiplexed' : ''}`, async (t) => {
      const s = await servers(t, ['v1', 'v2'], { transport, protocol, multiplexed });
      const plugin = {
        codec: 'thrift', mode: 'perRequest',
        routes: [
          { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }] },
          { name: 'rest', route: [{ cluster: 'v1' }] },
        ],
      };
      const { envoy, port } = await perRequestMesh(t, { plugin, clusters: { v1: at(s.v1.port), v2: at(s.v2.port) } });
      const c = await client(t, port, { transport, protocol, multiplexed });
      assert.equal(answeredBy(await c.sayHello('alice')), 'v2');
      assert.equal(await c.echo('x'), 'x');
      assert.equal(answeredBy(await c.sayHello('bob')), 'v2');
      assert.equal(await c.add(2, 3), 5);
      await assert.rejects(c.add(-1, 1), (e) => e.code === 1, 'an application exception comes back as it is');
      if (multiplexed) assert.equal(await c.service('Calculator').whoami(), 'v1:Calculator');
      assert.deepEqual(s.v2.calls.map((x) => x.method), ['sayHello', 'sayHello']);
      assert.equal(s.v1.connections(), 1, 'the router kept one upstream connection to v1');
      const st = await envoy.metrics();
      assert.equal(st.get('meltemi_requests_total', { meltemi_route: 'hello', meltemi_kind: 'call' }), 2);
      assert.equal(st.get('meltemi_responses_total', { meltemi_route: 'hello', meltemi_status: 'reply' }), 2);
      assert.equal(st.get('meltemi_responses_total', { meltemi_route: 'rest', meltemi_status: 'exception' }), 1);
    });
  }
});

test('a 20/80 split acts per call: 2000 calls on one connection, 32 in flight', async (t) => {
  const s = await servers(t, ['v1', 'v2']);
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'split', route: [{ cluster: 'v1', weight: 20 }, { cluster: 'v2', weight: 80 }] }] };
  const { port } = await perRequestMesh(t, { plugin, clusters: { v1: at(s.v1.port), v2: at(s.v2.port) } });
  const c = await client(t, port);
  const n = 2000;
  const results = await inFlight(n, 32, (i) => c.sayHello(`c${i}`));
  assert.ok(results.every((r) => r.ok), 'every call answered');
  results.forEach((r, i) => assert.equal(r.v.split(': hello ')[1], `c${i}`, 'each reply pairs with its call'));
  const by = count(results.map((r) => answeredBy(r.v)));
  t.diagnostic(`v1 ${by.get('v1')} / v2 ${by.get('v2')} of ${n}`);
  // Binomial(2000, 0.2): mean 400, sd 17.9; 4 sd either way.
  assert.ok(Math.abs(by.get('v1') - 400) <= 72, `v1 got ${by.get('v1')}`);
  assert.equal(by.get('v1') + by.get('v2'), n);
});

test('calls of one connection are balanced over the endpoints of a cluster (round robin, least request)', async (t) => {
  for (const lbPolicy of ['ROUND_ROBIN', 'LEAST_REQUEST']) {
    await t.test(lbPolicy, async (t) => {
      const s = await servers(t, ['a', 'b', 'c']);
      const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'pool' }] }] };
      const { port } = await perRequestMesh(t, {
        plugin, clusters: { pool: [{ port: s.a.port }, { port: s.b.port }, { port: s.c.port }] }, clusterOptions: { pool: { lbPolicy } },
      });
      const c = await client(t, port);
      const results = await inFlight(900, lbPolicy === 'ROUND_ROBIN' ? 1 : 8, (i) => c.sayHello(`c${i}`));
      assert.ok(results.every((r) => r.ok));
      const by = count(results.map((r) => answeredBy(r.v)));
      t.diagnostic(`a ${by.get('a')} b ${by.get('b')} c ${by.get('c')}`);
      for (const name of ['a', 'b', 'c']) assert.ok(by.get(name) >= 200, `${name} got ${by.get(name)} of 900`);
    });
  }
});

test('a consistent hash on a metadata key sends the same key to the same endpoint', async (t) => {
  const s = await servers(t, ['a', 'b', 'c'], { multiplexed: true });
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', hashKey: 'service', route: [{ cluster: 'pool' }] }] };
  const { port } = await perRequestMesh(t, { plugin, clusters: { pool: [{ port: s.a.port }, { port: s.b.port }, { port: s.c.port }] } });
  const c = await client(t, port, { multiplexed: true });
  const calc = c.service('Calculator');
  const hellos = await inFlight(60, 4, () => c.sayHello('h'));
  const whos = await inFlight(60, 4, () => calc.whoami());
  assert.equal(count(hellos.map((r) => answeredBy(r.v))).size, 1, 'every Greeter call reached one endpoint');
  assert.equal(count(whos.map((r) => answeredBy(r.v))).size, 1, 'every Calculator call reached one endpoint');
});

test('mirroring sends a route\'s calls to a shadow too; the client sees only the primary\'s replies', async (t) => {
  const s = await servers(t, ['primary', 'shadow']);
  const plugin = {
    codec: 'thrift', mode: 'perRequest',
    routes: [{ name: 'mirrored', route: [{ cluster: 'primary' }], mirror: { cluster: 'shadow', percent: 100 } }],
  };
  const { port } = await perRequestMesh(t, { plugin, clusters: { primary: at(s.primary.port), shadow: at(s.shadow.port) } });
  const c = await client(t, port);
  const results = await inFlight(50, 4, (i) => c.sayHello(`m${i}`));
  assert.ok(results.every((r) => r.ok && answeredBy(r.v) === 'primary'));
  await waitFor(() => s.shadow.calls.length === 50, { message: `the shadow got ${s.shadow.calls.length} of 50 calls` });
  assert.equal(s.primary.calls.length, 50);
});

test('a route timeout answers that one call with TApplicationException and the connection carries on', async (t) => {
  const s = await servers(t, ['v1']);
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'slow', timeoutMs: 300, route: [{ cluster: 'v1' }] }] };
  const { envoy, port } = await perRequestMesh(t, { plugin, clusters: { v1: at(s.v1.port) } });
  const c = await client(t, port);
  const started = Date.now();
  const slow = c.echo('delay:2000:x');
  const fast = await c.echo('quick');
  assert.equal(fast, 'quick', 'a fast call is not held behind the slow one');
  await assert.rejects(slow, (e) => /upstream answered 504: upstream request timeout/.test(e.message) && e.type === 6);
  const took = Date.now() - started;
  assert.ok(took < 1500, `the timeout answered after ${took} ms`);
  assert.equal(await c.sayHello('after'), 'v1: hello after');
  assert.equal(c.isClosed, false);
  assert.equal(await envoy.metric('meltemi_timeout_total'), 1);
});

test('no route, overflow and a dead cluster come back as TApplicationException; the connection stays usable', async (t) => {
  const s = await servers(t, ['v1']);
  const dead = await freePort();
  const plugin = {
    codec: 'thrift', mode: 'perRequest',
    routes: [
      { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v1' }] },
      { name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'tight' }] },
      { name: 'add', match: { attributes: { method: { exact: 'add' } } }, route: [{ cluster: 'dead' }] },
    ],
  };
  const { envoy, port } = await perRequestMesh(t, {
    plugin,
    clusters: { v1: at(s.v1.port), tight: at(s.v1.port), dead: at(dead) },
    clusterOptions: { tight: { circuitBreakers: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 1 } } },
  });
  const c = await client(t, port);
  // An unrouted oneway call: nobody to tell; dropped and counted.
  await c.ping('unrouted');
  // An unrouted method: Envoy's 404.
  const calc = await client(t, port, { service: 'Calculator' });
  await assert.rejects(calc.multiply(2, 3), (e) => /upstream answered 404/.test(e.message));
  // Overflow: 8 slow calls at once against one allowed request.
  const burst = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => c.echo(`delay:200:${i}`)));
  const overflowed = burst.filter((r) => r.status === 'rejected');
  assert.ok(overflowed.length >= 1, 'the circuit breaker refused some');
  for (const r of overflowed) assert.match(r.reason.message, /upstream answered 503/);
  assert.ok(burst.some((r) => r.status === 'fulfilled'));
  // A cluster whose only server is down.
  await assert.rejects(c.add(1, 2), (e) => /upstream answered 503|reset/.test(e.message));
  assert.equal(answeredBy(await c.sayHello('still')), 'v1');
  assert.equal(c.isClosed, false);
  const st = await envoy.stats();
  const m = await envoy.metrics();
  assert.ok(requireStat(st, 'cluster.tight.upstream_rq_pending_overflow') >= 1);
  assert.equal(m.get('meltemi_no_route_total'), 2, 'the oneway ping and multiply');
  assert.equal(s.v1.calls.filter((x) => x.method === 'ping').length, 0);
});

test('retries: a call to a dead endpoint is retried on another, idempotent or not (the server never got it)', async (t) => {
  const s = await servers(t, ['live']);
  const dead = await freePort();
  for (const idempotent of [false, true]) {
    await t.test(`idempotent ${idempotent}`, async (t) => {
      const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'r', retry: { attempts: 2, idempotent }, route: [{ cluster: 'pool' }] }] };
      const { envoy, port } = await perRequestMesh(t, { plugin, clusters: { pool: [{ port: s.live.port }, { port: dead }] } });
      const c = await client(t, port);
      const results = await inFlight(40, 1, (i) => c.sayHello(`r${i}`));
      const failed = results.filter((r) => !r.ok);
      t.diagnostic(`failed ${failed.length} of 40; retries ${await envoy.stat('cluster.pool.upstream_rq_retry')}`);
      // Through the internal listener, a refused real connection shows to the router as a connect
      // failure, which is safe to retry even for calls that must not run twice.
      assert.equal(failed.length, 0, failed.map((f) => f.e.message).join('; '));
      assert.ok(await envoy.stat('cluster.pool.upstream_rq_retry') >= 1);
      assert.ok(results.filter((r) => r.ok).every((r) => answeredBy(r.v) === 'live'));
      assert.equal(c.isClosed, false);
    });
  }
});

test('a oneway call followed at once by a call: the server gets both, the call gets its reply', async (t) => {
  const s = await servers(t, ['v1']);
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'v1' }] }] };
  const { envoy, port } = await perRequestMesh(t, { plugin, clusters: { v1: at(s.v1.port) } });
  const c = await client(t, port);
  await c.ping('first');
  assert.equal(await c.sayHello('next'), 'v1: hello next');
  await c.ping('second');
  await c.ping('third');
  assert.equal(await c.sayHello('last'), 'v1: hello last');
  await waitFor(() => s.v1.calls.filter((x) => x.method === 'ping').length === 3, { message: 'pings reached the server' });
  // Calls of one connection travel on their own now, so the server may see them in another order.
  assert.deepEqual(s.v1.calls.map((x) => x.method).sort(), ['ping', 'ping', 'ping', 'sayHello', 'sayHello']);
  // The server has the pings; each oneway call's stream ends when the probe sent after it is
  // answered, which may still be on its way back: wait for that, not for a fixed time.
  await waitFor(async () => (await envoy.value('meltemi_active_requests')) === 0, { message: 'every oneway call\'s stream ended' });
  const st = await envoy.metrics();
  assert.equal(st.get('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'oneway' }), 3);
});

test('a 2 MiB request and a 2 MiB reply, and more calls in flight than HCM\'s stream limit, on one connection', async (t) => {
  const s = await servers(t, ['v1']);
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'v1' }] }] };
  const { envoy, port } = await perRequestMesh(t, { plugin, clusters: { v1: at(s.v1.port) } });
  const c = await client(t, port, { timeout: 20_000 });
  const big = 'b'.repeat(2 << 20);
  assert.equal((await c.echo(big)).length, big.length);
  const many = await Promise.all(Array.from({ length: 1100 }, (_, i) => c.echo(`delay:100:${i}`)));
  many.forEach((v, i) => assert.equal(v, `delay:100:${i}`));
  assert.equal((await c.echo(big)).length, big.length);
  assert.equal(await envoy.value('meltemi_active_requests'), 0);
});

test('malformed bytes close only their own connection while good clients carry on', async (t) => {
  const s = await servers(t, ['v1']);
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'v1' }] }] };
  const { envoy, port } = await perRequestMesh(t, { plugin, clusters: { v1: at(s.v1.port) } });
  const good = await Promise.all(Array.from({ length: 8 }, () => client(t, port)));
  const goodRun = Promise.all(good.map((c, k) => inFlight(50, 4, (i) => c.sayHello(`${k}-${i}`))));
  const bad = await Promise.all(Array.from({ length: 8 }, () =>
    tcpExchange({ port, data: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), timeout: 5000 })));
  for (const r of bad) assert.equal(r.closedByPeer, true, 'the garbage connection was closed');
  for (const results of await goodRun) assert.ok(results.every((r) => r.ok), 'no good call failed');
  assert.equal(await envoy.metric('meltemi_decode_error_total'), 8);
});

test('a route change served by RDS reaches the next call on a connection that is already open', async (t) => {
  const { startRdsServer } = await import('../../dist/controller/rds-server.mjs');
  const { routeConfiguration } = await import('../../dist/controller/per-request.mjs');
  const s = await servers(t, ['v1', 'v2']);
  const to = (cluster) => ({ codec: 'thrift', mode: 'perRequest', routes: [{ name: 'hello', route: [{ cluster }] }] });
  const rds = await startRdsServer();
  t.after(() => rds.close());
  rds.set('meltemi', routeConfiguration(to('v1')));
  // The bootstrap's clusters come from the plugin config; its routes come from RDS.
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'hello', route: [{ cluster: 'v1', weight: 1 }, { cluster: 'v2', weight: 1 }] }] };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin, clusters: { v1: at(s.v1.port), v2: at(s.v2.port) }, rds: { cluster: 'meltemi-rds', port: rds.port, refreshDelay: '0.2s' } }),
  });
  const port = await envoy.listenerPort('meltemi');
  await waitFor(async () => (await envoy.stat('http.meltemi.rds.meltemi.update_success')) >= 1, { message: 'RDS delivered the first table' });
  const c = await client(t, port);
  assert.equal(answeredBy(await c.sayHello('before')), 'v1');
  const changed = Date.now();
  rds.set('meltemi', routeConfiguration(to('v2')));
  await waitFor(async () => (await envoy.stat('http.meltemi.rds.meltemi.update_success')) >= 2, { message: 'RDS delivered the change' });
  t.diagnostic(`the change reached Envoy after ${Date.now() - changed} ms`);
  assert.equal(answeredBy(await c.sayHello('after')), 'v2', 'the open connection\'s next call took the new route');
  assert.equal(c.isClosed, false);
  assert.equal(await envoy.metric('meltemi_connections_total'), 1, 'one client connection throughout');
});

test('per call: fault abort and delay, the access log, per-operation stats and maxFrameBytes act in per-request mode', async (t) => {
  const s = await servers(t, ['v1']);
  const plugin = {
    codec: 'thrift', mode: 'perRequest', accessLog: true, maxFrameBytes: 65536,
    routes: [
      { name: 'aborted', match: { attributes: { method: { exact: 'add' } } }, route: [{ cluster: 'v1' }], fault: { abort: { percentage: 100, message: 'injected by test' } } },
      { name: 'delayed', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v1' }], fault: { delay: { percentage: 100, fixedDelayMs: 400 } } },
      { name: 'rest', route: [{ cluster: 'v1' }] },
    ],
  };
  const { envoy, port } = await perRequestMesh(t, { plugin, clusters: { v1: at(s.v1.port) } });
  const c = await client(t, port);
  await assert.rejects(c.add(1, 2), (e) => e.type === 6 && e.message === 'injected by test');
  // Each delayed call is held its own 400 ms while other calls of the connection pass.
  const started = Date.now();
  const slow = c.sayHello('held');
  assert.equal(await c.echo('not held'), 'not held');
  const fastMs = Date.now() - started;
  assert.equal(await slow, 'v1: hello held');
  const slowMs = Date.now() - started;
  t.diagnostic(`echo ${fastMs} ms, delayed sayHello ${slowMs} ms`);
  assert.ok(fastMs < 300 && slowMs >= 400, `echo ${fastMs} ms, sayHello ${slowMs} ms`);
  // A call over maxFrameBytes: refused; that connection closes, others carry on.
  await assert.rejects(c.echo('x'.repeat(70_000)));
  const other = await client(t, port);
  assert.equal(await other.echo('fine'), 'fine');
  await envoy.waitForLog(/meltemi access \{.*"route":"rest","cluster":"v1","status":"reply","duration_ms":\d+,.*"method":"echo"/);
  const st = await envoy.metrics();
  assert.equal(st.get('meltemi_fault_abort_total'), 1);
  assert.equal(st.get('meltemi_fault_delay_total'), 1);
  assert.equal(st.get('meltemi_frame_too_large_total'), 1);
  assert.ok(st.get('meltemi_operation_responses_total', { meltemi_operation: 'echo', meltemi_status: 'reply' }) >= 2);
});
