#!/usr/bin/env node
// The filter's per-request work alone: build/meltemi.wasm driven by a minimal proxy-wasm host in
// Node (test/harness/wasm-host.mjs; V8, the same engine as Envoy's Wasm runtime), one
// per-connection connection fed pipelined requests and their replies in a loop. No Envoy, no
// sockets: what is left is the filter's own cost and the host calls it makes, counted per request.
// For A/B work on the hot path (issue 13) and to profile it (`node --cpu-prof bench/micro.mjs
// --wasm build/meltemi.names.wasm`); the end-to-end figures that count are `make bench`'s.
//
//   node bench/micro.mjs [--wasm FILE] [--baseline-wasm FILE] [--workload redis|redis-policies|thrift|dubbo]
//        [--payload BYTES] [--depth N] [--conns N] [--requests N] [--repeats N] [--access-log]
//
// --conns N feeds N connections in turn, each round every connection's requests and then every
// connection's replies, so other requests are in flight while one is answered (counts are then
// held in the VM, as under load in Envoy: assembly/stats.ts settle). With --baseline-wasm, the two builds run alternately --repeats times (each in a fresh instance)
// and the median of the per-pair ratios is printed: drift on a busy machine hits both alike.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeThriftCall, encodeThriftReply, encodeDubboRequest, encodeDubboResponse } from './micro-frames.mjs';
import { WasmHost, BUFFER } from '../test/harness/wasm-host.mjs';
import { alternate } from './alternate.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const o = { wasm: path.join(ROOT, 'build/meltemi.wasm'), workload: 'redis', payload: 16, depth: 4, conns: 1, requests: 400_000, repeats: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--wasm') o.wasm = path.resolve(next());
    else if (a === '--baseline-wasm') o.baseline = path.resolve(next());
    else if (a === '--workload') o.workload = next();
    else if (a === '--payload') o.payload = Number(next());
    else if (a === '--depth') o.depth = Number(next());
    else if (a === '--conns') o.conns = Number(next());
    else if (a === '--requests') o.requests = Number(next());
    else if (a === '--repeats') o.repeats = Number(next());
    else if (a === '--access-log') o.accessLog = true;   // the workload's config with "accessLog": true
    else { console.error(`micro: unknown argument ${a}`); process.exit(2); }
  }
  return o;
}

// ---- the workloads: a plugin config, one read of `depth` requests, one read of their replies ----

const GREET = 'dev.meltemi.demo.GreetService';
/** The policies of the *-policies workloads: default-deny with one rule letting `key` matching `match` through, and a bucket that never runs dry. */
const ALLOW = (key, match) => ({
  authorization: { defaultAction: 'DENY', rules: [{ name: 'allow', action: 'ALLOW', match: { attributes: { [key]: match } } }] },
  localRateLimit: { tokenBucket: { maxTokens: 1e9, tokensPerFill: 1e9, fillIntervalMs: 1000 } },
});

function workload(name, payload, depth) {
  const value = 'x'.repeat(payload);
  if (name.startsWith('redis')) {
    const kv = { name: 'kv', match: { attributes: { command: { regex: 'GET|SET' } } }, route: [{ cluster: 'backend' }], ...(name === 'redis-policies' ? ALLOW('command', { regex: 'GET|SET' }) : {}) };
    const bulk = (s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
    const cmds = []; const replies = [];
    for (let i = 0; i < depth; i++) {
      if (i % 2 === 0) { cmds.push(`*3\r\n${bulk('SET')}${bulk(`key:${i}`)}${bulk(value)}`); replies.push('+OK\r\n'); }
      else { cmds.push(`*2\r\n${bulk('GET')}${bulk(`key:${i - 1}`)}`); replies.push(bulk(value)); }
    }
    return { config: { codec: 'redis', routes: [kv, { name: 'rest', route: [{ cluster: 'backend' }] }] }, requests: (n) => Buffer.from(cmds.join('')), replies: () => Buffer.from(replies.join('')) };
  }
  if (name.startsWith('thrift')) {
    const route = { name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'backend' }], ...(name === 'thrift-policies' ? ALLOW('method', { exact: 'echo' }) : {}) };
    return {
      config: { codec: 'thrift', routes: [route] },
      requests: (seq) => Buffer.concat(Array.from({ length: depth }, (_, i) => encodeThriftCall('echo', seq + i, value))),
      replies: (seq) => Buffer.concat(Array.from({ length: depth }, (_, i) => encodeThriftReply('echo', seq + i, value))),
    };
  }
  if (name.startsWith('dubbo')) {
    const route = { name: 'hello', match: { attributes: { interface: { exact: GREET }, method: { exact: 'sayHello' } } }, route: [{ cluster: 'backend' }], ...(name === 'dubbo-policies' ? ALLOW('method', { exact: 'sayHello' }) : {}) };
    return {
      config: { codec: 'dubbo', routes: [route] },
      requests: (seq) => Buffer.concat(Array.from({ length: depth }, (_, i) => encodeDubboRequest(seq + i))),
      replies: (seq) => Buffer.concat(Array.from({ length: depth }, (_, i) => encodeDubboResponse(seq + i))),
    };
  }
  throw new Error(`micro: unknown workload ${name}`);
}

// ---- the host (test/harness/wasm-host.mjs) ----

/** The host with the bench's checks: every read passes whole, nothing pauses the connection. */
class Host extends WasmHost {
  data(type, bytes, context) {
    const out = this.feed(type, bytes, context);
    if (this.status !== 0) throw new Error(`micro: the filter paused the connection (${this.logs.join('; ')})`);
    if (!out.equals(bytes)) throw new Error(`micro: the filter changed the bytes (${out.length} B out for ${bytes.length} B in): ${this.logs.join('; ')}`);
  }
}

function run(wasmPath, o) {
  const w = workload(o.workload, o.payload, o.depth);
  const host = new Host(wasmPath, o.accessLog ? { ...w.config, accessLog: true } : w.config);
  const rounds = Math.ceil(o.requests / (o.depth * o.conns));
  // Frames are built once (Thrift/Dubbo ids cycle over a window): the loop measures the filter.
  const window = 64;
  const reqs = []; const reps = [];
  for (let k = 0; k < window; k++) { reqs.push(w.requests(1 + k * o.depth)); reps.push(w.replies(1 + k * o.depth)); }
  const contexts = [undefined];
  for (let c = 1; c < o.conns; c++) contexts.push(host.openConnection(100 + c));
  const round = (k) => {
    for (const c of contexts) host.data(BUFFER.DownstreamData, reqs[k % window], c);
    for (const c of contexts) host.data(BUFFER.UpstreamData, reps[k % window], c);
  };
  for (let k = 0; k < Math.min(rounds, 2000); k++) round(k); // warm-up: tier-up, first-use metrics
  host.calls.clear();
  // Each round (one read of requests, one of replies) is timed too: a stall inside the filter (a
  // collection in the VM, a slow path) would show in the tail of these, not in the mean.
  const perRound = new Float64Array(rounds);
  const t0 = process.hrtime.bigint();
  let last = t0;
  for (let k = 0; k < rounds; k++) {
    round(k);
    const now = process.hrtime.bigint();
    perRound[k] = Number(now - last);
    last = now;
  }
  const ns = Number(last - t0);
  perRound.sort();
  const q = (p) => perRound[Math.min(rounds - 1, Math.floor(p * rounds))] / 1000;
  const tail = { p50: q(0.5), p99: q(0.99), p999: q(0.999), max: perRound[rounds - 1] / 1000 };
  const requests = rounds * o.depth * o.conns;
  const calls = [...host.calls].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name.replace(/^proxy_/, '')} ${(n / requests).toFixed(2)}`);
  return { tail, time: ns / requests, nsPerRequest: ns / requests, hostCallsPerRequest: [...host.calls.values()].reduce((a, b) => a + b, 0) / requests, calls, memoryBytes: host.exports.memory.buffer.byteLength };
}

const o = parseArgs(process.argv.slice(2));
const show = (label, r) => console.log(`${label}: ${r.nsPerRequest.toFixed(0)} ns/request, ${r.hostCallsPerRequest.toFixed(2)} host calls/request (${r.calls.join(', ')}), memory ${(r.memoryBytes / 1024).toFixed(0)} KiB; per round (${o.depth * o.conns} requests + replies) p50 ${r.tail.p50.toFixed(1)} µs, p99 ${r.tail.p99.toFixed(1)}, p99.9 ${r.tail.p999.toFixed(1)}, max ${r.tail.max.toFixed(0)} µs`);
console.log(`micro: ${o.workload}, ${o.payload} B, depth ${o.depth}, ${o.conns} connection(s), ${o.requests} requests${o.baseline ? `, ${o.repeats} alternations` : ''}`);
alternate((wasm) => run(wasm, o), o, show, ROOT, 'request');
