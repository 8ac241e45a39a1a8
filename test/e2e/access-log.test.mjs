// The access log with the real Envoy and real Apache Thrift servers: per connection, the filter's
// one JSON line per request in Envoy's wasm logger; per request, Envoy's own HTTP access log of
// every call (the controller's rendering, controller/src/access-log.mts) next to the server role's
// lines. Each line parses, names the route, cluster and status of its own call, and a client's
// hostile metadata (quotes, backslashes, control bytes, bad UTF-8) stays inside its JSON string.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEnvoy, perRequestBootstrap, tcpExchange, waitFor } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { thriftMesh, answeredBy } from './lib/mesh.mjs';
import { accessEntries } from './lib/access-log.mjs';

const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };

/** A framed binary Thrift call of `method` (raw bytes) with no arguments, as Apache Thrift writes one. */
function framedCall(method, seqid) {
  const body = Buffer.concat([Buffer.from([0x80, 0x01, 0x00, 0x01]), u32(method.length), method, u32(seqid), Buffer.from([0x00])]);
  return Buffer.concat([u32(body.length), body]);
}

// What a hostile client can put in a method name: JSON's specials, control bytes, text that looks
// like the line's own fields, valid multi-byte UTF-8, then a byte that is not UTF-8 at all.
// (No colon: Thrift reads `Service:method` as a multiplexed call's service and method.)
const HOSTILE_TEXT = 'ev"il\\ "},"status" "forged\n\r\t\x01\x1f é 😀';
const HOSTILE = Buffer.concat([Buffer.from(HOSTILE_TEXT, 'utf8'), Buffer.from([0xff])]);
// Per request, a value with control bytes never becomes a header (call-headers.ts); this one does.
const HOSTILE_HEADER_TEXT = 'ev"il\\ "},"status" "forged é';

/** Sends a call of `method` (bytes) on its own connection; resolves to the frame and the bytes the client got back. */
async function hostileCall(port, method = HOSTILE) {
  const frame = framedCall(method, 77);
  const r = await tcpExchange({ port, data: [frame], until: (d) => d.length >= 4 && d.length >= 4 + d.readUInt32BE(0) });
  assert.ok(r.data.length > 4, `an answer came back (${r.data.length} bytes)`);
  return { frame, answer: r.data };
}

function assertHostileEntry(e, frame, text = HOSTILE_TEXT) {
  assert.ok(e.method.startsWith(text), `the method survives as one string: ${JSON.stringify(e.method)}`);
  assert.equal(e.meta.method, e.method);
  assert.equal(e.status, 'exception', 'the server answered the unknown method with an exception (not the forged status)');
  assert.equal(e.id, 77);
  assert.equal(e.request_bytes, frame.length);
}

test('per connection: one JSON line per request with peer, route, cluster, operation, status, duration and sizes; hostile metadata stays escaped', async (t) => {
  const mesh = await thriftMesh(t, {
    plugin: {
      codec: 'thrift', accessLog: true,
      routes: [
        { name: 'canary', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v1', weight: 20 }, { cluster: 'v2', weight: 80 }] },
        { name: 'rest', route: [{ cluster: 'v1' }] },
      ],
    },
  });
  // Per connection the split picks one cluster for the connection: every line of ONE connection names it.
  const picked = [];
  for (let i = 0; i < 4; i++) {
    const c = await mesh.client();
    picked.push(answeredBy(await c.sayHello(`c${i}`)));
    assert.equal(await c.echo('same connection'), 'same connection');
    await assert.rejects(c.add(-1, 1), (e) => e.code === 1, 'an application exception');
    await c.close();
  }
  const { frame, answer } = await hostileCall(mesh.port);
  const entries = await waitFor(() => {
    const found = accessEntries(mesh.envoy.logs());
    return found.length >= 13 ? found : null;
  }, { message: '13 access lines' });
  t.diagnostic(entries.slice(0, 3).map((e) => JSON.stringify(e)).join('\n'));
  t.diagnostic(`hostile: ${JSON.stringify(entries.at(-1))}`);
  assert.equal(entries.length, 13, 'three calls on each of four connections, and the hostile call');

  const byConn = new Map();
  for (const e of entries.slice(0, 12)) byConn.set(e.conn, [...(byConn.get(e.conn) ?? []), e]);
  assert.equal(byConn.size, 4, 'four connections, each with its own conn');
  [...byConn.values()].forEach((lines, i) => {
    assert.deepEqual(lines.map((e) => [e.method, e.status]), [['sayHello', 'reply'], ['echo', 'reply'], ['add', 'exception']]);
    for (const e of lines) {
      assert.equal(e.route, 'canary', 'the connection\'s route, taken by its first request');
      assert.equal(e.cluster, picked[i], 'the cluster that answered this connection');
      assert.match(e.peer, /^127\.0\.0\.1:\d+$/);
      assert.equal(e.peer, lines[0].peer, 'one client address per connection');
      assert.equal(e.service, null, 'not multiplexed: no service name');
      assert.ok(Number.isInteger(e.duration_ms) && e.duration_ms >= 0);
      assert.ok(e.request_bytes > 20 && e.response_bytes > 20, `sizes ${e.request_bytes}/${e.response_bytes}`);
      assert.ok(Math.abs(Date.parse(e.start_time) - Date.now()) < 60_000, `start_time ${e.start_time}`);
    }
  });
  assert.equal(new Set(entries.slice(0, 12).map((e) => e.peer)).size, 4, 'each connection its own client port');

  const hostile = entries.at(-1);
  assertHostileEntry(hostile, frame);
  assert.equal(hostile.route, 'rest');
  assert.equal(hostile.response_bytes, answer.length);
  assert.equal(hostile.forged, undefined);
});

async function servers(t, names) {
  const out = {};
  for (const name of names) {
    out[name] = await startThriftServer({ name });
    t.after(() => out[name].stop());
  }
  return out;
}

test('per request: Envoy writes one JSON line per call to the access log file (route, cluster, status) for a 20/80 split on ONE connection, and the server role its own', async (t) => {
  const s = await servers(t, ['v1', 'v2']);
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-access-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'calls.log');
  const plugin = {
    codec: 'thrift', mode: 'perRequest', accessLog: true,
    routes: [
      { name: 'split', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'v1', weight: 20 }, { cluster: 'v2', weight: 80 }] },
      { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }] },
      { name: 'evil', match: { attributes: { method: { prefix: 'ev' } } }, route: [{ cluster: 'v1' }] },
    ],
  };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    // Envoy writes access log files in batches, every 10 s by default: flush sooner, for the test.
    extraArgs: ['--file-flush-interval-msec', '100'],
    config: await perRequestBootstrap({ plugin, clusters: { v1: [{ port: s.v1.port }], v2: [{ port: s.v2.port }] }, accessLog: { path } }),
  });
  const port = await envoy.listenerPort('meltemi');
  const c = await thriftClient({ port });
  t.after(() => c.close());
  const n = 100;
  await Promise.all(Array.from({ length: n }, (_, i) => c.echo(`call ${i}`)));
  assert.equal(answeredBy(await c.sayHello('bob')), 'v2');
  await assert.rejects(c.add(2, 3), /no route|404/, 'no route for add: Envoy answers 404, the client gets the protocol error');
  const control = await hostileCall(port);
  const { frame } = await hostileCall(port, Buffer.from(HOSTILE_HEADER_TEXT));
  const v1 = s.v1.calls.filter((x) => x.method === 'echo').length;
  const v2 = s.v2.calls.filter((x) => x.method === 'echo').length;
  t.diagnostic(`echo: v1 ${v1} / v2 ${v2} of ${n}`);
  assert.equal(v1 + v2, n);

  // Envoy's access log: one line per call, JSON, flushed to the file within a second or so.
  const calls = await waitFor(() => {
    if (!existsSync(path)) return null;
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    return lines.length >= n + 4 ? lines.map((l) => JSON.parse(l)) : null;
  }, { timeout: 10_000, message: `${n + 4} lines in ${path}` });
  t.diagnostic(`envoy: ${JSON.stringify(calls[0])}`);
  assert.equal(calls.length, n + 4);
  const echoes = calls.filter((e) => e.operation === '/-/echo');
  assert.equal(echoes.length, n);
  for (const e of echoes) {
    assert.equal(e.route, 'split');
    assert.equal(e.response_code, 200);
    assert.equal(e.status, 'reply');
    assert.match(e.peer, /^127\.0\.0\.1:\d+$/);
    assert.ok(Number.isInteger(e.duration_ms) && e.request_bytes > 0 && e.response_bytes > 0);
  }
  assert.equal(new Set(echoes.map((e) => e.peer)).size, 1, 'every call came over ONE client connection');
  assert.equal(echoes.filter((e) => e.cluster === 'v1').length, v1, 'v1\'s lines are the calls v1 answered');
  assert.equal(echoes.filter((e) => e.cluster === 'v2').length, v2, 'v2\'s lines are the calls v2 answered');
  const hello = calls.find((e) => e.operation === '/-/sayHello');
  assert.deepEqual([hello.route, hello.cluster, hello.response_code, hello.status], ['hello', 'v2', 200, 'reply']);
  const noRoute = calls.find((e) => e.operation === '/-/add');
  t.diagnostic(`no route: ${JSON.stringify(noRoute)}`);
  assert.equal(noRoute.response_code, 404);
  assert.equal(noRoute.status, null, 'Envoy answered itself: no protocol status');
  assert.equal(noRoute.cluster, null);
  const evil = calls.find((e) => e.route === 'evil');
  assert.deepEqual([evil.cluster, evil.response_code, evil.status], ['v1', 200, 'exception']);
  assert.ok(evil.operation.startsWith('/-/ev%22il%5C%20%22%7D'), `the path is percent-encoded: ${evil.operation}`);
  // Control bytes keep the method out of the headers: no route matches, Envoy answers 404.
  const unroutable = calls.filter((e) => e.response_code === 404 && e.operation !== '/-/add');
  assert.equal(unroutable.length, 1);
  assert.ok(unroutable[0].operation.startsWith('/-/ev%22il%5C%20%22%7D,%22status%22%20%22forged%0A%0D%09%01%1F'), unroutable[0].operation);
  assert.ok(control.answer.length > 4, 'the client got the protocol\'s no-route error');

  // The server role's own lines (Envoy's wasm logger): the same split, the hostile metadata escaped.
  const served = await waitFor(() => {
    const found = accessEntries(envoy.logs());
    return found.length >= n + 2 ? found : null;
  }, { message: `${n + 2} server role lines` });
  const served1 = served.filter((e) => e.method === 'echo');
  assert.equal(served1.filter((e) => e.route === 'split' && e.cluster === 'v1' && e.status === 'reply').length, v1);
  assert.equal(served1.filter((e) => e.route === 'split' && e.cluster === 'v2' && e.status === 'reply').length, v2);
  for (const e of served1) assert.match(e.peer, new RegExp(`^${echoes[0].peer.replace(/\./g, '\\.')}$`), 'the client\'s address, from x-meltemi-peer');
  const hostile = served.find((e) => e.route === 'evil');
  assertHostileEntry(hostile, frame, HOSTILE_HEADER_TEXT);
  assert.equal(hostile.method, HOSTILE_HEADER_TEXT);
});
