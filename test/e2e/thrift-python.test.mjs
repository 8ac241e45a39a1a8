// Apache Thrift's Python library (PyPI thrift 0.22, test/peers/thrift/python.mjs) through the real
// Envoy and the real Meltemi filter: a Thrift implementation written apart from the npm and Go
// ones the other tests use, with its own THeaderTransport. Each Python client run is ONE
// connection making its calls in order (the library's generated clients number every call 0);
// the Python servers say which of them answered and report what they read off the wire: the
// client type their THeader transport detected, and the THeader key/values, flags and sequence id.
// Unless a test says otherwise the servers are Python THeader servers, which take every client
// type the library knows and answer each in its own; the detected type shows that Meltemi
// forwarded each call in the client's own transport and protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answeredBy, envoyInFront } from './lib/mesh.mjs';
import { waitFor } from '../harness/index.mjs';
import { startPythonThriftServer, runPythonThriftClient } from '../peers/thrift/python.mjs';

/** transport, protocol, and the client type a Python THeader server detects for them. */
const MODES = [
  ['framed', 'binary', 'FRAMED_BINARY'],
  ['framed', 'compact', 'FRAMED_COMPACT'],
  ['buffered', 'binary', 'UNFRAMED_BINARY'],
  ['header', 'binary', 'HEADERS'],
  ['header', 'compact', 'HEADERS'],
];

const byMethod = (extra = {}) => ({
  codec: 'thrift',
  routes: [
    { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }], ...extra },
    { name: 'rest', route: [{ cluster: 'v1' }], ...extra },
  ],
});

const call = (method, ...args) => ({ method, args });
/** What a client line says: the result, or the error's type and message. */
const outcome = (l) => (l.ok ? l.result : `${l.error.type}: ${l.error.message}`);

/**
 * Python servers v1 and v2 (THeader unless `server` says otherwise) behind one Envoy running the
 * filter per connection, or per request.
 */
async function pyMesh(t, plugin, { perRequest = false, server = {} } = {}) {
  const servers = {};
  for (const name of ['v1', 'v2']) {
    servers[name] = await startPythonThriftServer({ name, transport: 'header', ...server });
    t.after(() => servers[name].stop());
  }
  const { envoy, port } = await envoyInFront(t, plugin, servers, { perRequest });
  return {
    envoy,
    port,
    servers,
    /** Runs the Python client through Envoy; on a failed assertion the bytes are in the lines. */
    run: (opts) => runPythonThriftClient({ port, trace: true, ...opts }),
    /** The calls each server got since `mark()`. */
    mark() {
      const at = { v1: servers.v1.calls.length, v2: servers.v2.calls.length };
      return { v1: () => servers.v1.calls.slice(at.v1), v2: () => servers.v2.calls.slice(at.v2) };
    },
  };
}

test('per connection: Python connections routed by the method of their first call, every transport and protocol', async (t) => {
  const mesh = await pyMesh(t, byMethod());
  for (const [transport, protocol, clientType] of MODES) {
    const what = `${transport}/${protocol}`;
    const got = mesh.mark();
    const hello = await mesh.run({ transport, protocol, calls: [call('sayHello', 'a'), call('echo', 'x'.repeat(5000)), call('add', -1, 1), call('sayHello', 'b')] });
    assert.deepEqual(hello.map(outcome), ['v2: hello a', 'x'.repeat(5000), 'GreetError: v2: negative a', 'v2: hello b'], `${what}: the connection stays on its first call's route`);
    const rest = await mesh.run({ transport, protocol, calls: [call('add', 2, 3), call('sayHello', 'c')] });
    assert.deepEqual(rest.map(outcome), [5, 'v1: hello c'], `${what}: a later sayHello stays on the connection's cluster (mismatchPolicy keep)`);
    assert.deepEqual(got.v2().map((c) => c.method), ['sayHello', 'echo', 'add', 'sayHello'], what);
    assert.deepEqual(got.v1().map((c) => c.method), ['add', 'sayHello'], what);
    for (const c of [...got.v1(), ...got.v2()]) assert.equal(c.clientType, clientType, `${what}: forwarded in the client's own transport`);
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'hello' }), MODES.length);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'rest' }), MODES.length);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'hello', meltemi_status: 'reply' }), 3 * MODES.length);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'hello', meltemi_status: 'exception' }), MODES.length, 'GreetError');
  assert.equal(s.value('meltemi_route_mismatch_total'), 3 * MODES.length, 'echo and add on each hello connection, sayHello on each rest one');
  assert.equal(s.value('meltemi_decode_error_total'), 0);
});

test('per connection: THeader connections routed by a key/value the Python client writes, both protocols', async (t) => {
  const plugin = {
    codec: 'thrift',
    routes: [
      { name: 'blue', match: { attributes: { tenant: { exact: 'blue' } } }, route: [{ cluster: 'v2' }] },
      { name: 'rest', route: [{ cluster: 'v1' }] },
    ],
  };
  const mesh = await pyMesh(t, plugin);
  for (const protocol of ['binary', 'compact']) {
    const blue = await mesh.run({ transport: 'header', protocol, headers: { tenant: 'blue' }, calls: [call('sayHello', 'b'), call('echo', 'header:tenant'), call('add', 1, 2)] });
    assert.deepEqual(blue.map(outcome), ['v2: hello b', 'blue', 3], protocol);
    const green = await mesh.run({ transport: 'header', protocol, headers: { tenant: 'green' }, calls: [call('sayHello', 'g'), call('echo', 'header:tenant')] });
    assert.deepEqual(green.map(outcome), ['v1: hello g', 'green'], protocol);
    const none = await mesh.run({ transport: 'header', protocol, calls: [call('sayHello', 'n')] });
    assert.equal(answeredBy(none[0].result), 'v1');
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'blue' }), 2);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'rest' }), 4);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
});

for (const perRequest of [false, true]) {
  test(`${perRequest ? 'per request' : 'per connection'}: requestMutation writes THeader key/values the Python server reads, responseMutation ones the client reads`, async (t) => {
    const plugin = {
      codec: 'thrift', codecOptions: { transport: 'header' },
      routes: [{
        name: 'tagged', route: [{ cluster: 'v1' }],
        requestMutation: [{ key: 'tenant', value: 'rewritten' }, { key: 'x-via', value: 'meltemi' }],
        responseMutation: [{ key: 'x-served-by', value: 'meltemi' }],
      }],
    };
    const mesh = await pyMesh(t, plugin, { perRequest });
    for (const protocol of ['binary', 'compact']) {
      const got = mesh.mark();
      const r = await mesh.run({
        transport: 'header', protocol, headers: { tenant: 'blue', keep: 'me' },
        calls: [call('echo', 'header:tenant'), call('echo', 'header:x-via'), call('echo', 'header:keep'), call('sayHello', 'z')],
      });
      assert.deepEqual(r.map(outcome), ['rewritten', 'meltemi', 'me', 'v1: hello z'], `${protocol}: overwritten, added, untouched`);
      for (const c of got.v1()) {
        assert.deepEqual(c.headers, { tenant: 'rewritten', keep: 'me', 'x-via': 'meltemi' }, `${protocol}: every key/value the server read`);
        assert.equal(c.clientType, 'HEADERS');
        assert.equal(c.flags, 0);
      }
      // The Python server writes no key/values of its own; the client reads Meltemi's.
      for (const l of r) assert.deepEqual(l.replyHeaders, { 'x-served-by': 'meltemi' }, `${protocol}: the answer's key/values`);
    }
    assert.equal(await mesh.envoy.metric('meltemi_mutation_failed_total'), 0);
  });
}

test('a call the filter refuses reaches the Python client as TApplicationException, and the connection goes on', async (t) => {
  const deny = { authorization: { defaultAction: 'ALLOW', rules: [{ name: 'no-add', action: 'DENY', match: { attributes: { method: { exact: 'add' } } } }] } };
  const mesh = await pyMesh(t, byMethod(deny));
  for (const [transport, protocol] of [['framed', 'binary'], ['buffered', 'binary'], ['header', 'binary'], ['header', 'compact']]) {
    const got = mesh.mark();
    const r = await mesh.run({ transport, protocol, calls: [call('sayHello', 'before'), call('add', 1, 2), call('sayHello', 'after'), call('add', 3, 4)] });
    assert.deepEqual(r.map((l) => l.ok), [true, false, true, false], `${transport}/${protocol}`);
    assert.equal(r[0].result, 'v2: hello before');
    assert.deepEqual(r[1].error, { type: 'TApplicationException', kind: 6, message: 'meltemi: request denied by authorization rule no-add' }, `${transport}/${protocol}: INTERNAL_ERROR with Meltemi's message`);
    assert.equal(r[2].result, 'v2: hello after', `${transport}/${protocol}: the same connection answers the next call`);
    assert.deepEqual(r[3].error, r[1].error);
    assert.ok(got.v2().every((c) => c.method !== 'add'), 'no refused call reached the server');
  }
  assert.equal(await mesh.envoy.metric('meltemi_authz_denied_total'), 8);
});

test('multiplexed Python connections routed by service (Greeter:sayHello, Calculator:whoami)', async (t) => {
  const plugin = {
    codec: 'thrift',
    routes: [
      { name: 'calculator', match: { attributes: { service: { exact: 'Calculator' } } }, route: [{ cluster: 'v2' }] },
      { name: 'greeter', match: { attributes: { service: { exact: 'Greeter' } } }, route: [{ cluster: 'v1' }] },
    ],
  };
  const mesh = await pyMesh(t, plugin, { server: { multiplexed: true } });
  for (const [transport, protocol] of [['framed', 'binary'], ['buffered', 'binary'], ['header', 'compact']]) {
    const got = mesh.mark();
    const g = await mesh.run({ transport, protocol, multiplexed: true, calls: [call('sayHello', 'm'), { service: 'Calculator', method: 'whoami' }] });
    assert.deepEqual(g.map(outcome), ['v1: hello m', 'v1:Calculator'], `${transport}/${protocol}: routed by the first call's service`);
    const c = await mesh.run({ transport, protocol, multiplexed: true, calls: [{ service: 'Calculator', method: 'whoami' }, { service: 'Calculator', method: 'multiply', args: [6, 7] }, call('sayHello', 'n')] });
    assert.deepEqual(c.map(outcome), ['v2:Calculator', 42, 'v2: hello n'], `${transport}/${protocol}`);
    assert.deepEqual(got.v2().map((x) => `${x.service}.${x.method}`), ['Calculator.whoami', 'Calculator.multiply', 'Greeter.sayHello']);
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'calculator' }), 3);
  assert.equal(s.get('meltemi_operation_requests_total', { meltemi_operation: 'Calculator/whoami' }), 6);
});

test('per connection: a oneway ping, then at once a call on the same connection, is answered', async (t) => {
  const plugin = {
    codec: 'thrift',
    routes: [
      { name: 'ping', match: { attributes: { method: { exact: 'ping' } } }, route: [{ cluster: 'v2' }] },
      { name: 'rest', route: [{ cluster: 'v1' }] },
    ],
  };
  const mesh = await pyMesh(t, plugin);
  for (const [transport, protocol] of [['framed', 'binary'], ['header', 'binary'], ['header', 'compact']]) {
    const what = `${transport}/${protocol}`;
    // The first request is the oneway call: it picks the route, and nothing answers it.
    const first = await mesh.run({ transport, protocol, calls: [call('ping', `first-${what}`), call('sayHello', 'p'), call('ping', `mid-${what}`), call('add', 1, 1)] });
    assert.deepEqual(first.map(outcome), [null, 'v2: hello p', null, 2], what);
    assert.equal(first[0].received, '', 'nothing answers a oneway call');
    const later = await mesh.run({ transport, protocol, calls: [call('sayHello', 'q'), call('ping', `later-${what}`), call('echo', 'e')] });
    assert.deepEqual(later.map(outcome), ['v1: hello q', null, 'e'], what);
    await waitFor(() => mesh.servers.v1.calls.some((c) => c.args[0] === `later-${what}`), { message: `${what}: v1 got the oneway ping` });
    for (const note of [`first-${what}`, `mid-${what}`]) assert.ok(mesh.servers.v2.calls.some((c) => c.args[0] === note), `${what}: v2 got ${note}`);
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'ping', meltemi_kind: 'oneway' }), 6);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'rest', meltemi_kind: 'oneway' }), 3);
});

// One Envoy for every transport, one client after the other: the router reuses its connections
// into the server role for the calls of every client connection, so each call is read in its own
// transport (a server role that kept its first call's answered the next kind with 503 "connection
// termination"; found by these tests).
test('per request: the calls of ONE Python connection split between two Python servers by method, clients of every transport in turn on one listener', async (t) => {
  const modes = MODES;
  const mesh = await pyMesh(t, byMethod(), { perRequest: true });
  for (const [transport, protocol, clientType] of modes) {
    const what = `${transport}/${protocol}`;
    const got = mesh.mark();
    const r = await mesh.run({
      transport, protocol, headers: { tenant: 'blue' },
      calls: [call('sayHello', 'a'), call('echo', 'x'), call('sayHello', 'b'), call('add', -1, 1), call('ping', `n-${what}`), call('sayHello', 'c'), call('add', 2, 3)],
    });
    assert.deepEqual(r.map(outcome), ['v2: hello a', 'x', 'v2: hello b', 'GreetError: v1: negative a', null, 'v2: hello c', 5], what);
    await waitFor(() => got.v1().some((c) => c.method === 'ping'), { message: `${what}: v1 got the oneway ping` });
    assert.deepEqual(got.v2().map((c) => c.args[0]), ['a', 'b', 'c'], `${what}: every sayHello, and only they, on v2`);
    assert.deepEqual(got.v1().map((c) => c.method), ['echo', 'add', 'ping', 'add'], what);
    for (const c of [...got.v1(), ...got.v2()]) {
      assert.equal(c.clientType, clientType, `${what}: the server role sent the call in the client's transport`);
      if (transport === 'header') assert.deepEqual(c.headers, { tenant: 'blue' }, `${what}: the frame's key/values travel with the call`);
    }
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'hello', meltemi_kind: 'call' }), 3 * modes.length);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'rest', meltemi_kind: 'oneway' }), modes.length);
});

test('per request: a 50/50 weighted split of one framed Python connection reaches both servers', async (t) => {
  const plugin = { codec: 'thrift', routes: [{ name: 'split', route: [{ cluster: 'v1', weight: 50 }, { cluster: 'v2', weight: 50 }] }] };
  const mesh = await pyMesh(t, plugin, { perRequest: true, server: { transport: 'framed' } });
  const n = 60;
  const r = await mesh.run({ transport: 'framed', protocol: 'binary', calls: Array.from({ length: n }, (_, i) => call('sayHello', `c${i}`)) });
  r.forEach((l, i) => assert.equal(l.result?.split(': hello ')[1], `c${i}`, 'each answer is its own call\'s'));
  const v1 = r.filter((l) => answeredBy(l.result) === 'v1').length;
  t.diagnostic(`v1 ${v1} / v2 ${n - v1} of ${n}`);
  // Binomial(60, 0.5): P(fewer than 10 either way) < 1e-7.
  assert.ok(v1 >= 10 && n - v1 >= 10, `v1 answered ${v1} of ${n}`);
  assert.equal(mesh.servers.v1.calls.length + mesh.servers.v2.calls.length, n);
});
