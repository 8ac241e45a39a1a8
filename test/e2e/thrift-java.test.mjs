// Apache Thrift's Java library (libthrift 0.17.0, test/peers/thrift/java.mjs) through the real
// Envoy and the real Meltemi filter: the server kinds Java services run and the Java sync and
// async clients, which the npm, Go and Python peers are not. Each Java client run is ONE
// connection making its calls in order; the sync client numbers them 1, 2, ... and refuses a
// reply with another seqid, the async one writes the frame size and the message apart and numbers
// every call 0. A Java server speaks the one transport and protocol it was started with, so the
// servers come in pairs (v1, v2) per kind, started once for the file (a JVM is the slow part):
//   fb  framed/binary    v1 TNonblockingServer,   v2 TThreadPoolServer
//   fc  framed/compact   v1 THsHaServer,          v2 TThreadedSelectorServer
//   bb  buffered/binary  v1, v2 TThreadPoolServer (unframed)
//   bc  buffered/compact v1, v2 TThreadPoolServer
//   mux framed/binary    v1 TThreadedSelectorServer, v2 TNonblockingServer, TMultiplexedProcessor
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../harness/index.mjs';
import { envoyInFront } from './lib/mesh.mjs';
import { ensureJavaThriftBuilt, startJavaThriftServer, runJavaThriftClient } from '../peers/thrift/java.mjs';
import { startPythonThriftServer } from '../peers/thrift/python.mjs';

const KINDS = {
  fb: { transport: 'framed', protocol: 'binary', v1: 'nonblocking', v2: 'threadpool' },
  fc: { transport: 'framed', protocol: 'compact', v1: 'hsha', v2: 'selector' },
  bb: { transport: 'buffered', protocol: 'binary', v1: 'threadpool', v2: 'threadpool' },
  bc: { transport: 'buffered', protocol: 'compact', v1: 'threadpool', v2: 'threadpool' },
  mux: { transport: 'framed', protocol: 'binary', v1: 'selector', v2: 'nonblocking', multiplexed: true },
};
const BIG = 'x'.repeat(10_000);
const DENIED = { type: 'TApplicationException', kind: 6, message: 'meltemi: request denied by authorization rule no-add' };

const call = (method, ...args) => ({ method, args });
const calc = (method, ...args) => ({ service: 'Calculator', method, args });
/** What a client line says: the result, or the error's type and message. */
const outcome = (l) => (l.ok ? l.result : `${l.error.type}: ${l.error.message}`);

const byMethod = (extra = {}) => ({
  codec: 'thrift',
  routes: [
    { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }], ...extra },
    { name: 'rest', route: [{ cluster: 'v1' }], ...extra },
  ],
});
const deny = { authorization: { defaultAction: 'ALLOW', rules: [{ name: 'no-add', action: 'DENY', match: { attributes: { method: { exact: 'add' } } } }] } };

before(() => ensureJavaThriftBuilt(), { timeout: 15 * 60_000 }); // a no-op when the jar is fresh

/** The Java server pairs, each started the first time a test needs it and kept for the file. */
const pairs = new Map();
function javaPair(kind) {
  if (!pairs.has(kind)) {
    const { v1, v2, ...mode } = KINDS[kind];
    pairs.set(kind, Promise.all([
      startJavaThriftServer({ name: 'v1', server: v1, ...mode }),
      startJavaThriftServer({ name: 'v2', server: v2, ...mode }),
    ]).then(([s1, s2]) => ({ v1: s1, v2: s2 })));
  }
  return pairs.get(kind);
}
after(async () => {
  for (const p of (await Promise.allSettled(pairs.values())).filter((r) => r.status === 'fulfilled')) {
    await Promise.all([p.value.v1.stop(), p.value.v2.stop()]);
  }
});

/**
 * Envoy with the filter, per connection or per request, in front of servers v1 and v2 (the Java
 * pair of `kind`, or `servers`); `run` is the Java client of that kind through Envoy.
 */
async function mesh(t, kind, plugin, { perRequest = false, servers } = {}) {
  servers ??= await javaPair(kind);
  const { envoy, port } = await envoyInFront(t, plugin, servers, { perRequest });
  const { transport, protocol, multiplexed = false } = KINDS[kind] ?? {};
  return {
    envoy,
    port,
    servers,
    /** The Java client through Envoy (the kind's transport and protocol unless opts say otherwise). */
    run: (opts) => runJavaThriftClient({ port, transport, protocol, multiplexed, trace: !opts.async, ...opts }),
    /** The calls each server got since `mark()`. */
    mark() {
      const at = { v1: servers.v1.calls.length, v2: servers.v2.calls.length };
      return { v1: () => servers.v1.calls.slice(at.v1), v2: () => servers.v2.calls.slice(at.v2) };
    },
  };
}

/** The sequence id of the message in a traced call's bytes (after the frame size when framed). */
function seqid(hex, transport, protocol) {
  const b = Buffer.from(hex, 'hex').subarray(transport === 'framed' ? 4 : 0);
  if (protocol === 'binary') return b.readInt32BE(8 + b.readInt32BE(4)); // version, name, seqid
  let i = 2; // 0x82, type/version; then the seqid varint, then the name
  let v = 0;
  for (let shift = 0; ; shift += 7) { const x = b[i++]; v |= (x & 0x7f) << shift; if (x < 0x80) break; }
  return v;
}

for (const kind of ['fb', 'fc', 'bb', 'bc']) {
  const { transport, protocol, v1, v2 } = KINDS[kind];
  test(`per connection ${transport}/${protocol} (${v1}, ${v2}): Java connections routed by their first call's method, a GreetError passes as the server's reply`, async (t) => {
    const m = await mesh(t, kind, byMethod());
    const got = m.mark();
    const hello = await m.run({ calls: [call('sayHello', 'a'), call('echo', BIG), call('add', -1, 1), call('sayHello', 'b')] });
    assert.deepEqual(hello.map(outcome), ['v2: hello a', BIG, 'GreetError: v2: negative a', 'v2: hello b'], 'the connection stays on its first call\'s route');
    assert.deepEqual(hello[2].error, { type: 'GreetError', code: 1, message: 'v2: negative a' });
    const rest = await m.run({ calls: [call('add', 2, 3), call('sayHello', 'c')] });
    assert.deepEqual(rest.map(outcome), [5, 'v1: hello c'], 'a later sayHello stays on the connection\'s cluster (mismatchPolicy keep)');
    let conns = 2;
    if (transport === 'framed') {
      // The async client: frame size and message in two writes, seqid 0 on every call.
      const a = await m.run({ async: true, calls: [call('sayHello', 'x'), call('echo', BIG), call('add', 2, 2)] });
      assert.deepEqual(a.map(outcome), ['v2: hello x', BIG, 4]);
      const b = await m.run({ async: true, calls: [call('echo', 'y'), call('sayHello', 'z'), call('add', -1, 1)] });
      assert.deepEqual(b.map(outcome), ['y', 'v1: hello z', 'GreetError: v1: negative a']);
      conns += 2;
    }
    assert.deepEqual(got.v2().map((c) => c.method), ['sayHello', 'echo', 'add', 'sayHello', ...(conns > 2 ? ['sayHello', 'echo', 'add'] : [])]);
    assert.deepEqual(got.v1().map((c) => c.method), ['add', 'sayHello', ...(conns > 2 ? ['echo', 'sayHello', 'add'] : [])]);
    assert.equal(new Set([...got.v1(), ...got.v2()].map((c) => `${c.name}/${c.conn}`)).size, conns, 'one server connection per client connection');
    const s = await m.envoy.metrics();
    assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'hello' }), conns / 2);
    assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'rest' }), conns / 2);
    assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'hello', meltemi_status: 'exception' }), 1, 'the GreetError, counted as the server\'s exception');
    assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'rest', meltemi_status: 'exception' }), conns > 2 ? 1 : undefined);
    assert.equal(s.value('meltemi_decode_error_total'), 0);
  });
}

test('multiplexed Java connections (TMultiplexedProcessor) routed by service, per connection and per request', async (t) => {
  const plugin = {
    codec: 'thrift',
    routes: [
      { name: 'calculator', match: { attributes: { service: { exact: 'Calculator' } } }, route: [{ cluster: 'v2' }] },
      { name: 'greeter', match: { attributes: { service: { exact: 'Greeter' } } }, route: [{ cluster: 'v1' }] },
    ],
  };
  const perConn = await mesh(t, 'mux', plugin);
  for (const async of [false, true]) {
    const what = async ? 'async' : 'sync';
    const g = await perConn.run({ async, calls: [call('sayHello', 'm'), calc('whoami'), call('ping', 'p')] });
    assert.deepEqual(g.map(outcome), ['v1: hello m', 'v1:Calculator', null], `${what}: routed by the first call's service`);
    const c = await perConn.run({ async, calls: [calc('whoami'), calc('multiply', 6, 7), call('sayHello', 'n')] });
    assert.deepEqual(c.map(outcome), ['v2:Calculator', 42, 'v2: hello n'], what);
  }
  assert.equal(await perConn.envoy.metric('meltemi_route_connections_total', { meltemi_route: 'calculator' }), 2);

  // Per request: each call by its own service, a oneway one too (its probe goes to
  // Greeter:__meltemi_local_reply__, which TMultiplexedProcessor answers as an unknown method).
  const perReq = await mesh(t, 'mux', plugin, { perRequest: true });
  for (const async of [false, true]) {
    const got = perReq.mark();
    const r = await perReq.run({ async, calls: [call('sayHello', 'a'), calc('whoami'), call('ping', 'p'), calc('multiply', 2, 3), call('add', -1, 1)] });
    assert.deepEqual(r.map(outcome), ['v1: hello a', 'v2:Calculator', null, 6, 'GreetError: v1: negative a'], async ? 'async' : 'sync');
    await waitFor(() => got.v1().some((c) => c.method === 'ping'), { message: 'v1 got the oneway ping' });
    assert.deepEqual(got.v2().map((c) => `${c.service}.${c.method}`), ['Calculator.whoami', 'Calculator.multiply']);
    assert.deepEqual(got.v1().map((c) => `${c.service}.${c.method}`), ['Greeter.sayHello', 'Greeter.ping', 'Greeter.add']);
  }
});

test('a call the filter refuses reaches the Java client as TApplicationException with Meltemi\'s message, and the connection goes on', async (t) => {
  for (const [kind, perRequest] of [['fb', false], ['bb', false], ['fc', false], ['fb', true]]) {
    const { transport, protocol } = KINDS[kind];
    const what = `${transport}/${protocol} ${perRequest ? 'per request' : 'per connection'}`;
    const m = await mesh(t, kind, byMethod(deny), { perRequest });
    const got = m.mark();
    const r = await m.run({ calls: [call('sayHello', 'before'), call('add', 1, 2), call('sayHello', 'after'), call('add', 3, 4), call('echo', 'e')] });
    assert.deepEqual(r.map(outcome), ['v2: hello before', `TApplicationException: ${DENIED.message}`, 'v2: hello after', `TApplicationException: ${DENIED.message}`, 'e'], what);
    assert.deepEqual(r[1].error, DENIED, `${what}: INTERNAL_ERROR, not the client's BAD_SEQUENCE_ID`);
    // The sync client numbers its calls from 1; the refusal answers with the call's own seqid.
    for (const i of [1, 3]) assert.equal(seqid(r[i].received, transport, protocol), i + 1, `${what}: call ${i}'s seqid`);
    const calls = [...got.v1(), ...got.v2()];
    assert.ok(calls.every((c) => c.method !== 'add'), `${what}: no refused call reached a server`);
    if (!perRequest) assert.equal(new Set(calls.map((c) => c.conn)).size, 1, `${what}: the same connection answered the calls after`);
    if (kind === 'fb') {
      // The async client takes the TApplicationException, and then, as libthrift's TAsyncClient does
      // with any exception, closes the connection itself: the next call is refused in the client.
      const a = await m.run({ async: true, calls: [call('sayHello', 'x'), call('add', 1, 2), call('sayHello', 'y')] });
      assert.deepEqual(a.map(outcome), ['v2: hello x', `TApplicationException: ${DENIED.message}`, 'IllegalStateException: Client has an error!'], `${what} async`);
    }
    assert.equal(await m.envoy.metric('meltemi_authz_denied_total'), kind === 'fb' ? 3 : 2, what);
  }
});

test('per connection: a oneway ping first, then at once calls on the same connection, are answered', async (t) => {
  const plugin = {
    codec: 'thrift',
    routes: [
      { name: 'ping', match: { attributes: { method: { exact: 'ping' } } }, route: [{ cluster: 'v2' }] },
      { name: 'rest', route: [{ cluster: 'v1' }] },
    ],
  };
  for (const [kind, async] of [['fb', false], ['fb', true], ['bb', false], ['fc', true]]) {
    const what = `${KINDS[kind].transport}/${KINDS[kind].protocol}${async ? ' async' : ''}`;
    const m = await mesh(t, kind, plugin);
    const got = m.mark();
    // The first request is the oneway call: it picks the route, and nothing answers it.
    const first = await m.run({ async, calls: [call('ping', `first-${what}`), call('sayHello', 'p'), call('ping', `mid-${what}`), call('add', 1, 1)] });
    assert.deepEqual(first.map(outcome), [null, 'v2: hello p', null, 2], what);
    if (!async) assert.equal(first[0].received, '', 'nothing answers a oneway call');
    const later = await m.run({ async, calls: [call('sayHello', 'q'), call('ping', `later-${what}`), call('echo', 'e')] });
    assert.deepEqual(later.map(outcome), ['v1: hello q', null, 'e'], what);
    await waitFor(() => got.v1().some((c) => c.args[0] === `later-${what}`), { message: `${what}: v1 got the oneway ping` });
    await waitFor(() => got.v2().filter((c) => c.method === 'ping').length === 2, { message: `${what}: v2 got both pings` });
    assert.deepEqual(got.v2().map((c) => c.method), ['ping', 'sayHello', 'ping', 'add'], what);
    const s = await m.envoy.metrics();
    assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'ping', meltemi_kind: 'oneway' }), 2, what);
    assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'rest', meltemi_kind: 'oneway' }), 1, what);
  }
});

// Per request, each Java client connection's calls go their own ways. A Java server reads only
// its own transport and protocol, so each kind has its own pair behind its own listener; clients
// of every kind in turn through ONE listener need servers that take them all (Python's THeader
// servers, below). A Java server that is sent another kind closes the connection, as it would
// with no proxy: per request each of those calls is answered 503 and the listener goes on.
for (const kind of ['fb', 'fc', 'bb']) {
  const { transport, protocol, v1, v2 } = KINDS[kind];
  test(`per request ${transport}/${protocol} (${v1}, ${v2}): the calls of ONE Java connection split between two Java servers by method, GreetError included`, async (t) => {
    const m = await mesh(t, kind, byMethod(), { perRequest: true });
    const got = m.mark();
    const r = await m.run({ calls: [call('sayHello', 'a'), call('echo', BIG), call('sayHello', 'b'), call('add', -1, 1), call('ping', `n-${kind}`), call('sayHello', 'c'), call('add', 2, 3)] });
    assert.deepEqual(r.map(outcome), ['v2: hello a', BIG, 'v2: hello b', 'GreetError: v1: negative a', null, 'v2: hello c', 5]);
    assert.deepEqual(r[3].error, { type: 'GreetError', code: 1, message: 'v1: negative a' });
    r.forEach((l, i) => { if (l.method !== 'ping') assert.equal(seqid(l.received, transport, protocol), i + 1, `call ${i}'s answer carries its seqid`); });
    await waitFor(() => got.v1().some((c) => c.method === 'ping'), { message: 'v1 got the oneway ping' });
    assert.deepEqual(got.v2().map((c) => c.args[0]), ['a', 'b', 'c'], 'every sayHello, and only they, on v2');
    assert.deepEqual(got.v1().map((c) => c.method), ['echo', 'add', 'ping', 'add']);
    let hellos = 3;
    if (transport === 'framed') {
      const a = await m.run({ async: true, calls: [call('sayHello', 'x'), call('echo', 'e'), call('ping', 'm'), call('sayHello', 'y'), call('add', -1, 1)] });
      assert.deepEqual(a.map(outcome), ['v2: hello x', 'e', null, 'v2: hello y', 'GreetError: v1: negative a'], 'async');
      hellos += 2;
    }
    // Another kind of client on this listener: the Java servers cannot read it.
    const other = transport === 'framed' ? { transport: 'buffered', protocol } : { transport, protocol: 'compact' };
    const bad = await m.run({ ...other, calls: [call('sayHello', 'w'), call('echo', 'w')] });
    for (const l of bad) assert.match(outcome(l), /^TApplicationException: meltemi: upstream answered 503: .*connection termination/, `${other.transport}/${other.protocol} to ${transport}/${protocol} servers`);
    const after = await m.run({ calls: [call('sayHello', 'again'), call('echo', 'again')] });
    assert.deepEqual(after.map(outcome), ['v2: hello again', 'again'], 'the listener goes on for clients the servers can read');
    const s = await m.envoy.metrics();
    assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'hello', meltemi_kind: 'call' }), hellos + 2, 'client role: every sayHello, the unreadable one too');
    assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'rest', meltemi_kind: 'oneway' }), transport === 'framed' ? 2 : 1);
  });
}

// One per-request listener, Java clients of every kind in turn: the router reuses its connections
// into the server role for the calls of every client, so the server role reads each call's
// transport afresh. Python THeader servers behind take every kind and say which they read.
test('per request: Java clients of every transport and protocol in turn through ONE listener, each call forwarded in its own kind', async (t) => {
  const servers = {};
  for (const name of ['v1', 'v2']) {
    servers[name] = await startPythonThriftServer({ name, transport: 'header' });
    t.after(() => servers[name].stop());
  }
  const m = await mesh(t, null, byMethod(), { perRequest: true, servers });
  const modes = [
    ['framed', 'binary', false, 'FRAMED_BINARY'],
    ['framed', 'compact', false, 'FRAMED_COMPACT'],
    ['buffered', 'binary', false, 'UNFRAMED_BINARY'],
    ['framed', 'binary', true, 'FRAMED_BINARY'],
    ['framed', 'compact', true, 'FRAMED_COMPACT'],
  ];
  for (const [transport, protocol, async, clientType] of modes) {
    const what = `${transport}/${protocol}${async ? ' async' : ''}`;
    const got = m.mark();
    const r = await m.run({ transport, protocol, async, calls: [call('sayHello', 'a'), call('echo', BIG), call('ping', `n-${what}`), call('sayHello', 'b'), call('add', 2, 3)] });
    assert.deepEqual(r.map(outcome), ['v2: hello a', BIG, null, 'v2: hello b', 5], what);
    await waitFor(() => got.v1().some((c) => c.method === 'ping'), { message: `${what}: v1 got the oneway ping` });
    assert.deepEqual(got.v2().map((c) => c.args[0]), ['a', 'b'], what);
    assert.deepEqual(got.v1().map((c) => c.method), ['echo', 'ping', 'add'], what);
    for (const c of [...got.v1(), ...got.v2()]) assert.equal(c.clientType, clientType, `${what}: the server role sent the call in the client's kind`);
  }
  assert.equal(await m.envoy.metric('meltemi_requests_total', { meltemi_route: 'hello', meltemi_kind: 'call' }), 2 * modes.length);
});
