// Faults under load, end to end: the real Envoy running build/meltemi.wasm, real Apache Thrift
// servers (npm thrift), real Apache Dubbo 3.3.5 providers and consumers, real redis-server and
// redis-benchmark. An upstream killed mid-run, an upstream that refuses connections, an upstream
// that answers garbage, a plugin config update (ECDS, from a watched file) while clients call, and
// Envoy with two workers under a mixed load. Per-connection mode (the default) unless the test name
// says per-request. Every wait is a readiness check or a bounded timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startEnvoy, meltemiBootstrap, perRequestBootstrap, meltemiFilterConfig, waitFor, withTimeout, tcpExchange, requireStat,
} from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { answeredBy } from './lib/mesh.mjs';
import { thriftCall, startGarbageServer, runPool, summarise, activeDownstream } from './lib/faults.mjs';

const TEST = { timeout: 120_000 };

async function thriftServers(t, names, opts = {}) {
  const out = {};
  for (const name of names) {
    out[name] = await startThriftServer({ name, ...opts });
    t.after(() => out[name].stop());
  }
  return out;
}

/** The tcp_proxy of a meltemiBootstrap listener (to add options the builder has no argument for). */
function tcpProxyOf(config, listener = 0) {
  return config.static_resources.listeners[listener].filter_chains[0].filters.at(-1).typed_config;
}

function clusterOf(config, name) {
  return config.static_resources.clusters.find((c) => c.name === name);
}

// ---------------------------------------------------------------------------------------------
// 1. An upstream server killed in the middle of a run.
// ---------------------------------------------------------------------------------------------

test('per-connection: an upstream killed mid-run fails only its own in-flight calls, fast; new connections all reach the survivor', TEST, async (t) => {
  // Child-process servers, so that SIGKILL is a real crash (the kernel resets its sockets).
  const s = await thriftServers(t, ['a', 'b'], { childProcess: true });
  const plugin = { codec: 'thrift', routes: [{ name: 'all', route: [{ cluster: 'pool' }] }] };
  const config = meltemiBootstrap({ plugin, clusters: { pool: [{ port: s.a.port }, { port: s.b.port }] } });
  // A cluster with two endpoints: tcp_proxy tries another endpoint when a connect fails, and the
  // cluster ejects an endpoint after two connect failures in a row.
  tcpProxyOf(config).max_connect_attempts = 3;
  clusterOf(config, 'pool').outlier_detection = {
    consecutive_5xx: 2, enforcing_consecutive_5xx: 100, interval: '1s', base_ejection_time: '60s', max_ejection_percent: 50,
  };
  const envoy = await startEnvoy({ t, logLevel: 'warning', componentLogLevel: 'wasm:info', config });
  const port = await envoy.listenerPort('meltemi');

  // 12 clients, each on its own connection, calling in a closed loop: a sayHello (says which server
  // the connection reached) then an echo the server holds 150 ms, so calls are in flight at the kill.
  // A client whose connection fails records why and opens a new one.
  const pool = runPool({
    clients: 12,
    connect: () => thriftClient({ port, timeout: 5000 }),
    call: async (c, k) => (k % 2 === 0 ? answeredBy(await c.sayHello(`k${k}`)) : (await c.echo(`delay:150:${k}`), null)),
  });
  t.after(() => pool.stop());
  await waitFor(() => pool.okCount() >= 60, { timeout: 20_000, message: '60 calls before the kill' });
  const killedAt = Date.now();
  process.kill(s.a.pid, 'SIGKILL');
  const okAtKill = pool.okCount();
  // Every client goes on calling after the kill: 10 more calls each, on whatever connection it has.
  await waitFor(() => pool.clients.every((c) => c.okAfter(killedAt) >= 10), { timeout: 30_000, message: 'every client made 10 calls after the kill' });
  await pool.stop();

  const errors = pool.errors();
  const sum = summarise(pool, killedAt, 200);
  t.diagnostic(`calls ok ${pool.okCount()} (${okAtKill} before the kill); errors ${errors.length}; ` +
    `connections ${sum.connections} (after the kill ${sum.connectionsAfter}, all on ${[...sum.serversAfter].join(',')}); ` +
    `slowest error ${sum.slowestErrorMs} ms after the kill`);
  assert.ok(errors.length >= 1, 'the kill hit calls in flight on a\'s connections');
  for (const e of errors) {
    // A connection whose first answer was still owed (server unknown) is allowed only if it was
    // opened before the kill took effect.
    const conn = pool.connections[e.conn];
    if (e.server === null) assert.ok(conn && conn.openedAt < killedAt + 200, `an unanswered connection failing after the kill (${e.message})`);
    else assert.equal(e.server, 'a', `only connections that reached a fail (${e.message})`);
    assert.ok(e.at >= killedAt, 'no error before the kill');
    assert.doesNotMatch(e.message, /timed out/, 'an in-flight call fails because its connection closed, not by the client\'s timeout');
  }
  assert.ok(sum.slowestErrorMs < 2000, `every failure reached its client within 2 s of the kill (slowest ${sum.slowestErrorMs} ms)`);
  assert.ok(sum.connectionsAfter >= 1, 'clients of a reconnected');
  assert.deepEqual([...sum.serversAfter], ['b'], 'every connection opened after the kill reached b');
  assert.equal(sum.errorsOnConnectionsAfter, 0, 'no call failed on a connection opened 200 ms or more after the kill');

  // 30 fresh connections in parallel, one call each: all answered, all by b.
  const fresh = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
    const c = await thriftClient({ port, timeout: 5000 });
    try { return answeredBy(await c.sayHello(`fresh${i}`)); } finally { c.close(); }
  }));
  assert.deepEqual([...new Set(fresh)], ['b']);
  const st = await envoy.stats();
  const m = await envoy.metrics();
  t.diagnostic(`pool: upstream_cx_connect_fail ${st.get('cluster.pool.upstream_cx_connect_fail')}, ` +
    `ejections ${st.get('cluster.pool.outlier_detection.ejections_enforced_total')}, ` +
    `connect attempts exceeded ${requireStat(st, 'cluster.pool.upstream_cx_connect_attempts_exceeded')}`);
  assert.ok(st.get('cluster.pool.upstream_cx_connect_fail') >= 1, 'Envoy tried a after the kill and counted the refusal');
  assert.equal(m.value('meltemi_decode_error_total'), 0);
  await waitFor(async () => (await activeDownstream(envoy)) === 0, { message: 'connections still open in Envoy' });
});

test('per-request: an upstream killed mid-run answers its in-flight calls with errors on connections that stay open; later calls reach the survivor', TEST, async (t) => {
  const s = await thriftServers(t, ['a', 'b'], { childProcess: true });
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', retry: { attempts: 3 }, route: [{ cluster: 'pool' }] }] };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin, clusters: { pool: [{ port: s.a.port }, { port: s.b.port }] } }),
  });
  const port = await envoy.listenerPort('meltemi');
  // 4 client connections, 4 calls in flight on each; calls of one connection go to both servers.
  const pool = runPool({
    clients: 16,
    shared: 4,
    connect: () => thriftClient({ port, timeout: 5000 }),
    call: async (c, k) => (k % 2 === 0 ? answeredBy(await c.sayHello(`k${k}`)) : (await c.echo(`delay:150:${k}`), null)),
  });
  t.after(() => pool.stop());
  await waitFor(() => pool.okCount() >= 60, { timeout: 20_000, message: '60 calls before the kill' });
  const killedAt = Date.now();
  process.kill(s.a.pid, 'SIGKILL');
  await waitFor(() => pool.clients.every((c) => c.okAfter(killedAt) >= 10), { timeout: 30_000, message: 'every caller made 10 calls after the kill' });
  // Then 200 calls in a row must all succeed, all on b.
  const mark = Date.now();
  await waitFor(() => pool.okAfter(mark) >= 200, { timeout: 30_000, message: '200 calls after the mark' });
  await pool.stop();
  const errors = pool.errors();
  const sum = summarise(pool, killedAt);
  t.diagnostic(`calls ok ${pool.okCount()}; errors ${errors.length} (${[...new Set(errors.map((e) => e.message.slice(0, 90)))].join(' | ')}); ` +
    `connections ${sum.connections}; slowest error ${sum.slowestErrorMs} ms after the kill`);
  assert.equal(sum.connections, 4, 'no client connection closed: the errors came back as Thrift exceptions');
  for (const e of errors) {
    assert.ok(e.at >= killedAt, 'no error before the kill');
    assert.equal(e.closed, false, 'the connection stayed open');
    assert.match(e.message, /meltemi: upstream answered 50\d/, 'Envoy\'s error, as a TApplicationException');
  }
  assert.ok(sum.slowestErrorMs < 3000, `every failure within 3 s of the kill (slowest ${sum.slowestErrorMs} ms)`);
  const late = pool.results().filter((r) => r.at >= mark);
  assert.ok(late.every((r) => r.ok), 'every call after the mark succeeded');
  assert.deepEqual([...new Set(late.filter((r) => r.server).map((r) => r.server))], ['b']);
});

// ---------------------------------------------------------------------------------------------
// 2. An upstream that refuses connections.
// ---------------------------------------------------------------------------------------------

test('per-connection: an upstream that refuses connections closes the client connection promptly; other routes unaffected', TEST, async (t) => {
  const s = await thriftServers(t, ['v1']);
  const closed = 1; // tcpmux: privileged, never listened on here (a freePort() could be taken by a test beside this one)
  const plugin = {
    codec: 'thrift',
    routes: [
      { name: 'dead', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'dead' }] },
      { name: 'good', route: [{ cluster: 'v1' }] },
    ],
  };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: meltemiBootstrap({ plugin, clusters: { v1: [{ port: s.v1.port }], dead: [{ port: closed }] }, defaultCluster: 'v1', accessLog: true }),
  });
  const port = await envoy.listenerPort('meltemi');
  const good = Array.from({ length: 10 }, async (_, i) => {
    const c = await thriftClient({ port });
    try {
      const out = [];
      for (let k = 0; k < 20; k++) out.push(answeredBy(await c.sayHello(`g${i}-${k}`)));
      return out;
    } finally { c.close(); }
  });
  const refused = Array.from({ length: 20 }, async (_, i) => {
    const c = await thriftClient({ port, timeout: 5000 });
    const t0 = Date.now();
    const err = await c.echo(`r${i}`).then(() => null, (e) => e);
    await withTimeout(c.closed, 5000, 'client connection close');
    return { err, ms: Date.now() - t0, closedByPeer: c.closedByPeer };
  });
  const [goods, refusals] = await Promise.all([Promise.all(good), Promise.all(refused)]);
  for (const g of goods) assert.deepEqual([...new Set(g)], ['v1']);
  assert.equal(goods.flat().length, 200);
  const slowest = Math.max(...refusals.map((r) => r.ms));
  t.diagnostic(`20 refused connections: closed after ${Math.min(...refusals.map((r) => r.ms))}..${slowest} ms`);
  for (const r of refusals) {
    assert.ok(r.err, 'the call failed');
    assert.doesNotMatch(r.err.message, /timed out/);
    assert.equal(r.closedByPeer, true, 'Envoy closed the client connection');
  }
  assert.ok(slowest < 1500, `closed within 1.5 s (slowest ${slowest} ms)`);
  // Each client connection's tcp_proxy gave up connecting (Envoy's pool may let two waiting
  // connections share one failed attempt, so upstream_cx_connect_fail can be lower than 20).
  await waitFor(async () => (await envoy.stat('cluster.dead.upstream_cx_connect_attempts_exceeded')) >= 20,
    { timeout: 5000, message: 'Envoy to give up each refused connection' });
  const st = await envoy.stats();
  const m = await envoy.metrics();
  assert.equal(st.get('cluster.dead.upstream_cx_connect_attempts_exceeded'), 20, 'Envoy gave up on each refused connection');
  assert.ok(st.get('cluster.dead.upstream_cx_connect_fail') >= 1, 'and counted the refused connects');
  assert.equal(m.get('meltemi_route_connections_total', { meltemi_route: 'dead' }), 20);
  assert.equal(m.get('meltemi_requests_total', { meltemi_route: 'dead', meltemi_kind: 'call' }), 20);
  assert.equal(m.get('meltemi_responses_total', { meltemi_route: 'good', meltemi_status: 'reply' }), 200);
  // tcp_proxy's access log: UF (upstream connection failure) for the refused cluster.
  await envoy.waitForLog(/ACCESS \S+ -> dead \S+ rx=\d+ tx=0 flags=UF/);
  await waitFor(async () => (await activeDownstream(envoy)) === 0, { message: 'connections left open' });
});

test('per-request: an upstream that refuses connections answers each call with an error; the connection stays usable', TEST, async (t) => {
  const s = await thriftServers(t, ['v1']);
  const closed = 1; // as above
  const plugin = {
    codec: 'thrift', mode: 'perRequest',
    routes: [
      { name: 'dead', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'dead' }] },
      { name: 'good', route: [{ cluster: 'v1' }] },
    ],
  };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin, clusters: { v1: [{ port: s.v1.port }], dead: [{ port: closed }] } }),
  });
  const port = await envoy.listenerPort('meltemi');
  const c = await thriftClient({ port, timeout: 5000 });
  t.after(() => c.close());
  const times = [];
  for (let i = 0; i < 20; i++) {
    const t0 = Date.now();
    await assert.rejects(c.echo(`r${i}`), (e) => {
      assert.match(e.message, /meltemi: upstream answered 503/);
      return true;
    });
    times.push(Date.now() - t0);
    assert.equal(answeredBy(await c.sayHello(`g${i}`)), 'v1', 'the next call on the same connection is answered');
  }
  assert.equal(c.isClosed, false);
  t.diagnostic(`20 calls to the refusing upstream: error after ${Math.min(...times)}..${Math.max(...times)} ms`);
  assert.ok(Math.max(...times) < 1500);
  const st = await envoy.stats();
  assert.equal(st.get('cluster.meltemi-original-dst.upstream_cx_connect_fail'), 20, 'Envoy counts each refused connect');
  assert.equal(st.get('cluster.dead.upstream_cx_connect_fail'), 20, 'and each failed call on the routed cluster');
});

// ---------------------------------------------------------------------------------------------
// 3. An upstream that answers with garbage.
// ---------------------------------------------------------------------------------------------

test('per-connection: an upstream answering garbage never reaches the client; its connection closes; other connections unaffected', TEST, async (t) => {
  const s = await thriftServers(t, ['v1']);
  const garbage = {
    text: Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'),
    // A frame length far past maxFrameBytes, then bytes.
    huge: Buffer.concat([Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x80, 0x01, 0x00, 0x02]), Buffer.alloc(64, 0x41)]),
    // A well-framed message of an unknown type (9).
    badtype: Buffer.from('0000000e8001000900000001780000000100', 'hex'),
  };
  const bad = {};
  for (const [name, bytes] of Object.entries(garbage)) {
    bad[name] = await startGarbageServer(bytes);
    t.after(() => bad[name].stop());
  }
  const plugin = {
    codec: 'thrift', maxFrameBytes: 65536,
    routes: [
      { name: 'bad', match: { attributes: { method: { exact: 'echo' } } }, route: Object.keys(garbage).map((name) => ({ cluster: name, weight: 1 })) },
      { name: 'good', route: [{ cluster: 'v1' }] },
    ],
  };
  const clusters = { v1: [{ port: s.v1.port }], ...Object.fromEntries(Object.entries(bad).map(([n, b]) => [n, [{ port: b.port }]])) };
  const envoy = await startEnvoy({ t, logLevel: 'warning', componentLogLevel: 'wasm:info', config: meltemiBootstrap({ plugin, clusters, defaultCluster: 'v1' }) });
  const port = await envoy.listenerPort('meltemi');

  const good = Array.from({ length: 10 }, async (_, i) => {
    const c = await thriftClient({ port });
    try {
      const out = [];
      for (let k = 0; k < 30; k++) out.push(answeredBy(await c.sayHello(`g${i}-${k}`)));
      return out;
    } finally { c.close(); }
  });
  // 30 raw connections, each one framed binary echo call; the bad route draws one of the three garbage servers.
  const hostile = Array.from({ length: 30 }, (_, i) => tcpExchange({ port, data: thriftCall('echo', `x${i}`, i + 1), timeout: 5000 }));
  const [goods, hostiles] = await Promise.all([Promise.all(good), Promise.all(hostile)]);
  assert.equal(goods.flat().length, 300);
  for (const g of goods) assert.deepEqual([...new Set(g)], ['v1']);
  for (const r of hostiles) {
    assert.equal(r.data.length, 0, `the client received no byte of the garbage (got ${r.data.toString('hex').slice(0, 40)})`);
    assert.equal(r.closedByPeer, true, 'Envoy closed the connection');
    assert.equal(r.timedOut, false);
  }
  const served = Object.fromEntries(Object.entries(bad).map(([n, b]) => [n, b.connections()]));
  t.diagnostic(`garbage servers reached: ${JSON.stringify(served)}`);
  assert.equal(Object.values(served).reduce((a, b) => a + b, 0), 30);
  const st = await envoy.metrics();
  const refused = st.value('meltemi_decode_error_total') + st.value('meltemi_frame_too_large_total');
  t.diagnostic(`decode_error ${st.value('meltemi_decode_error_total')}, frame_too_large ${st.value('meltemi_frame_too_large_total')}`);
  assert.equal(refused, 30, 'every garbage reply was refused and counted');
  if (served.huge) assert.equal(st.get('meltemi_frame_too_large_total'), served.huge);
  assert.equal(st.get('meltemi_responses_total', { meltemi_route: 'good', meltemi_status: 'reply' }), 300);
  // A real client on the bad route: its call fails with the connection closed, not a timeout.
  const c = await thriftClient({ port, timeout: 5000 });
  await assert.rejects(c.echo('real'), (e) => !/timed out/.test(e.message));
  await withTimeout(c.closed, 5000, 'close');
});

test('per-request: an upstream answering garbage gets that call an error; the connection and other calls carry on', TEST, async (t) => {
  const s = await thriftServers(t, ['v1']);
  const bad = await startGarbageServer(Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  t.after(() => bad.stop());
  const plugin = {
    codec: 'thrift', mode: 'perRequest',
    routes: [
      { name: 'bad', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'bad' }] },
      { name: 'good', route: [{ cluster: 'v1' }] },
    ],
  };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin, clusters: { v1: [{ port: s.v1.port }], bad: [{ port: bad.port }] } }),
  });
  const port = await envoy.listenerPort('meltemi');
  const c = await thriftClient({ port, timeout: 5000 });
  t.after(() => c.close());
  const messages = new Set();
  for (let i = 0; i < 10; i++) {
    await assert.rejects(c.echo(`x${i}`), (e) => { messages.add(e.message); return /meltemi: upstream answered 5\d\d/.test(e.message); });
    assert.equal(answeredBy(await c.sayHello(`g${i}`)), 'v1');
  }
  t.diagnostic(`errors: ${[...messages].join(' | ')}`);
  assert.equal(c.isClosed, false);
  assert.equal(s.v1.calls.length, 10);
});

// ---------------------------------------------------------------------------------------------
// 4. A plugin config update (new routes) while clients are calling: ECDS from a watched file.
// ---------------------------------------------------------------------------------------------

const WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';

/** An ECDS file: one TypedExtensionConfig named `name` holding the Meltemi filter for `plugin`. */
function ecdsResource(name, plugin) {
  return JSON.stringify({
    resources: [{ '@type': 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig', name, typed_config: meltemiFilterConfig(plugin).typed_config }],
  });
}

test('per-connection: a plugin config update by ECDS (watched file) while clients call fails no call on open connections; new connections take the new routes', TEST, async (t) => {
  const s = await thriftServers(t, ['v1', 'v2']);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meltemi-ecds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const watched = path.join(dir, 'watched');
  mkdirSync(watched);
  const file = path.join(watched, 'meltemi.json');
  const before = { codec: 'thrift', routes: [{ name: 'old', route: [{ cluster: 'v1' }] }] };
  const after = { codec: 'thrift', routes: [{ name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }] }, { name: 'rest', route: [{ cluster: 'v1' }] }] };
  writeFileSync(file, ecdsResource('meltemi', before));
  const config = meltemiBootstrap({ plugin: before, clusters: { v1: [{ port: s.v1.port }], v2: [{ port: s.v2.port }] } });
  config.node = { id: 'meltemi-test', cluster: 'meltemi-test' }; // any xDS, file-based too, wants a node
  config.static_resources.listeners[0].filter_chains[0].filters[0] = {
    name: 'meltemi',
    config_discovery: {
      config_source: { resource_api_version: 'V3', path_config_source: { path: file, watched_directory: { path: watched } } },
      type_urls: [WASM_TYPE],
    },
  };
  const envoy = await startEnvoy({ t, logLevel: 'warning', componentLogLevel: 'wasm:info', config });
  const port = await envoy.listenerPort('meltemi');
  const reloads = async () => {
    const st = await envoy.stats();
    return [...st].filter(([k]) => /^extension_config_discovery\..*config_reload$/.test(k)).reduce((n, [, v]) => n + v, 0);
  };
  const reloadsAtStart = await reloads();

  // 10 long-lived connections calling in closed loops (sayHello, then an echo held 50 ms).
  const pool = runPool({
    clients: 10,
    connect: () => thriftClient({ port, timeout: 5000 }),
    call: async (c, k) => (k % 2 === 0 ? answeredBy(await c.sayHello(`k${k}`)) : (await c.echo(`delay:50:${k}`), null)),
  });
  t.after(() => pool.stop());
  await waitFor(() => pool.clients.every((c) => c.results.length >= 4), { timeout: 20_000, message: 'every client called before the update' });
  assert.equal((await thriftClient({ port }).then(async (c) => { try { return answeredBy(await c.sayHello('pre')); } finally { c.close(); } })), 'v1');

  // The update: write next to the watched directory, then move into place (one rename).
  const tmp = path.join(dir, 'meltemi.json.tmp');
  writeFileSync(tmp, ecdsResource('meltemi', after));
  const updatedAt = Date.now();
  renameSync(tmp, file);
  await waitFor(async () => (await reloads()) > reloadsAtStart, { timeout: 15_000, message: 'Envoy applied the ECDS update' });
  const appliedMs = Date.now() - updatedAt;
  // A new connection takes the new routes (sayHello → v2).
  const fresh = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const c = await thriftClient({ port, timeout: 5000 });
    try { return [answeredBy(await c.sayHello(`f${i}`)), await c.add(i, 1)]; } finally { c.close(); }
  }));
  // The open connections keep calling for a while after the update.
  const mark = Date.now();
  await waitFor(() => pool.clients.every((c) => c.okAfter(mark) >= 10), { timeout: 20_000, message: '10 more calls on every open connection' });
  await pool.stop();

  const errors = pool.errors();
  const sum = summarise(pool, updatedAt);
  t.diagnostic(`update applied ${appliedMs} ms after the rename; open connections: ${pool.okCount()} calls, ${errors.length} errors, ` +
    `${sum.connections} connections (opened after the update: ${sum.connectionsAfter}); fresh connections answered by ${[...new Set(fresh.map((f) => f[0]))]}`);
  assert.equal(errors.length, 0, `no call failed on an existing connection: ${errors.map((e) => e.message).join('; ')}`);
  assert.equal(sum.connections, 10, 'no connection was dropped or reopened');
  assert.ok(pool.results().filter((r) => r.server).every((r) => r.server === 'v1'), 'the open connections stay on the cluster their first call picked');
  assert.ok(pool.okAfter(updatedAt) >= 100);
  for (const [who] of fresh) assert.equal(who, 'v2', 'a new connection took the new route');
  fresh.forEach(([, v], i) => assert.equal(v, i + 1));
  const st = await envoy.metrics();
  assert.equal(st.get('meltemi_route_connections_total', { meltemi_route: 'hello' }), 20);
  assert.equal(st.get('meltemi_route_connections_total', { meltemi_route: 'old' }), 11);
  assert.equal(st.get('meltemi_responses_total', { meltemi_route: 'old', meltemi_status: 'reply' }), pool.okCount() + 1, 'every call of the open connections was answered under the old routes');
  await envoy.waitForLog(/configured codec thrift with 2 routes/);
});

// ---------------------------------------------------------------------------------------------
// 5. Envoy with two workers under a mixed load of good clients.
// ---------------------------------------------------------------------------------------------

test('two workers, three listeners (Thrift, Dubbo, Redis) under a mixed load: every call answered, both workers used', { timeout: 240_000 }, async (t) => {
  const { startProviders, stopProviders } = await import('./lib/dubbo-mesh.mjs');
  const { runConsumer } = await import('../peers/dubbo/index.mjs');
  const { startRedis } = await import('./lib/redis.mjs');
  const { mixedBootstrap } = await import('./lib/mixed-mesh.mjs');
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);

  const th = await thriftServers(t, ['v1', 'v2']);
  const providers = await startProviders({ v1: {}, v2: {} });
  t.after(() => stopProviders(providers));
  const r1 = await startRedis(t);
  const r2 = await startRedis(t);
  const ports = {
    thrift: { v1: th.v1.port, v2: th.v2.port },
    dubbo: { v1: providers.v1.port, v2: providers.v2.port },
    redis: { v1: r1.port, v2: r2.port },
  };
  const envoy = await startEnvoy({ t, concurrency: 2, logLevel: 'warning', componentLogLevel: 'wasm:info', config: mixedBootstrap({ ports }) });
  const port = Object.fromEntries(await Promise.all(['thrift', 'dubbo', 'redis'].map(async (p) => [p, await envoy.listenerPort(p)])));

  // Thrift: 16 connections × 50 calls; each connection's sayHello split 50/50 by connection.
  const thriftLoad = Promise.all(Array.from({ length: 16 }, async (_, i) => {
    const c = await thriftClient({ port: port.thrift, timeout: 10_000 });
    try {
      const by = [];
      for (let k = 0; k < 50; k++) {
        const r = await c.sayHello(`c${i}-${k}`);
        assert.equal(r.split(': hello ')[1], `c${i}-${k}`);
        by.push(answeredBy(r));
      }
      return by;
    } finally { c.close(); }
  }));
  // Dubbo: the real consumer, 3000 async calls over 8 connections, 32 in flight; every reply checked.
  const dubboLoad = runConsumer({ url: `dubbo://127.0.0.1:${port.dubbo}`, arg: 'call-{i}', async: true, calls: 3000, concurrency: 32, connections: 8, summary: true });
  // Redis: the real redis-benchmark, SET and GET, 8 connections, pipelined 4 deep.
  const redisLoad = run('redis-benchmark', ['-p', String(port.redis), '-t', 'set,get', '-n', '20000', '-c', '8', '-P', '4', '-q'], { timeout: 120_000 });
  const [thr, dub, red] = await Promise.all([thriftLoad, dubboLoad, redisLoad]);

  const thrBy = thr.flat().reduce((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {});
  t.diagnostic(`thrift: ${thr.flat().length} calls ${JSON.stringify(thrBy)}; dubbo: ${dub.ok}/${dub.calls} ok, ${dub.errors} errors, ` +
    `${dub.mismatches} mismatches, ${Math.round(dub.throughput)}/s, servers ${JSON.stringify(dub.servers)}; ` +
    `redis: ${red.stdout.replace(/\r/g, '\n').split('\n').filter((l) => /per second/.test(l)).map((l) => l.trim()).join(' | ')}`);
  assert.equal(thr.flat().length, 800);
  for (const by of thr) assert.equal(new Set(by).size, 1, 'a Thrift connection stays on one server');
  assert.equal(dub.calls, 3000);
  assert.equal(dub.ok, 3000);
  assert.equal(dub.errors, 0);
  assert.equal(dub.mismatches, 0);
  assert.doesNotMatch(red.stdout + red.stderr, /error/i);
  assert.match(red.stdout, /GET: [\d.]+ requests per second/);

  await waitFor(async () => (await activeDownstream(envoy)) === 0, { message: 'connections left open' });
  const st = await envoy.stats();
  const m = await envoy.metrics();
  for (const p of ['thrift', 'dubbo', 'redis']) {
    // Each worker's listener stats exist from the listener's start (statPrefix p, concurrency 2).
    const w0 = requireStat(st, `listener.${p}.worker_0.downstream_cx_total`);
    const w1 = requireStat(st, `listener.${p}.worker_1.downstream_cx_total`);
    t.diagnostic(`${p}: worker_0 ${w0} connections, worker_1 ${w1}; decode_error ${m.value(`${p}_decode_error_total`)}, ` +
      `unmatched_response ${m.value(`${p}_unmatched_response_total`)}, wasm_memory_bytes ${m.value(`${p}_wasm_memory_bytes`)}`);
    assert.ok(w0 > 0 && w1 > 0, `${p}: both workers took connections (${w0}, ${w1})`);
    assert.equal(m.value(`${p}_decode_error_total`), 0);
    assert.equal(m.value(`${p}_unmatched_response_total`), 0);
    assert.equal(m.value(`${p}_active_requests`), 0);
  }
  assert.equal(m.get('thrift_responses_total', { meltemi_route: 'hello', meltemi_status: 'reply' }), 800);
  assert.equal(m.get('dubbo_responses_total', { meltemi_route: 'greet', meltemi_status: 'reply' }), 3000);
  const redisCalls = m.get('redis_requests_total', { meltemi_route: 'rest', meltemi_kind: 'call' });
  assert.ok(redisCalls >= 40000);
  assert.equal(m.get('redis_responses_total', { meltemi_route: 'rest', meltemi_status: 'reply' }), redisCalls, 'one Redis reply per command');
});
