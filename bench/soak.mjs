#!/usr/bin/env node
// Soak: one Envoy (build/meltemi.wasm, two workers by default) with three Meltemi listeners
// (Thrift, Dubbo, Redis; test/e2e/lib/mixed-mesh.mjs) over real peers (npm thrift servers, Apache
// Dubbo 3.3.5 providers, redis-server), driven for N minutes by good clients (npm thrift clients,
// the real Dubbo consumer, a small RESP client checking every reply) and hostile ones (garbage,
// oversize frames, truncated frames, idle connections). Reports calls per protocol, errors on good
// clients (must be 0), Envoy RSS and each VM's wasm_memory_bytes at start, middle and end, how the
// hostile connections ended, and whether Envoy's downstream connections return to 0 once every
// client has closed.
//
//   node bench/soak.mjs [--minutes 10] [--concurrency 2] [--rate 300] [--json results/soak.json]
//
// --rate: calls per second per protocol for the good clients (paced; the machine is shared).
// Exit status 1 if a good client saw an error or connections stayed open.
import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEnvoy, waitFor, tcpExchange } from '../test/harness/index.mjs';
import { startThriftServer, thriftClient } from '../test/peers/thrift/index.mjs';
import { startProvider, runConsumer } from '../test/peers/dubbo/index.mjs';
import { startRedis } from '../test/e2e/lib/redis.mjs';
import { mixedBootstrap, PROTOCOLS } from '../test/e2e/lib/mixed-mesh.mjs';
import { thriftCall, activeDownstream } from '../test/e2e/lib/faults.mjs';

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '2' },
    rate: { type: 'string', default: '300' },
    json: { type: 'string' },
  },
});
const MINUTES = Number(opt.minutes);
const RATE = Number(opt.rate);
const durationMs = MINUTES * 60_000;

const cleanups = [];
const fakeT = { after: (fn) => cleanups.push(fn) }; // startRedis wants a node:test context
async function cleanup() {
  for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => {});
}
process.on('SIGINT', () => { cleanup().finally(() => process.exit(130)); });

const log = (...a) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);

// ---- peers and Envoy ----
log('starting peers');
const thrift = {};
for (const name of ['v1', 'v2']) {
  thrift[name] = await startThriftServer({ name, childProcess: true });
  cleanups.push(() => thrift[name].stop());
}
const dubbo = {};
await Promise.all(['v1', 'v2'].map(async (name) => {
  dubbo[name] = await startProvider({ name });
  cleanups.push(() => dubbo[name].stop());
}));
const r1 = await startRedis(fakeT);
const r2 = await startRedis(fakeT);
const ports = {
  thrift: { v1: thrift.v1.port, v2: thrift.v2.port },
  dubbo: { v1: dubbo.v1.port, v2: dubbo.v2.port },
  redis: { v1: r1.port, v2: r2.port },
};
const envoy = await startEnvoy({ config: mixedBootstrap({ ports }), concurrency: Number(opt.concurrency), logLevel: 'warning', componentLogLevel: 'wasm:warning' });
cleanups.push(() => envoy.stop());
const port = {};
for (const p of PROTOCOLS) port[p] = await envoy.listenerPort(p);
log(`envoy pid ${envoy.pid}, listeners ${JSON.stringify(port)}, ${MINUTES} min, ${RATE} calls/s per protocol`);

// ---- measurement ----
function cpuSeconds() {
  const f = readFileSync(`/proc/${envoy.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks (100/s)
}
function rssKiB() {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${envoy.pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
async function sample(label) {
  const m = await envoy.metrics();
  const s = { label, atS: Math.round((Date.now() - startedAt) / 1000), rssMiB: +(rssKiB() / 1024).toFixed(1), envoyCpuS: cpuSeconds(), wasmMemoryKiB: {} };
  for (const p of PROTOCOLS) s.wasmMemoryKiB[p] = (m.get(`${p}_wasm_memory_bytes`) ?? NaN) / 1024;
  s.activeDownstream = await activeDownstream(envoy);
  log(`${label}: RSS ${s.rssMiB} MiB, wasm_memory KiB ${JSON.stringify(s.wasmMemoryKiB)}, downstream active ${s.activeDownstream}`);
  return s;
}

let stopping = false;
const calls = { thrift: 0, dubbo: 0, redis: 0 };
const errors = { thrift: [], dubbo: [], redis: [] };
const connections = { thrift: 0, dubbo: 0, redis: 0 };
const goodError = (p, msg) => { if (errors[p].length < 20) log(`GOOD ${p} ERROR: ${msg}`); errors[p].push(msg); };

/** Paces a caller to `perSecond` calls a second. */
function pacer(perSecond) {
  const interval = 1000 / perSecond;
  let next = Date.now();
  return async () => {
    next += interval;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -1000) next = Date.now();
  };
}

// ---- good Thrift clients: 8 callers, a new connection every 300 calls ----
async function thriftCaller(i, perSecond) {
  const pace = pacer(perSecond);
  let k = 0;
  while (!stopping) {
    let c;
    try {
      c = await thriftClient({ port: port.thrift, timeout: 10_000 });
      connections.thrift++;
      for (let n = 0; n < 300 && !stopping; n++, k++) {
        if (k % 10 === 9) {
          const payload = `p${i}-${k}-`.padEnd(4096, 'x');
          const r = await c.echo(payload);
          if (r !== payload) goodError('thrift', `echo mismatch on caller ${i} call ${k}`);
        } else {
          const r = await c.sayHello(`c${i}-${k}`);
          if (!/^v[12]: hello /.test(r) || r.split(': hello ')[1] !== `c${i}-${k}`) goodError('thrift', `reply ${r} to c${i}-${k}`);
        }
        calls.thrift++;
        await pace();
      }
    } catch (err) {
      if (!stopping) goodError('thrift', `caller ${i}: ${err.message}`);
    } finally {
      await c?.close();
    }
  }
}

// ---- good Redis clients: a RESP client checking every reply; SET+GET pairs ----
function respConnection(p) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ port: p, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    const waiting = [];
    let closed = null;
    const parse = () => {
      while (waiting.length) {
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const head = buf.subarray(0, nl).toString();
        let value;
        let used;
        if (head[0] === '$') {
          const len = Number(head.slice(1));
          if (len < 0) { value = null; used = nl + 2; } else {
            if (buf.length < nl + 2 + len + 2) return;
            value = buf.subarray(nl + 2, nl + 2 + len).toString();
            used = nl + 2 + len + 2;
          }
        } else if (head[0] === '+' || head[0] === ':' || head[0] === '-') {
          value = head; used = nl + 2;
        } else {
          value = `?${head}`; used = nl + 2;
        }
        buf = buf.subarray(used);
        waiting.shift().resolve(value);
      }
    };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); parse(); });
    sock.on('close', () => {
      closed ??= new Error('connection closed');
      for (const w of waiting.splice(0)) w.reject(closed);
    });
    sock.on('error', (e) => { closed = e; });
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      const cmd = (...args) => new Promise((res, rej) => {
        if (closed) { rej(closed); return; }
        waiting.push({ resolve: res, reject: rej });
        sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
      });
      resolve({ cmd, close: () => sock.end() });
    });
  });
}

async function redisCaller(i, perSecond) {
  const pace = pacer(perSecond / 2); // a SET and a GET per step
  let k = 0;
  const prefix = i % 2 ? 'session:' : 'k:'; // half the connections on each route
  while (!stopping) {
    let c;
    try {
      c = await respConnection(port.redis);
      connections.redis++;
      for (let n = 0; n < 250 && !stopping; n++, k++) {
        const key = `${prefix}${i}:${k % 100}`;
        const val = `v${k}`.padEnd(k % 7 === 0 ? 2048 : 16, '.');
        const [set, get] = await Promise.all([c.cmd('SET', key, val), c.cmd('GET', key)]);
        if (set !== '+OK') goodError('redis', `SET ${key}: ${set}`);
        if (get !== val) goodError('redis', `GET ${key}: ${String(get).slice(0, 40)}`);
        calls.redis += 2;
        await pace();
      }
    } catch (err) {
      if (!stopping) goodError('redis', `caller ${i}: ${err.message}`);
    } finally {
      c?.close();
    }
  }
}

// ---- good Dubbo clients: the real consumer, one JVM at a time, ~1 minute each ----
async function dubboRunner(perSecond) {
  const url = `dubbo://127.0.0.1:${port.dubbo}`;
  const perRound = Math.max(1, Math.round(perSecond)); // a batch, then idle ~1 s
  while (!stopping) {
    const left = durationMs - (Date.now() - startedAt);
    const rounds = Math.max(1, Math.min(60, Math.floor(left / 1000) - 3));
    if (left < 8000) break;
    try {
      const sum = await runConsumer({
        url, method: 'sayHello,echo', arg: 'call-{i}', async: true, calls: perRound, concurrency: 8, connections: 4,
        rounds, idleMs: 1000, summary: true,
      }, { timeoutMs: rounds * 1000 + 120_000 });
      calls.dubbo += sum.ok;
      connections.dubbo += 4;
      if (sum.errors || sum.mismatches || sum.ok !== sum.calls) goodError('dubbo', `consumer: ${sum.ok}/${sum.calls} ok, ${sum.errors} errors, ${sum.mismatches} mismatches`);
    } catch (err) {
      if (!stopping) goodError('dubbo', err.message.slice(0, 400));
    }
  }
}

// ---- hostile clients ----
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
const dubboHeader = (len) => Buffer.concat([Buffer.from([0xda, 0xbb, 0xc2, 0x00]), Buffer.alloc(8, 1), u32(len)]);
const goodFrame = {
  thrift: thriftCall('sayHello', 'hostile', 7),
  dubbo: Buffer.concat([dubboHeader(40), Buffer.alloc(40, 0x05)]), // only its first 20 bytes are sent
  redis: Buffer.from('*3\r\n$3\r\nSET\r\n$6\r\nhostil\r\n$10\r\n0123456789\r\n'),
};
const HOSTILE = {
  // (An HTTP request line is a valid Redis inline command: Redis gets a bad multibulk count.)
  garbage: (p) => Buffer.from(p === 'redis' ? '*x1\r\n$3\r\nGET\r\n' : 'GET / HTTP/1.1\r\nHost: soak\r\n\r\n'),
  oversize: (p) => (p === 'thrift' ? Buffer.concat([u32(0x7fffffff), Buffer.from([0x80, 0x01, 0x00, 0x01])])
    : p === 'dubbo' ? dubboHeader(0x7ffffff0)
      : Buffer.from('*1\r\n$2000000000\r\n')),
  truncated: (p) => goodFrame[p].subarray(0, 20),
};
const hostile = {}; // kind → {tries, closedByEnvoy, notClosed}
const bump = (kind, field) => { hostile[kind] ??= { tries: 0, closedByEnvoy: 0, notClosed: 0 }; hostile[kind][field]++; };

async function hostileLoop() {
  let n = 0;
  while (!stopping) {
    const p = PROTOCOLS[n % 3];
    const kinds = ['garbage', 'oversize', 'truncated'];
    const kind = kinds[Math.floor(n / 3) % 3];
    n++;
    bump(`${kind}`, 'tries');
    // truncated: the client sends part of a frame, then ends its side.
    const r = await tcpExchange({ port: port[p], data: HOSTILE[kind](p), endAfterWrite: kind === 'truncated', timeout: 6000 }).catch((e) => ({ error: e }));
    if (r.closedByPeer) bump(kind, 'closedByEnvoy'); else bump(kind, 'notClosed');
    await sleep(100);
  }
}

async function idleLoop() {
  let n = 0;
  while (!stopping) {
    const p = PROTOCOLS[n++ % 3];
    bump('idle', 'tries');
    // Connects and sends nothing: Meltemi closes it after firstRequestTimeoutMs (3 s here).
    const r = await tcpExchange({ port: port[p], data: [], timeout: 8000 }).catch((e) => ({ error: e }));
    if (r.closedByPeer) bump('idle', 'closedByEnvoy'); else bump('idle', 'notClosed');
  }
}

// ---- run ----
const startedAt = Date.now();
const tasks = [];
const thriftCallers = 8;
const redisCallers = 4;
for (let i = 0; i < thriftCallers; i++) tasks.push(thriftCaller(i, RATE / thriftCallers));
for (let i = 0; i < redisCallers; i++) tasks.push(redisCaller(i, RATE / redisCallers));
tasks.push(dubboRunner(RATE));
tasks.push(hostileLoop(), hostileLoop());
for (let i = 0; i < 4; i++) tasks.push(idleLoop());

await sleep(Math.min(15_000, durationMs / 10));
const samples = [await sample('start')];
await sleep(Math.max(0, startedAt + durationMs / 2 - Date.now()));
samples.push(await sample('middle'));
let lastLog = Date.now();
while (Date.now() < startedAt + durationMs - 1000) {
  await sleep(Math.min(30_000, startedAt + durationMs - 1000 - Date.now()));
  if (Date.now() - lastLog > 25_000) { lastLog = Date.now(); log(`calls ${JSON.stringify(calls)}, good errors ${PROTOCOLS.map((p) => errors[p].length).join('/')}`); }
}
samples.push(await sample('end'));
stopping = true;
log('stopping clients');
await Promise.all(tasks);
const closedAt = Date.now();
let drainedMs = null;
try {
  await waitFor(async () => (await activeDownstream(envoy)) === 0, { timeout: 10_000 });
  drainedMs = Date.now() - closedAt;
} catch { /* reported below */ }
const stuck = await activeDownstream(envoy);
const st = await envoy.stats();
const scrape = await envoy.metrics();
const meltemi = {};
for (const p of PROTOCOLS) {
  meltemi[p] = {};
  for (const k of ['decode_error', 'frame_too_large', 'truncated', 'first_request_timeout', 'unmatched_response', 'active_requests', 'connections']) {
    meltemi[p][k] = scrape.get(k === 'active_requests' ? `${p}_${k}` : `${p}_${k}_total`) ?? 0;
  }
}
const workers = Object.fromEntries(PROTOCOLS.map((p) => [p, [0, 1].map((w) => st.get(`listener.${p}.worker_${w}.downstream_cx_total`) ?? 0)]));
await cleanup();

const report = {
  minutes: MINUTES, concurrency: Number(opt.concurrency), ratePerProtocol: RATE,
  envoy: '1.40 (.venv/bin/envoy)', calls, goodErrors: Object.fromEntries(PROTOCOLS.map((p) => [p, errors[p].length])),
  goodConnections: connections, hostile, samples, stuckConnections: stuck, drainedMs, meltemi, workers,
};
const errorTotal = PROTOCOLS.reduce((n, p) => n + errors[p].length, 0);
const md = [
  `| | Thrift | Dubbo | Redis |`,
  `|---|---|---|---|`,
  `| good calls | ${calls.thrift} | ${calls.dubbo} | ${calls.redis} |`,
  `| errors on good clients | ${errors.thrift.length} | ${errors.dubbo.length} | ${errors.redis.length} |`,
  `| good connections opened | ${connections.thrift} | ${connections.dubbo} | ${connections.redis} |`,
  ...samples.map((s) => `| wasm_memory_bytes at ${s.label} (${s.atS} s) | ${PROTOCOLS.map((p) => `${s.wasmMemoryKiB[p]} KiB`).join(' | ')} |`),
  `| decode_error / frame_too_large / truncated / first_request_timeout | ${PROTOCOLS.map((p) => `${meltemi[p].decode_error} / ${meltemi[p].frame_too_large} / ${meltemi[p].truncated} / ${meltemi[p].first_request_timeout}`).join(' | ')} |`,
  `| unmatched_response | ${PROTOCOLS.map((p) => meltemi[p].unmatched_response).join(' | ')} |`,
  `| connections per worker (0 / 1) | ${PROTOCOLS.map((p) => workers[p].join(' / ')).join(' | ')} |`,
  '',
  `Envoy RSS: ${samples.map((s) => `${s.rssMiB} MiB at ${s.label} (${s.atS} s)`).join(', ')}. ` +
    `Envoy CPU (user + system) between the start and end samples: ${(samples.at(-1).envoyCpuS - samples[0].envoyCpuS).toFixed(1)} s over ${samples.at(-1).atS - samples[0].atS} s.`,
  `Hostile connections: ${Object.entries(hostile).map(([k, v]) => `${k} ${v.tries} (closed by Envoy ${v.closedByEnvoy}, not closed ${v.notClosed})`).join('; ')}.`,
  `After every client closed: ${stuck} downstream connections open` + (drainedMs !== null ? ` (0 reached ${drainedMs} ms after the last client closed).` : ' after 10 s (STUCK).'),
].join('\n');
console.log(md);
if (opt.json) {
  mkdirSync(path.dirname(opt.json), { recursive: true });
  writeFileSync(opt.json, JSON.stringify({ ...report, errorSamples: Object.fromEntries(PROTOCOLS.map((p) => [p, errors[p].slice(0, 20)])) }, null, 2));
}
process.exit(errorTotal === 0 && stuck === 0 ? 0 : 1);
