// Envoy's reference rate limit service (github.com/envoyproxy/ratelimit, built by fetch-ratelimit.sh)
// for the tests that need a real one, backed by a real redis-server (test/e2e/lib/redis.mjs).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '../harness/index.mjs';
import { registerChild, unregisterChild } from '../harness/cleanup.mjs';

const FETCH = fileURLToPath(new URL('./fetch-ratelimit.sh', import.meta.url));

/**
 * The real rate limit service with `config` (its YAML), on free loopback ports, talking to the
 * redis-server on `redisPort`; healthy when this returns, stopped (its process group) with `t`.
 * Returns its gRPC port.
 */
export async function startRateLimit(t, redisPort, config) {
  const bin = execFileSync('bash', [FETCH], { encoding: 'utf8' }).trim().split('\n').pop();
  const root = mkdtempSync(join(tmpdir(), 'meltemi-rls-'));
  mkdirSync(join(root, 'ratelimit', 'config'), { recursive: true });
  writeFileSync(join(root, 'ratelimit', 'config', 'meltemi.yaml'), config);
  const [grpc, http, debug] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(bin, [], {
    detached: true, stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH, USE_STATSD: 'false', LOG_LEVEL: 'warn', REDIS_SOCKET_TYPE: 'tcp', REDIS_URL: `127.0.0.1:${redisPort}`,
      RUNTIME_ROOT: root, RUNTIME_SUBDIRECTORY: 'ratelimit', RUNTIME_WATCH_ROOT: 'false', RUNTIME_IGNOREDOTFILES: 'true',
      GRPC_HOST: '127.0.0.1', GRPC_PORT: String(grpc), HOST: '127.0.0.1', PORT: String(http), DEBUG_HOST: '127.0.0.1', DEBUG_PORT: String(debug),
    },
  });
  registerChild(child.pid);
  let stderr = '';
  child.stderr.on('data', (c) => { stderr += c; });
  const exited = new Promise((r) => child.once('exit', r));
  t.after(async () => { try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ } await exited; unregisterChild(child.pid); });
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`ratelimit exited: ${stderr}`);
    const r = await fetch(`http://127.0.0.1:${http}/healthcheck`).catch(() => null);
    return r?.status === 200;
  }, { timeout: 20_000, message: 'the rate limit service to be healthy' });
  return { grpc };
}

/** The service's config: `domain`, `requests` per hour for calls whose descriptor `key` is `value`. */
export const hourlyLimit = ({ domain = 'meltemi', key, value, requests }) => [
  `domain: ${domain}`,
  'descriptors:',
  `  - key: ${key}`,
  `    value: ${value}`,
  `    rate_limit: { unit: hour, requests_per_unit: ${requests} }`,
].join('\n') + '\n';
