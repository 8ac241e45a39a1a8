// Bad input never crashes the filter: a malformed, oversize or truncated frame closes only its own
// connection, is logged and counted, and every other connection carries on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thriftMesh, answeredBy } from './lib/mesh.mjs';
import { startEnvoy, meltemiBootstrap, tcpExchange, tcpConnect, EnvoyStartError } from '../harness/index.mjs';

const plugin = {
  codec: 'thrift',
  maxFrameBytes: 65536,
  routes: [{ name: 'all', route: [{ cluster: 'v1' }] }],
};

/** A framed binary sayHello call (type 1, argument field 1) or reply (type 2, value field 0), as Apache Thrift writes it. */
function framedCall(name, seqid, type = 1) {
  const method = Buffer.from('sayHello');
  const arg = Buffer.from(name);
  const body = Buffer.concat([
    Buffer.from([0x80, 0x01, 0x00, type]), u32(method.length), method, u32(seqid),
    Buffer.from([0x0b, 0x00, type === 1 ? 1 : 0]), u32(arg.length), arg, Buffer.from([0x00]),
  ]);
  return Buffer.concat([u32(body.length), body]);
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

test('garbage closes only its own connection while concurrent good calls all succeed', async (t) => {
  const mesh = await thriftMesh(t, { plugin, concurrency: 2 });
  const good = Array.from({ length: 20 }, async (_, i) => {
    const c = await mesh.client();
    const replies = [];
    for (let k = 0; k < 10; k++) replies.push(await c.sayHello(`c${i}-${k}`));
    return replies;
  });
  const bad = Array.from({ length: 10 }, () =>
    tcpExchange({ port: mesh.port, data: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), timeout: 5000 }));
  const [goodResults, badResults] = await Promise.all([Promise.all(good), Promise.all(bad)]);
  for (const replies of goodResults) {
    assert.equal(replies.length, 10);
    for (const r of replies) assert.equal(answeredBy(r), 'v1');
  }
  for (const r of badResults) {
    assert.equal(r.closedByPeer, true, 'the garbage connection was closed by Envoy');
    assert.equal(r.timedOut, false);
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_decode_error_total'), 10);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'all', meltemi_status: 'reply' }), 200);
  await mesh.envoy.waitForLog(/bad first request frame: thrift: unknown transport or protocol, first bytes 0x474554202f20; closing connection/);
});

test('a hostile length field closes the connection and is counted as frame_too_large', async (t) => {
  const mesh = await thriftMesh(t, { plugin });
  const r = await tcpExchange({ port: mesh.port, data: Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x80, 0x01, 0x00, 0x01]) });
  assert.equal(r.closedByPeer, true);
  assert.equal(await mesh.envoy.metric('meltemi_frame_too_large_total'), 1);
  await mesh.envoy.waitForLog(/thrift: frame length 2147483647 exceeds maxFrameBytes 65536/);
  // An unframed message that keeps growing past the limit is cut off the same way.
  const unframedHead = Buffer.from('800100010000000178000000010b0001000fffff', 'hex');
  const big = await tcpExchange({ port: mesh.port, data: [unframedHead, Buffer.alloc(70000, 0x61)] });
  assert.equal(big.closedByPeer, true);
  assert.equal(await mesh.envoy.metric('meltemi_frame_too_large_total'), 2);
  // The VM is alive: a real client still gets through.
  const c = await mesh.client();
  assert.equal(answeredBy(await c.sayHello('after')), 'v1');
});

test('a bad frame after good ones: the good calls are answered, then the connection closes', async (t) => {
  const mesh = await thriftMesh(t, { plugin });
  const conn = await tcpConnect({ port: mesh.port });
  t.after(() => conn.close());
  conn.write(framedCall('first', 1));
  const want = framedCall('v1: hello first', 1, 2);
  assert.deepEqual(await conn.read(want.length, 5000), want, 'v1\'s reply to the first call, byte for byte');
  conn.write(Buffer.concat([framedCall('second', 2), Buffer.from('0000000e8001000900000001780000000100', 'hex')]));
  assert.equal(await conn.waitForClose(5000), true);
  assert.equal(conn.closedByPeer, true);
  assert.deepEqual(conn.received(), Buffer.concat([want, framedCall('v1: hello second', 2, 2)]), 'the second call was answered before the close, and nothing else came');
  assert.deepEqual(mesh.servers.v1.calls.map((c) => c.args[0]), ['first', 'second']);
  await mesh.envoy.waitForLog(/thrift: unknown message type 9/);
  assert.equal(await mesh.envoy.metric('meltemi_decode_error_total'), 1);
});

test('a client that hangs up inside its first frame is closed and counted as truncated', async (t) => {
  const mesh = await thriftMesh(t, { plugin });
  const half = framedCall('half', 1).subarray(0, 10);
  const r = await tcpExchange({ port: mesh.port, data: half, endAfterWrite: true });
  assert.equal(r.closedByPeer, true);
  assert.equal(await mesh.envoy.metric('meltemi_truncated_total'), 1);
  assert.equal(mesh.servers.v1.calls.length, 0);
});

test('a bad plugin config is rejected at configure time, naming the field', async (t) => {
  const bad = { ...plugin, routes: [{ name: 'r', route: [{ cluster: 'v1', weight: 'heavy' }] }] };
  await assert.rejects(
    startEnvoy({ t, config: meltemiBootstrap({ plugin: bad, clusters: { v1: [{ port: 1 }] } }) }),
    (err) => {
      assert.ok(err instanceof EnvoyStartError, String(err));
      assert.match(err.message + err.logs, /meltemi: invalid plugin configuration: routes\[0\]\.route\[0\]\.weight: expected an integer in \[0, 1000000\], got "heavy"/);
      return true;
    },
  );
  await assert.rejects(
    startEnvoy({ t, config: meltemiBootstrap({ plugin: '{"codec": "thrift", "routes": [', clusters: { v1: [{ port: 1 }] } }) }),
    (err) => /invalid plugin configuration: invalid JSON/.test(err.message + err.logs),
  );
});
