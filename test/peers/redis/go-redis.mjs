// go-redis v9 (test/peers/redis/go-redis/, pinned in its go.mod) as a Redis client peer: a third
// real client beside redis-py and ioredis, with its own handshake (HELLO, then SELECT and CLIENT
// SETNAME pipelined, CLIENT MAINT_NOTIFICATIONS on RESP3, CLIENT SETINFO twice) and a pool.
// Built once per process with `go build` (cached by Go; modules from the Go module proxy) into
// build/peers/, as test/peers/thrift/go.mjs builds the Go Thrift server.
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { registerChild, unregisterChild } from '../../harness/cleanup.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OUT = path.join(ROOT, 'build', 'peers');
const BIN = path.join(OUT, 'go-redis');
let built = null;

/** Builds build/peers/go-redis once per process (the first build here took about 19 s; later ones are Go's cache). */
export function buildGoRedis() {
  built ??= promisify(execFile)('go', ['build', '-buildvcs=false', '-o', BIN, '.'], { cwd: path.join(ROOT, 'test', 'peers', 'redis', 'go-redis'), timeout: 300_000 });
  return built;
}

function options({ db, name, username, password, protocol, capture } = {}) {
  const args = [];
  if (db !== undefined) args.push('--db', String(db));
  if (name !== undefined) args.push('--name', name);
  if (username !== undefined) args.push('--username', username);
  if (password !== undefined) args.push('--password', password);
  if (protocol !== undefined) args.push('--protocol', String(protocol));
  if (capture) args.push('--capture');
  return args;
}

function run(argv, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    registerChild(child.pid);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s) => { out += s; });
    child.stderr.setEncoding('utf8').on('data', (s) => { err += s; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      unregisterChild(child.pid);
      if (code !== 0) reject(new Error(`go-redis ${argv.join(' ')} exited ${code ?? signal}: ${err}${out}`));
      else resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)));
    });
    child.stdin.end(input);
  });
}

/**
 * Runs `steps` ({do: [...]}, {pipeline: [[...], ...]}, {tx: [[...], ...]}) on ONE go-redis
 * connection (client.Conn()) to `port`; resolves to one object per step ({result} or
 * {error, redis}; pipelines {results, error?}), after {handshake: [writes]} with `capture`.
 * @param {number} port
 * @param {object[]} steps
 * @param {{db?: number, name?: string, username?: string, password?: string, protocol?: 2|3, capture?: boolean}} [o]
 */
export async function goRedisScript(port, steps, o = {}) {
  await buildGoRedis();
  return run(['script', String(port), ...options(o)], JSON.stringify(steps));
}

/** The pool scenario: 8 goroutines on go-redis's own pool (PoolSize 8), INCR go:pool and CLIENT INFO 25 times each. */
export async function goRedisPool(port, o = {}) {
  await buildGoRedis();
  const [summary] = await run(['pool', String(port), ...options(o)], '');
  return summary;
}
