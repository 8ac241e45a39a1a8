// Per-request mode with real Redis peers: redis-server, redis-cli and redis-py 8 (which opens
// every connection with HELLO 3). Each command of one client connection is routed on its own,
// replies keep command order, MULTI/EXEC reach one server connection together, and connection
// state (HELLO, SELECT, AUTH) follows every call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startEnvoy, perRequestBootstrap, tcpExchange } from '../harness/index.mjs';
import { repoPath } from '../harness/envoy.mjs';
import { startRedis, cli } from './lib/redis.mjs';

const run = promisify(execFile);

async function redisPerRequest(t, routes, extra = {}) {
  const r1 = await startRedis(t);
  const r2 = await startRedis(t);
  const plugin = { codec: 'redis', mode: 'perRequest', routes, ...extra };
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin, clusters: { r1: [{ port: r1.port }], r2: [{ port: r2.port }] } }),
  });
  return { r1, r2, envoy, port: await envoy.listenerPort('meltemi') };
}

const byKey = [
  { name: 'sessions', match: { attributes: { key: { prefix: 'session:' } } }, route: [{ cluster: 'r2' }] },
  {
    name: 'rest', route: [{ cluster: 'r1' }],
    authorization: { rules: [{ name: 'no-flushall', action: 'DENY', match: { attributes: { command: { exact: 'FLUSHALL' } } } }] },
  },
];

async function redisPy(port, scenario) {
  const { stdout } = await run(repoPath('.venv/bin/python'), [repoPath('test/peers/redis/redis_py.py'), String(port), scenario], { timeout: 30_000 });
  return JSON.parse(stdout);
}

test('each command of one redis-cli connection follows its own route, replies in order', async (t) => {
  const { r1, r2, envoy, port } = await redisPerRequest(t, byKey);
  // redis-cli reading stdin: one connection for all of it (and COMMAND DOCS first).
  const out = await cli(port, [], 'SET session:1 alice\nSET plain v\nGET session:1\nGET plain\nINCR session:n\nINCR plain:n\n');
  assert.equal(out, 'OK\nOK\nalice\nv\n1\n1\n');
  assert.equal(await cli(r2.port, ['GET', 'session:1']), 'alice\n');
  assert.equal(await cli(r1.port, ['EXISTS', 'session:1']), '0\n');
  assert.equal(await cli(r1.port, ['GET', 'plain']), 'v\n');
  // One write carrying 400 commands over both servers: every reply comes back in command order.
  let pipeline = '';
  for (let i = 0; i < 200; i++) pipeline += `INCR session:c\r\nINCR plain:c\r\n`;
  let expected = '';
  for (let i = 1; i <= 200; i++) expected += `:${i}\r\n:${i}\r\n`;
  const r = await tcpExchange({ port, data: pipeline, timeout: 10_000, until: (b) => b.length >= expected.length });
  assert.equal(r.data.toString(), expected);
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'sessions', meltemi_kind: 'call' }), 203);
});

test('MULTI/EXEC reach one server connection together; WATCH is refused with a clear error', async (t) => {
  const { r1, port } = await redisPerRequest(t, byKey);
  const out = await cli(port, [], 'MULTI\nSET tx 1\nINCR tx\nEXEC\nMULTI\nSET never 1\nDISCARD\nGET tx\nWATCH tx\n');
  assert.equal(out, 'OK\nQUEUED\nQUEUED\nOK\n2\nOK\nQUEUED\nOK\n2\nERR meltemi: WATCH is not supported in per-request mode (it needs one server connection for the whole client connection); use MULTI/EXEC without WATCH, or per-connection mode\n\n');
  assert.equal(await cli(r1.port, ['EXISTS', 'never']), '0\n', 'the discarded transaction never reached the server');
  // A refused command inside MULTI aborts the transaction at EXEC, as Redis does with queue errors.
  const aborted = await cli(port, [], 'MULTI\nSET a 1\nFLUSHDB\nWATCH x\nEXEC\nGET a\n');
  assert.match(aborted, /EXECABORT Transaction discarded because of previous errors/);
  assert.equal(await cli(r1.port, ['EXISTS', 'a']), '0\n', 'nothing of the aborted transaction ran');
});

test('redis-py 8 (HELLO 3, RESP3, transactions, pipelines) works through per-request mode', async (t) => {
  const { r1, envoy, port } = await redisPerRequest(t, [{ name: 'all', route: [{ cluster: 'r1' }] }]);
  const out = await redisPy(port, 'basic');
  t.diagnostic(JSON.stringify(out));
  assert.equal(out.set, true);
  assert.equal(out.get, '1');
  assert.deepEqual(out.hgetall, { f: 'v', g: 'w' });
  assert.deepEqual(out.transaction, [true, 6]);
  assert.equal(out.pipeline_last, 200);
  assert.match(out.client_info, /\bresp=3\b/, 'the calls ran on RESP3 server connections (HELLO 3 followed them)');
  // SELECT follows every call: redis-py's db=3 lands in database 3 of the server.
  assert.deepEqual(await redisPy(port, 'selected'), { get: 'yes' });
  assert.equal(await cli(r1.port, ['-n', '3', 'GET', 'py:indb3']), 'yes\n');
  assert.equal(await cli(r1.port, ['-n', '0', 'EXISTS', 'py:indb3']), '0\n');
  assert.equal(await envoy.value('meltemi_decode_error_total'), 0);
});

test('a denied command gets -ERR in order and the connection keeps working', async (t) => {
  const { r1, port } = await redisPerRequest(t, byKey);
  assert.equal(await cli(r1.port, ['SET', 'k', 'kept']), 'OK\n');
  const pipeline = 'GET k\r\nFLUSHALL\r\nGET k\r\n';
  const expected = '$4\r\nkept\r\n-ERR meltemi: request denied by authorization rule no-flushall\r\n$4\r\nkept\r\n';
  const r = await tcpExchange({ port, data: pipeline, until: (b) => b.length >= expected.length });
  assert.equal(r.data.toString(), expected);
});

/** A RESP command. */
const cmd = (...a) => `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;
/**
 * What `data` gets through Meltemi and on a direct connection to the server, each read until the
 * reply to a PING sent after it.
 */
async function sameAsDirect(port, directPort, data) {
  const read = async (p) => (await tcpExchange({ port: p, data: data + cmd('PING'), timeout: 10_000, until: (b) => b.toString().endsWith('+PONG\r\n') })).data.toString();
  return { direct: await read(directPort), through: await read(port) };
}

test('a session command the server refuses leaves the session as it was, as on a direct connection', async (t) => {
  const { r1, port } = await redisPerRequest(t, [{ name: 'all', route: [{ cluster: 'r1' }] }]);
  // SELECT 99 fails: the connection stays in database 5.
  const select = await sameAsDirect(port, r1.port, cmd('SELECT', '5') + cmd('SELECT', '99') + cmd('SET', 'k', 'v') + cmd('CLIENT', 'INFO'));
  assert.match(select.direct, / db=5 /);
  assert.match(select.through, / db=5 /, `CLIENT INFO through Meltemi: ${select.through}`);
  assert.equal(await cli(r1.port, ['-n', '5', 'GET', 'k']), 'v\n', 'the SET ran in database 5');
  // HELLO 4 fails (NOPROTO): the connection stays on RESP3.
  const hello = await sameAsDirect(port, r1.port, cmd('HELLO', '4') + cmd('HGETALL', 'nothing') + cmd('GET', 'nothing'));
  assert.equal(hello.through, hello.direct);
});

test('a wrong AUTH after a good one leaves the connection authenticated, as on a direct connection', async (t) => {
  const server = await startRedis(t, { password: 'good' });
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin: { codec: 'redis', mode: 'perRequest', routes: [{ name: 'all', route: [{ cluster: 'r' }] }] }, clusters: { r: [{ port: server.port }] } }),
  });
  const port = await envoy.listenerPort('meltemi');
  const data = cmd('AUTH', 'good') + cmd('AUTH', 'bad') + cmd('SET', 'k', 'v') + cmd('PING');
  const expected = '+OK\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+PONG\r\n';
  const r = await tcpExchange({ port, data, timeout: 10_000, until: (b) => b.length >= expected.length });
  assert.equal(r.data.toString(), expected);
});
