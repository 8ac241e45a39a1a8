#!/usr/bin/env node
// `make bench`: Thrift, Dubbo and Redis request/response through the same real Envoy binary, path by path
// (direct, tcp_proxy, Envoy's native proxy, Meltemi, Meltemi + mutation, Meltemi + policies), in
// one run on one machine. Writes results/<timestamp>/{results.json,results.md,*.svg}.
// Method: bench/README.md.
//
//   node bench/run.mjs [--quick] [--tiny] [--workloads thrift,dubbo,redis] [--repeats N] [--duration S]
//        [--warmup S] [--soak-requests N] [--thrift-server go|node] [--servers K] [--no-pin]
//        [--depth D] [--out DIR] [--update-readme]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import {
  startEnvoy, tcpProxyBootstrap, thriftProxyBootstrap, meltemiBootstrap, perRequestBootstrap, redisProxyBootstrap, staticClusters, socketAddress,
  freePort, waitFor, tcpExchange,
} from '../test/harness/index.mjs';
import { registerChild, unregisterChild } from '../test/harness/cleanup.mjs';
import { barChart } from './svg.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const BIN = path.join(ROOT, 'build', 'bench');
const WASM = path.join(ROOT, 'build', 'meltemi.wasm');
const GREET = 'dev.meltemi.demo.GreetService';

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { quick: false, tiny: false, workloads: ['thrift', 'dubbo', 'redis'], pin: true, updateReadme: false, thriftServer: 'go' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--quick') o.quick = true;
    else if (a === '--tiny') { o.tiny = true; o.quick = true; }
    else if (a === '--workloads') o.workloads = next().split(',');
    else if (a === '--repeats') o.repeats = Number(next());
    else if (a === '--duration') o.duration = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--soak-requests') o.soakRequests = Number(next());
    else if (a === '--thrift-server') o.thriftServer = next();
    else if (a === '--servers') o.servers = Number(next());
    else if (a === '--depth') o.depth = Number(next());
    else if (a === '--no-pin') o.pin = false;
    else if (a === '--paths') o.paths = next().split(',');
    else if (a === '--wasm') o.wasm = path.resolve(next());
    else if (a === '--baseline-wasm') o.baselineWasm = path.resolve(next());
    else if (a === '--conns') o.conns = next().split(',').map(Number);
    else if (a === '--payloads') o.payloads = next().split(',').map(Number);
    else if (a === '--no-soak') o.soakRequests = 0;
    else if (a === '--out') o.out = next();
    else if (a === '--update-readme') o.updateReadme = true;
    else if (a === '--render') o.render = next();
    else if (a === '--help' || a === '-h') { console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 9).join('\n')); process.exit(0); }
    else { console.error(`bench: unknown argument ${a}`); process.exit(2); }
  }
  const mode = o.tiny ? 'tiny' : o.quick ? 'quick' : 'full';
  const d = {
    full: { repeats: 3, duration: 10, warmup: 2, conns: [1, 16, 64], payloads: [16, 4096], soakRequests: 1_000_000, loadStarts: 5 },
    quick: { repeats: 1, duration: 3, warmup: 1, conns: [1, 16], payloads: [16, 4096], soakRequests: 100_000, loadStarts: 2 },
    tiny: { repeats: 1, duration: 0.5, warmup: 0.2, conns: [4], payloads: [16], soakRequests: 2_000, loadStarts: 1 },
  }[mode];
  return {
    mode, ...d, ...o,
    conns: o.conns ?? d.conns,
    payloads: o.payloads ?? d.payloads,
    repeats: o.repeats ?? d.repeats,
    duration: o.duration ?? d.duration,
    warmup: o.warmup ?? d.warmup,
    soakRequests: o.soakRequests ?? d.soakRequests,
    depth: o.depth ?? 4,
    servers: o.servers ?? 2,
  };
}

const log = (...a) => console.error('[bench]', ...a);

// ---------------------------------------------------------------- processes

const CPU_ENVOY = '0';
const CPU_PEERS = '1';

function pinned(cmd, args, opts) {
  return opts.pin && existsSync('/usr/bin/taskset') ? ['/usr/bin/taskset', ['-c', CPU_PEERS, cmd, ...args]] : [cmd, args];
}

/** Starts a long-lived child that prints "READY port=N"; resolves {port, pid, stop}. */
function startReady(cmd, args, opts, what) {
  const [c, a] = pinned(cmd, args, opts);
  const child = spawn(c, a, { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  registerChild(child.pid);
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err = (err + d).slice(-8000); });
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    child.once('exit', () => resolve());
    try { process.kill(-child.pid, 'SIGKILL'); } catch { resolve(); }
  });
  child.once('exit', () => unregisterChild(child.pid));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { stop(); reject(new Error(`${what}: not READY in 90 s\n${err}`)); }, 90_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /READY port=(\d+)/.exec(out) ?? /"port":(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ port: Number(m[1]), pid: child.pid, stop }); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited (${code}) before READY\n${err}`)); });
  });
}

function runToEnd(cmd, args, opts, timeoutMs) {
  const [c, a] = pinned(cmd, args, opts);
  return new Promise((resolve, reject) => {
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err = (err + d).slice(-8000); });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(t);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${err}\n${out.slice(-2000)}`));
      else resolve(out);
    });
  });
}

function procCpuTicks(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}
const TICK_US = 1e6 / 100; // USER_HZ = 100 on Linux

function vmRssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : null;
}

async function envoyMemory(envoy) {
  const r = await envoy.admin('/memory');
  const j = JSON.parse(r.body);
  const stats = await envoy.stats({ filter: 'wasm_memory_bytes' }).catch(() => new Map());
  let wasm = null;
  // By its /stats name: `wasmcustom.meltemi.meltemi_service=.=<service>;.;wasm_memory_bytes` (labels
  // written into the name, docs/metrics.md), `wasmcustom.meltemi.wasm_memory_bytes` in 0.1.0 builds.
  for (const [k, v] of stats) if (/[.;]wasm_memory_bytes$/.test(k)) wasm = v;
  return { allocated: Number(j.allocated), heapSize: Number(j.heap_size), rssKiB: vmRssKiB(envoy.pid), wasmMemoryBytes: wasm };
}

// ---------------------------------------------------------------- Envoy configurations

async function thriftPaths(backend, wasmPath) {
  const clusters = { backend, other: [{ port: 1 }] };
  const route = { name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'backend' }] };
  const plugin = (r) => ({ codec: 'thrift', codecOptions: { transport: 'framed', protocol: 'binary' }, noRoute: 'reject', routes: [r] });
  return [
    { id: 'tcp_proxy', label: 'Envoy tcp_proxy', config: tcpProxyBootstrap({ clusters, cluster: 'backend' }) },
    { id: 'native', label: 'Envoy thrift_proxy', config: thriftProxyBootstrap({ clusters, routes: [{ method: 'echo', cluster: 'backend' }], defaultCluster: 'other', transport: 'FRAMED', protocol: 'BINARY' }) },
    { id: 'meltemi', label: 'Meltemi', config: meltemiBootstrap({ clusters, plugin: plugin(route), defaultCluster: 'backend', wasmPath }) },
    { id: 'meltemi_policies', label: 'Meltemi + authz + rate limit', config: meltemiBootstrap({ clusters, plugin: plugin({ ...route, ...POLICIES('method', 'echo') }), defaultCluster: 'backend', wasmPath }) },
    { id: 'meltemi_per_request', label: 'Meltemi per request', config: await perRequestBootstrap({ plugin: { ...plugin(route), mode: 'perRequest' }, clusters: { backend }, wasmPath }) },
    wasmFloorPath(clusters, plugin(route), wasmPath),
    // Only with --paths naming it: one JSON access line per request, through Envoy's logger to
    // /dev/null (the line's cost without the disk's).
    {
      id: 'meltemi_access_log', label: 'Meltemi + access log', optIn: true,
      config: meltemiBootstrap({ clusters, plugin: { ...plugin(route), accessLog: true }, defaultCluster: 'backend', wasmPath }),
      envoyArgs: ['--component-log-level', 'wasm:info', '--log-path', '/dev/null'],
    },
  ];
}

/** An authorization rule that allows the benchmarked call (default deny) and a rate limit that never trips. */
/**
 * The floor of any Wasm network filter in this Envoy (opt-in path `wasm_floor`): Meltemi's module
 * loaded with a scope that admits no connection, so Envoy enters the VM on every read and the
 * filter returns at once: no bytes fetched, nothing decoded or counted.
 */
const OUT_OF_SCOPE = { scope: { destinations: ['192.0.2.1/32'] } };
function wasmFloorPath(clusters, plugin, wasmPath) {
  return { id: 'wasm_floor', label: 'Wasm filter doing nothing (floor)', optIn: true, config: meltemiBootstrap({ clusters, plugin: { ...plugin, ...OUT_OF_SCOPE }, defaultCluster: 'backend', wasmPath }) };
}

/** The paths a run measures: those --paths names, else every path that is not opt-in. */
function selected(paths, opts) {
  return paths.filter((p) => (opts.paths ? opts.paths.includes(p.id) : !p.optIn));
}

function POLICIES(key, value) {
  return {
    authorization: { defaultAction: 'DENY', rules: [{ name: 'allow-bench', action: 'ALLOW', match: { attributes: { [key]: { exact: value } } } }] },
    localRateLimit: { tokenBucket: { maxTokens: 1_000_000_000, tokensPerFill: 1_000_000_000, fillIntervalMs: 1000 } },
  };
}

function dubboProxyBootstrap({ clusters }) {
  return {
    admin: { address: socketAddress(0) },
    static_resources: {
      listeners: [{
        name: 'dubbo',
        address: socketAddress(0),
        filter_chains: [{
          filters: [{
            name: 'envoy.filters.network.dubbo_proxy',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy',
              stat_prefix: 'dubbo',
              protocol_type: 'Dubbo',
              serialization_type: 'Hessian2',
              route_config: [{
                name: 'routes',
                interface: GREET,
                routes: [{ match: { method: { name: { exact: 'echo' } } }, route: { cluster: 'backend' } }],
              }],
              dubbo_filters: [{
                name: 'envoy.filters.dubbo.router',
                config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.router.v3.Router' },
              }],
            },
          }],
        }],
      }],
      clusters: staticClusters(clusters),
    },
  };
}

async function dubboPaths(backend, wasmPath) {
  const clusters = { backend, other: [{ port: 1 }] };
  const route = { name: 'echo', match: { attributes: { interface: { exact: GREET }, method: { exact: 'echo' } } }, route: [{ cluster: 'backend' }] };
  const plugin = (r) => ({ codec: 'dubbo', noRoute: 'reject', routes: [r] });
  return [
    { id: 'tcp_proxy', label: 'Envoy tcp_proxy', config: tcpProxyBootstrap({ clusters, cluster: 'backend' }) },
    { id: 'native', label: 'Envoy dubbo_proxy', config: dubboProxyBootstrap({ clusters }) },
    { id: 'meltemi', label: 'Meltemi', config: meltemiBootstrap({ clusters, plugin: plugin(route), defaultCluster: 'backend', wasmPath }) },
    { id: 'meltemi_mutation', label: 'Meltemi + 1 mutation', config: meltemiBootstrap({ clusters, plugin: plugin({ ...route, requestMutation: [{ key: 'x-bench', value: 'meltemi' }] }), defaultCluster: 'backend', wasmPath }) },
    { id: 'meltemi_policies', label: 'Meltemi + authz + rate limit', config: meltemiBootstrap({ clusters, plugin: plugin({ ...route, ...POLICIES('method', 'echo') }), defaultCluster: 'backend', wasmPath }) },
    { id: 'meltemi_per_request', label: 'Meltemi per request', config: await perRequestBootstrap({ plugin: { ...plugin(route), mode: 'perRequest' }, clusters: { backend }, wasmPath }) },
    wasmFloorPath(clusters, plugin(route), wasmPath),
  ];
}

async function redisPaths(backend, wasmPath) {
  const clusters = { backend, other: [{ port: 1 }] };
  // Routing is per connection (the first command picks the route). redis-benchmark sends CONFIG GET
  // on connections of their own first: those take the catch-all route, the benchmark's take `kv`.
  const kv = { name: 'kv', match: { attributes: { command: { regex: 'GET|SET' } } }, route: [{ cluster: 'backend' }] };
  const rest = { name: 'rest', route: [{ cluster: 'backend' }] };
  const policies = {
    authorization: { defaultAction: 'DENY', rules: [{ name: 'allow-bench', action: 'ALLOW', match: { attributes: { command: { regex: 'GET|SET' } } } }] },
    localRateLimit: POLICIES('command', 'GET').localRateLimit,
  };
  const plugin = (r) => ({ codec: 'redis', routes: [r, rest] });
  return [
    { id: 'tcp_proxy', label: 'Envoy tcp_proxy', config: tcpProxyBootstrap({ clusters, cluster: 'backend' }) },
    { id: 'native', label: 'Envoy redis_proxy', config: redisProxyBootstrap({ clusters, defaultCluster: 'backend' }) },
    // With per-command counters and latency histograms, what Meltemi always keeps (per operation
    // counters, a latency histogram per route and cluster): the same observability, side by side.
    { id: 'native_stats', label: 'Envoy redis_proxy + command stats', config: redisProxyBootstrap({ clusters, defaultCluster: 'backend', commandStats: true }) },
    { id: 'meltemi', label: 'Meltemi', config: meltemiBootstrap({ clusters, plugin: plugin(kv), defaultCluster: 'backend', wasmPath }) },
    { id: 'meltemi_policies', label: 'Meltemi + authz + rate limit', config: meltemiBootstrap({ clusters, plugin: plugin({ ...kv, ...policies }), defaultCluster: 'backend', wasmPath }) },
    // Per request, every command is routed on its own: the catch-all route takes CONFIG GET.
    { id: 'meltemi_per_request', label: 'Meltemi per request', config: await perRequestBootstrap({ plugin: { ...plugin(kv), mode: 'perRequest' }, clusters: { backend }, wasmPath }) },
    wasmFloorPath(clusters, plugin(kv), wasmPath),
  ];
}


/** A real redis-server on a free port (no persistence) on the peers' CPU; resolves {port, pid, stop}. */
async function startRedisServer(opts) {
  const port = await freePort();
  const [c, a] = pinned('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], opts);
  const child = spawn(c, a, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  registerChild(child.pid);
  let err = '';
  child.stderr.on('data', (d) => { err = (err + d).slice(-4000); });
  child.once('exit', () => unregisterChild(child.pid));
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    child.once('exit', () => resolve());
    try { process.kill(-child.pid, 'SIGKILL'); } catch { resolve(); }
  });
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${err}`);
      const r = await tcpExchange({ port, data: 'PING\r\n', timeout: 500, until: (b) => b.includes('\r\n') }).catch(() => null);
      return r?.data.toString() === '+PONG\r\n';
    }, { message: `redis-server on port ${port} did not answer PING` });
  } catch (e) { await stop(); throw e; }
  return { port, pid: child.pid, stop };
}

async function startPathEnvoy(p, opts) {
  const t0 = performance.now();
  const envoy = await startEnvoy({ config: p.config, logLevel: 'warn', concurrency: 1, readyTimeout: 60_000, extraArgs: p.envoyArgs ?? [] });
  const startMs = performance.now() - t0;
  if (opts.pin && existsSync('/usr/bin/taskset')) {
    execFileSync('/usr/bin/taskset', ['-a', '-p', '-c', CPU_ENVOY, String(envoy.pid)], { stdio: 'ignore' });
  }
  return { ...p, envoy, startMs, port: await envoy.listenerPort() };
}

// ---------------------------------------------------------------- drivers

function thriftDriver(opts) {
  return {
    async run({ ports, conns, payload, durationS, warmupS }) {
      const out = await runToEnd(path.join(BIN, 'loadgen'), [
        '-targets', ports.map((p) => `127.0.0.1:${p}`).join(','), '-conns', String(conns), '-depth', String(opts.depth),
        '-payload', String(payload), '-duration', `${durationS}s`, '-warmup', `${warmupS}s`,
      ], opts, (durationS + warmupS) * 1000 + 60_000);
      const r = JSON.parse(out.trim().split('\n').pop());
      return {
        throughput: r.throughput, p50Ms: r.p50Us / 1000, p99Ms: r.p99Us / 1000, requests: r.requests,
        totalRequests: r.totalRequests, errors: r.errors + r.failedConnections, firstError: r.firstError,
      };
    },
  };
}

function dubboDriver(opts, peers) {
  return {
    async run({ ports, conns, payload, durationS, warmupS, calls }) {
      const warmup = calls ? 0 : Math.max(200, Math.round(warmupS * 2000));
      const o = {
        url: `dubbo://127.0.0.1:${ports[0]}`, interface: GREET, method: 'echo', payload,
        async: true, connections: conns, concurrency: conns * opts.depth, warmup, summary: true, timeoutMs: 10_000,
      };
      if (calls) o.calls = calls; else o.duration = `${durationS}s`;
      const s = await peers.runConsumer(o, { jvmArgs: peers.DEFAULT_JVM_ARGS, timeoutMs: (durationS + warmupS) * 1000 + 180_000 });
      return {
        throughput: s.throughput, p50Ms: s.p50Ms, p99Ms: s.p99Ms, requests: s.calls ?? s.ok,
        totalRequests: (s.calls ?? s.ok) + warmup, errors: (s.errors ?? 0) + (s.mismatches ?? 0),
      };
    },
  };
}

/**
 * redis-benchmark -t set,get: it has no duration flag, so -n (per command) is sized from the rate
 * this path and point reached last time (or in this call's warm-up run). Its --csv rows give
 * requests/s and p50/p99 per command; a point's throughput is both commands' requests over both
 * commands' time, p50 the mean of the two p50s (equal counts), p99 the larger of the two p99s.
 */
function redisDriver(opts) {
  const rates = new Map();
  const bench = async (port, conns, payload, n) => {
    const out = await runToEnd('redis-benchmark', [
      '-h', '127.0.0.1', '-p', String(port), '-t', 'set,get', '-n', String(n), '-c', String(conns), '-P', String(opts.depth),
      '-d', String(payload), '-r', '100000', '--csv', '--precision', '3',
    ], opts, 60_000 + n * 2);
    const rows = out.trim().split('\n').filter((l) => /^"(SET|GET)"/.test(l)).map((l) => l.split(',').map((x) => x.replace(/"/g, '')));
    if (rows.length !== 2) throw new Error(`redis-benchmark: unexpected output\n${out.slice(-2000)}`);
    const rps = rows.map((r) => Number(r[1]));
    const throughput = 2 / rps.reduce((s, x) => s + 1 / x, 0);
    const p50Ms = (Number(rows[0][4]) + Number(rows[1][4])) / 2;
    const p99Ms = Math.max(Number(rows[0][6]), Number(rows[1][6]));
    return { throughput, p50Ms, p99Ms, requests: 2 * n, errors: /error/i.test(out) ? 1 : 0 };
  };
  return {
    async run({ ports, conns, payload, durationS, warmupS, calls }) {
      const port = ports[0];
      const k = `${port}/${conns}/${payload}`;
      let rate = rates.get(k) ?? rates.get(`${port}`) ?? 20_000;
      let total = 0;
      if (calls) {
        const r = await bench(port, conns, payload, Math.max(1, Math.ceil(calls / 2)));
        return { ...r, totalRequests: r.requests };
      }
      if (warmupS > 0) {
        const w = await bench(port, conns, payload, Math.max(500, Math.round((rate * warmupS) / 2)));
        total += w.requests;
        rate = w.throughput;
      }
      const r = await bench(port, conns, payload, Math.max(1000, Math.round((rate * durationS) / 2)));
      rates.set(k, r.throughput);
      rates.set(`${port}`, r.throughput);
      return { ...r, totalRequests: total + r.requests };
    },
  };
}

// ---------------------------------------------------------------- one workload

const median = (xs) => {
  const a = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (!a.length) return null;
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};

async function runWorkload(name, opts, results) {
  log(`== ${name}`);
  const stops = [];
  const w = { name, points: [], paths: [], memory: {}, startup: {}, ceiling: [], notes: [] };
  results.workloads.push(w);
  try {
    let backendPorts;
    let driver;
    let paths;
    if (name === 'thrift') {
      for (let i = 0; i < opts.servers; i++) {
        const s = opts.thriftServer === 'node'
          ? await startReady(process.execPath, [path.join(ROOT, 'test/peers/thrift/server.mjs'), '--json', JSON.stringify({ name: `v${i + 1}` })], opts, 'node thrift server')
          : await startReady(path.join(BIN, 'thrift-server'), ['--port', '0', '--name', `v${i + 1}`], opts, 'thrift server');
        stops.push(s.stop);
        (backendPorts ??= []).push(s.port);
      }
      driver = thriftDriver(opts);
      paths = selected(await thriftPaths(backendPorts.map((port) => ({ port })), opts.wasm ?? WASM), opts);
      w.server = opts.thriftServer === 'node' ? `npm thrift (Node) x${opts.servers}` : `Apache Thrift Go 0.17 TSimpleServer x${opts.servers}`;
      w.client = `bench/loadgen (Go), depth ${opts.depth}`;
    } else if (name === 'redis') {
      const server = await startRedisServer(opts);
      stops.push(server.stop);
      backendPorts = [server.port];
      driver = redisDriver(opts);
      paths = selected(await redisPaths(backendPorts.map((port) => ({ port })), opts.wasm ?? WASM), opts);
      const ver = (() => { try { return execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=([\d.]+)/)?.[1]; } catch { return null; } })();
      w.server = `redis-server ${ver ?? ''} x1 (no persistence)`.replace('  ', ' ');
      w.client = `redis-benchmark -t set,get -P ${opts.depth} -r 100000 (single-threaded; -n sized from the measured rate)`;
    } else if (name === 'dubbo') {
      const peers = await import('../test/peers/dubbo/index.mjs');
      if (!existsSync(peers.JAR)) peers.ensureBuilt();
      const javaWrap = opts.pin && existsSync('/usr/bin/taskset');
      const prov = await withPinnedJava(javaWrap, () => peers.startProvider({ name: 'v1', jvmArgs: peers.DEFAULT_JVM_ARGS }));
      stops.push(prov.stop);
      backendPorts = [prov.port];
      driver = dubboDriver(opts, {
        DEFAULT_JVM_ARGS: peers.DEFAULT_JVM_ARGS,
        runConsumer: (o, run) => withPinnedJava(javaWrap, () => peers.runConsumer(o, run)),
      });
      paths = selected(await dubboPaths(backendPorts.map((port) => ({ port })), opts.wasm ?? WASM), opts);
      w.server = 'Apache Dubbo 3.3.5 Java provider x1';
      w.client = `Apache Dubbo 3.3.5 Java consumer, --async, ${opts.depth} in flight per connection`;
    } else {
      throw new Error(`bench: unknown workload ${name} (thrift, dubbo, redis)`);
    }

    // --baseline-wasm: every Meltemi path again with another build, measured side by side.
    if (opts.baselineWasm) {
      paths = paths.flatMap((p) => {
        if (!p.id.startsWith('meltemi')) return [p];
        const b = structuredClone(p);
        b.id = `${p.id}_baseline`;
        b.label = `${p.label} [baseline wasm]`;
        for (const l of b.config.static_resources.listeners) {
          for (const f of l.filter_chains[0].filters) {
            if (f.name === 'envoy.filters.network.wasm') f.typed_config.config.vm_config.code.local.filename = opts.baselineWasm;
          }
        }
        return [b, p];
      });
    }

    // Envoy start time per path (the wasm load time is Meltemi's minus tcp_proxy's).
    const envoys = [];
    for (const p of paths) {
      const starts = [];
      for (let i = 1; i < opts.loadStarts; i++) {
        const e = await startPathEnvoy(p, opts);
        starts.push(e.startMs);
        await e.envoy.stop();
      }
      const e = await startPathEnvoy(p, opts);
      starts.push(e.startMs);
      stops.push(() => e.envoy.stop());
      envoys.push(e);
      w.startup[p.id] = { medianMs: median(starts), samples: starts };
    }
    const all = [...(!opts.paths || opts.paths.includes('direct') ? [{ id: 'direct', label: 'direct (no Envoy)', port: null }] : []), ...envoys];
    w.paths = all.map((p) => ({ id: p.id, label: p.label }));

    // Warm every path once (JIT, connection pools) before measuring.
    for (const p of all) {
      await driver.run({ ports: p.port ? [p.port] : backendPorts, conns: opts.conns.at(-1), payload: opts.payloads[0], durationS: Math.min(1, opts.duration), warmupS: 0.2 });
    }
    for (const p of envoys) p.mem0 = await envoyMemory(p.envoy);

    // Points: every repeat visits every path in turn, so slow drift hits all paths alike.
    for (const conns of opts.conns) {
      for (const payload of opts.payloads) {
        const point = { conns, depth: opts.depth, payload, runs: {} };
        w.points.push(point);
        for (let rep = 0; rep < opts.repeats; rep++) {
          for (const p of all) {
            const cpu0 = p.envoy ? procCpuTicks(p.envoy.pid) : 0;
            const r = await driver.run({ ports: p.port ? [p.port] : backendPorts, conns, payload, durationS: opts.duration, warmupS: opts.warmup });
            if (p.envoy) r.envoyCpuUsPerReq = ((procCpuTicks(p.envoy.pid) - cpu0) * TICK_US) / Math.max(1, r.totalRequests);
            (point.runs[p.id] ??= []).push(r);
            log(`${name} c=${conns} payload=${payload} rep=${rep + 1} ${p.id}: ${Math.round(r.throughput)} req/s p50=${r.p50Ms.toFixed(3)} p99=${r.p99Ms.toFixed(3)} ms${r.envoyCpuUsPerReq ? ` cpu=${r.envoyCpuUsPerReq.toFixed(1)} us/req` : ''}${r.errors ? ` ERRORS=${r.errors} ${r.firstError ?? ''}` : ''}`);
          }
        }
        point.median = {};
        for (const [id, runs] of Object.entries(point.runs)) {
          point.median[id] = {
            throughput: median(runs.map((r) => r.throughput)),
            p50Ms: median(runs.map((r) => r.p50Ms)),
            p99Ms: median(runs.map((r) => r.p99Ms)),
            envoyCpuUsPerReq: median(runs.map((r) => r.envoyCpuUsPerReq)),
            errors: runs.reduce((s, r) => s + (r.errors || 0), 0),
          };
        }
      }
    }

    // Load generator ceiling: the same client against a reply-by-echo server, no Envoy, no Thrift.
    if (name === 'thrift' && (!opts.paths || opts.paths.includes('ceiling'))) {
      const echo = await startReady(path.join(BIN, 'loadgen'), ['-serve-echo'], opts, 'echo server');
      stops.push(echo.stop);
      for (const conns of opts.conns) {
        for (const payload of opts.payloads) {
          const r = await driver.run({ ports: [echo.port], conns, payload, durationS: opts.duration, warmupS: opts.warmup });
          w.ceiling.push({ conns, payload, throughput: r.throughput, p50Ms: r.p50Ms, p99Ms: r.p99Ms });
          log(`${name} loadgen ceiling c=${conns} payload=${payload}: ${Math.round(r.throughput)} req/s`);
        }
      }
      await echo.stop();
    } else if (name === 'dubbo') {
      w.notes.push('The Java consumer is both client and its own ceiling: the direct row is what it drives without Envoy.');
    }

    // Soak: at least soakRequests through each Envoy path, memory before and after.
    for (const p of opts.soakRequests > 0 ? envoys : []) {
      const before = await envoyMemory(p.envoy);
      const cpu0 = procCpuTicks(p.envoy.pid);
      let served = 0;
      const conns = 16;
      const rate = w.points.find((x) => x.conns === opts.conns.at(-1))?.median[p.id]?.throughput ?? 5000;
      while (served < opts.soakRequests) {
        const left = opts.soakRequests - served;
        const durationS = Math.max(opts.tiny ? 0.5 : 2, Math.min(120, (left / Math.max(rate, 1000)) * 1.15));
        const r = name === 'thrift'
          ? await driver.run({ ports: [p.port], conns, payload: opts.payloads.at(-1), durationS, warmupS: 0 })
          : await driver.run({ ports: [p.port], conns, payload: opts.payloads.at(-1), durationS, warmupS: 0, calls: left });
        served += r.totalRequests;
        if (!r.totalRequests) break;
      }
      const after = await envoyMemory(p.envoy);
      const perM = (a, b) => (a == null || b == null ? null : ((b - a) / served) * 1e6);
      w.memory[p.id] = {
        requests: served, before, after,
        growthPerMillion: {
          allocated: perM(before.allocated, after.allocated),
          heapSize: perM(before.heapSize, after.heapSize),
          rssKiB: perM(before.rssKiB, after.rssKiB),
          wasmMemoryBytes: perM(before.wasmMemoryBytes, after.wasmMemoryBytes),
        },
        cpuUsPerReq: ((procCpuTicks(p.envoy.pid) - cpu0) * TICK_US) / Math.max(1, served),
        sinceStart: { allocated: after.allocated - p.mem0.allocated, rssKiB: after.rssKiB - p.mem0.rssKiB },
      };
      log(`${name} soak ${p.id}: ${served} requests, allocated ${before.allocated} -> ${after.allocated}, RSS ${before.rssKiB} -> ${after.rssKiB} KiB, wasm ${before.wasmMemoryBytes} -> ${after.wasmMemoryBytes}`);
    }
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
  }
}

/**
 * The Dubbo helpers spawn `java` through PATH: for the duration of `fn`, PATH starts with a shim
 * directory whose `java` runs the real one under taskset (client and server on the peers' CPU).
 */
async function withPinnedJava(pin, fn) {
  if (!pin) return fn();
  const shimDir = path.join(BIN, 'java-shim');
  const shim = path.join(shimDir, 'java');
  if (!existsSync(shim)) {
    mkdirSync(shimDir, { recursive: true });
    const real = execFileSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).trim();
    writeFileSync(shim, `#!/bin/sh\nexec /usr/bin/taskset -c ${CPU_PEERS} ${real} "$@"\n`, { mode: 0o755 });
  }
  const oldPath = process.env.PATH;
  process.env.PATH = `${shimDir}:${oldPath}`;
  try { return await fn(); } finally { process.env.PATH = oldPath; }
}

// ---------------------------------------------------------------- report

function machine() {
  const cpus = os.cpus();
  const ver = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0]; } catch { return null; } };
  return {
    host: os.hostname(), cpu: cpus[0]?.model, cores: cpus.length, memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(), envoy: ver(path.join(ROOT, '.venv/bin/envoy'), ['--version'])?.replace(/^.*version: /, ''),
    node: process.version, go: ver('go', ['version']), java: ver('java', ['-version']) ?? ver('sh', ['-c', 'java -version 2>&1']),
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

const f0 = (v) => (v == null ? '–' : Math.round(v).toLocaleString('en-US'));
const f2 = (v) => (v == null ? '–' : v < 1 ? v.toFixed(3) : v.toFixed(2));
const fx = (v) => (v == null || !Number.isFinite(v) || v === 0 ? '–' : `${v.toFixed(2)}×`);
const kb = (v) => (v == null ? '–' : `${(v / 1024).toFixed(1)} KiB`);

function markdown(results) {
  const o = results.options;
  const L = [];
  L.push(`# Meltemi benchmark ${results.startedAt}`);
  L.push('');
  const m = results.machine;
  L.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Linux ${m.kernel}; Envoy ${m.envoy}; load average at start ${m.loadavgAtStart.join(' ')}.`);
  L.push(`Mode **${o.mode}**: ${o.duration} s per point after ${o.warmup} s warm-up, median of ${o.repeats} repeat(s); Envoy --concurrency 1${o.pin ? ' pinned to CPU 0, client and servers pinned to CPU 1' : ''}; ${o.depth} calls in flight per connection. Wall time ${Math.round(results.wallS)} s.`);
  L.push(`Meltemi: ${results.wasm.file ?? 'build/meltemi.wasm'} ${kb(results.wasm.bytes)} (${results.wasm.bytes} bytes); load time (Envoy start to ready, Meltemi minus tcp_proxy, median): ${results.wasm.loadMs == null ? '–' : `${Math.round(results.wasm.loadMs)} ms`}.`);
  L.push('');
  for (const w of results.workloads) {
    L.push(`## ${w.name}`);
    L.push('');
    L.push(`Server: ${w.server}. Client: ${w.client}.`);
    L.push('');
    L.push('| conns | payload | path | req/s | × tcp_proxy | p50 ms | p99 ms | p99 × tcp | Envoy CPU µs/req | × tcp |');
    L.push('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const pt of w.points) {
      const base = pt.median.tcp_proxy ?? {};
      for (const p of w.paths) {
        const r = pt.median[p.id];
        if (!r) continue;
        const err = r.errors ? ` (${r.errors} errors)` : '';
        L.push(`| ${pt.conns} | ${pt.payload} B | ${p.label}${err} | ${f0(r.throughput)} | ${fx(r.throughput / base.throughput)} | ${f2(r.p50Ms)} | ${f2(r.p99Ms)} | ${fx(r.p99Ms / base.p99Ms)} | ${r.envoyCpuUsPerReq == null ? '–' : r.envoyCpuUsPerReq.toFixed(1)} | ${fx(r.envoyCpuUsPerReq / base.envoyCpuUsPerReq)} |`);
      }
    }
    L.push('');
    const pairs = w.paths.filter((p) => p.id.endsWith('_baseline'));
    if (pairs.length) {
      L.push(`Before/after (this build vs ${path.basename(o.baselineWasm ?? 'baseline')}, same run):`);
      L.push('');
      L.push('| conns | payload | path | req/s after ÷ before | p99 after ÷ before | Envoy CPU/req after ÷ before |');
      L.push('|---:|---:|---|---:|---:|---:|');
      for (const pt of w.points) {
        for (const b of pairs) {
          const id = b.id.replace(/_baseline$/, '');
          const a = pt.median[id];
          const z = pt.median[b.id];
          if (!a || !z) continue;
          L.push(`| ${pt.conns} | ${pt.payload} B | ${w.paths.find((p) => p.id === id).label} | ${fx(a.throughput / z.throughput)} | ${fx(a.p99Ms / z.p99Ms)} | ${fx(a.envoyCpuUsPerReq / z.envoyCpuUsPerReq)} |`);
        }
      }
      L.push('');
    }
    if (w.ceiling.length) {
      L.push('Load generator ceiling (same client, reply-by-echo server, no Envoy): ' + w.ceiling.map((c) => `${c.conns} conns / ${c.payload} B: ${f0(c.throughput)} req/s`).join('; ') + '.');
      L.push('');
    }
    for (const n of w.notes) { L.push(n); L.push(''); }
    L.push('| path | requests | Envoy allocated Δ/M | heap Δ/M | RSS Δ/M | Wasm memory Δ/M | Wasm memory | Envoy CPU µs/req (soak) | start ms |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of w.paths) {
      const mm = w.memory[p.id];
      const st = w.startup[p.id];
      if (!mm) continue;
      const g = mm.growthPerMillion;
      L.push(`| ${p.label} | ${f0(mm.requests)} | ${kb(g.allocated)} | ${kb(g.heapSize)} | ${g.rssKiB == null ? '–' : `${g.rssKiB.toFixed(1)} KiB`} | ${g.wasmMemoryBytes == null ? '–' : kb(g.wasmMemoryBytes)} | ${mm.after.wasmMemoryBytes == null ? '–' : kb(mm.after.wasmMemoryBytes)} | ${mm.cpuUsPerReq.toFixed(1)} | ${st ? Math.round(st.medianMs) : '–'} |`);
    }
    L.push('');
    L.push(`![${w.name} throughput](${w.name}-throughput.svg) ![${w.name} p99](${w.name}-p99.svg)`);
    L.push('');
  }
  return L.join('\n');
}

function charts(results, dir) {
  for (const w of results.workloads) {
    const groups = w.points.map((p) => `${p.conns}c ${p.payload}B`);
    for (const [metric, title, unit] of [['throughput', 'throughput', 'requests/s'], ['p50Ms', 'p50 latency', 'ms'], ['p99Ms', 'p99 latency', 'ms']]) {
      const series = w.paths.map((p) => ({ name: p.label, values: w.points.map((pt) => pt.median[p.id]?.[metric] ?? null) }));
      const file = `${w.name}-${metric === 'throughput' ? 'throughput' : metric.slice(0, 3)}.svg`;
      writeFileSync(path.join(dir, file), barChart({ title: `${w.name}: ${title} (median of ${results.options.repeats}, ${results.options.mode} mode)`, yLabel: unit, groups, series }));
    }
  }
}

function updateReadme(md, from) {
  const file = path.join(HERE, 'README.md');
  const text = readFileSync(file, 'utf8');
  const start = '<!-- bench:latest:start -->';
  const end = '<!-- bench:latest:end -->';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < 0) { log('bench/README.md has no bench:latest markers; not updated'); return; }
  const body = md.replace(/^# .*\n/, '').replace(/!\[[^\]]*\]\([^)]*\)\s*/g, '');
  const source = from ? `From \`${from}/\` (charts there).\n\n` : '';
  writeFileSync(file, `${text.slice(0, i + start.length)}\n${source}${body.trim()}\n${text.slice(j)}`);
  log('updated bench/README.md');
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.render) {
    // Re-render the tables and charts of an earlier run (and optionally the README) from its JSON.
    const dir = path.resolve(opts.render);
    const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8'));
    const md = markdown(results);
    writeFileSync(path.join(dir, 'results.md'), `${md}\n`);
    charts(results, dir);
    if (opts.updateReadme) updateReadme(md, path.relative(ROOT, dir));
    process.stdout.write(`${md}\n`);
    return;
  }
  const t0 = performance.now();
  if (!existsSync(WASM)) throw new Error('build/meltemi.wasm missing: run `make build`');
  mkdirSync(BIN, { recursive: true });
  log('building bench/loadgen (go build)');
  execFileSync('go', ['build', '-o', BIN + path.sep, './cmd/...'], { cwd: path.join(HERE, 'loadgen'), stdio: 'inherit' });
  const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const dir = path.resolve(ROOT, opts.out ?? path.join('results', startedAt.replace(/:/g, '-')));
  mkdirSync(dir, { recursive: true });
  const results = {
    startedAt, options: opts, machine: machine(),
    wasm: { file: path.relative(ROOT, opts.wasm ?? WASM), bytes: statSync(opts.wasm ?? WASM).size, loadMs: null }, workloads: [],
  };
  log(`mode ${opts.mode}; writing to ${path.relative(ROOT, dir)}`);
  for (const name of opts.workloads) {
    await runWorkload(name, opts, results);
    writeFileSync(path.join(dir, 'results.json'), JSON.stringify(results, null, 2));
  }
  const loads = results.workloads.map((w) => w.startup.meltemi && w.startup.tcp_proxy ? w.startup.meltemi.medianMs - w.startup.tcp_proxy.medianMs : null).filter((x) => x != null);
  results.wasm.loadMs = median(loads);
  results.wallS = (performance.now() - t0) / 1000;
  writeFileSync(path.join(dir, 'results.json'), JSON.stringify(results, null, 2));
  const md = markdown(results);
  writeFileSync(path.join(dir, 'results.md'), `${md}\n`);
  charts(results, dir);
  if (opts.updateReadme) updateReadme(md, path.relative(ROOT, dir));
  process.stdout.write(`${md}\n\nresults: ${path.relative(ROOT, dir)}\n`);
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
