// Apache Thrift's Python library (python.mjs) directly, with no proxy between: Python client ↔
// Python server for every transport/protocol, THeader key/values both ways, the THeader server
// answering other client types in their own kind, and the Python client against the Go and npm
// peers, so an e2e failure through Envoy cannot be blamed on the Python peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPythonThriftServer, runPythonThriftClient } from './python.mjs';
import { startGoThriftServer } from './go.mjs';
import { thriftClient } from './index.mjs';
import { waitFor } from '../../harness/index.mjs';

const BIG = 'x'.repeat(10_000);
const CALLS = [
  { method: 'sayHello', args: ['alice'] },
  { method: 'echo', args: [BIG] },
  { method: 'add', args: [2, 3] },
  { method: 'add', args: [-1, 3] },
  { method: 'ping', args: ['note-1'] },
  { method: 'sayHello', args: ['after-ping'] },
];

/** A THeader frame: length, then 0x0fff magic (what a Python THeader peer writes and expects). */
const isHeaderFrame = (hex) => hex.slice(8, 12) === '0fff';

async function pyServer(t, opts) {
  const srv = await startPythonThriftServer(opts);
  t.after(() => srv.stop());
  return srv;
}

for (const transport of ['framed', 'buffered', 'header']) {
  for (const protocol of ['binary', 'compact']) {
    test(`direct ${transport}/${protocol}: Python client, Python server: call, big echo, exception, oneway`, async (t) => {
      const srv = await pyServer(t, { name: 'p1', transport, protocol });
      const r = await runPythonThriftClient({ port: srv.port, transport, protocol, calls: CALLS, trace: true });
      assert.equal(r[0].result, 'p1: hello alice');
      assert.equal(r[1].result, BIG);
      assert.equal(r[2].result, 5);
      assert.deepEqual(r[3].error, { type: 'GreetError', code: 1, message: 'p1: negative a' });
      assert.equal(r[4].ok, true);
      assert.equal(r[4].received, '', 'a oneway call has no answer');
      assert.equal(r[5].result, 'p1: hello after-ping');
      await waitFor(() => srv.calls.some((c) => c.method === 'ping' && c.args[0] === 'note-1'));
      assert.deepEqual(srv.calls.map((c) => c.method), ['sayHello', 'echo', 'add', 'add', 'ping', 'sayHello']);
      assert.equal(srv.connections(), 1, 'every call on one connection');
      for (const line of r.filter((x) => x.method !== 'ping')) {
        assert.equal(isHeaderFrame(line.sent), transport === 'header');
        assert.equal(isHeaderFrame(line.received), transport === 'header', 'answered in the transport it was asked in');
      }
      if (transport === 'header') {
        assert.ok(srv.calls.every((c) => c.clientType === 'HEADERS'));
        // The Python library numbers every call 0 (its generated clients never advance seqid);
        // the THeader frame's own sequence id follows the message's.
        assert.ok(srv.calls.every((c) => c.headerSeqId === 0));
      }
    });
  }
}

for (const protocol of ['binary', 'compact']) {
  test(`direct THeader/${protocol}: key/values the client writes reach the server, per call`, async (t) => {
    const srv = await pyServer(t, { name: 'p1', transport: 'header', protocol });
    const r = await runPythonThriftClient({
      port: srv.port, transport: 'header', protocol, headers: { tenant: 'blue' },
      calls: [
        { method: 'echo', args: ['header:tenant'] },
        { method: 'sayHello', args: ['header:tenant'], headers: { tenant: 'green' } },
        { method: 'echo', args: ['header:missing'] },
      ],
    });
    assert.deepEqual(r.map((x) => x.result), ['blue', 'p1: green', '<none>']);
    assert.deepEqual(srv.calls.map((c) => c.headers), [{ tenant: 'blue' }, { tenant: 'green' }, { tenant: 'blue' }]);
  });
}

test('the Python THeader server answers framed and unframed clients in their own kind', async (t) => {
  // Unframed compact is left out: thrift 0.22's C extension (fastbinary) fails reading it under
  // THeaderTransport on Python 3.11 (SystemError: PY_SSIZE_T_CLEAN macro must be defined for '#'
  // formats, from its buffer refill), so the connection drops. A library bug, not the wire.
  for (const [transport, protocol, clientType] of [['framed', 'binary', 'FRAMED_BINARY'], ['framed', 'compact', 'FRAMED_COMPACT'], ['buffered', 'binary', 'UNFRAMED_BINARY']]) {
    const srv = await pyServer(t, { name: 'p1', transport: 'header', protocol });
    const r = await runPythonThriftClient({ port: srv.port, transport, protocol, trace: true, calls: [{ method: 'sayHello', args: ['x'] }, { method: 'add', args: [-1, 1] }] });
    assert.equal(r[0].result, 'p1: hello x', `${transport}/${protocol}`);
    assert.equal(r[1].error.type, 'GreetError');
    assert.ok(!isHeaderFrame(r[0].received), `${transport}/${protocol} answered without a THeader`);
    assert.equal(r[0].received.startsWith('0000'), transport === 'framed', 'framed answers framed, unframed unframed');
    assert.deepEqual(srv.calls.map((c) => c.clientType), [clientType, clientType]);
  }
});

for (const [transport, protocol] of [['framed', 'binary'], ['buffered', 'compact'], ['header', 'binary'], ['header', 'compact']]) {
  test(`multiplexed ${transport}/${protocol}: Greeter and Calculator on one connection`, async (t) => {
    const srv = await pyServer(t, { name: 'p2', transport, protocol, multiplexed: true });
    const r = await runPythonThriftClient({
      port: srv.port, transport, protocol, multiplexed: true,
      calls: [{ method: 'sayHello', args: ['bob'] }, { service: 'Calculator', method: 'whoami' }, { service: 'Calculator', method: 'multiply', args: [6, 7] }, { method: 'ping', args: ['p'] }, { method: 'add', args: [1, 1] }],
    });
    assert.deepEqual(r.map((x) => x.result), ['p2: hello bob', 'p2:Calculator', 42, null, 2]);
    assert.deepEqual(srv.calls.map((c) => `${c.service}.${c.method}`), ['Greeter.sayHello', 'Calculator.whoami', 'Calculator.multiply', 'Greeter.ping', 'Greeter.add']);
    assert.equal(srv.connections(), 1);
  });
}

test('a plain client calling a multiplexed Python server gets the library\'s TApplicationException', async (t) => {
  const srv = await pyServer(t, { name: 'p2', multiplexed: true });
  const r = await runPythonThriftClient({ port: srv.port, calls: [{ method: 'sayHello', args: ['x'] }] });
  // TMultiplexedProcessor raises a TProtocolException the server does not answer: it drops the connection.
  assert.equal(r[0].ok, false);
  assert.equal(r[0].error.type, 'TTransportException');
});

// Cross checks: the Python client against Apache Thrift's Go server (go.mjs), THeader and framed.
for (const [transport, protocol] of [['header', 'binary'], ['header', 'compact'], ['framed', 'binary']]) {
  test(`cross: Python ${transport}/${protocol} client, Go ${transport} server`, async (t) => {
    const srv = await startGoThriftServer({ name: 'g1', transport });
    t.after(() => srv.stop());
    const r = await runPythonThriftClient({
      port: srv.port, transport, protocol, headers: { tenant: 'blue' }, trace: true,
      calls: [{ method: 'sayHello', args: ['py'] }, { method: 'echo', args: [BIG] }, { method: 'add', args: [-1, 2] }, { method: 'ping', args: ['n'] }, { method: 'echo', args: ['header:tenant'] }],
    });
    assert.equal(r[0].result, 'g1: hello py');
    assert.equal(r[1].result, BIG);
    assert.deepEqual(r[2].error, { type: 'GreetError', code: 1, message: 'g1: negative a' });
    assert.equal(r[3].ok, true);
    assert.equal(r[4].result, transport === 'header' ? 'blue' : '<none>', 'the Go server read the Python key/value (none without THeader)');
    assert.equal(isHeaderFrame(r[0].received), transport === 'header');
  });
}

// And the other way: the npm client against the Python server (npm's THeader client too).
for (const [transport, protocol] of [['framed', 'compact'], ['buffered', 'binary'], ['header', 'binary'], ['header', 'compact']]) {
  test(`cross: npm ${transport}/${protocol} client, Python server`, async (t) => {
    const srv = await pyServer(t, { name: 'p1', transport, protocol });
    const c = await thriftClient({ port: srv.port, transport, protocol, headers: transport === 'header' ? { tenant: 'blue' } : undefined });
    t.after(() => c.close());
    assert.equal(await c.sayHello('npm'), 'p1: hello npm');
    assert.equal(await c.add(2, 2), 4);
    await assert.rejects(c.add(-1, 2), (e) => e.code === 1 && e.message === 'p1: negative a');
    if (transport === 'header') assert.equal(await c.echo('header:tenant'), 'blue');
  });
}
