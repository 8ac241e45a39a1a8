// go-redis v9 (test/peers/redis/go-redis/, pinned in its go.mod, built from the Go module proxy)
// through the real Envoy and the real Meltemi filter, against real redis-servers: a third real
// Redis client beside redis-py and ioredis. go-redis opens every connection with HELLO alone
// (`hello 3`, or `hello 2`; AUTH and SETNAME inside it), then, in one write, SELECT and CLIENT
// SETNAME, then on RESP3 CLIENT MAINT_NOTIFICATIONS (redis-server 7.0 refuses it; go-redis turns
// the feature off), then CLIENT SETINFO LIB-NAME and LIB-VER in one write (refused by 7.0,
// ignored). "One connection" below is go-redis's client.Conn(), a dedicated connection; the pool
// scenario uses its pool (PoolSize 8, eight goroutines).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvoy, meltemiBootstrap, perRequestBootstrap, waitFor } from '../harness/index.mjs';
import { startRedis, cli } from './lib/redis.mjs';
import { buildGoRedis, goRedisScript, goRedisPool } from '../peers/redis/go-redis.mjs';

/** RESP of one command, as go-redis writes it (bulk strings). */
const resp = (...args) => `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('');

/** go-redis 9.23's handshake writes for these options (the library name carries the Go version). */
function handshake({ protocol = 3, db = 0, name, password, username, goVersion }) {
  const hello = ['hello', protocol];
  if (password !== undefined) hello.push('auth', username ?? 'default', password);
  if (name !== undefined) hello.push('setname', name);
  const writes = [resp(...hello)];
  const setup = [];
  if (db > 0) setup.push(resp('select', db));
  if (name !== undefined) setup.push(resp('client', 'setname', name));
  if (setup.length) writes.push(setup.join(''));
  if (protocol === 3) writes.push(resp('client', 'maint_notifications', 'on', 'moving-endpoint-type', 'internal-ip'));
  writes.push(resp('client', 'setinfo', 'LIB-NAME', `go-redis(,${goVersion})`) + resp('client', 'setinfo', 'LIB-VER', '9.23.0'));
  return writes;
}

/** CLIENT INFO's text as key=value pairs. */
const info = (text) => Object.fromEntries(text.trim().split(' ').map((kv) => kv.split('=')));

/** `line` is an error reply that go-redis returned as a redis.Error, with `message` (exact, or matching). */
function redisError(line, message) {
  assert.equal(line.redis, true, `not a redis.Error: ${JSON.stringify(line)}`);
  if (typeof message === 'string') assert.equal(line.error, message);
  else assert.match(line.error, message);
}

const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';
let goVersion;

test('per connection: go-redis\'s HELLO is the first command, so it picks the route; every pool connection stays there', async (t) => {
  await buildGoRedis();
  const r1 = await startRedis(t);
  const r2 = await startRedis(t);
  const plugin = {
    codec: 'redis',
    routes: [
      { name: 'hello', match: { attributes: { command: { exact: 'HELLO' } } }, route: [{ cluster: 'r2' }] },
      { name: 'sessions', match: { attributes: { key: { prefix: 'go:' } } }, route: [{ cluster: 'r1' }] },
      { name: 'rest', route: [{ cluster: 'r1' }] },
    ],
  };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: meltemiBootstrap({ plugin, clusters: { r1: [{ port: r1.port }], r2: [{ port: r2.port }] } }),
  });
  const port = await envoy.listenerPort('meltemi');

  const [hs, set, get, wrong, ci] = await goRedisScript(port, [
    { do: ['set', 'go:a', 'alice'] },
    { do: ['get', 'go:a'] },
    { do: ['lpush', 'go:a', 'x'] },
    { do: ['client', 'info'] },
  ], { capture: true, db: 3, name: 'go-pc' });
  goVersion = /go-redis\(,([^)]*)\)/.exec(hs.handshake.join(''))?.[1];
  assert.ok(goVersion, `LIB-NAME in ${JSON.stringify(hs)}`);
  assert.deepEqual(hs.handshake, handshake({ db: 3, name: 'go-pc', goVersion }));
  assert.deepEqual([set, get], [{ result: 'OK' }, { result: 'alice' }]);
  redisError(wrong, WRONGTYPE);
  assert.deepEqual(Object.entries(info(ci.result)).filter(([k]) => ['name', 'db', 'resp'].includes(k)), [['name', 'go-pc'], ['db', '3'], ['resp', '3']]);
  // HELLO took the connection to r2, and the go: keys stayed there (mismatchPolicy keep).
  assert.equal(await cli(r2.port, ['-n', '3', 'GET', 'go:a']), 'alice\n');
  assert.equal(await cli(r1.port, ['-n', '3', 'EXISTS', 'go:a']), '0\n');

  // The pool: each of its connections opens with HELLO 2 and goes to r2 as well.
  const pool = await goRedisPool(port, { protocol: 2, name: 'go-pool' });
  assert.equal(pool.incr_max, 200);
  assert.deepEqual(pool.kinds, ['db=0 name=go-pool resp=2']);
  assert.equal(await cli(r2.port, ['GET', 'go:pool']), '200\n');
  assert.equal(await cli(r1.port, ['EXISTS', 'go:pool']), '0\n');
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'hello' }), 1 + pool.pool_total);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'sessions' }), undefined);
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
});

// ---- per request: one Envoy and two redis-servers for the tests below ----

// As in redis-ioredis.test.mjs: GET to the "replica", everything else with a key to the
// "primary"; `slow:` keys have a 300 ms route timeout; keys starting with `!` match no route.
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
  const building = buildGoRedis();
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
  for (let i = 0; i < 10; i++) assert.equal(await cli(mesh.replica.port, ['SET', `app:seed:${i}`, `replica-${i}`]), 'OK\n');
  for (const db of [0, 3, 5]) assert.equal(await cli(mesh.replica.port, ['-n', String(db), 'SET', 'app:where', `replica db ${db}`]), 'OK\n');
  await building;
});
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

test('per request: go-redis\'s handshake (HELLO 3 / HELLO 2, SELECT, CLIENT SETNAME, MAINT_NOTIFICATIONS, SETINFO) passes, and the replies are the server\'s', async () => {
  const { port, primary } = mesh;
  for (const o of [{ protocol: 3, db: 3, name: 'go-hs3' }, { protocol: 2, db: 4, name: 'go-hs2' }, { protocol: 3 }]) {
    const steps = [{ do: ['set', 'go:hs', `p${o.protocol}`] }, { do: ['client', 'info'] }, { do: ['hello'] }];
    const [hs, set, ci, hello] = await goRedisScript(port, steps, { ...o, capture: true });
    const expected = handshake({ ...o, goVersion: goVersion ?? /go-redis\(,([^)]*)\)/.exec(hs.handshake.join(''))[1] });
    assert.deepEqual(hs.handshake, expected, `handshake for ${JSON.stringify(o)}`);
    assert.deepEqual(set, { result: 'OK' });
    const i = info(ci.result);
    assert.deepEqual([i.name, i.db, i.resp], [o.name ?? '', String(o.db ?? 0), String(o.protocol)], JSON.stringify(o));
    // HELLO with no version reports the connection's: RESP3 maps come back as a map, RESP2 as a flat list.
    const proto = o.protocol === 3 ? hello.result.proto : hello.result[hello.result.indexOf('proto') + 1];
    assert.equal(proto, o.protocol);
    assert.equal(await cli(primary.port, ['-n', String(o.db ?? 0), 'GET', 'go:hs']), `p${o.protocol}\n`);
  }
});

test('per request: reads to the replica, writes to the primary on ONE go-redis connection (Conn()); Pipeline() and TxPipeline() in order', async () => {
  const { primary, replica, port, envoy } = mesh;
  const before = await envoy.metrics();
  const steps = [];
  for (let i = 0; i < 5; i++) steps.push({ do: ['set', `go:w:${i}`, `v${i}`] }, { do: ['get', `app:seed:${i}`] }, { do: ['get', `go:w:${i}`] });
  // A Pipeline() of 40 commands in one write, over both servers.
  const pipeline = [];
  for (let i = 0; i < 10; i++) pipeline.push(['incr', 'go:n'], ['get', `app:seed:${i}`], ['set', `go:p:${i}`, `v${i}`], ['get', `go:p:${i}`]);
  steps.push({ pipeline });
  // TxPipeline(): MULTI, the commands and EXEC in one write, on one server (the primary: its
  // first command is a SET), the GET with it.
  steps.push({ tx: [['set', 'go:tx', '1'], ['incr', 'go:tx'], ['get', 'go:tx'], ['rpush', 'go:txl', 'a', 'b']] });
  steps.push({ tx: [['get', 'app:seed:4'], ['set', 'go:tx-on-replica', '1']] });
  steps.push({ do: ['get', 'app:seed:9'] });
  const out = await goRedisScript(port, steps);
  for (let i = 0; i < 5; i++) {
    // The GET of a key just SET comes back empty: the write went to the primary, the read to the replica.
    assert.deepEqual(out.slice(3 * i, 3 * i + 3), [{ result: 'OK' }, { result: `replica-${i}` }, { result: null }], `round ${i}`);
  }
  const expected = [];
  for (let i = 0; i < 10; i++) expected.push({ result: i + 1 }, { result: `replica-${i}` }, { result: 'OK' }, { result: null });
  assert.deepEqual(out[15], { results: expected });
  assert.deepEqual(out[16], { results: [{ result: 'OK' }, { result: 2 }, { result: '2' }, { result: 2 }] });
  // Routed as its first queued command: a GET first takes the transaction to the replica.
  assert.deepEqual(out[17], { results: [{ result: 'replica-4' }, { result: 'OK' }] });
  assert.deepEqual(out[18], { result: 'replica-9' });
  assert.equal(out.length, 19);
  assert.equal(await cli(primary.port, ['GET', 'go:n']), '10\n');
  assert.equal(await cli(primary.port, ['MGET', 'go:w:4', 'go:p:9', 'go:tx']), 'v4\nv9\n2\n');
  assert.equal(await cli(primary.port, ['LRANGE', 'go:txl', '0', '-1']), 'a\nb\n');
  assert.equal(await cli(replica.port, ['EXISTS', 'go:n', 'go:w:0', 'go:p:0', 'go:tx', 'go:txl']), '0\n');
  assert.equal(await cli(replica.port, ['GET', 'go:tx-on-replica']), '1\n');
  assert.equal(await cli(primary.port, ['EXISTS', 'go:tx-on-replica']), '0\n');
  const d = (await envoy.metrics()).since(before);
  // 10 GETs alone, 20 in the pipeline and the last one, and the GET-first transaction, which
  // counts under its route as MULTI, GET, SET and EXEC.
  assert.equal(d.get('meltemi_requests_total', { meltemi_route: 'reads', meltemi_kind: 'call' }), 10 + 20 + 1 + 4);
  assert.equal(d.get('meltemi_responses_total', { meltemi_route: 'reads', meltemi_status: 'reply' }), 35);
});

test('per request: DB 3 and ClientName follow every call; a refused SELECT 99 after SELECT 5 keeps database 5', async () => {
  const { primary, port } = mesh;
  const a = [
    { do: ['set', 'go:db', 'three'] },
    { do: ['get', 'app:where'] },
    { do: ['client', 'getname'] },
    { do: ['client', 'info'] },
    { do: ['select', '5'] },
    { do: ['set', 'go:db', 'five'] },
    { do: ['select', '99'] },
    { do: ['set', 'go:db99', 'still five'] },
    { do: ['get', 'app:where'] },
    { do: ['client', 'info'] },
  ];
  // A second script and a pool of another state at the same time, on the router's same server
  // connections: each call carries its own client's state.
  const b = [{ do: ['set', 'go:db', 'zero'] }, { do: ['get', 'app:where'] }, { do: ['client', 'getname'] }];
  const [outA, outB, pool] = await Promise.all([
    goRedisScript(port, a, { db: 3, name: 'go-c' }),
    goRedisScript(port, b, { protocol: 2, name: 'go-b' }),
    goRedisPool(port, { db: 3, name: 'go-pool' }),
  ]);
  assert.deepEqual(outA.slice(0, 3), [{ result: 'OK' }, { result: 'replica db 3' }, { result: 'go-c' }]);
  const i3 = info(outA[3].result);
  assert.deepEqual([i3.name, i3.db, i3.resp], ['go-c', '3', '3']);
  assert.deepEqual(outA.slice(4, 6), [{ result: 'OK' }, { result: 'OK' }]);
  redisError(outA[6], 'ERR DB index is out of range');
  assert.deepEqual(outA.slice(7, 9), [{ result: 'OK' }, { result: 'replica db 5' }]);
  const i5 = info(outA[9].result);
  assert.deepEqual([i5.name, i5.db], ['go-c', '5']);
  assert.deepEqual(outB, [{ result: 'OK' }, { result: 'replica db 0' }, { result: 'go-b' }]);
  assert.equal(pool.incr_max, 200);
  assert.deepEqual(pool.kinds, ['db=3 name=go-pool resp=3'], 'every CLIENT INFO of the pool ran in its state');
  assert.equal(await cli(primary.port, ['-n', '3', 'GET', 'go:db']), 'three\n');
  assert.equal(await cli(primary.port, ['-n', '5', 'MGET', 'go:db', 'go:db99']), 'five\nstill five\n');
  assert.equal(await cli(primary.port, ['-n', '0', 'GET', 'go:db']), 'zero\n');
  assert.equal(await cli(primary.port, ['-n', '3', 'GET', 'go:pool']), '200\n');
  assert.equal(await cli(primary.port, ['-n', '3', 'EXISTS', 'go:db99']), '0\n');
});

test('per request: a server error and Meltemi\'s timeout and no-route errors reach go-redis as redis.Error; the connection carries on', async () => {
  const { primary, replica, port, envoy } = mesh;
  const before = await envoy.metrics();
  const started = Date.now();
  const out = await goRedisScript(port, [
    { do: ['set', 'go:str', 'x'] },
    { do: ['lpush', 'go:str', 'y'] },
    // BLPOP with no timeout on a `slow:` key: the route's 300 ms timeout answers it.
    { do: ['blpop', 'slow:queue', '0'] },
    { do: ['rpush', 'slow:queue', 'job'] },
    { do: ['lrange', 'slow:queue', '0', '-1'] },
    // A key no route matches: Envoy's 404.
    { do: ['set', '!nowhere', '1'] },
    { pipeline: [['incr', 'go:after'], ['lpush', 'go:str', 'z'], ['set', '!nowhere', '2'], ['get', 'app:seed:2']] },
    { do: ['incr', 'go:after'] },
    { do: ['get', 'app:seed:3'] },
  ]);
  const took = Date.now() - started;
  assert.deepEqual(out[0], { result: 'OK' });
  redisError(out[1], WRONGTYPE);
  redisError(out[2], 'ERR meltemi: upstream answered 504: upstream request timeout');
  // The abandoned BLPOP no longer waits on the server: it does not take what is pushed next.
  assert.deepEqual(out.slice(3, 5), [{ result: 1 }, { result: ['job'] }]);
  redisError(out[5], /^ERR meltemi: upstream answered 404/);
  const p = out[6];
  assert.deepEqual(p.results[0], { result: 1 });
  redisError(p.results[1], WRONGTYPE);
  redisError(p.results[2], /^ERR meltemi: upstream answered 404/);
  assert.deepEqual(p.results[3], { result: 'replica-2' });
  assert.equal(p.error, WRONGTYPE, 'Pipelined returns the first error');
  assert.deepEqual(out.slice(7), [{ result: 2 }, { result: 'replica-3' }]);
  assert.ok(took < 4000, `the script took ${took} ms`);
  assert.equal(await cli(primary.port, ['LLEN', 'slow:queue']), '1\n');
  assert.equal(await cli(primary.port, ['EXISTS', '!nowhere']), '0\n');
  assert.equal(await cli(replica.port, ['EXISTS', '!nowhere']), '0\n');
  const d = (await envoy.metrics()).since(before);
  assert.equal(d.value('meltemi_timeout_total'), 1);
  assert.equal(d.value('meltemi_no_route_total'), 2);
});

test('per request with AUTH: go-redis\'s Password (and Username) follow every call; a wrong one gets the server\'s error, as direct', async (t) => {
  const password = 'go-s3cret';
  const server = await startRedis(t, { password });
  const auth = ['--no-auth-warning', '-a', password];
  assert.equal(await cli(server.port, [...auth, 'ACL', 'SETUSER', 'app', 'on', '>app-pass', '~app:*', '+@all']), 'OK\n');
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({
      plugin: { codec: 'redis', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'secure' }] }] },
      clusters: { secure: [{ port: server.port }] },
    }),
  });
  const port = await envoy.listenerPort('meltemi');
  const [r3, r2, user] = await Promise.all([
    goRedisScript(port, [{ do: ['set', 'app:k3', 'a'] }, { do: ['acl', 'whoami'] }, { do: ['get', 'app:k3'] }], { password, capture: true }),
    goRedisScript(port, [{ do: ['set', 'app:k2', 'b'] }, { do: ['acl', 'whoami'] }, { do: ['set', 'other:k', 'x'] }], { password, protocol: 2 }),
    goRedisScript(port, [{ do: ['set', 'app:ku', 'c'] }, { do: ['acl', 'whoami'] }, { do: ['set', 'other:k', 'y'] }, { do: ['client', 'info'] }], { username: 'app', password: 'app-pass', db: 2 }),
  ]);
  assert.deepEqual(r3[0].handshake[0], resp('hello', 3, 'auth', 'default', password));
  assert.deepEqual(r3.slice(1), [{ result: 'OK' }, { result: 'default' }, { result: 'a' }]);
  assert.deepEqual(r2, [{ result: 'OK' }, { result: 'default' }, { result: 'OK' }]);
  assert.deepEqual(user.slice(0, 2), [{ result: 'OK' }, { result: 'app' }]);
  redisError(user[2], /^NOPERM/);
  assert.deepEqual([info(user[3].result).user, info(user[3].result).db], ['app', '2']);
  assert.equal(await cli(server.port, [...auth, 'GET', 'other:k']), 'x\n');
  assert.equal(await cli(server.port, [...auth, '-n', '2', 'GET', 'app:ku']), 'c\n');

  // A wrong password, and none: go-redis's first call fails as it does on a direct connection.
  for (const o of [{ password: 'nope' }, { password: 'nope', protocol: 2 }, { username: 'app', password: 'nope' }, {}]) {
    const steps = [{ do: ['get', 'app:k3'] }];
    const [via, direct] = await Promise.all([goRedisScript(port, steps, o), goRedisScript(server.port, steps, o)]);
    assert.deepEqual(via, direct, `${JSON.stringify(o)}: through Meltemi as direct`);
    redisError(via[0], o.password ? /WRONGPASS invalid username-password pair or user is disabled\.$/ : /^NOAUTH/);
  }
  await waitFor(async () => (await envoy.metric('meltemi_active_requests')) === 0, { message: 'calls still owed' });
});
