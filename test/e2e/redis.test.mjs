// Redis through the real Envoy and the real Meltemi filter (codec `redis`), with two real
// redis-server processes and the real redis-cli and redis-benchmark. Routing is per connection:
// the first command picks the route. Everything started here is stopped when its test ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  startEnvoy, meltemiBootstrap, redisProxyBootstrap, waitFor, tcpExchange, tcpConnect,
} from '../harness/index.mjs';
import { startRedis, cli } from './lib/redis.mjs';
import { accessEntries } from './lib/access-log.mjs';

const run = promisify(execFile);

const denyFlushall = { rules: [{ name: 'deny-flushall', action: 'DENY', match: { attributes: { command: { exact: 'FLUSHALL' } } } }] };
const plugin = {
  codec: 'redis',
  routes: [
    { name: 'sessions', match: { attributes: { key: { prefix: 'session:' } } }, route: [{ cluster: 'r2' }] },
    { name: 'kv', match: { attributes: { command: { regex: 'GET|SET' } } }, route: [{ cluster: 'r1' }], authorization: denyFlushall },
    { name: 'rest', route: [{ cluster: 'r1' }], authorization: denyFlushall },
  ],
};

/** Two redis-servers (r1, r2) behind Envoy running build/meltemi.wasm with `plugin` (and `extra` keys). */
async function redisMesh(t, extra = {}) {
  const r1 = await startRedis(t);
  const r2 = await startRedis(t);
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: meltemiBootstrap({ plugin: { ...plugin, ...extra }, clusters: { r1: [{ port: r1.port }], r2: [{ port: r2.port }] } }),
  });
  return { r1, r2, envoy, port: await envoy.listenerPort('meltemi') };
}

test('routes each connection by the command and key of its first command (real redis-cli)', async (t) => {
  const { r1, r2, envoy, port } = await redisMesh(t);
  assert.equal(await cli(port, ['SET', 'session:42', 'alice']), 'OK\n');
  assert.equal(await cli(port, ['SET', 'plain', 'v']), 'OK\n');
  assert.equal(await cli(port, ['GET', 'plain']), 'v\n');
  assert.equal(await cli(port, ['GET', 'session:42']), 'alice\n');
  // Which server holds what, asked directly.
  assert.equal(await cli(r2.port, ['GET', 'session:42']), 'alice\n');
  assert.equal(await cli(r1.port, ['EXISTS', 'session:42']), '0\n');
  assert.equal(await cli(r1.port, ['GET', 'plain']), 'v\n');
  assert.equal(await cli(r2.port, ['EXISTS', 'plain']), '0\n');
  // One connection, several commands: all follow the first. Reading commands from stdin,
  // redis-cli 7 first sends COMMAND DOCS (for its hints), so the catch-all route picks r1 and
  // the session commands stay there (mismatchPolicy keep, counted).
  assert.equal(await cli(port, [], 'SET session:7 bob\nINCR counter\nGET session:7\n'), 'OK\n1\nbob\n');
  assert.equal(await cli(r1.port, ['GET', 'session:7']), 'bob\n');
  assert.equal(await cli(r2.port, ['EXISTS', 'session:7']), '0\n');
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'sessions' }), 2);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'sessions', meltemi_kind: 'call' }), 2);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'sessions', meltemi_status: 'reply' }), 2);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'kv', meltemi_kind: 'call' }), 2);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'kv', meltemi_status: 'reply' }), 2);
  // COMMAND DOCS (a large nested reply), SET, INCR, GET.
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'rest', meltemi_kind: 'call' }), 4);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'rest', meltemi_status: 'reply' }), 4);
  assert.equal(s.get('meltemi_route_mismatch_total'), 2, 'SET and GET of session:7');
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
  // Per-command counters: Redis has no service, so the operation is the command alone.
  assert.equal(s.get('meltemi_operation_requests_total', { meltemi_operation: 'SET', meltemi_kind: 'call' }), 3);
  assert.equal(s.get('meltemi_operation_responses_total', { meltemi_operation: 'GET', meltemi_status: 'reply' }), 3);
  assert.equal(s.get('meltemi_operation_requests_total', { meltemi_operation: 'INCR', meltemi_kind: 'call' }), 1);
});

test('redis-benchmark -P 16 runs through Envoy without errors and every reply pairs with its command', async (t) => {
  const { envoy, port } = await redisMesh(t);
  const before = await envoy.metrics();
  const { stdout, stderr } = await run('redis-benchmark', ['-p', String(port), '-t', 'set,get', '-n', '20000', '-P', '16', '-c', '10', '-q'], { timeout: 120_000 });
  t.diagnostic(`redis-benchmark: ${stdout.replace(/\r/g, '\n').split('\n').filter((l) => /requests per second/.test(l)).join(' | ')}`);
  assert.doesNotMatch(stdout + stderr, /error/i);
  assert.match(stdout, /SET: [\d.]+ requests per second/);
  assert.match(stdout, /GET: [\d.]+ requests per second/);
  await waitFor(async () => (await envoy.metric('meltemi_active_requests')) === 0, { message: 'replies still owed' });
  const after = await envoy.metrics();
  const d = after.since(before);
  // Labelled series (defined on first use, absent from `before`): what moved, 0 if none did.
  const calls = d.get('meltemi_requests_total', { meltemi_route: 'kv', meltemi_kind: 'call' }) ?? 0;
  assert.ok(calls >= 40000, `kv saw ${calls} commands`);
  assert.equal(d.get('meltemi_responses_total', { meltemi_route: 'kv', meltemi_status: 'reply' }), calls, 'one reply per command');
  // ?? 0: no exception means no such series; its family is there, the kv replies just above.
  assert.equal(d.get('meltemi_responses_total', { meltemi_route: 'kv', meltemi_status: 'exception' }) ?? 0, 0);
  // redis-benchmark asks CONFIG GET on connections of their own: the catch-all route.
  const restCalls = d.get('meltemi_requests_total', { meltemi_route: 'rest', meltemi_kind: 'call' }) ?? 0;
  assert.ok(restCalls >= 1, `rest saw ${restCalls} commands (CONFIG GET)`);
  assert.equal(d.get('meltemi_responses_total', { meltemi_route: 'rest', meltemi_status: 'reply' }), restCalls);
  // The unlabelled counters exist in both scrapes (since() leaves out what did not move).
  const moved = (name) => after.value(name) - before.value(name);
  assert.equal(moved('meltemi_unmatched_response_total'), 0);
  assert.equal(moved('meltemi_decode_error_total'), 0);
});

test('a denied FLUSHALL gets -ERR in order and the connection keeps working', async (t) => {
  const { r1, envoy, port } = await redisMesh(t);
  // The real redis-cli, one connection: the error, then the next command is answered.
  const out = await cli(port, [], 'SET a 1\nFLUSHALL\nGET a\n');
  // (redis-cli prints a blank line after an error when its output is not a terminal.)
  assert.equal(out, 'OK\nERR meltemi: request denied by authorization rule deny-flushall\n\n1\n');
  // One write holding the pipeline: the answers in order, the probe's +PONG swapped for the error.
  const pipeline = '*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n2\r\n*1\r\n$8\r\nFLUSHALL\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n';
  const expected = '+OK\r\n-ERR meltemi: request denied by authorization rule deny-flushall\r\n$1\r\n2\r\n';
  const r = await tcpExchange({ port, data: pipeline, until: (b) => b.length >= expected.length });
  assert.equal(r.data.toString(), expected);
  assert.equal(await cli(r1.port, ['GET', 'a']), '2\n', 'FLUSHALL never reached the server');
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_authz_denied_total'), 2);
  assert.equal(s.get('meltemi_local_reply_total'), 2);
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
});

test('malformed bytes and pub/sub close only their own connection', async (t) => {
  const { envoy, port } = await redisMesh(t);
  const good = await tcpConnect({ port });
  t.after(() => good.close());
  good.write('SET k v\r\n');
  assert.equal((await good.read(5)).toString(), '+OK\r\n');

  // A bad first command: closed at once, nothing forwarded.
  const bad = await tcpExchange({ port, data: '*1\r\n$-5\r\n', timeout: 5000 });
  assert.equal(bad.closedByPeer, true);
  assert.equal(bad.data.length, 0);
  // Bad bytes after a good command: the good one is answered, then the connection closes.
  const late = await tcpExchange({ port, data: 'GET k\r\n*2\r\n$3\r\nGET\r\nx\r\n', timeout: 5000 });
  assert.equal(late.data.toString(), '$1\r\nv\r\n');
  assert.equal(late.closedByPeer, true);
  // SUBSCRIBE would break one reply per command: refused the same way, never trapped.
  const sub = await tcpExchange({ port, data: 'SET k w\r\nSUBSCRIBE news\r\n', timeout: 5000 });
  assert.equal(sub.data.toString(), '+OK\r\n');
  assert.equal(sub.closedByPeer, true);

  // The first connection still works, and so does a new one.
  good.write('GET k\r\n');
  assert.equal((await good.read(7)).toString(), '$1\r\nw\r\n');
  assert.equal(await cli(port, ['PING']), 'PONG\n');
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_decode_error_total'), 3);
  await envoy.waitForLog(/bad first request frame: redis: bulk length -5 is invalid; closing connection/);
  await envoy.waitForLog(/redis: SUBSCRIBE is not supported: pub\/sub replies do not pair with commands/);
});

test('CLIENT REPLY OFF as clients send it (an array) is refused; a Lua reply nested 40 deep passes', async (t) => {
  const { envoy, port } = await redisMesh(t);
  // redis-cli, redis-py and ioredis send commands as arrays; the inline form is tested in units.
  const array = (...args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  const off = await tcpExchange({ port, data: array('SET', 'r', '1') + array('CLIENT', 'REPLY', 'OFF') + array('GET', 'r'), timeout: 5000 });
  // SET is answered; the connection then closes instead of forwarding commands that would go unanswered.
  assert.equal(off.data.toString(), '+OK\r\n');
  assert.equal(off.closedByPeer, true);
  await envoy.waitForLog(/redis: CLIENT REPLY OFF is not supported: commands would go unanswered/);
  // Redis answers Lua tables nested deeper than the 32 levels Meltemi once accepted.
  const depth = 40;
  const script = `return ${'{'.repeat(depth)}7${'}'.repeat(depth)}`;
  const deep = await cli(port, ['EVAL', script, '0']);
  assert.match(deep, /7/);
  assert.equal(await cli(port, ['PING']), 'PONG\n');
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_decode_error_total'), 1);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'rest', meltemi_status: 'reply' }), 2); // EVAL, PING
});

test('RESP3 replies after HELLO 3 pair with their commands', async (t) => {
  const { envoy, port } = await redisMesh(t);
  const out = await cli(port, ['-3'], 'HSET h f 1\nHGETALL h\nGET missing\nHELLO 3\n');
  // HSET, HGETALL (a RESP3 map), GET (a RESP3 null), then the HELLO map itself.
  assert.ok(out.startsWith('1\nf 1\n\nserver redis\n'), out);
  assert.match(out, /\nproto 3\n/);
  const s = await envoy.metrics();
  assert.equal(s.value('meltemi_unmatched_response_total'), 0);
  assert.equal(s.value('meltemi_active_requests'), 0);
});

test('redisProxyBootstrap: Envoy\'s own redis_proxy baseline answers the real redis-cli', async (t) => {
  const r1 = await startRedis(t);
  const envoy = await startEnvoy({ t, logLevel: 'warning', config: redisProxyBootstrap({ clusters: { r1: [{ port: r1.port }] } }) });
  const port = await envoy.listenerPort('redis');
  assert.equal(await cli(port, ['SET', 'x', '1']), 'OK\n');
  assert.equal(await cli(r1.port, ['GET', 'x']), '1\n');
});

test('a denied command inside MULTI aborts the transaction, as Redis does with a queue-time error', async (t) => {
  const { r1, envoy, port } = await redisMesh(t, { accessLog: true });
  // As ioredis and redis-py send a transaction: all at once on one connection.
  const pipeline = 'SET k before\r\nMULTI\r\nSET tx 1\r\nFLUSHALL\r\nINCR tx\r\nEXEC\r\nGET k\r\n';
  const expected = '+OK\r\n+OK\r\n+QUEUED\r\n-ERR meltemi: request denied by authorization rule deny-flushall\r\n+QUEUED\r\n' +
    '-EXECABORT Transaction discarded because of previous errors.\r\n$6\r\nbefore\r\n';
  const r = await tcpExchange({ port, data: pipeline, until: (b) => b.length >= expected.length });
  assert.equal(r.data.toString(), expected);
  assert.equal(await cli(r1.port, ['EXISTS', 'tx']), '0\n', 'nothing of the aborted transaction ran');
  // The connection goes on; a transaction without refusals commits.
  const ok = await tcpExchange({ port, data: 'MULTI\r\nSET tx 5\r\nINCR tx\r\nEXEC\r\n', until: (b) => b.includes('*2')  && b.toString().endsWith(':6\r\n') });
  assert.equal(ok.data.toString(), '+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:6\r\n');
  assert.equal(await envoy.value('meltemi_unmatched_response_total'), 0);
  // One access line per command, the two answered by Meltemi (the refused FLUSHALL, the aborted
  // EXEC) as local replies with their reason. Local replies are written when answered, the rest
  // when their replies arrive: in id order, the seven of the first pipeline's connection.
  const lines = await waitFor(() => {
    const found = accessEntries(envoy.logs());
    return found.length >= 11 ? found : null;
  }, { message: '11 access lines' });
  const conn = lines.find((e) => e.method === 'FLUSHALL').conn;
  const first = lines.filter((e) => e.conn === conn).sort((a, b) => a.id - b.id);
  assert.deepEqual(first.map((e) => [e.method, e.status]), [
    ['SET', 'reply'], ['MULTI', 'reply'], ['SET', 'reply'], ['FLUSHALL', 'local_reply'], ['INCR', 'reply'], ['EXEC', 'local_reply'], ['GET', 'reply'],
  ]);
  assert.match(first[3].reason, /authorization rule deny-flushall/);
  assert.match(first[5].reason, /transaction aborted/);
  assert.equal(first[5].response_bytes, '-EXECABORT Transaction discarded because of previous errors.\r\n'.length);
});
