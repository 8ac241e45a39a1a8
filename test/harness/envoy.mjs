// Launches the real Envoy (.venv/bin/envoy) for end-to-end tests.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { registerChild, unregisterChild, afterTest } from './cleanup.mjs';
import { delay, unrefDelay } from './wait.mjs';
import { parsePrometheus, nearestNames } from './prometheus.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The Envoy binary: $MELTEMI_ENVOY, else <repo>/.venv/bin/envoy (installed by `make setup-envoy`). */
export function envoyPath() {
  return process.env.MELTEMI_ENVOY || path.join(repoRoot, '.venv', 'bin', 'envoy');
}

/** Resolves a repo-relative path (absolute paths pass through). */
export function repoPath(p) {
  return path.isAbsolute(p) ? p : path.join(repoRoot, p);
}

const MAX_LOG_CHARS = 16 * 1024 * 1024;

/** An error whose message is Envoy's own output, raised when Envoy exits before it is ready. */
export class EnvoyStartError extends Error {
  constructor(message, { code, signal, output }) {
    super(message);
    this.name = 'EnvoyStartError';
    this.code = code;
    this.signal = signal;
    this.output = output;
  }
}

function normaliseConfig(config) {
  if (config == null) throw new TypeError('startEnvoy: config is required');
  let obj = config;
  if (typeof config === 'string') {
    try {
      obj = YAML.parse(config);
    } catch {
      return { text: config, injectedAdmin: false }; // let Envoy reject it in its own words
    }
    if (obj === null || typeof obj !== 'object') return { text: config, injectedAdmin: false };
  } else {
    obj = structuredClone(config);
  }
  let injectedAdmin = false;
  if (!obj.admin) {
    obj.admin = { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } };
    injectedAdmin = true;
  }
  return { text: JSON.stringify(obj, null, 2), injectedAdmin };
}

function componentArg(c) {
  if (!c) return null;
  if (typeof c === 'string') return c;
  return Object.entries(c).map(([k, v]) => `${k}:${v}`).join(',');
}

/**
 * Starts Envoy and resolves once it is ready (admin /ready says LIVE and every static
 * listener is bound). Rejects with EnvoyStartError carrying Envoy's own output if Envoy
 * exits first (e.g. a rejected config).
 *
 * @param {object} opts
 * @param {object|string} opts.config   bootstrap as an object or a YAML/JSON string. If it has
 *        no `admin`, one on 127.0.0.1:0 is added. The actual admin address is read back from
 *        --admin-address-path, so port 0 works.
 * @param {string} [opts.logLevel='info']
 * @param {string|object} [opts.componentLogLevel]  "wasm:debug,filter:trace" or {wasm: 'debug'}
 * @param {number} [opts.concurrency=1]
 * @param {number} [opts.readyTimeout=30000]
 * @param {string[]} [opts.extraArgs]
 * @param {object} [opts.t]  node:test context: stop() is registered with t.after()
 * @param {boolean} [opts.echo]  copy Envoy's output to this process's stderr (also $MELTEMI_ENVOY_ECHO=1)
 */
export async function startEnvoy({
  config,
  logLevel = 'info',
  componentLogLevel,
  concurrency = 1,
  readyTimeout = 30_000,
  extraArgs = [],
  t,
  echo = process.env.MELTEMI_ENVOY_ECHO === '1',
} = {}) {
  const bin = envoyPath();
  if (!existsSync(bin)) {
    throw new Error(`Envoy not found at ${bin}: run \`make setup-envoy\` (or set MELTEMI_ENVOY)`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meltemi-envoy-'));
  const { text } = normaliseConfig(config);
  const configPath = path.join(dir, 'envoy.yaml');
  writeFileSync(configPath, text);
  const adminAddressPath = path.join(dir, 'admin-address');

  const args = [
    '-c', configPath,
    '--disable-hot-restart',
    '--concurrency', String(concurrency),
    '--admin-address-path', adminAddressPath,
    '-l', logLevel,
    '--log-format', '[%Y-%m-%d %T.%e][%t][%l][%n] %v',
  ];
  const comp = componentArg(componentLogLevel);
  if (comp) args.push('--component-log-level', comp);
  args.push(...extraArgs);

  // setpriv --pdeathsig: the kernel kills Envoy if this node process dies without cleanup
  // (even SIGKILL). Falls back to a plain spawn where setpriv is missing.
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  const [cmd, argv] = setpriv
    ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', bin, ...args]]
    : [bin, args];
  const child = spawn(cmd, argv, {
    cwd: repoRoot, // bootstraps may use repo-relative paths such as build/meltemi.wasm
    detached: true, // own process group: stop() kills the group
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  registerChild(child.pid);

  let out = '';
  let dropped = 0;
  const logWaiters = new Set();
  const onData = (chunk) => {
    const s = chunk.toString('utf8');
    if (echo) process.stderr.write(s);
    out += s;
    if (out.length > MAX_LOG_CHARS) {
      const cut = out.length - MAX_LOG_CHARS / 2;
      out = out.slice(cut);
      dropped += cut;
    }
    for (const w of logWaiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      unregisterChild(child.pid);
      for (const w of logWaiters) w();
      resolve(exitInfo);
    });
    child.on('error', (err) => {
      exitInfo = { code: null, signal: null, error: err };
      unregisterChild(child.pid);
      resolve(exitInfo);
    });
  });
  // stdout/stderr may still hold data after 'exit'; 'close' means the pipes are drained.
  const closed = new Promise((resolve) => child.on('close', resolve));

  let adminPort = null;
  let stopping = null;

  const envoy = {
    pid: child.pid,
    configPath,
    dir,
    get adminPort() { return adminPort; },
    get adminUrl() { return `http://127.0.0.1:${adminPort}`; },
    get alive() { return exitInfo === null; },
    exited,

    /** Everything Envoy wrote to stdout and stderr so far. */
    logs() { return out; },
    /** A mark for waitForLog({since}). */
    logOffset() { return dropped + out.length; },

    /**
     * Resolves with the match once regex matches Envoy's output (after `since`, a logOffset()).
     * Rejects on timeout or if Envoy exits.
     */
    waitForLog(regex, timeout = 10_000, { since = 0 } = {}) {
      const re = typeof regex === 'string' ? new RegExp(regex) : regex;
      return new Promise((resolve, reject) => {
        let timer;
        const check = () => {
          const start = Math.max(0, since - dropped);
          const m = re.exec(out.slice(start));
          if (m) { done(); resolve(m); return; }
          if (exitInfo) { done(); reject(new Error(`Envoy exited (${fmtExit(exitInfo)}) before log matched ${re}\n${tail(out)}`)); }
        };
        const done = () => { clearTimeout(timer); logWaiters.delete(check); };
        timer = setTimeout(() => { done(); reject(new Error(`waitForLog(${re}) timed out after ${timeout} ms\n${tail(out)}`)); }, timeout);
        logWaiters.add(check);
        check();
      });
    },

    /** GET an admin path; returns {status, body}. */
    async admin(p, { method = 'GET' } = {}) {
      if (!adminPort) throw new Error('Envoy admin port not known yet');
      const res = await fetch(`http://127.0.0.1:${adminPort}${p}`, { method });
      return { status: res.status, body: await res.text() };
    },

    /** Map of every counter and gauge (name → number) from /stats?format=json. */
    async stats({ filter } = {}) {
      const q = filter ? `&filter=${encodeURIComponent(filter)}` : '';
      const { status, body } = await envoy.admin(`/stats?format=json${q}`);
      if (status !== 200) throw new Error(`/stats: HTTP ${status}: ${body}`);
      return parseStatsJson(body);
    },

    /**
     * What Prometheus would scrape: /stats/prometheus parsed (prometheus.mjs). The filter's metrics
     * are there as meltemi_<name>{meltemi_route=...} when the bootstrap carries the stats_tags of
     * controller/src/stats-tags.mts (every bootstrap of bootstrap.mjs does).
     */
    async metrics() {
      const { status, body } = await envoy.admin('/stats/prometheus');
      if (status !== 200) throw new Error(`/stats/prometheus: HTTP ${status}: ${body}`);
      return parsePrometheus(body);
    },

    /** metrics().get(name, labels): the sum of the matching series, undefined when there is none. */
    async metric(name, labels = {}) {
      return (await envoy.metrics()).get(name, labels);
    },

    /** metrics().value(name, labels): the sum of the matching series; throws when there is none. */
    async value(name, labels = {}) {
      return (await envoy.metrics()).value(name, labels);
    },

    /**
     * One counter or gauge by its Envoy name (Meltemi's own: metrics()). A name without its
     * `wasmcustom.` finds the Wasm-defined stat too. Returns undefined if the stat does not exist.
     */
    async stat(name) {
      const m = await envoy.stats();
      return lookupStat(m, name);
    },

    /**
     * Bytes Envoy has read from the client connections of the tcp_proxy whose stat_prefix is
     * `statPrefix` (its counter `tcp.<statPrefix>.downstream_cx_rx_bytes_total`). Envoy counts them
     * as it reads the socket, before its filters run on them and whether or not a filter holds them,
     * so with one client connection at a time it tells when a write has been read (see
     * tcpConnect().writeInReads).
     */
    async downstreamRxBytes(statPrefix = 'meltemi') {
      const name = `tcp.${statPrefix}.downstream_cx_rx_bytes_total`;
      const m = await envoy.stats({ filter: `^${name.replaceAll('.', '\\.')}$` });
      if (!m.has(name)) throw new Error(`no stat ${name}: is there a tcp_proxy with stat_prefix ${statPrefix}?`);
      return m.get(name);
    },

    /** Static listeners as bound: [{name, address, port}] from /listeners?format=json. */
    async listeners() {
      const { status, body } = await envoy.admin('/listeners?format=json');
      if (status !== 200) throw new Error(`/listeners: HTTP ${status}: ${body}`);
      return parseListeners(body);
    },

    /** The bound port of a listener (by name; the first listener if name is omitted). */
    async listenerPort(name) {
      const ls = await envoy.listeners();
      const l = name ? ls.find((x) => x.name === name) : ls[0];
      if (!l) throw new Error(`no listener ${name ?? ''} in ${JSON.stringify(ls)}`);
      return l.port;
    },

    /** SIGTERM the process group, SIGKILL after `timeout` ms. Idempotent. Resolves with {code, signal}. */
    stop({ timeout = 5_000, keepDir = process.env.MELTEMI_KEEP_TMP === '1' } = {}) {
      if (!stopping) {
        stopping = (async () => {
          if (!exitInfo) {
            killGroup(child.pid, 'SIGTERM');
            const r = await Promise.race([exited, unrefDelay(timeout).then(() => null)]);
            if (!r) {
              killGroup(child.pid, 'SIGKILL');
              await exited;
            }
          }
          await Promise.race([closed, unrefDelay(1000)]);
          if (!keepDir) rmSync(dir, { recursive: true, force: true });
          return exitInfo;
        })();
      }
      return stopping;
    },
  };
  afterTest(t, () => envoy.stop());

  // Readiness: admin address file written, /ready 200, listeners bound. Any exit → reject.
  const deadline = Date.now() + readyTimeout;
  try {
    for (;;) {
      if (exitInfo) {
        await Promise.race([closed, unrefDelay(1000)]);
        throw startError(exitInfo, out);
      }
      if (Date.now() > deadline) {
        throw new Error(`Envoy not ready after ${readyTimeout} ms\n${tail(out)}`);
      }
      if (!adminPort) adminPort = readAdminPort(adminAddressPath);
      if (adminPort && await isReady(adminPort)) {
        const ls = await envoy.listeners().catch(() => null);
        if (ls && ls.every((l) => l.internal || l.port > 0)) break;
      }
      await delay(50);
    }
  } catch (err) {
    await envoy.stop();
    throw err;
  }
  return envoy;
}

function readAdminPort(file) {
  try {
    const s = readFileSync(file, 'utf8').trim();
    const m = /:(\d+)$/.exec(s);
    return m && Number(m[1]) > 0 ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function isReady(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) });
    await res.text();
    return res.status === 200;
  } catch {
    return false;
  }
}

function killGroup(pid, sig) {
  try { process.kill(-pid, sig); } catch { try { process.kill(pid, sig); } catch { /* gone */ } }
}

function fmtExit({ code, signal, error }) {
  if (error) return `spawn error: ${error.message}`;
  return signal ? `signal ${signal}` : `code ${code}`;
}

function tail(s, n = 4000) {
  return s.length > n ? `…${s.slice(-n)}` : s;
}

/** Picks Envoy's own error lines out of its output for the rejection message. */
function startError(exitInfo, output) {
  const lines = output.split('\n');
  // Envoy's error lines ([critical]/[error]) plus unprefixed lines (continuations of a
  // multi-line message, and the bare error Envoy prints to stderr on exit).
  const errLines = lines.filter((l) => l.trim() && (/\]\[(critical|error)\]\[/.test(l) || !/^\[\d{4}-/.test(l)));
  const summary = (errLines.length ? errLines : lines.slice(-20)).join('\n').trim();
  if (!summary) return new EnvoyStartError(`Envoy exited before ready (${fmtExit(exitInfo)}) and printed nothing (is ${envoyPath()} really Envoy?)`, { ...exitInfo, output });
  return new EnvoyStartError(`Envoy exited before ready (${fmtExit(exitInfo)}):\n${summary}`, {
    ...exitInfo,
    output,
  });
}

export function parseStatsJson(body) {
  const m = new Map();
  const j = JSON.parse(body);
  for (const s of j.stats ?? []) {
    if (s && typeof s.name === 'string' && typeof s.value === 'number') m.set(s.name, s.value);
  }
  return m;
}

/** Envoy's text /stats format ("name: value" lines); numbers only. */
export function parseStatsText(body) {
  const m = new Map();
  for (const line of body.split('\n')) {
    const i = line.lastIndexOf(': ');
    if (i < 0) continue;
    const v = Number(line.slice(i + 2));
    if (Number.isFinite(v)) m.set(line.slice(0, i), v);
  }
  return m;
}

export function lookupStat(map, name) {
  if (map.has(name)) return map.get(name);
  if (map.has(`wasmcustom.${name}`)) return map.get(`wasmcustom.${name}`);
  return undefined;
}

/**
 * lookupStat for a stat that must exist (Envoy defines a cluster's or listener's stats with it:
 * cluster.<name>.upstream_rq_pending_overflow is there, 0, before any traffic): its value, or an
 * Error naming the stat and the nearest names the map has.
 */
export function requireStat(map, name) {
  const v = lookupStat(map, name);
  if (v !== undefined) return v;
  throw new Error(`no stat ${name} (${map.size} stats); nearest names: ${nearestNames(name, map.keys()).join(', ') || 'none'}`);
}

/** Stats that changed between two stats() maps: Map name → after - before (new stats count from 0). */
export function statsDelta(before, after) {
  const d = new Map();
  for (const [k, v] of after) {
    const dv = v - (before.get(k) ?? 0);
    if (dv !== 0) d.set(k, dv);
  }
  return d;
}

function parseListeners(body) {
  const j = JSON.parse(body);
  return (j.listener_statuses ?? []).map((l) => {
    const sa = l.local_address?.socket_address;
    // Internal listeners (envoy_internal_address) have no socket: nothing to wait for.
    if (!sa) return { name: l.name, internal: true };
    return { name: l.name, address: sa.address, port: Number(sa.port_value ?? 0) };
  });
}
