// Real Redis peers for end-to-end tests: redis-server on a free port and the real redis-cli.
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort, waitFor, tcpExchange } from '../../harness/index.mjs';
import { registerChild, unregisterChild } from '../../harness/cleanup.mjs';

/**
 * A real redis-server on a free port, no persistence; stopped (its process group) when `t` ends.
 * `password`: started with `--requirepass` (the default user's password); PING then answers
 * -NOAUTH, which counts as ready.
 */
export async function startRedis(t, { password } = {}) {
  const port = await freePort();
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'];
  if (password !== undefined) args.push('--requirepass', password);
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', 'redis-server', ...args]] : ['redis-server', args];
  const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  registerChild(child.pid);
  let stderr = '';
  child.stderr.on('data', (c) => { stderr += c; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
    await exited;
    unregisterChild(child.pid);
  });
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`);
    const r = await tcpExchange({ port, data: 'PING\r\n', timeout: 500, until: (b) => b.includes('\r\n') }).catch(() => null);
    const answer = r?.data.toString();
    return answer === '+PONG\r\n' || (password !== undefined && answer?.startsWith('-NOAUTH'));
  }, { message: `redis-server on port ${port} did not answer PING` });
  return { port };
}

/** redis-cli with `args` against `port`; resolves to its stdout. Commands may come on stdin. */
export function cli(port, args = [], input) {
  return new Promise((resolve, reject) => {
    const child = execFile('redis-cli', ['-p', String(port), ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

