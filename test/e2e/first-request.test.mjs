// The wait for the first request, which picks a per-connection route: a first request larger
// than Envoy's listener buffer (per_connection_buffer_limit_bytes, 1 MiB by default) but within
// maxFrameBytes is routed; one over maxFrameBytes is refused at once, framed or not; a client
// that goes quiet is closed after firstRequestTimeoutMs; a client that closes is released; a
// connection that closes without a byte (a TCP health check, a port scan) is counted apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thriftMesh, answeredBy } from './lib/mesh.mjs';
import { startEnvoy, meltemiBootstrap, tcpConnect, tcpExchange, waitFor, delay } from '../harness/index.mjs';
import { startThriftServer } from '../peers/thrift/index.mjs';

const routes = [{ name: 'all', route: [{ cluster: 'v1' }] }];

/** Thrift binary message header + one string field 1 of `payloadLength` bytes (no stop byte, no frame). */
function callHead(method, seqid, payloadLength) {
  const name = Buffer.from(method);
  return Buffer.concat([
    Buffer.from([0x80, 0x01, 0x00, 0x01]), u32(name.length), name, u32(seqid),
    Buffer.from([0x0b, 0x00, 0x01]), u32(payloadLength),
  ]);
}

/** A whole framed binary Greeter.sayHello(name) call. */
function framedSayHello(name, seqid) {
  const body = Buffer.concat([callHead('sayHello', seqid, Buffer.byteLength(name)), Buffer.from(name), Buffer.from([0x00])]);
  return Buffer.concat([u32(body.length), body]);
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Client connections Envoy holds open on its listeners (per-listener totals, not per worker). */
async function activeDownstream(envoy) {
  let n = 0;
  for (const [k, v] of await envoy.stats()) {
    if (k.startsWith('listener.') && k.endsWith('.downstream_cx_active') && !k.includes('admin') && !k.includes('.worker_')) n += v;
  }
  return n;
}

test('a framed first request over the 1 MiB listener buffer but within maxFrameBytes is routed and answered', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', routes }, servers: { v1: {} } });
  const c = await mesh.client({ timeout: 10000 });
  for (const n of [1_048_000, 1_100_000, 3_000_000]) {
    const payload = 'x'.repeat(n);
    const reply = await c.echo(payload);
    assert.ok(reply === payload, `echo of ${n} bytes came back whole`);
  }
  assert.equal(await mesh.envoy.metric('meltemi_route_connections_total', { meltemi_route: 'all' }), 1);
  // A second connection whose first call is the big one (the first call above routed alone).
  const d = await mesh.client({ timeout: 10000 });
  const big = 'y'.repeat(2_000_000);
  assert.ok((await d.echo(big)) === big, 'a 2 MB first call on a fresh connection is answered');
  assert.equal(await mesh.envoy.metric('meltemi_route_connections_total', { meltemi_route: 'all' }), 2);
  assert.equal(await mesh.envoy.metric('meltemi_requests_total', { meltemi_route: 'all', meltemi_kind: 'call' }), 4);
});

test('an unframed first request of the same size is routed too', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', routes }, servers: { v1: { transport: 'buffered' } } });
  const c = await mesh.client({ timeout: 10000 });
  const payload = 'z'.repeat(1_500_000);
  assert.ok((await c.echo(payload)) === payload, 'a 1.5 MB unframed first call is answered');
});

test('a first request over maxFrameBytes is refused at once, framed or unframed, and counted', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', routes }, servers: { v1: { transport: 'buffered' } } });
  // Unframed: the message keeps growing past 4 MiB (the default maxFrameBytes); the codec only
  // knows once it has seen that many bytes.
  const head = callHead('echo', 1, 6_000_000);
  const r = await tcpExchange({ port: mesh.port, data: [head, Buffer.alloc(6_000_000, 0x61)], timeout: 8000 });
  assert.equal(r.timedOut, false, 'the connection was closed, not left hanging');
  assert.equal(r.closedByPeer, true);
  assert.equal(await mesh.envoy.metric('meltemi_frame_too_large_total'), 1);
  await mesh.envoy.waitForLog(/exceeds maxFrameBytes 4194304/);
  // Framed, declaring 5 MB: refused from its length field.
  const framed = await tcpExchange({ port: mesh.port, data: [u32(5_000_000), head, Buffer.alloc(2_000_000, 0x61)], timeout: 8000 });
  assert.equal(framed.closedByPeer, true);
  assert.equal(await mesh.envoy.metric('meltemi_frame_too_large_total'), 2);
  await waitFor(async () => (await activeDownstream(mesh.envoy)) === 0, { message: 'connections released' });
});

test('a client that closes while its big first request is incomplete is released and counted as truncated', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', routes }, servers: { v1: {} } });
  const conn = await tcpConnect({ port: mesh.port });
  // A framed call declaring 3 MB, of which 2 MB arrive: more than Envoy's listener buffer.
  conn.write(Buffer.concat([u32(3_000_000), callHead('echo', 1, 3_000_000 - 23), Buffer.alloc(2_000_000, 0x62)]));
  await delay(500);
  conn.socket.end();
  await waitFor(async () => (await activeDownstream(mesh.envoy)) === 0, { timeout: 5000, message: 'Envoy released the connection' });
  await waitFor(async () => (await mesh.envoy.metric('meltemi_truncated_total')) === 1, { message: 'truncated counted' });
  conn.close();
});

test('a connection without a complete first request is closed after firstRequestTimeoutMs; a routed one is not', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', firstRequestTimeoutMs: 400, routes }, servers: { v1: {} } });
  const started = Date.now();
  const quiet = await tcpConnect({ port: mesh.port });
  quiet.write(Buffer.from([0x00, 0x00, 0x00]));
  assert.equal(await quiet.waitForClose(3000), true, 'Envoy closed the quiet connection');
  const took = Date.now() - started;
  assert.ok(took >= 380 && took < 2000, `closed after ${took} ms`);
  assert.equal(await mesh.envoy.metric('meltemi_first_request_timeout_total'), 1);
  await mesh.envoy.waitForLog(/meltemi conn=\d+\.\d+: no complete first request within firstRequestTimeoutMs 400 \(3 bytes received\); closing connection/);
  // A connection whose first request came in time stays open past the deadline.
  const c = await mesh.client();
  assert.equal(answeredBy(await c.sayHello('early')), 'v1');
  await delay(700);
  assert.equal(answeredBy(await c.sayHello('late')), 'v1');
  assert.equal(await mesh.envoy.metric('meltemi_first_request_timeout_total'), 1);
  await waitFor(async () => (await activeDownstream(mesh.envoy)) === 1, { message: 'only the routed connection is open' });
});

test("tcp_proxy's idle_timeout does not cover the wait for the first request; firstRequestTimeoutMs 0 waits for ever", async (t) => {
  const v1 = await startThriftServer({ name: 'v1' });
  t.after(() => v1.stop());
  const config = meltemiBootstrap({ plugin: { codec: 'thrift', firstRequestTimeoutMs: 0, routes }, clusters: { v1: [{ port: v1.port }] } });
  const tcpProxy = config.static_resources.listeners[0].filter_chains[0].filters[1].typed_config;
  tcpProxy.idle_timeout = '0.3s';
  const envoy = await startEnvoy({ t, logLevel: 'warning', componentLogLevel: 'wasm:info', config });
  const port = await envoy.listenerPort('meltemi');
  const quiet = await tcpConnect({ port });
  t.after(() => quiet.close());
  quiet.write(Buffer.from([0x00, 0x00, 0x00]));
  assert.equal(await quiet.waitForClose(1500), false, 'still open well past idle_timeout');
  // Once routed, idle_timeout applies: the rest of the call arrives, is answered, then the idle connection closes.
  assert.equal(await envoy.value('meltemi_first_request_timeout_total'), 0);
  quiet.write(framedSayHello('q', 1).subarray(3));
  await quiet.read(4, 3000);
  assert.equal(await quiet.waitForClose(3000), true, 'closed by idle_timeout once tcp_proxy runs');
});

test('a connection that closes without sending a byte counts as empty_connection, not truncated', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', routes }, servers: { v1: {} } });
  for (let i = 0; i < 3; i++) {
    const r = await tcpExchange({ port: mesh.port, data: [], endAfterWrite: true, timeout: 3000 });
    assert.equal(r.timedOut, false);
  }
  await waitFor(async () => (await mesh.envoy.metric('meltemi_empty_connection_total')) === 3, { message: 'empty_connection counted' });
  assert.equal(await mesh.envoy.value('meltemi_truncated_total'), 0);
  assert.doesNotMatch(mesh.envoy.logs(), /client closed before a complete first request/);
  // A client that sent something and closed is still truncated.
  await tcpExchange({ port: mesh.port, data: [Buffer.from([0x00, 0x00])], endAfterWrite: true, timeout: 3000 });
  await waitFor(async () => (await mesh.envoy.metric('meltemi_truncated_total')) === 1, { message: 'truncated counted' });
});
