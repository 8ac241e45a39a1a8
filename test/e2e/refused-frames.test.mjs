// Once the filter refuses a frame, not one byte of it, nor anything after it, reaches the other
// side. A server reply over maxFrameBytes carries bytes the server does not control (a stored
// value, a user's payload): if they leaked past the refusal, the client would parse them as
// replies of their own; a client request over it carries bytes the client controls, which the
// server would run as requests. One test per codec and direction; Redis with a real redis-server
// holding the value, Thrift and Dubbo with a hostile upstream that writes an oversize reply
// embedding a valid one, or a recording upstream that must see nothing of an oversize request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startEnvoy, meltemiBootstrap, tcpExchange, tcpConnect, withTimeout } from '../harness/index.mjs';
import { startRedis, cli } from './lib/redis.mjs';
import { fixture } from './lib/dubbo-mesh.mjs';

const MAX_FRAME = 65536;

/** A TCP server on a free loopback port running `onSocket` per connection; closed, with its connections, when `t` ends. */
async function upstream(t, onSocket) {
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    onSocket(sock);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(resolve);
  }));
  return server.address().port;
}

/** An upstream that answers the first bytes it reads with `reply` (one write), then stays open. */
function hostileUpstream(t, reply) {
  return upstream(t, (sock) => sock.once('data', () => sock.write(reply)));
}

/**
 * An upstream that records every byte it reads and answers `reply` once it has read `first`
 * bytes: the client's first request, answered so that the connection is routed and owes nothing.
 */
async function recordingUpstream(t, first, reply) {
  let received = Buffer.alloc(0);
  let closed;
  const ended = new Promise((resolve) => { closed = resolve; });
  const port = await upstream(t, (sock) => {
    sock.on('close', () => closed());
    let answered = false;
    sock.on('data', (c) => {
      received = Buffer.concat([received, c]);
      if (!answered && received.length >= first) {
        answered = true;
        sock.write(reply);
      }
    });
  });
  // `ended`: its connection closed, so what it received is all it will ever receive.
  return { port, received: () => received, ended };
}

/**
 * On a routed connection: `good` is forwarded and answered with `reply`, then `oversize` (a
 * request over MAX_FRAME whose body embeds valid requests) is refused; the upstream must have read
 * `good` and not one byte more.
 */
async function refusedRequest(t, codec, { good, reply, oversize, log }) {
  const upstream = await recordingUpstream(t, good.length, reply);
  const { envoy, port } = await meltemi(t, codec, upstream.port);
  const conn = await tcpConnect({ port });
  t.after(() => conn.close());
  conn.write(good);
  assert.deepEqual(await conn.read(reply.length, 5000), reply, 'the first request was forwarded and answered');
  conn.write(oversize);
  assert.equal(await conn.waitForClose(10_000), true, 'the connection was closed');
  await envoy.waitForLog(log);
  assert.equal(await envoy.metric('meltemi_frame_too_large_total'), 1);
  // Once tcp_proxy has closed the upstream connection, what the upstream read is final.
  await withTimeout(upstream.ended, 10_000, 'the upstream connection closing');
  const got = upstream.received();
  assert.equal(got.length, good.length, `the upstream read ${got.length - good.length} bytes of the refused request`);
  assert.deepEqual(got, good);
  assert.deepEqual(conn.received(), reply, 'nothing else reached the client');
}

async function meltemi(t, codec, port) {
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: meltemiBootstrap({
      plugin: { codec, maxFrameBytes: MAX_FRAME, routes: [{ name: 'all', route: [{ cluster: 'up' }] }] },
      clusters: { up: [{ port }] },
    }),
  });
  return { envoy, port: await envoy.listenerPort('meltemi') };
}

/** A large body with `inner` embedded at `at` bytes: what a hostile or unlucky reply carries. */
function payloadWith(size, at, inner) {
  const body = Buffer.alloc(size, 0x61);
  inner.copy(body, at);
  return body;
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

test('redis: a reply over maxFrameBytes reaches the client as nothing, not as the value\'s bytes', async (t) => {
  const redis = await startRedis(t);
  // The value holds what a client would parse as replies of its own.
  const evil = payloadWith(5 << 20, 1 << 20, Buffer.from('+INJECTED\r\n+INJECTED\r\n+INJECTED\r\n'));
  const set = Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$4\r\nevil\r\n$${evil.length}\r\n`), evil, Buffer.from('\r\n')]);
  const stored = await tcpExchange({ port: redis.port, data: set, until: (b) => b.includes('\r\n') });
  assert.equal(stored.data.toString(), '+OK\r\n');
  assert.equal(await cli(redis.port, ['SET', 'other', 'fine']), 'OK\n');

  const { envoy, port } = await meltemi(t, 'redis', redis.port);
  const r = await tcpExchange({ port, data: 'GET evil\r\nGET other\r\nINCR counter\r\n', timeout: 10_000 });
  assert.equal(r.timedOut, false, 'the connection was closed');
  assert.equal(r.closedByPeer, true);
  assert.equal(r.data.length, 0, `the client received ${r.data.length} bytes: ${r.data.subarray(0, 64).toString()}`);
  await envoy.waitForLog(/bad response frame: redis: bulk length 5242880 exceeds maxFrameBytes 65536; closing connection/);
  assert.equal(await envoy.metric('meltemi_frame_too_large_total'), 1);
});

test('thrift: an oversize reply frame never reaches the client, nor the valid reply inside it', async (t) => {
  // A framed binary reply to sayHello seqid 1, embedded in an oversize frame's body.
  const method = Buffer.from('sayHello');
  const result = Buffer.from('INJECTED');
  const inner = Buffer.concat([
    Buffer.from([0x80, 0x01, 0x00, 0x02]), u32(method.length), method, u32(1),
    Buffer.from([0x0b, 0x00, 0x00]), u32(result.length), result, Buffer.from([0x00, 0x00]),
  ]);
  const innerFrame = Buffer.concat([u32(inner.length), inner]);
  // The body starts like a real reply (so that the length is what the filter refuses).
  const body = payloadWith(1 << 20, 256 << 10, Buffer.concat([innerFrame, innerFrame]));
  inner.copy(body, 0);
  const upstream = await hostileUpstream(t, Buffer.concat([u32(body.length), body]));
  const { envoy, port } = await meltemi(t, 'thrift', upstream);

  const arg = Buffer.from('alice');
  const call = Buffer.concat([
    Buffer.from([0x80, 0x01, 0x00, 0x01]), u32(method.length), method, u32(1),
    Buffer.from([0x0b, 0x00, 0x01]), u32(arg.length), arg, Buffer.from([0x00]),
  ]);
  const r = await tcpExchange({ port, data: Buffer.concat([u32(call.length), call]), timeout: 10_000 });
  assert.equal(r.timedOut, false, 'the connection was closed');
  assert.equal(r.data.length, 0, `the client received ${r.data.length} bytes`);
  await envoy.waitForLog(/bad response frame: thrift: frame length 1048576 exceeds maxFrameBytes 65536; closing connection/);
});

test('dubbo: an oversize response never reaches the client, nor the valid response inside it', async (t) => {
  const request = await fixture('request-attachments.hex');
  const response = await fixture('response-value.hex');
  const body = payloadWith(1 << 20, 300 << 10, Buffer.concat([response, response]));
  const header = Buffer.from(response.subarray(0, 16));
  header.writeUInt32BE(body.length, 12);
  const upstream = await hostileUpstream(t, Buffer.concat([header, body]));
  const { envoy, port } = await meltemi(t, 'dubbo', upstream);

  const r = await tcpExchange({ port, data: request, timeout: 10_000 });
  assert.equal(r.timedOut, false, 'the connection was closed');
  assert.equal(r.data.length, 0, `the client received ${r.data.length} bytes`);
  await envoy.waitForLog(/bad response frame: dubbo: .*exceeds maxFrameBytes 65536; closing connection/);
});

test('redis: a refused request never reaches the server, nor the commands inside its body', async (t) => {
  const redis = await startRedis(t);
  assert.equal(await cli(redis.port, ['SET', 'a', 'kept']), 'OK\n');
  const { envoy, port } = await meltemi(t, 'redis', redis.port);
  // An oversize bulk whose body holds a FLUSHALL every 4 KiB: whichever read of it leaked, redis
  // would run the next one.
  const body = Buffer.alloc(1 << 20, 0x61);
  for (let at = 0; at < body.length; at += 4096) body.write('*1\r\n$8\r\nFLUSHALL\r\n', at);
  const oversize = Buffer.concat([Buffer.from(`*2\r\n$3\r\nGET\r\n$${body.length}\r\n`), body, Buffer.from('\r\n')]);
  const r = await tcpExchange({ port, data: [Buffer.from('GET a\r\n'), oversize], timeout: 10_000 });
  assert.equal(r.closedByPeer, true);
  assert.equal(r.data.toString(), '$4\r\nkept\r\n', 'the command before the refused one is answered');
  await envoy.waitForLog(/bad request frame: redis: bulk length 1048576 exceeds maxFrameBytes 65536/);
  assert.equal(await cli(redis.port, ['GET', 'a']), 'kept\n', 'no FLUSHALL reached the server');
});

test('thrift: a refused request never reaches the server, nor the calls inside its body', async (t) => {
  const method = Buffer.from('sayHello');
  const call = (seqid, arg) => {
    const a = Buffer.from(arg);
    const body = Buffer.concat([
      Buffer.from([0x80, 0x01, 0x00, 0x01]), u32(method.length), method, u32(seqid),
      Buffer.from([0x0b, 0x00, 0x01]), u32(a.length), a, Buffer.from([0x00]),
    ]);
    return Buffer.concat([u32(body.length), body]);
  };
  const result = Buffer.from('hello first');
  const replyBody = Buffer.concat([
    Buffer.from([0x80, 0x01, 0x00, 0x02]), u32(method.length), method, u32(1),
    Buffer.from([0x0b, 0x00, 0x00]), u32(result.length), result, Buffer.from([0x00, 0x00]),
  ]);
  // A frame of 1 MiB + 4 that starts as a real call, with whole framed calls inside its body.
  const injected = Buffer.concat([call(3, 'INJECTED'), call(4, 'INJECTED')]);
  const body = payloadWith(1 << 20, 256 << 10, injected);
  call(2, 'big').subarray(4, 30).copy(body, 0);
  await refusedRequest(t, 'thrift', {
    good: call(1, 'first'),
    reply: Buffer.concat([u32(replyBody.length), replyBody]),
    oversize: Buffer.concat([u32(body.length), body]),
    log: /bad request frame: thrift: frame length 1048576 exceeds maxFrameBytes 65536; closing connection/,
  });
});

test('dubbo: a refused request never reaches the server, nor the requests inside its body', async (t) => {
  const request = await fixture('request-attachments.hex');
  // A request header declaring a 1 MiB body, with whole requests inside the body.
  const body = payloadWith(1 << 20, 300 << 10, Buffer.concat([request, request]));
  request.copy(body, 0, 16, 64);
  const header = Buffer.from(request.subarray(0, 16));
  header.writeUInt32BE(body.length, 12);
  await refusedRequest(t, 'dubbo', {
    good: request,
    reply: await fixture('response-value.hex'),
    oversize: Buffer.concat([header, body]),
    log: /bad request frame: dubbo: .*exceeds maxFrameBytes 65536; closing connection/,
  });
});

test('redis: not one byte of a refused request reaches the server', async (t) => {
  // The test above shows what a real redis-server would run; this one counts the bytes it reads.
  const body = Buffer.alloc(1 << 20, 0x61);
  for (let at = 0; at < body.length; at += 4096) body.write('*1\r\n$8\r\nFLUSHALL\r\n', at);
  await refusedRequest(t, 'redis', {
    good: Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\na\r\n'),
    reply: Buffer.from('$4\r\nkept\r\n'),
    oversize: Buffer.concat([Buffer.from(`*2\r\n$3\r\nGET\r\n$${body.length}\r\n`), body, Buffer.from('\r\n')]),
    log: /bad request frame: redis: bulk length 1048576 exceeds maxFrameBytes 65536; closing connection/,
  });
});
