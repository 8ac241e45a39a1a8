// ioredis (npm, pinned in package.json) through the real Envoy and the real Meltemi filter, against
// real redis-servers: a second real Redis client beside redis-py, which speaks differently. ioredis
// 6 opens every connection with a handshake written in one go (`hello 3`, RESP3 by default; with
// `protocol: 2`, AUTH / SELECT / CLIENT SETNAME; then CLIENT SETINFO LIB-VER and LIB-NAME, which
// redis-server 7.0 refuses and ioredis ignores), then sends INFO for its ready check, flushes its
// offline queue, and writes concurrent commands back to back. Per connection, that handshake is the
// first command and decides the route; per request, each command is routed on its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis, ReplyError } from 'ioredis';
import { startEnvoy, meltemiBootstrap, perRequestBootstrap, waitFor } from '../harness/index.mjs';
import { startRedis, cli } from './lib/redis.mjs';

/** An ioredis client on `port`, closed when `t` ends. It never reconnects: a closed connection shows. */
function ioredis(t, port, options = {}) {
  const r = new Redis({ port, host: '127.0.0.1', retryStrategy: () => null, maxRetriesPerRequest: 0, ...options });
  r.errors = [];
  r.closes = 0;
  r.on('error', (e) => r.errors.push(e.message));
  r.on('close', () => { r.closes++; });
  t.after(() => r.disconnect());
  return r;
}

/** `promise` rejects with a ReplyError (a Redis error reply, as ioredis parsed it): `message` exactly, or matching it. */
async function replyError(promise, message) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof ReplyError, `${e?.constructor?.name}: ${e?.message}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

/** CLIENT INFO of the server connection that ran the call, as key=value pairs. */
async function clientInfo(r) {
  return Object.fromEntries((await r.client('INFO')).trim().split(' ').map((kv) => kv.split('=')));
}

const WATCH_REFUSED = 'ERR meltemi: WATCH is not supported in per-request mode (it needs one server connection for the whole client connection); use MULTI/EXEC without WATCH, or per-connection mode';

test('per connection: ioredis\'s handshake is the first command, so it picks the route, and the connection stays there', async (t) => {
  const r1 = await startRedis(t);
  const r2 = await startRedis(t);
  const plugin = {
    codec: 'redis',
    routes: [
      { name: 'ready-check', match: { attributes: { command: { exact: 'INFO' } } }, route: [{ cluster: 'r2' }] },
      { name: 'sessions', match: { attributes: { key: { prefix: 'session:' } } }, route: [{ cluster: 'r2' }] },
      { name: 'rest', route: [{ cluster: 'r1' }] },
    ],
  };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: meltemiBootstrap({ plugin, clusters: { r1: [{ port: r1.port }], r2: [{ port: r2.port }] } }),
  });
  const port = await envoy.listenerPort('meltemi');

  // Defaults: `hello 3` first (no key), so the catch-all route takes the connection; the INFO
  // ready check and the session keys that follow stay on r1 (mismatchPolicy keep).
  const a = ioredis(t, port);
  assert.equal(await a.set('session:a', 'alice'), 'OK');
  assert.equal(await a.get('session:a'), 'alice');
  assert.equal(a.status, 'ready', 'the INFO ready check came back through Meltemi');
  assert.equal((await clientInfo(a)).resp, '3', 'RESP3: ioredis 6 negotiates it with HELLO 3');
  // The server's errors reach ioredis as ReplyErrors, with the server's words.
  await replyError(a.lpush('session:a', 'x'), /^WRONGTYPE Operation against a key holding the wrong kind of value$/);
  await replyError(a.call('NOSUCHCMD', 'x'), /^ERR unknown command 'NOSUCHCMD'/);
  assert.equal(await a.get('session:a'), 'alice');
  assert.equal(await cli(r1.port, ['GET', 'session:a']), 'alice\n');
  assert.equal(await cli(r2.port, ['EXISTS', 'session:a']), '0\n');

  // RESP2 without client info: nothing to set up, so INFO (the ready check) is the first command.
  const b = ioredis(t, port, { protocol: 2, disableClientInfo: true });
  assert.equal(await b.set('plain:b', 'bob'), 'OK');
  assert.equal((await clientInfo(b)).resp, '2');
  assert.equal(await cli(r2.port, ['GET', 'plain:b']), 'bob\n');
  assert.equal(await cli(r1.port, ['EXISTS', 'plain:b']), '0\n');

  assert.equal(a.closes + b.closes, 0, 'no connection closed');
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'rest' }), 1);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'ready-check' }), 1);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'sessions' }), undefined);
  // a: INFO, SET/GET/LPUSH/GET of session:a; b: SET plain:b and CLIENT INFO (the catch-all's).
  assert.equal(s.get('meltemi_route_mismatch_total'), 7);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'rest', meltemi_status: 'exception' }), 4, 'two SETINFOs, WRONGTYPE, unknown command');
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
});

// ---- per request: one Envoy and two redis-servers for the tests below ----

// GET goes to the "replica", everything else with a key to the "primary"; keys under `slow:` have
// a 300 ms route timeout; keys starting with `!` match no route. Commands without a key (HELLO,
// INFO, MULTI, ...) have a route of their own, since there is no "absent" match.
const perRequestRoutes = [
  { name: 'reads', match: { attributes: { command: { exact: 'GET' } } }, route: [{ cluster: 'replica' }] },
  { name: 'slow', match: { attributes: { key: { prefix: 'slow:' } } }, timeoutMs: 300, route: [{ cluster: 'primary' }] },
  { name: 'writes', match: { attributes: { key: { regex: '[^!].*' } } }, route: [{ cluster: 'primary' }] },
  { name: 'keyless', match: { attributes: { command: { regex: 'HELLO|AUTH|INFO|PING|MULTI|EXEC|DISCARD' } } }, route: [{ cluster: 'primary' }] },
];
const mesh = {};
const cleanups = [];
before(async () => {
  const scope = { after: (fn) => cleanups.push(fn) };
  mesh.primary = await startRedis(scope);
  mesh.replica = await startRedis(scope);
  mesh.envoy = await startEnvoy({
    t: scope, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({
      plugin: { codec: 'redis', mode: 'perRequest', routes: perRequestRoutes },
      clusters: { primary: [{ port: mesh.primary.port }], replica: [{ port: mesh.replica.port }] },
    }),
  });
  mesh.port = await mesh.envoy.listenerPort('meltemi');
  // What the replica holds, so that a reply says which server a GET reached.
  for (let i = 0; i < 10; i++) assert.equal(await cli(mesh.replica.port, ['SET', `app:seed:${i}`, `replica-${i}`]), 'OK\n');
  assert.equal(await cli(mesh.primary.port, ['SET', 'app:seed:0', 'primary-0']), 'OK\n');
});
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

test('per request: GETs to the replica and writes to the primary on ONE ioredis connection, pipelined, in order', async (t) => {
  const { primary, replica, port, envoy } = mesh;
  const before = await envoy.metrics();
  const r = ioredis(t, port);
  // Sent before the connection is ready: ioredis holds it in its offline queue, then writes it
  // after the handshake and the INFO ready check.
  const early = r.set('app:early', 'queued');
  // An explicit pipeline of 40 commands in one write, over both servers.
  const p = r.pipeline();
  for (let i = 0; i < 10; i++) p.incr('app:n').get(`app:seed:${i}`).set(`app:w:${i}`, `v${i}`).get(`app:w:${i}`);
  const replies = await p.exec();
  assert.equal(await early, 'OK');
  const expected = [];
  for (let i = 0; i < 10; i++) expected.push([null, i + 1], [null, `replica-${i}`], [null, 'OK'], [null, null]);
  // The GET of a key just SET comes back empty: the write went to the primary, the read to the replica.
  assert.deepEqual(replies, expected);
  assert.equal(await cli(primary.port, ['GET', 'app:n']), '10\n');
  assert.equal(await cli(primary.port, ['GET', 'app:w:9']), 'v9\n');
  assert.equal(await cli(replica.port, ['EXISTS', 'app:n', 'app:w:0', 'app:w:9', 'app:early']), '0\n');
  assert.equal(await cli(primary.port, ['GET', 'app:early']), 'queued\n');

  // No pipeline: 60 promises started in one tick, written back to back on the same connection.
  const calls = [];
  for (let i = 0; i < 20; i++) calls.push(r.incr('app:m'), r.get(`app:seed:${i % 10}`), r.hset('app:h', `f${i}`, i));
  const answers = await Promise.all(calls);
  for (let i = 0; i < 20; i++) assert.deepEqual(answers.slice(3 * i, 3 * i + 3), [i + 1, `replica-${i % 10}`, 1], `call ${i}`);
  // The same with ioredis's own auto-pipelining (a tick's commands in one write).
  const auto = ioredis(t, port, { enableAutoPipelining: true });
  const batch = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? auto.get('app:seed:0') : auto.incr('app:auto'))));
  assert.deepEqual(batch, Array.from({ length: 30 }, (_, i) => (i % 2 ? 'replica-0' : i / 2 + 1)));
  assert.equal(await cli(primary.port, ['HLEN', 'app:h']), '20\n');
  assert.equal(await cli(replica.port, ['EXISTS', 'app:h', 'app:m', 'app:auto']), '0\n');

  // The server's errors, per command, in order, and the connection goes on.
  await replyError(r.lpush('app:n', 'x'), /^WRONGTYPE Operation against a key holding the wrong kind of value$/);
  await replyError(r.call('NOSUCHCMD', 'app:x'), /^ERR unknown command 'NOSUCHCMD'/);
  assert.equal(await r.get('app:seed:3'), 'replica-3');

  assert.equal(r.closes + auto.closes, 0, 'no connection closed');
  const d = (await envoy.metrics()).since(before);
  // 20 + 20 + 15 + 1 GETs to the replica: the pipeline, the promises, auto and the last one.
  assert.equal(d.get('meltemi_requests_total', { meltemi_route: 'reads', meltemi_kind: 'call' }), 56);
  assert.equal(d.get('meltemi_responses_total', { meltemi_route: 'reads', meltemi_status: 'reply' }), 56);
});

test('per request: db 3 (SELECT) and connectionName (CLIENT SETNAME) follow every call, to both servers', async (t) => {
  const { primary, replica, port } = mesh;
  assert.equal(await cli(replica.port, ['-n', '3', 'SET', 'app:where', 'replica db 3']), 'OK\n');
  assert.equal(await cli(replica.port, ['-n', '0', 'SET', 'app:where', 'replica db 0']), 'OK\n');
  // Two clients whose calls share the router's one connection per server: each call carries its
  // own client's state, replayed (after RESET) where the server connection carries another.
  const a = ioredis(t, port, { db: 3, connectionName: 'io-a' });
  const b = ioredis(t, port, { protocol: 2, connectionName: 'io-b' });
  const [sa, sb] = await Promise.all([a.set('app:db', 'three'), b.set('app:db', 'zero')]);
  assert.deepEqual([sa, sb], ['OK', 'OK']);
  const interleaved = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? b : a).incr('app:count')));
  assert.deepEqual(interleaved, Array.from({ length: 20 }, (_, i) => Math.floor(i / 2) + 1));
  assert.equal(await cli(primary.port, ['-n', '3', 'GET', 'app:db']), 'three\n');
  assert.equal(await cli(primary.port, ['-n', '0', 'GET', 'app:db']), 'zero\n');
  assert.equal(await cli(primary.port, ['-n', '3', 'GET', 'app:count']), '10\n');
  // GET goes to the replica: its database follows it there too.
  assert.equal(await a.get('app:where'), 'replica db 3');
  assert.equal(await b.get('app:where'), 'replica db 0');
  // The name and the protocol, as the server connections that ran the calls report them.
  assert.equal(await a.client('GETNAME'), 'io-a');
  assert.equal(await b.client('GETNAME'), 'io-b');
  const [ia, ib] = [await clientInfo(a), await clientInfo(b)];
  assert.deepEqual([ia.name, ia.db, ia.resp], ['io-a', '3', '3']);
  assert.deepEqual([ib.name, ib.db, ib.resp], ['io-b', '0', '2']);
  // A later SELECT changes the state of every later call of that client only.
  assert.equal(await a.select(5), 'OK');
  assert.equal(await a.set('app:db', 'five'), 'OK');
  assert.equal(await b.get('app:where'), 'replica db 0');
  assert.equal(await cli(primary.port, ['-n', '5', 'GET', 'app:db']), 'five\n');
  assert.equal(await cli(primary.port, ['-n', '3', 'GET', 'app:db']), 'three\n');
  assert.equal(a.closes + b.closes, 0, 'no connection closed');
});

test('per request: multi().exec() runs on one server, as one transaction; refusals abort it as documented; WATCH is refused', async (t) => {
  const { primary, replica, port, envoy } = mesh;
  const r = ioredis(t, port);
  // A GET inside the transaction runs with it on the primary (alone, a GET goes to the replica).
  const results = await r.multi().set('app:tx', '1').incr('app:tx').get('app:tx').exec();
  assert.deepEqual(results, [[null, 'OK'], [null, 2], [null, '2']]);
  assert.equal(await cli(primary.port, ['GET', 'app:tx']), '2\n');
  assert.equal(await cli(replica.port, ['EXISTS', 'app:tx']), '0\n');
  // Atomic: 10 transactions at once, each INCR then GET, every GET sees its own INCR.
  const many = await Promise.all(Array.from({ length: 10 }, () => r.multi().incr('app:atomic').get('app:atomic').exec()));
  const seen = many.map(([[e1, n], [e2, got]]) => {
    assert.equal(e1, null);
    assert.equal(e2, null);
    assert.equal(String(n), got, 'nothing ran between the INCR and the GET of one transaction');
    return n;
  });
  assert.deepEqual(seen.sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  // The transaction is routed as its first queued command: a GET first takes it, writes and
  // all, to the replica.
  assert.deepEqual(await r.multi().get('app:seed:4').set('app:tx-on-replica', '1').exec(), [[null, 'replica-4'], [null, 'OK']]);
  assert.equal(await cli(replica.port, ['GET', 'app:tx-on-replica']), '1\n');
  assert.equal(await cli(primary.port, ['EXISTS', 'app:tx-on-replica']), '0\n');

  // A state change inside MULTI, which Meltemi refuses: EXECABORT at EXEC, as Redis does with a
  // queue-time error, and ioredis hands over the queue-time error; nothing ran.
  await assert.rejects(r.multi().set('app:aborted', '1').select(1).incr('app:aborted').exec(), (e) => {
    assert.ok(e instanceof ReplyError);
    assert.equal(e.message, 'EXECABORT Transaction discarded because of previous errors.');
    assert.deepEqual(e.previousErrors.map((x) => x.message), ['ERR meltemi: connection state cannot change inside MULTI in per-request mode']);
    return true;
  });
  assert.equal(await cli(primary.port, ['EXISTS', 'app:aborted']), '0\n');
  assert.equal(await cli(primary.port, ['-n', '1', 'EXISTS', 'app:aborted']), '0\n');
  // A command the server rejects at queue time: Meltemi answered +QUEUED for it, so the server's
  // EXECABORT comes without the queue-time error (docs/per-request.md; direct, ioredis lists it).
  await assert.rejects(r.multi().set('app:aborted', '1').call('NOSUCHCMD').exec(), (e) => {
    assert.ok(e instanceof ReplyError);
    assert.equal(e.message, 'EXECABORT Transaction discarded because of previous errors.');
    assert.deepEqual(e.previousErrors, []);
    return true;
  });
  assert.equal(await cli(primary.port, ['EXISTS', 'app:aborted']), '0\n');

  // WATCH needs one server connection for the whole client connection: refused, clearly.
  await replyError(r.watch('app:tx'), WATCH_REFUSED);
  await replyError(r.unwatch(), /^ERR meltemi: UNWATCH is not supported in per-request mode/);
  assert.deepEqual(await r.multi().incr('app:tx').exec(), [[null, 3]]);
  assert.equal(r.closes, 0, 'no connection closed');
  assert.equal(await envoy.value('meltemi_unmatched_response_total'), 0);
});

test('per request: a route timeout and a missing route come back as -ERR (a ReplyError); the connection carries on', async (t) => {
  const { primary, replica, port, envoy } = mesh;
  const before = await envoy.metrics();
  const r = ioredis(t, port);
  assert.equal(await r.ping(), 'PONG');
  // BLPOP with no timeout on a `slow:` key: the route's 300 ms timeout answers it.
  const started = Date.now();
  const blocked = replyError(r.blpop('slow:queue', 0), /^ERR meltemi: upstream answered 504: upstream request timeout$/);
  // Replies keep command order, as on a Redis connection: the calls behind it wait for its answer.
  const behind = Promise.all([r.set('app:behind', 'x'), r.get('app:seed:1')]);
  await blocked;
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 2000, `the timeout answered after ${took} ms`);
  assert.deepEqual(await behind, ['OK', 'replica-1']);
  // The abandoned BLPOP no longer waits on the server: it does not take what is pushed next.
  assert.equal(await r.rpush('slow:queue', 'job'), 1);
  assert.deepEqual(await r.lrange('slow:queue', 0, -1), ['job']);
  assert.equal(await cli(primary.port, ['LLEN', 'slow:queue']), '1\n');
  // A key no route matches: Envoy's 404, as -ERR.
  await replyError(r.set('!nowhere', '1'), /^ERR meltemi: upstream answered 404/);
  assert.equal(await cli(primary.port, ['EXISTS', '!nowhere']), '0\n');
  assert.equal(await cli(replica.port, ['EXISTS', '!nowhere']), '0\n');
  // The same connection, still open, still routing.
  assert.equal(await r.incr('app:after'), 1);
  assert.equal(await r.get('app:seed:2'), 'replica-2');
  assert.equal(r.closes, 0, 'no connection closed');
  assert.equal(r.status, 'ready');
  const after = await envoy.metrics();
  assert.equal(after.value('meltemi_timeout_total') - before.value('meltemi_timeout_total'), 1);
  assert.equal(after.value('meltemi_no_route_total') - before.value('meltemi_no_route_total'), 1);
});

test('per request with AUTH: ioredis\'s password (and username) follow every call; a wrong one gets the server\'s error', async (t) => {
  const password = 'io-s3cret';
  const server = await startRedis(t, { password });
  const auth = ['--no-auth-warning', '-a', password];
  // A second user, limited to `app:*` keys: only its own AUTH on every call lets it in.
  assert.equal(await cli(server.port, [...auth, 'ACL', 'SETUSER', 'app', 'on', '>app-pass', '~app:*', '+@all']), 'OK\n');
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({
      plugin: { codec: 'redis', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'secure' }] }] },
      clusters: { secure: [{ port: server.port }] },
    }),
  });
  const port = await envoy.listenerPort('meltemi');
  // RESP3: `hello 3 AUTH default <password>`; RESP2: `auth <password>`.
  const resp3 = ioredis(t, port, { password });
  const resp2 = ioredis(t, port, { protocol: 2, password });
  const user = ioredis(t, port, { username: 'app', password: 'app-pass', db: 2 });
  const sets = await Promise.all([resp3.set('app:k3', 'a'), resp2.set('app:k2', 'b'), user.set('app:ku', 'c')]);
  assert.deepEqual(sets, ['OK', 'OK', 'OK']);
  assert.deepEqual(await Promise.all([resp3.acl('WHOAMI'), resp2.acl('WHOAMI'), user.acl('WHOAMI')]), ['default', 'default', 'app']);
  await replyError(user.set('other:k', 'x'), /^NOPERM/);
  assert.equal(await resp2.set('other:k', 'x'), 'OK');
  assert.equal(await cli(server.port, [...auth, 'GET', 'app:k2']), 'b\n');
  assert.equal(await cli(server.port, [...auth, '-n', '2', 'GET', 'app:ku']), 'c\n');

  // A wrong password: the server's WRONGPASS, through ioredis's error event and the queued call.
  const wrong = ioredis(t, port, { password: 'nope' });
  await replyError(wrong.get('app:k3'), /^WRONGPASS invalid username-password pair or user is disabled\.$/);
  assert.match(wrong.errors.join('\n'), /WRONGPASS/);
  // No password at all: the server's NOAUTH, to HELLO.
  const none = ioredis(t, port);
  await replyError(none.get('app:k3'), /^NOAUTH HELLO must be called with the client already authenticated/);
  // The good clients did not lose their state to the failed ones on the shared server connection.
  assert.equal(await resp3.get('app:k3'), 'a');
  assert.equal(await resp2.get('app:k2'), 'b');
  assert.equal(await user.get('app:ku'), 'c');
  assert.equal(resp3.closes + resp2.closes + user.closes, 0, 'no good connection closed');
  await waitFor(async () => (await envoy.metric('meltemi_active_requests')) === 0, { message: 'calls still owed' });
});
