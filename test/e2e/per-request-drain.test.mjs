// Per-request mode through an Envoy listener drain (docs/per-request.md, "Limits"), with a real
// Apache Thrift client and server. On a drain HCM sends GOAWAY twice (RFC 9113 section 6.8): a
// notice carrying the largest stream id before the first response it encodes once the drain
// manager says drainClose (HCM checks per response, in encodeHeaders), after which it still takes
// new streams, then, its drain_timeout later, the final GOAWAY naming the last stream it took. The
// client role stops taking calls at the first, answers the calls HCM will not take with the
// unavailable error (TApplicationException INTERNAL_ERROR), lets the others get their replies, and
// closes the client connection once every call is answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvoy, perRequestBootstrap, waitFor, withTimeout } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';

const NOT_SENT = /^meltemi: call not sent: the connection manager is going away/;

/** A per-request Envoy whose HCM (the bootstrap's second filter of the `meltemi` listener) gets `hcm` merged in. */
async function drainableMesh(t, server, hcm) {
  const plugin = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'v1' }] }] };
  const config = await perRequestBootstrap({ plugin, clusters: { v1: [{ port: server.port }] } });
  const listener = config.static_resources.listeners.find((l) => l.name === 'meltemi');
  const manager = listener.filter_chains[0].filters.find((f) => f.name === 'envoy.filters.network.http_connection_manager').typed_config;
  Object.assign(manager, hcm, { http2_protocol_options: { ...manager.http2_protocol_options, ...hcm.http2_protocol_options } });
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info', config,
    // The default strategy (gradual) makes drainClose true with a probability growing over
    // --drain-time-s (600 s), so the GOAWAY would come at some later response; immediate makes it
    // the first. --drain-time-s still bounds how long the listener keeps accepting (untouched here).
    extraArgs: ['--drain-strategy', 'immediate'],
  });
  return { envoy, port: await envoy.listenerPort('meltemi') };
}

/** `promise` settled, with the time it settled at (ms since `t0`). */
const settled = (promise, t0) => promise.then(
  (value) => ({ value, at: Date.now() - t0 }),
  (error) => ({ error, at: Date.now() - t0 }),
);

test('a listener drain: calls in flight get their replies, calls HCM will not take get TApplicationException, then Envoy closes the connection', async (t) => {
  const server = await startThriftServer({ name: 'v1' });
  t.after(() => server.stop());
  // Four streams stand for HCM's 1024, so that a few calls fill them and two wait in the role;
  // a 1 s drain_timeout (HCM's default is 5 s) brings the final GOAWAY while they still do.
  const { envoy, port } = await drainableMesh(t, server, { drain_timeout: '1s', http2_protocol_options: { max_concurrent_streams: 4 } });
  const c = await thriftClient({ port, timeout: 15_000 });
  t.after(() => c.close());
  // The first exchange also brings HCM's SETTINGS, so the role knows the limit of 4 from here on.
  assert.equal(await c.echo('before'), 'before');

  const t0 = Date.now();
  const slow = [0, 1, 2].map((i) => settled(c.echo(`delay:3000:slow${i}`), t0));
  await waitFor(() => server.calls.length === 4, { message: `the server got ${server.calls.length - 1} of the 3 slow calls` });
  const since = envoy.logOffset();
  const drain = await envoy.admin('/drain_listeners?graceful', { method: 'POST' });
  assert.equal(drain.status, 200, drain.body);
  // Sent once the drain is on: `first`'s reply is the first response HCM encodes, so the notice
  // goes out before it. `taken` then gets the stream `first` frees (HCM still takes streams after
  // the notice); `queued` is still waiting for one when the final GOAWAY comes.
  const first = settled(c.echo('delay:200:first'), t0);
  const taken = settled(c.echo('delay:3000:taken'), t0);
  const queued = settled(c.echo('queued'), t0);
  await envoy.waitForLog(/meltemi conn=[\d.]+: the connection manager is going away; closing after \d+ calls are answered/, 10_000, { since });
  // A call the client sends after the GOAWAY: the role takes no new calls, and says so at once.
  const late = settled(c.echo('late'), t0);

  const [s0, s1, s2, f, tk, q, l] = await withTimeout(Promise.all([...slow, first, taken, queued, late]), 12_000, 'the calls of the draining connection');
  for (const [r, v] of [[s0, 'delay:3000:slow0'], [s1, 'delay:3000:slow1'], [s2, 'delay:3000:slow2'], [f, 'delay:200:first'], [tk, 'delay:3000:taken']]) {
    assert.equal(r.value, v, `${v}: ${r.error?.message}`);
  }
  for (const [r, what] of [[q, 'queued'], [l, 'late']]) {
    assert.ok(r.error, `${what} got ${r.value}`);
    assert.equal(r.error.type, 6, `${what}: TApplicationException INTERNAL_ERROR, got ${r.error.message}`);
    assert.match(r.error.message, NOT_SENT, what);
  }
  const lastReply = Math.max(s0.at, s1.at, s2.at, tk.at);
  t.diagnostic(`first ${f.at} ms, late ${l.at} ms, queued ${q.at} ms, last reply ${lastReply} ms`);
  assert.ok(l.at < lastReply && q.at < lastReply, 'the refused calls were answered before the slow ones, not at the close');
  assert.deepEqual(server.calls.map((x) => x.args[0]).sort(),
    ['before', 'delay:200:first', 'delay:3000:slow0', 'delay:3000:slow1', 'delay:3000:slow2', 'delay:3000:taken'],
    'the refused calls never reached the server');

  assert.equal(await withTimeout(c.closed, 5000, 'the client connection close'), 'peer', 'Envoy closed the connection');
  const st = await envoy.stats({ filter: '^http\\.meltemi\\.downstream_cx_drain_close$' });
  assert.equal(st.get('http.meltemi.downstream_cx_drain_close'), 1, 'HCM drained that connection');
  const m = await envoy.metrics();
  assert.equal(m.get('meltemi_local_reply_total'), 2, 'queued and late, answered by the role');
  assert.equal(m.get('meltemi_active_requests'), 0);

  // The listener still accepts while it drains: a client that reconnects gets its reply, and that
  // connection drains in turn (its first response carries the notice).
  const again = await thriftClient({ port, timeout: 5000 });
  t.after(() => again.close());
  assert.equal(await again.sayHello('again'), 'v1: hello again');
  assert.equal(await withTimeout(again.closed, 5000, 'the second connection close'), 'peer');
});
