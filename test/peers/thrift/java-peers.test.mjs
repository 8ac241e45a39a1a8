// Apache Thrift's Java library (java.mjs, libthrift 0.17.0) directly, with no proxy between: the
// Java sync and async clients against every server kind for each transport and protocol it takes,
// multiplexed too, and the Java peers against the Python, Go and npm ones, so that an e2e failure
// through Envoy cannot be blamed on the Java peer.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { ensureJavaThriftBuilt, startJavaThriftServer, runJavaThriftClient } from './java.mjs';
import { startPythonThriftServer, runPythonThriftClient } from './python.mjs';
import { startGoThriftServer } from './go.mjs';
import { thriftClient } from './index.mjs';
import { waitFor } from '../../harness/index.mjs';

before(() => ensureJavaThriftBuilt(), { timeout: 15 * 60_000 });

const BIG = 'x'.repeat(10_000);
const call = (method, ...args) => ({ method, args });
const CALLS = [call('sayHello', 'alice'), call('echo', BIG), call('add', 2, 3), call('add', -1, 3), call('ping', 'note-1'), call('sayHello', 'after-ping')];
/** What a client line says: the result, or the error's type and message. */
const outcome = (l) => (l.ok ? l.result : `${l.error.type}: ${l.error.message}`);

/**
 * The first bytes a call writes: a 4-byte frame size when framed, then the message: strict binary
 * starts 0x8001 and its type (0x0001 call, 0x0004 oneway), compact 0x82 and type<<5 (0x21, 0x81).
 */
function startsAs(hex, transport, protocol) {
  const msg = transport === 'framed' ? hex.slice(8) : hex;
  if (transport === 'framed') assert.equal(parseInt(hex.slice(0, 8), 16), hex.length / 2 - 4, 'the frame size covers the message');
  assert.match(msg, protocol === 'binary' ? /^8001000[14]/ : /^82[28]1/, `${transport}/${protocol} message`);
}

async function javaServer(t, opts) {
  const srv = await startJavaThriftServer(opts);
  t.after(() => srv.stop());
  return srv;
}

const KINDS = [
  ['threadpool', 'framed'], ['threadpool', 'buffered'],
  ['nonblocking', 'framed'], ['hsha', 'framed'], ['selector', 'framed'],
];

for (const [server, transport] of KINDS) {
  for (const protocol of ['binary', 'compact']) {
    test(`direct ${server}/${transport}/${protocol}: Java sync${transport === 'framed' ? ' and async' : ''} clients, one connection each`, async (t) => {
      const srv = await javaServer(t, { name: 'j1', server, transport, protocol });
      const r = await runJavaThriftClient({ port: srv.port, transport, protocol, calls: CALLS, trace: true });
      assert.deepEqual(r.map(outcome), ['j1: hello alice', BIG, 5, 'GreetError: j1: negative a', null, 'j1: hello after-ping']);
      assert.deepEqual(r[3].error, { type: 'GreetError', code: 1, message: 'j1: negative a' });
      assert.equal(r[4].received, '', 'a oneway call has no answer');
      for (const l of r) startsAs(l.sent, transport, protocol);
      await waitFor(() => srv.calls.length === CALLS.length);
      assert.deepEqual(srv.calls.map((c) => c.method), CALLS.map((c) => c.method));
      assert.equal(new Set(srv.calls.map((c) => c.conn)).size, 1, 'every call on one connection');
      assert.equal(srv.connections(), 1);
      if (transport !== 'framed') return;

      // Async: each call starts from the previous one's callback. The declared exception comes
      // last but one: the library then closes the connection and the client refuses the rest.
      const a = await runJavaThriftClient({
        port: srv.port, transport, protocol, async: true,
        calls: [call('sayHello', 'bob'), call('echo', BIG), call('ping', 'note-2'), call('add', 2, 2), call('sayHello', 'after'), call('add', -1, 1), call('sayHello', 'dead')],
      });
      assert.deepEqual(a.map(outcome), ['j1: hello bob', BIG, null, 4, 'j1: hello after', 'GreetError: j1: negative a', 'IllegalStateException: Client has an error!']);
      await waitFor(() => srv.closed() === 2, { message: 'the async client closed its connection' });
      assert.equal(srv.connections(), 2, 'the async client used one connection');
      assert.deepEqual(srv.calls.slice(CALLS.length).map((c) => c.method), ['sayHello', 'echo', 'ping', 'add', 'sayHello', 'add']);
    });
  }
}

for (const [server, transport, protocol] of [['threadpool', 'buffered', 'compact'], ['selector', 'framed', 'binary']]) {
  test(`direct multiplexed ${server}/${transport}/${protocol}: Greeter and Calculator on one connection`, async (t) => {
    const srv = await javaServer(t, { name: 'j2', server, transport, protocol, multiplexed: true });
    const calls = [call('sayHello', 'bob'), { service: 'Calculator', method: 'whoami' }, { service: 'Calculator', method: 'multiply', args: [6, 7] }, call('ping', 'p'), call('add', -1, 1), call('add', 1, 1)];
    const modes = transport === 'framed' ? [false, true] : [false];
    for (const async of modes) {
      const before = srv.calls.length;
      const r = await runJavaThriftClient({ port: srv.port, transport, protocol, multiplexed: true, async, calls: async ? calls.slice(0, 5) : calls });
      const want = ['j2: hello bob', 'j2:Calculator', 42, null, 'GreetError: j2: negative a', 2];
      assert.deepEqual(r.map(outcome), async ? want.slice(0, 5) : want, async ? 'async' : 'sync');
      await waitFor(() => srv.calls.length - before === r.length);
      assert.deepEqual(srv.calls.slice(before).map((c) => `${c.service}.${c.method}`), ['Greeter.sayHello', 'Calculator.whoami', 'Calculator.multiply', 'Greeter.ping', 'Greeter.add', 'Greeter.add'].slice(0, r.length));
    }
    assert.equal(srv.connections(), modes.length);
  });
}

test('what Java servers do with a client they cannot read: they close the connection, no answer', async (t) => {
  // A plain call to TMultiplexedProcessor: TProtocolException "Service name not found in message name".
  const mux = await javaServer(t, { name: 'j2', server: 'threadpool', transport: 'framed', multiplexed: true });
  const r = await runJavaThriftClient({ port: mux.port, calls: [call('sayHello', 'x')] });
  assert.equal(r[0].error.type, 'TTransportException', outcome(r[0]));
  // An unframed client to TNonblockingServer: its first 4 bytes (0x80010001) read as a frame size.
  const nb = await javaServer(t, { name: 'j3', server: 'nonblocking', transport: 'framed' });
  const u = await runJavaThriftClient({ port: nb.port, transport: 'buffered', calls: [call('sayHello', 'x')] });
  assert.equal(u[0].error.type, 'TTransportException', outcome(u[0]));
  assert.equal(nb.calls.length, 0);
  // A compact call to a binary server: TBinaryProtocol's "Bad version in readMessageBegin".
  const c = await thriftClient({ port: nb.port, protocol: 'compact' });
  t.after(() => c.close());
  await assert.rejects(c.sayHello('compact to a binary server'));
  assert.equal(nb.calls.length, 0);
});

// Cross checks: the Java client against the Python and Go servers.
for (const [peer, transport, protocol, async] of [
  ['python', 'framed', 'binary', false], ['python', 'buffered', 'compact', false], ['python', 'framed', 'compact', true],
  ['go', 'framed', 'binary', false], ['go', 'buffered', 'compact', false], ['go', 'framed', 'compact', true],
]) {
  test(`cross: Java ${async ? 'async' : 'sync'} ${transport}/${protocol} client, ${peer} server`, async (t) => {
    // Go's framed server is binary only; its THeader server takes framed and unframed clients too.
    const srv = peer === 'python'
      ? await startPythonThriftServer({ name: 'p1', transport, protocol })
      : await startGoThriftServer({ name: 'p1', transport: transport === 'framed' && protocol === 'binary' ? 'framed' : 'header' });
    t.after(() => srv.stop());
    const calls = [call('sayHello', 'java'), call('echo', BIG), call('ping', 'n'), call('add', 2, 3), call('add', -1, 2)];
    const r = await runJavaThriftClient({ port: srv.port, transport, protocol, async, calls });
    assert.deepEqual(r.map(outcome), ['p1: hello java', BIG, null, 5, 'GreetError: p1: negative a']);
  });
}

// And the other way: the Python and npm clients against Java servers.
for (const [server, transport, protocol] of [['hsha', 'framed', 'binary'], ['threadpool', 'buffered', 'compact'], ['selector', 'framed', 'compact']]) {
  test(`cross: Python and npm ${transport}/${protocol} clients, Java ${server} server`, async (t) => {
    const srv = await javaServer(t, { name: 'j1', server, transport, protocol });
    const r = await runPythonThriftClient({ port: srv.port, transport, protocol, calls: CALLS });
    assert.deepEqual(r.map(outcome), ['j1: hello alice', BIG, 5, 'GreetError: j1: negative a', null, 'j1: hello after-ping']);
    const c = await thriftClient({ port: srv.port, transport, protocol });
    t.after(() => c.close());
    assert.equal(await c.sayHello('npm'), 'j1: hello npm');
    assert.equal(await c.echo(BIG), BIG);
    await assert.rejects(c.add(-1, 2), (e) => e.code === 1 && e.message === 'j1: negative a');
    assert.equal(await c.add(2, 2), 4);
    await waitFor(() => srv.calls.length === CALLS.length + 4);
    assert.equal(srv.connections(), 2);
  });
}
