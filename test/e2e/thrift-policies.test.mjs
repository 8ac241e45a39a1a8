// Traffic policies (route.fault, localRateLimit, authorization, timeoutMs) through the real Envoy
// and the real Meltemi filter, with real Apache Thrift clients and servers. A request a policy
// rejects is answered by the filter with a TApplicationException (the local-reply probe goes to
// the server in its place); the connection stays usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thriftMesh } from './lib/mesh.mjs';
import { waitFor } from '../harness/index.mjs';
import { accessEntries } from './lib/access-log.mjs';
import { thrift } from '../peers/thrift/index.mjs';

const { TApplicationException, TApplicationExceptionType } = thrift.Thrift;

/** A one-server mesh (cluster v1) whose plugin config has `routes`. */
function policyMesh(t, routes, opts = {}) {
  return thriftMesh(t, {
    plugin: { codec: 'thrift', accessLog: true, routes },
    servers: { v1: {} },
    ...opts,
  });
}

/** Settles a call: { ok: value } or { err }. */
async function settle(promise) {
  try {
    return { ok: await promise };
  } catch (err) {
    return { err };
  }
}

/**
 * Asserts `err` is the TApplicationException the filter answers with, carrying `message`; with a
 * test context, records what the client got in the test output.
 */
function assertLocalReply(t, err, message, what) {
  assert.ok(err instanceof TApplicationException, `${what}: expected a TApplicationException, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.type, TApplicationExceptionType.INTERNAL_ERROR);
  assert.equal(err.message, message);
  t?.diagnostic(`${what}: client got ${err.constructor.name} type=${err.type} message=${JSON.stringify(err.message)}`);
}

test('fault abort answers with a TApplicationException and the connection carries on', async (t) => {
  const mesh = await policyMesh(t, [
    { name: 'abort-all', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v1' }], fault: { abort: { message: 'injected by test' } } },
    { name: 'abort-half', route: [{ cluster: 'v1' }], fault: { abort: { percentage: 50 } } },
  ]);
  // 100 %: every call on the connection is aborted, and each gets its own answer.
  const all = await mesh.client();
  for (let i = 0; i < 3; i++) {
    const r = await settle(all.sayHello(`a${i}`));
    assertLocalReply(t, r.err, 'injected by test', `abort 100% call ${i}`);
  }
  assert.equal(all.isClosed, false);
  assert.equal(mesh.servers.v1.calls.length, 0, 'no aborted request reached the server');

  // 50 %: both outcomes on one connection; a call right after an abort succeeds.
  const half = await mesh.client();
  const outcomes = [];
  for (let i = 0; i < 40; i++) {
    const r = await settle(half.echo(`e${i}`));
    if (r.err) assertLocalReply(outcomes.includes('aborted') ? null : t, r.err, 'meltemi: fault injected', `abort 50% call ${i}`);
    else assert.equal(r.ok, `e${i}`);
    outcomes.push(r.err ? 'aborted' : 'ok');
  }
  const aborted = outcomes.filter((o) => o === 'aborted').length;
  assert.ok(aborted > 0 && aborted < 40, `both outcomes in 40 calls at 50 % (aborted ${aborted})`);
  assert.ok(outcomes.some((o, i) => o === 'aborted' && outcomes[i + 1] === 'ok'), 'a call after an abort succeeded');
  assert.equal(half.isClosed, false);
  assert.equal(mesh.servers.v1.calls.length, 40 - aborted);

  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_fault_abort_total'), 3 + aborted);
  assert.equal(s.get('meltemi_local_reply_total'), 3 + aborted);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'abort-half', meltemi_kind: 'call' }), 40);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'abort-half', meltemi_status: 'reply' }), 40 - aborted, 'swapped probe answers are not counted as replies');
  assert.equal(s.get('meltemi_active_requests'), 0);
});

test('fault delay holds each request at least the configured time; latency lands in the histogram', async (t) => {
  const delayMs = 300;
  const mesh = await policyMesh(t, [
    { name: 'slowed', route: [{ cluster: 'v1' }], fault: { delay: { fixedDelayMs: delayMs } } },
  ], { bootstrap: { stats_flush_interval: '0.2s' } });
  const c = await mesh.client();
  for (let i = 0; i < 2; i++) { // the first request of a connection and a later one
    const t0 = performance.now();
    assert.equal(await c.echo(`d${i}`), `d${i}`);
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= delayMs, `call ${i} took ${elapsed.toFixed(1)} ms, less than the ${delayMs} ms delay`);
  }
  // Pipelined on one connection: the held read holds every request in it.
  const t0 = performance.now();
  const piped = await Promise.all([c.echo('p0'), c.echo('p1'), c.echo('p2')]);
  const elapsed = performance.now() - t0;
  assert.deepEqual(piped, ['p0', 'p1', 'p2']);
  assert.ok(elapsed >= delayMs, `pipelined calls took ${elapsed.toFixed(1)} ms, less than the ${delayMs} ms delay`);
  assert.equal(mesh.servers.v1.calls.length, 5);
  assert.equal(await mesh.envoy.metric('meltemi_fault_delay_total'), 5);

  // Envoy publishes histograms on the stats flush: poll until the 5 answers are in.
  const slowed = { meltemi_route: 'slowed', meltemi_cluster: 'v1' };
  const m = await waitFor(async () => {
    const scrape = await mesh.envoy.metrics();
    return scrape.get('meltemi_request_duration_ms_count', slowed) === 5 ? scrape : null;
  }, { message: 'meltemi_request_duration_ms has the 5 answers' });
  // Envoy's default buckets: ..., 100, 250, 500, ...: none of the answers came within 250 ms.
  assert.equal(m.get('meltemi_request_duration_ms_bucket', { ...slowed, le: '250' }), 0);
  assert.equal(m.get('meltemi_request_duration_ms_bucket', { ...slowed, le: '+Inf' }), 5);
  assert.ok(m.get('meltemi_request_duration_ms_sum', slowed) >= 5 * delayMs, `request_duration_ms sum includes 5 delays of ${delayMs} ms`);
});

test('local rate limit: maxTokens per interval pass, the excess gets the error reply', async (t) => {
  const mesh = await policyMesh(t, [
    { name: 'limited', route: [{ cluster: 'v1' }], localRateLimit: { tokenBucket: { maxTokens: 5, fillIntervalMs: 60000 } } },
  ]);
  const c = await mesh.client();
  const results = [];
  for (let i = 0; i < 8; i++) results.push(await settle(c.echo(`r${i}`)));
  assert.deepEqual(results.slice(0, 5).map((r) => r.ok), ['r0', 'r1', 'r2', 'r3', 'r4']);
  for (const [i, r] of results.slice(5).entries()) {
    assertLocalReply(t, r.err, 'meltemi: rate limit exceeded on route limited', `rate limit call ${5 + i}`);
  }
  assert.equal(c.isClosed, false);
  assert.equal(mesh.servers.v1.calls.length, 5);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_ratelimited_total'), 3);
  assert.equal(s.get('meltemi_local_reply_total'), 3);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'limited', meltemi_kind: 'call' }), 8);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'limited', meltemi_status: 'reply' }), 5);
});

test('local rate limit holds across Envoy worker threads (one bucket per Envoy process)', async (t) => {
  const maxTokens = 5;
  const mesh = await policyMesh(t, [
    { name: 'limited', route: [{ cluster: 'v1' }], localRateLimit: { tokenBucket: { maxTokens, fillIntervalMs: 60000 } } },
  ], { concurrency: 2 });
  // Open connections until both workers have accepted some (the kernel spreads them), at least 8.
  const workerCx = async () => {
    const s = await mesh.envoy.stats({ filter: '^listener\\..*\\.worker_\\d+\\.downstream_cx_total$' });
    return [...s.values()];
  };
  const clients = [];
  for (;;) {
    clients.push(await mesh.client());
    // The worker stat moves when the worker accepts; wait for this connection to be counted.
    const counts = await waitFor(async () => {
      const v = await workerCx();
      return v.reduce((a, b) => a + b, 0) === clients.length ? v : null;
    }, { message: `${clients.length} connections counted by the workers` });
    if (clients.length >= 8 && counts.filter((n) => n > 0).length === 2) break;
    assert.ok(clients.length < 64, `64 connections all went to one worker: ${counts}`);
  }
  const results = await Promise.all(clients.flatMap((c, i) => [settle(c.echo(`a${i}`)), settle(c.echo(`b${i}`))]));
  const ok = results.filter((r) => 'ok' in r).length;
  for (const r of results) if (r.err) assertLocalReply(null, r.err, 'meltemi: rate limit exceeded on route limited', 'rate limit across workers');
  t.diagnostic(`${clients.length} connections over 2 workers (${await workerCx()}), ${results.length} calls, ${ok} accepted`);
  assert.equal(ok, maxTokens, 'accepted across both workers');
  assert.equal(mesh.servers.v1.calls.length, maxTokens);
  assert.equal(await mesh.envoy.metric('meltemi_ratelimited_total'), results.length - maxTokens);
  for (const c of clients) assert.equal(c.isClosed, false);
});

test('authorization: rules by method and source; denied oneway requests are dropped; access log', async (t) => {
  const mesh = await policyMesh(t, [{
    name: 'guarded',
    route: [{ cluster: 'v1' }],
    authorization: {
      defaultAction: 'DENY',
      rules: [
        { name: 'no-ping', action: 'DENY', match: { attributes: { method: { exact: 'ping' } } } },
        { name: 'no-hello', action: 'DENY', match: { attributes: { method: { exact: 'sayHello' } } } },
        { name: 'add-from-10', action: 'ALLOW', match: { attributes: { method: { exact: 'add' } } }, sources: ['10.0.0.0/8'] },
        { name: 'loopback', action: 'ALLOW', match: { attributes: { method: { exact: 'echo' } } }, sources: ['127.0.0.0/8', '::1'] },
      ],
    },
  }]);
  const since = mesh.envoy.logOffset();
  const c = await mesh.client();
  assert.equal(await c.echo('first'), 'first', 'loopback passes the 127.0.0.0/8 rule (else defaultAction DENY)');
  const hello = await settle(c.sayHello('mallory'));
  assertLocalReply(t, hello.err, 'meltemi: request denied by authorization rule no-hello', 'deny rule');
  const add = await settle(c.add(1, 2));
  assertLocalReply(t, add.err, 'meltemi: request denied by authorization rule defaultAction', 'source outside 10.0.0.0/8');
  await c.ping('dropped'); // oneway: resolves once written
  assert.equal(await c.echo('after'), 'after', 'the connection survives the denials');
  // The server reads in order: the echo's answer means the ping would have arrived by now.
  assert.deepEqual(mesh.servers.v1.calls.map((x) => x.method), ['echo', 'echo']);
  assert.equal(c.isClosed, false);

  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_authz_denied_total'), 3);
  assert.equal(s.get('meltemi_local_reply_total'), 2);
  assert.equal(s.get('meltemi_oneway_dropped_total'), 1);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'guarded', meltemi_kind: 'oneway' }), 1);

  // One access-log line per answered request (route, method, status, duration), local replies included.
  const entries = await waitFor(() => {
    const found = accessEntries(mesh.envoy.logs().slice(since));
    return found.filter((e) => e.method === 'echo').length >= 2 ? found : null;
  }, { message: 'two echo access lines' });
  t.diagnostic(`access log:\n${entries.map((e) => JSON.stringify(e)).join('\n')}`);
  assert.equal(entries.length, 4, 'two replies and two local replies; the dropped oneway is not logged');
  for (const e of entries) {
    assert.match(e.conn, /^\d+\.\d+$/);
    assert.equal(e.route, 'guarded');
    assert.equal(e.cluster, 'v1');
    assert.equal(typeof e.id, 'number');
  }
  const status = (method) => entries.filter((e) => e.method === method).map((e) => [e.status, e.reason]);
  assert.deepEqual(status('sayHello'), [['local_reply', 'meltemi: request denied by authorization rule no-hello']]);
  assert.deepEqual(status('add'), [['local_reply', 'meltemi: request denied by authorization rule defaultAction']]);
  assert.deepEqual(status('echo'), [['reply', undefined], ['reply', undefined]]);
});

test('route timeout closes the connection when the server is too slow, counted and logged', async (t) => {
  const timeoutMs = 300;
  const mesh = await policyMesh(t, [{ name: 'slow', route: [{ cluster: 'v1' }], timeoutMs }]);
  const c = await mesh.client();
  assert.equal(await c.echo('quick'), 'quick', 'an answer within the timeout passes');
  const since = mesh.envoy.logOffset();
  const t0 = performance.now();
  await assert.rejects(c.echo('delay:3000:late'), /closed|ECONNRESET|EPIPE/);
  const elapsed = performance.now() - t0;
  assert.equal(await c.closed, 'peer');
  assert.ok(elapsed >= timeoutMs, `closed after ${elapsed.toFixed(1)} ms, before the ${timeoutMs} ms timeout`);
  const [line] = await mesh.envoy.waitForLog(/meltemi conn=\d+\.\d+: request timed out after 300 ms on route slow; closing connection with 1 requests in flight/, 5000, { since });
  t.diagnostic(`Envoy log: ${line}`);
  assert.equal(await mesh.envoy.metric('meltemi_timeout_total'), 1);
  // A new connection is served as usual.
  const d = await mesh.client();
  assert.equal(await d.echo('again'), 'again');
});

test('local replies on a multiplexed compact buffered connection', async (t) => {
  const peer = { transport: 'buffered', protocol: 'compact', multiplexed: true };
  const mesh = await thriftMesh(t, {
    plugin: {
      codec: 'thrift',
      routes: [{
        name: 'calc',
        route: [{ cluster: 'v1' }],
        authorization: { rules: [{ name: 'no-multiply', action: 'DENY', match: { attributes: { service: { exact: 'Calculator' }, method: { exact: 'multiply' } } } }] },
      }],
    },
    servers: { v1: peer },
  });
  const c = await mesh.client({ ...peer, service: 'Calculator' });
  assert.equal(await c.whoami(), 'v1:Calculator');
  const denied = await settle(c.multiply(6, 7));
  assertLocalReply(t, denied.err, 'meltemi: request denied by authorization rule no-multiply', 'multiplexed compact deny');
  assert.equal(await c.service('Greeter').echo('still here'), 'still here');
  assert.deepEqual(mesh.servers.v1.calls.map((x) => `${x.service}.${x.method}`), ['Calculator.whoami', 'Greeter.echo']);
  assert.equal(await mesh.envoy.metric('meltemi_authz_denied_total'), 1);
});

test('with transport and protocol pinned, requests pass by their first bytes and authorization and rate limit still decide each one', async (t) => {
  // Pinned framed/binary and no access log: frames after the first take the pass-through path
  // (docs/DESIGN.md), where a policy decides from the frame's first bytes and a refused request is
  // handed back to the whole-frame path. Policies must come out exactly as on the whole path.
  const mesh = await thriftMesh(t, {
    plugin: {
      codec: 'thrift',
      codecOptions: { transport: 'framed', protocol: 'binary' },
      routes: [{
        name: 'guarded',
        route: [{ cluster: 'v1' }],
        authorization: { rules: [{ name: 'no-hello', action: 'DENY', match: { attributes: { method: { exact: 'sayHello' } } } }] },
        localRateLimit: { conditions: [{ match: { attributes: { method: { exact: 'echo' } } }, tokenBucket: { maxTokens: 6, fillIntervalMs: 60000 } }] },
      }],
    },
    servers: { v1: {} },
  });
  const c = await mesh.client();
  const big = 'x'.repeat(200_000); // far past the 256-byte prefix: its bytes pass unread
  const results = [];
  for (let i = 0; i < 8; i++) {
    results.push(await settle(c.echo(i === 2 ? big : `r${i}`)));
    if (i === 3) results.push(await settle(c.sayHello('mallory')));
  }
  const echoes = results.filter((_, i) => i !== 4);
  assert.deepEqual(echoes.slice(0, 6).map((r) => r.ok?.length > 1000 ? 'big' : r.ok), ['r0', 'r1', 'big', 'r3', 'r4', 'r5']);
  assertLocalReply(t, results[4].err, 'meltemi: request denied by authorization rule no-hello', 'denied on the pass-through path');
  for (const r of echoes.slice(6)) assertLocalReply(null, r.err, 'meltemi: rate limit exceeded on route guarded', 'over the limit');
  assert.equal(await c.add(2, 3), 5, 'a method without a limit still passes');
  assert.equal(c.isClosed, false);
  assert.deepEqual(mesh.servers.v1.calls.map((x) => x.method), ['echo', 'echo', 'echo', 'echo', 'echo', 'echo', 'add']);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_authz_denied_total'), 1);
  assert.equal(s.get('meltemi_ratelimited_total'), 2);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'guarded', meltemi_kind: 'call' }), 10, 'each request counted once, refused ones too');
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'guarded', meltemi_status: 'reply' }), 7);
  assert.equal(s.get('meltemi_active_requests'), 0);
});
