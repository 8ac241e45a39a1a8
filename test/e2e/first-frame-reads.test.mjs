// A first request frame that arrives in pieces, through the real Envoy and the real Meltemi filter,
// to real Thrift, Dubbo and Redis servers. The filter holds a new connection until its first frame
// is complete and routes by it (assembly/roles/per-connection.ts, routeFirstRequest), so every way
// the frame can be cut must still be routed by what the whole frame says: byte by byte over the
// header, at each field boundary alone, and at every field boundary at once.
//
// The pieces are forced into separate reads: each is written only once Envoy has read the one
// before (tcpConnect().writeInReads, which watches tcp_proxy's downstream_cx_rx_bytes_total), so
// nothing depends on how the kernel coalesces writes. One connection at a time per Envoy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvoy, meltemiBootstrap, tcpConnect } from '../harness/index.mjs';
import { thriftMesh } from './lib/mesh.mjs';
import { startRedis, cli } from './lib/redis.mjs';
import { startProviders, stopProviders, dubboEnvoy, fixture } from './lib/dubbo-mesh.mjs';

/**
 * A frame as named parts ([what, bytes]): the bytes, and the offsets between parts (field
 * boundaries) with the name of the field that starts there.
 */
function frame(parts) {
  const bytes = Buffer.concat(parts.map(([, b]) => b));
  const boundaries = [];
  let at = 0;
  for (let i = 0; i < parts.length - 1; i++) {
    at += parts[i][1].length;
    boundaries.push({ at, what: `before ${parts[i + 1][0]}` });
  }
  return { bytes, boundaries };
}

/**
 * The ways to cut a frame into reads, as offsets: byte by byte over the first `header` bytes (then
 * the rest in one piece), at each boundary alone (two reads), and at every boundary at once.
 */
function cuts({ bytes, boundaries }, header = bytes.length) {
  const bytewise = Array.from({ length: Math.min(header, bytes.length - 1) }, (_, i) => i + 1);
  return [
    { name: `byte by byte over the first ${bytewise.length} bytes`, offsets: bytewise },
    ...boundaries.map((b) => ({ name: `two reads, cut at byte ${b.at} (${b.what})`, offsets: [b.at] })),
    { name: `a read per field (${boundaries.length + 1} reads)`, offsets: boundaries.map((b) => b.at) },
  ];
}

/** `bytes` cut at `offsets` (ascending). */
function split(bytes, offsets) {
  const ends = [...offsets, bytes.length];
  return ends.map((end, i) => bytes.subarray(i === 0 ? 0 : ends[i - 1], end));
}

/** Connects, writes the chunks in separate reads, and resolves with the first `replyLength` bytes of the answer. */
async function exchangeInReads(t, { port, envoy, chunks, replyLength, read }) {
  const conn = await tcpConnect({ port });
  t.after(() => conn.close());
  await conn.writeInReads(chunks, { readBytes: () => envoy.downstreamRxBytes() });
  const reply = read ? await read(conn) : await conn.read(replyLength, 10_000);
  conn.close();
  return reply;
}

// ---- Thrift ----

const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
const i16 = (n) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const byte = (...v) => Buffer.from(v);
function varint(n) {
  const out = [];
  for (let v = n >>> 0; ; v >>>= 7) {
    if (v < 0x80) { out.push(v); break; }
    out.push((v & 0x7f) | 0x80);
  }
  return Buffer.from(out);
}

/**
 * A Thrift message with one string field (as Apache Thrift writes `sayHello(name)` and its reply),
 * as named parts. type: 1 call, 2 reply; the call's argument is field 1, the reply's value field 0.
 */
function thriftParts({ transport, protocol, type, method, seqid, value }) {
  const name = Buffer.from(method);
  const str = Buffer.from(value);
  const field = type === 1 ? 1 : 0;
  const parts = protocol === 'binary'
    ? [
      ['version and message type', u32(0x80010000 | type)], ['method name length', u32(name.length)], ['method name', name],
      ['seqid', u32(seqid)], ['field type', byte(0x0b)], ['field id', i16(field)], ['string length', u32(str.length)],
      ['string', str], ['field stop', byte(0)],
    ]
    : [
      // Compact: a field id that does not follow the previous one by 1..15 takes the long form.
      ['protocol id', byte(0x82)], ['version and message type', byte((type << 5) | 1)], ['seqid', varint(seqid)],
      ['method name length', varint(name.length)], ['method name', name],
      ...(field === 1 ? [['field header', byte(0x18)]] : [['field type', byte(0x08)], ['field id', byte(0)]]),
      ['string length', varint(str.length)], ['string', str], ['field stop', byte(0)],
    ];
  if (transport === 'framed') parts.unshift(['frame length', u32(parts.reduce((n, [, b]) => n + b.length, 0))]);
  return parts;
}

const byMethod = {
  codec: 'thrift',
  routes: [
    { name: 'hello-to-v2', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }] },
    { name: 'rest-to-v1', route: [{ cluster: 'v1' }] },
  ],
};

for (const transport of ['framed', 'buffered']) {
  for (const protocol of ['binary', 'compact']) {
    const kind = `${transport === 'framed' ? 'framed' : 'unframed'} ${protocol}`;
    test(`Thrift ${kind}: a first call split across reads is routed by its method`, async (t) => {
      const opts = { transport, protocol };
      const mesh = await thriftMesh(t, { plugin: byMethod, servers: { v1: opts, v2: opts } });
      const message = (type, seqid, value) => thriftParts({ transport, protocol, type, method: 'sayHello', seqid, value });
      // Every plan sends its own argument, all of one length: the field boundaries stay put.
      const arg = (i) => `cut${String(i).padStart(2, '0')}`;
      const plans = cuts(frame(message(1, 1, arg(0))));
      for (const [i, plan] of plans.entries()) {
        await t.test(plan.name, async (st) => {
          const chunks = split(frame(message(1, i + 1, arg(i))).bytes, plan.offsets);
          const want = frame(message(2, i + 1, `v2: hello ${arg(i)}`)).bytes;
          const reply = await exchangeInReads(st, { port: mesh.port, envoy: mesh.envoy, chunks, replyLength: want.length });
          assert.deepEqual(reply, want, 'the reply is v2\'s answer to this call');
          assert.deepEqual(mesh.servers.v2.calls.at(-1)?.args, [arg(i)]);
        });
      }
      assert.equal(mesh.servers.v1.calls.length, 0, 'no call reached v1');
      assert.equal(mesh.servers.v2.calls.length, plans.length);
      const s = await mesh.envoy.metrics();
      assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'hello-to-v2' }), plans.length);
      assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'hello-to-v2', meltemi_status: 'reply' }), plans.length);
      assert.equal(s.get('meltemi_decode_error_total'), 0);
      assert.equal(s.get('meltemi_truncated_total'), 0);
      t.diagnostic(`${plans.length} ways to cut a ${frame(message(1, 1, arg(0))).bytes.length}-byte call`);
    });
  }
}

// ---- Dubbo ----

/** End of the Hessian 2 string at `at` (the short forms Dubbo writes for these values). */
function hessianStringEnd(b, at) {
  const tag = b[at];
  if (tag <= 0x1f) return at + 1 + tag;
  if (tag >= 0x30 && tag <= 0x33) return at + 2 + (((tag - 0x30) << 8) | b[at + 1]);
  if (tag === 0x53) return at + 3 + b.readUInt16BE(at + 1);
  throw new Error(`no Hessian string at byte ${at} (0x${tag.toString(16)})`);
}

/** A captured Dubbo request with one String argument, as named parts down to each attachment key and value. */
function dubboParts(bytes) {
  const parts = [];
  let at = 0;
  const take = (what, end) => { parts.push([what, bytes.subarray(at, end)]); at = end; };
  for (const [what, n] of [['magic', 2], ['flags', 1], ['status', 1], ['request id', 8], ['body length', 4]]) take(what, at + n);
  for (const what of ['dubbo version', 'service path', 'service version', 'method name', 'parameter types', 'argument']) {
    take(what, hessianStringEnd(bytes, at));
  }
  assert.equal(bytes[at], 0x48, 'attachments: an untyped Hessian map');
  take('attachments map', at + 1);
  while (bytes[at] !== 0x5a) {
    const key = bytes.subarray(at + 1, hessianStringEnd(bytes, at)).toString('latin1');
    take(`attachment key ${key}`, hessianStringEnd(bytes, at));
    take(`value of ${key}`, hessianStringEnd(bytes, at));
  }
  take('end of map', at + 1);
  assert.equal(at, bytes.length, 'the parts cover the whole frame');
  return parts;
}

test('Dubbo: a first request split across reads is routed by an attachment at the end of its frame', { timeout: 180_000 }, async (t) => {
  const providers = await startProviders({ v1: {}, v2: {} });
  t.after(() => stopProviders(providers));
  const plugin = {
    codec: 'dubbo',
    routes: [
      { name: 'blue', match: { attributes: { 'x-tenant': { exact: 'blue' } } }, route: [{ cluster: 'v2' }] },
      { name: 'rest', route: [{ cluster: 'v1' }] },
    ],
  };
  const mesh = await dubboEnvoy(t, { plugin, providers });
  // Dubbo 3.3.5's own bytes: GreetService sayHello("alice") with attachments x-tenant=blue, x-user=alice.
  const request = await fixture('request-attachments.hex');
  const plans = cuts(frame(dubboParts(request)), 16);
  for (const plan of plans) {
    await t.test(plan.name, async (st) => {
      const reply = await exchangeInReads(st, {
        port: mesh.port, envoy: mesh.envoy, chunks: split(request, plan.offsets),
        read: async (conn) => {
          const header = await conn.read(16, 10_000);
          return { header, body: await conn.read(header.readUInt32BE(12), 10_000) };
        },
      });
      assert.equal(reply.header.readUInt16BE(0), 0xdabb);
      assert.equal(reply.header[3], 20, 'status OK');
      assert.deepEqual(reply.header.subarray(4, 12), request.subarray(4, 12), 'the answer carries the request id');
      assert.match(reply.body.toString('latin1'), /"server":"v2","reply":"hello alice"/);
    });
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'blue' }), plans.length);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'blue', meltemi_status: 'reply' }), plans.length);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'rest' }), undefined, 'no connection went to v1');
  assert.equal(s.get('meltemi_decode_error_total'), 0);
  assert.equal(s.get('meltemi_truncated_total'), 0);
  t.diagnostic(`${plans.length} ways to cut a ${request.length}-byte request`);
});

// ---- Redis ----

test('Redis: a first command split across reads, as an array and inline, is routed by its key', async (t) => {
  const r1 = await startRedis(t);
  const r2 = await startRedis(t);
  assert.equal(await cli(r1.port, ['SET', 'session:42', 'on-r1']), 'OK\n');
  assert.equal(await cli(r2.port, ['SET', 'session:42', 'on-r2']), 'OK\n');
  const plugin = {
    codec: 'redis',
    routes: [
      { name: 'sessions', match: { attributes: { key: { prefix: 'session:' } } }, route: [{ cluster: 'r2' }] },
      { name: 'rest', route: [{ cluster: 'r1' }] },
    ],
  };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: meltemiBootstrap({ plugin, clusters: { r1: [{ port: r1.port }], r2: [{ port: r2.port }] } }),
  });
  const port = await envoy.listenerPort('meltemi');
  const b = (s) => Buffer.from(s);
  const forms = {
    array: frame([
      ['array header', b('*2\r\n')], ['command length', b('$3\r\n')], ['command', b('GET\r\n')],
      ['key length', b('$10\r\n')], ['key', b('session:42\r\n')],
    ]),
    inline: frame([['command', b('GET')], ['space', b(' ')], ['key', b('session:42')], ['line end', b('\r\n')]]),
  };
  const want = b('$5\r\non-r2\r\n');
  let n = 0;
  for (const [form, f] of Object.entries(forms)) {
    for (const plan of cuts(f)) {
      n++;
      await t.test(`${form}: ${plan.name}`, async (st) => {
        const reply = await exchangeInReads(st, { port, envoy, chunks: split(f.bytes, plan.offsets), replyLength: want.length });
        assert.equal(reply.toString(), want.toString(), 'r2 answered');
      });
    }
  }
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'sessions' }), n);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'sessions', meltemi_status: 'reply' }), n);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'rest' }), undefined, 'no connection went to r1');
  assert.equal(s.get('meltemi_decode_error_total'), 0);
  assert.equal(s.get('meltemi_truncated_total'), 0);
});
