// Node helpers around the real Apache Dubbo peers: 3.3.5 (test/peers/dubbo/target/meltemi-dubbo-peers.jar)
// and, with `dubbo: '2.7'`, 2.7.23 (test/peers/dubbo27/target/meltemi-dubbo27-peers.jar), which take
// the same options and print the same READY line and JSON.
//
//   const p = await startProvider({ name: 'v1' });          // port 0: a free port, read from "READY port=N"
//   const old = await startProvider({ name: 'old', dubbo: '2.7' });
//   const lines = await runConsumer({ url: p.url, attachments: { k: 'v' }, calls: 3 });
//   const fromOld = await runConsumer({ dubbo: '2.7', url: p.url, calls: 3 });
//   const sum = await runConsumer({ url, method: 'echo', payload: 4096, duration: '10s', concurrency: 16, summary: true });
//   await p.stop();
//
// Every JVM runs in its own process group, is registered with test/harness/cleanup.mjs (killed,
// group-wide, on stop() and when this process exits or is interrupted), and watches its stdin so it
// also exits if this process dies without running any handler.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { registerChild, unregisterChild } from '../../harness/cleanup.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const JAR = join(HERE, 'target', 'meltemi-dubbo-peers.jar');
/**
 * The peers by `dubbo` option: the Apache Dubbo release each jar is built against, its jar and the
 * build script that makes it (`make setup-dubbo` runs both).
 */
export const PEERS = {
  '3': { release: '3.3.5', jar: JAR, build: join(HERE, 'build.sh'), make: 'make setup-dubbo' },
  '2.7': {
    release: '2.7.23',
    jar: join(HERE, '..', 'dubbo27', 'target', 'meltemi-dubbo27-peers.jar'),
    build: join(HERE, '..', 'dubbo27', 'build.sh'),
    make: 'make setup-dubbo',
  },
};
export const JAVA = process.env.JAVA ?? 'java';
// Small heap + serial GC: the peers share 2 cores with Envoy and the tests.
export const DEFAULT_JVM_ARGS = ['-Xmx256m', '-XX:+UseSerialGC', '-Xshare:auto'];
// C1 only: a short consumer run starts in about half the time and CPU. Not for benchmarks.
export const FAST_JVM_ARGS = [...DEFAULT_JVM_ARGS, '-XX:TieredStopAtLevel=1'];

function peer(dubbo = '3') {
  const p = PEERS[dubbo];
  if (!p) throw new Error(`unknown Dubbo peer ${JSON.stringify(dubbo)}: one of ${Object.keys(PEERS).join(', ')}`);
  return p;
}

function killGroup(child, signal) {
  try { process.kill(-child.pid, signal); } catch { /* already gone */ }
}

/**
 * Build the jars of the given peers ('3' when none is named) if missing or stale (their
 * build.sh; a cold ~/.m2 takes minutes).
 */
export function ensureBuilt(...versions) {
  for (const v of versions.length ? versions : ['3']) {
    const p = peer(v);
    const r = spawnSync('bash', [p.build], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${p.build} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    if (!existsSync(p.jar)) throw new Error(`${p.build} ran but ${p.jar} is missing`);
  }
}

function spawnJava(jar, args, jvmArgs) {
  const child = spawn(JAVA, [...jvmArgs, '-jar', jar, ...args], {
    detached: true, // own process group: stop() kills the JVM and anything it spawned
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) {
    registerChild(child.pid);
    child.once('exit', () => unregisterChild(child.pid));
  }
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-64 * 1024); });
  child.stdin.on('error', () => {});
  return { child, stderr: () => stderr };
}

function stopChild(child, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    killGroup(child, 'SIGTERM');
  });
}

/**
 * Start a provider exporting dev.meltemi.demo.GreetService and OrderService (version 1.0.0).
 * @param {object} o
 * @param {'3'|'2.7'} [o.dubbo='3']      which Apache Dubbo: 3.3.5 or 2.7.23 (PEERS)
 * @param {string} [o.name='v1']          reported as "server" in every reply
 * @param {number} [o.port=0]             0: a free port
 * @param {string} [o.group]              Dubbo group of both services (comma list: one export per group, "" = none)
 * @param {string} [o.version='1.0.0']    comma list: one export per version
 * @param {Record<string,string>} [o.replyAttachments]  attachments set on every response
 * @param {number} [o.jitterMs]           random 0..N ms delay per call (reorders pipelined replies)
 * @param {number} [o.heartbeatMs]
 * @param {number} [o.threads]
 * @param {string[]} [o.jvmArgs]
 * @param {number} [o.readyTimeoutMs=90000]
 * @returns {Promise<{port:number, url:string, pid:number, stderr:()=>string, stop:()=>Promise<void>}>}
 */
export async function startProvider(o = {}) {
  const { jar, make } = peer(o.dubbo);
  if (!existsSync(jar)) throw new Error(`${jar} missing: run \`${make}\``);
  const args = ['provider', '--port', String(o.port ?? 0), '--name', o.name ?? 'v1', '--watch-stdin'];
  if (o.host) args.push('--host', o.host);
  if (o.group) args.push('--group', o.group);
  if (o.version) args.push('--version', o.version);
  for (const [k, v] of Object.entries(o.replyAttachments ?? {})) args.push('--reply-attachment', `${k}=${v}`);
  if (o.jitterMs) args.push('--jitter-ms', String(o.jitterMs));
  if (o.heartbeatMs) args.push('--heartbeat-ms', String(o.heartbeatMs));
  if (o.threads) args.push('--threads', String(o.threads));
  const { child, stderr } = spawnJava(jar, args, o.jvmArgs ?? DEFAULT_JVM_ARGS);
  const stop = () => stopChild(child);
  const port = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => fail(new Error(`provider ${o.name ?? 'v1'} not READY after ${o.readyTimeoutMs ?? 90000} ms`)),
      o.readyTimeoutMs ?? 90000);
    function fail(err) {
      clearTimeout(timer);
      stop().then(() => reject(new Error(`${err.message}\n--- provider stderr ---\n${stderr()}`)));
    }
    const onExit = (code, sig) => fail(new Error(`provider exited before READY (code ${code}, signal ${sig})`));
    child.once('exit', onExit);
    lines.on('line', (line) => {
      const m = /^READY port=(\d+)$/.exec(line.trim());
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout.resume(); // keep draining
      resolve(Number(m[1]));
    });
  });
  return { port, url: `dubbo://127.0.0.1:${port}`, pid: child.pid, dubbo: peer(o.dubbo).release, stderr, stop };
}

/** Turn an options object into consumer CLI arguments (an array passes through unchanged). */
export function consumerArgs(o) {
  if (Array.isArray(o)) return o;
  const a = ['--url', o.url];
  const opt = (flag, v) => { if (v !== undefined && v !== null) a.push(flag, String(v)); };
  opt('--interface', o.interface);
  opt('--method', Array.isArray(o.method) ? o.method.join(',') : o.method);
  opt('--arg', o.arg);
  opt('--payload', o.payload);
  for (const [k, v] of Object.entries(o.attachments ?? {})) a.push('--attachment', `${k}=${v}`);
  opt('--group', o.group);
  opt('--version', o.version);
  opt('--calls', o.calls);
  opt('--duration', o.duration);
  opt('--warmup', o.warmup);
  opt('--concurrency', o.concurrency);
  opt('--connections', o.connections);
  opt('--timeout-ms', o.timeoutMs);
  opt('--heartbeat-ms', o.heartbeatMs);
  opt('--hold-ms', o.holdMs);
  opt('--rounds', o.rounds);
  opt('--idle-ms', o.idleMs);
  if (o.async) a.push('--async');
  if (o.oneway) a.push('--oneway');
  if (o.summary) a.push('--summary');
  return a;
}

/**
 * Run the consumer to completion.
 * @param {object|string[]} o  options (see consumerArgs; `dubbo: '2.7'` runs the 2.7.23 consumer) or
 *   raw CLI arguments after "consumer" (3.3.5)
 * @param {{jvmArgs?:string[], timeoutMs?:number}} [run]  jvmArgs default: FAST_JVM_ARGS, or
 *   DEFAULT_JVM_ARGS (full JIT) for a timed run (`duration`) such as a benchmark
 * @returns {Promise<object|object[]>} the summary object with `summary: true` (or --summary), else one object per call
 */
export async function runConsumer(o, run = {}) {
  const { jar, make } = peer(Array.isArray(o) ? undefined : o.dubbo);
  if (!existsSync(jar)) throw new Error(`${jar} missing: run \`${make}\``);
  const args = ['consumer', ...consumerArgs(o)];
  const timed = args.includes('--duration');
  const { child, stderr } = spawnJava(jar, args, run.jvmArgs ?? (timed ? DEFAULT_JVM_ARGS : FAST_JVM_ARGS));
  child.stdin.end(); // the consumer never reads stdin
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => { stdout += d; });
  const limit = run.timeoutMs ?? 120000;
  const code = await new Promise((resolve) => {
    const t = setTimeout(() => { killGroup(child, 'SIGKILL'); }, limit);
    child.once('close', (c, sig) => { clearTimeout(t); resolve(c ?? sig); });
  });
  if (code !== 0) {
    throw new Error(`consumer ${args.join(' ')} exited with ${code}\n--- stderr ---\n${stderr()}\n--- stdout ---\n${stdout.slice(-4000)}`);
  }
  const parsed = stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  return args.includes('--summary') ? parsed[parsed.length - 1] : parsed;
}
