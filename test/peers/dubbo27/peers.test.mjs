// The Apache Dubbo 2.7.23 peers against themselves and against the 3.3.5 peers, directly (no
// Envoy, no Meltemi): 2.7 -> 2.7, 2.7 -> 3.3.5 and 3.3.5 -> 2.7. What fails here is a peer or an
// interoperability problem between the two Dubbo releases, not Meltemi's.
//   node --test test/peers/dubbo27/
//
// A small TCP relay sits in front of each provider and splits what crosses it into Dubbo frames,
// so the tests can also say what went over the wire (request ids, heartbeat events, oneway flags).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ensureBuilt, startProvider, runConsumer } from '../dubbo/index.mjs';

const GREET = 'dev.meltemi.demo.GreetService';
const ORDER = 'dev.meltemi.demo.OrderService';

let p27; // Dubbo 2.7.23 provider
let p33; // Dubbo 3.3.5 provider

before(async () => {
  ensureBuilt('3', '2.7'); // no-op when the jars are fresh
  // Both export every service without a group and in group gold, at versions 1.0.0 and 2.0.0.
  // heartbeatMs 1000: each closes a connection idle for 3 s (3x), so the heartbeat test proves
  // that the other version's heartbeats count as traffic.
  const common = { group: ',gold', version: '1.0.0,2.0.0', heartbeatMs: 1000 };
  [p27, p33] = await Promise.all([
    startProvider({ dubbo: '2.7', name: 'p27', jitterMs: 3, replyAttachments: { 'x-from': 'p27' }, ...common }),
    startProvider({ name: 'p33', jitterMs: 3, replyAttachments: { 'x-from': 'p33' }, ...common }),
  ]);
}, { timeout: 15 * 60_000 });

after(async () => { await Promise.all([p27?.stop(), p33?.stop()]); });

const JVM = { timeout: 120_000 };

/** A relay to `port` that records each connection's bytes per direction. */
async function relay(port) {
  const conns = [];
  const sockets = new Set();
  const server = net.createServer((down) => {
    const rec = { c2s: [], s2c: [] };
    conns.push(rec);
    const up = net.connect(port, '127.0.0.1');
    for (const s of [down, up]) { sockets.add(s); s.on('close', () => sockets.delete(s)); }
    down.on('data', (d) => { rec.c2s.push(d); up.write(d); });
    up.on('data', (d) => { rec.s2c.push(d); down.write(d); });
    down.on('end', () => up.end()); up.on('end', () => down.end());
    down.on('error', () => up.destroy()); up.on('error', () => down.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `dubbo://127.0.0.1:${server.address().port}`,
    /** Per connection: {c2s, s2c} arrays of frames. */
    frames: () => conns.map((c) => ({ c2s: frames(Buffer.concat(c.c2s)), s2c: frames(Buffer.concat(c.s2c)) })),
    close: () => { for (const s of sockets) s.destroy(); return new Promise((r) => server.close(r)); },
  };
}

/** Splits a byte stream on Dubbo's 16-byte header (magic 0xdabb, flag, status, id, body length). */
function frames(buf) {
  const out = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    assert.equal(buf.readUInt16BE(off), 0xdabb, `magic at ${off}`);
    const len = buf.readUInt32BE(off + 12);
    const f = buf.subarray(off, off + 16 + len);
    out.push({ flag: f[2], status: f[3], id: f.readBigUInt64BE(4), body: f.subarray(16) });
    off += 16 + len;
  }
  assert.equal(off, buf.length, 'the stream ends on a frame boundary');
  return out;
}
const isEvent = (f) => (f.flag & 0x20) !== 0;
const isRequest = (f) => (f.flag & 0x80) !== 0;

/** The checks every sayHello reply passes, whoever called whom. */
function assertHello(l, { server, arg, attachments = {} }) {
  assert.equal(l.ok, true, JSON.stringify(l));
  assert.equal(l.match, true, 'the reply belongs to its own request');
  assert.equal(l.server, server);
  assert.equal(l.reply, `hello ${arg}`);
  for (const [k, v] of Object.entries(attachments)) assert.equal(l.attachments[k], v, `attachment ${k}: ${JSON.stringify(l.attachments)}`);
  assert.equal(l.invocationAttachments.path, GREET);
  assert.equal(l.invocationAttachments.interface, GREET);
  assert.equal(l.invocationAttachments.dubbo, '2.0.2', 'both releases speak Dubbo protocol version 2.0.2');
  assert.match(l.remote, /^127\.0\.0\.1:\d+$/, 'the consumer stays on loopback');
}

test('2.7 consumer -> 2.7 provider: attachments both ways, exceptions, version and group, request ids from 0', JVM, async () => {
  const r = await relay(p27.port);
  try {
    const [calls, [order]] = await Promise.all([
      runConsumer({ dubbo: '2.7', url: r.url, method: 'sayHello,fail', arg: 'a-{i}', calls: 4, attachments: { 'x-tenant': 'blue' } }),
      runConsumer({ dubbo: '2.7', url: p27.url, interface: ORDER, method: 'getOrder', arg: '42', group: 'gold', version: '2.0.0' }),
    ]);
    assert.equal(calls.length, 4);
    for (const l of calls.filter((x) => x.method === 'sayHello')) {
      assertHello(l, { server: 'p27', arg: `a-${l.i}`, attachments: { 'x-tenant': 'blue' } });
      assert.equal(l.dubbo, '2.7.23', 'the provider runs Dubbo 2.7.23');
      assert.equal(l.responseAttachments?.['x-from'], 'p27', `response attachments reach the 2.7 consumer: ${JSON.stringify(l.responseAttachments)}`);
    }
    for (const l of calls.filter((x) => x.method === 'fail')) {
      assert.equal(l.ok, false);
      assert.equal(l.error, `java.lang.IllegalStateException: a-${l.i}`, 'the provider\'s exception, deserialized');
    }
    assert.equal(order.ok, true, JSON.stringify(order));
    assert.equal(order.reply, 'order 42');
    assert.equal(order.group, 'gold');
    assert.equal(order.version, '2.0.0');
    assert.equal(order.invocationAttachments.group, 'gold', 'the group travels as an attachment');

    const [conn] = r.frames();
    assert.equal(r.frames().length, 1, 'one connection');
    // 2.7 numbers its requests from 0 in each JVM (3.3.5 starts at a random 64-bit value).
    assert.deepEqual(conn.c2s.map((f) => f.id), [0n, 1n, 2n, 3n]);
    assert.ok(conn.c2s.every((f) => f.flag === 0xc2), 'request, two-way, hessian2');
    assert.deepEqual(conn.s2c.map((f) => f.status), [20, 20, 20, 20]);
  } finally {
    await r.close();
  }
});

test('2.7 consumer -> 3.3.5 provider: sync calls with attachments, version and group; 300 async calls in flight on one connection', JVM, async () => {
  const [sync, [order], sum] = await Promise.all([
    runConsumer({ dubbo: '2.7', url: p33.url, arg: 'b-{i}', calls: 3, concurrency: 3, attachments: { 'x-tenant': 'green' } }),
    runConsumer({ dubbo: '2.7', url: p33.url, interface: ORDER, method: 'getOrder', arg: '7', group: 'gold', version: '2.0.0' }),
    runConsumer({ dubbo: '2.7', url: p33.url, async: true, calls: 300, concurrency: 64, connections: 1, summary: true }),
  ]);
  assert.equal(sync.length, 3);
  for (const l of sync) {
    assertHello(l, { server: 'p33', arg: `b-${l.i}`, attachments: { 'x-tenant': 'green' } });
    assert.equal(l.dubbo, undefined, 'the 3.3.5 provider does not name its release');
    assert.equal(l.responseAttachments?.['x-from'], 'p33', JSON.stringify(l.responseAttachments));
  }
  assert.equal(order.ok, true, JSON.stringify(order));
  assert.equal(order.server, 'p33');
  assert.equal(order.reply, 'order 7');
  assert.equal(order.group, 'gold');
  assert.equal(order.version, '2.0.0');
  assert.equal(sum.ok, 300, JSON.stringify(sum));
  assert.equal(sum.mismatches, 0);
  assert.deepEqual(sum.servers, { p33: 300 });
});

test('3.3.5 consumer -> 2.7 provider: attachments both ways, exceptions, version and group, 300 async calls out of order', JVM, async () => {
  const [calls, [order], async] = await Promise.all([
    runConsumer({ url: p27.url, method: 'sayHello,fail', arg: 'c-{i}', calls: 4, attachments: { 'x-tenant': 'red' } }),
    runConsumer({ url: p27.url, interface: ORDER, method: 'getOrder', arg: '9', group: 'gold', version: '2.0.0' }),
    runConsumer({ url: p27.url, async: true, calls: 300, concurrency: 64, connections: 1 }),
  ]);
  for (const l of calls.filter((x) => x.method === 'sayHello')) {
    assertHello(l, { server: 'p27', arg: `c-${l.i}`, attachments: { 'x-tenant': 'red' } });
    assert.equal(l.responseAttachments?.['x-from'], 'p27', JSON.stringify(l.responseAttachments));
    // 3.3.5 sends its timeout as an attachment; 2.7 does not.
    assert.equal(l.invocationAttachments.timeout, '5000');
  }
  for (const l of calls.filter((x) => x.method === 'fail')) {
    assert.equal(l.ok, false);
    assert.equal(l.error, `java.lang.IllegalStateException: c-${l.i}`, 'a 2.7 exception, deserialized by 3.3.5');
  }
  assert.equal(order.ok, true, JSON.stringify(order));
  assert.equal(order.server, 'p27');
  assert.equal(order.reply, 'order 9');
  assert.equal(order.group, 'gold');
  assert.equal(order.version, '2.0.0');
  assert.equal(async.length, 300);
  let outOfOrder = 0;
  async.forEach((l, k) => {
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.match, true);
    assert.equal(l.server, 'p27');
    if (l.i !== k) outOfOrder++;
  });
  assert.equal(new Set(async.map((l) => l.i)).size, 300);
  assert.ok(outOfOrder > 0, 'with the provider\'s jitter some replies come back out of order');
});

test('heartbeats across versions: each side answers the other\'s, and an idle connection outlives the providers\' 3 s idle limit', JVM, async () => {
  const pairs = [['2.7', p33, 'p33'], ['3', p27, 'p27']];
  const relays = await Promise.all(pairs.map(([, p]) => relay(p.port)));
  try {
    const runs = await Promise.all(pairs.map(([dubbo], k) => runConsumer({
      dubbo, url: relays[k].url, calls: 2, rounds: 2, idleMs: 3500, heartbeatMs: 1000, arg: 'hb-{i}',
    })));
    pairs.forEach(([dubbo, , server], k) => {
      const what = `${dubbo} consumer -> ${server}`;
      const lines = runs[k];
      assert.equal(lines.length, 4, what);
      for (const l of lines) assertHello(l, { server, arg: `hb-${l.i}` });
      assert.equal(new Set(lines.map((l) => l.remote)).size, 1, `${what}: the same connection before and after the idle time`);
      const conns = relays[k].frames();
      assert.equal(conns.length, 1, `${what}: one connection`);
      const pings = conns[0].c2s.filter(isEvent);
      const pongs = conns[0].s2c.filter(isEvent);
      assert.ok(pings.length >= 2, `${what}: ${pings.length} heartbeats in 3.5 s idle at 1 s`);
      for (const f of pings) {
        assert.equal(f.flag, 0xe2, 'request, two-way, event, hessian2');
        assert.equal(f.body.toString('latin1'), 'N', 'a heartbeat carries hessian2 null');
      }
      assert.deepEqual(pongs.map((f) => f.id), pings.map((f) => f.id), `${what}: each heartbeat answered with its id`);
      assert.ok(pongs.every((f) => f.flag === 0x22 && f.status === 20 && f.body.toString('latin1') === 'N'));
      // Neither release sends heartbeats from the provider side: it only closes idle connections.
      assert.equal(conns[0].s2c.filter((f) => isEvent(f) && isRequest(f)).length, 0);
    });
  } finally {
    await Promise.all(relays.map((r) => r.close()));
  }
});

test('oneway across versions: the request goes without the two-way flag and nothing comes back; calls after it are answered', JVM, async () => {
  const pairs = [['2.7', p33], ['3', p27], ['2.7', p27]];
  const relays = await Promise.all(pairs.map(([, p]) => relay(p.port)));
  try {
    const runs = await Promise.all(pairs.map(([dubbo], k) => runConsumer({ dubbo, url: relays[k].url, oneway: true, calls: 5, arg: 'o-{i}' })));
    pairs.forEach(([dubbo, p], k) => {
      const what = `${dubbo} consumer -> ${p.dubbo} provider`;
      assert.equal(runs[k].length, 5);
      assert.ok(runs[k].every((l) => l.ok && l.oneway), JSON.stringify(runs[k]));
      const conns = relays[k].frames();
      const sent = conns.flatMap((c) => c.c2s.filter((f) => !isEvent(f)));
      assert.equal(sent.length, 5, `${what}: every oneway call reached the wire`);
      assert.ok(sent.every((f) => f.flag === 0x82), `${what}: request, not two-way, hessian2`);
      assert.equal(conns.flatMap((c) => c.s2c.filter((f) => !isEvent(f))).length, 0, `${what}: no answer`);
    });
  } finally {
    await Promise.all(relays.map((r) => r.close()));
  }
  const [after] = await runConsumer({ dubbo: '2.7', url: p27.url, arg: 'after' });
  assertHello(after, { server: 'p27', arg: 'after' });
});

test('stop() ends the 2.7 provider JVM', JVM, async () => {
  process.kill(p27.pid, 0); // alive
  await p27.stop();
  assert.throws(() => process.kill(p27.pid, 0), /ESRCH/);
});
