#!/usr/bin/env node
// Per-request mode's two Wasm roles alone, in Node's V8 with the real .wasm behind the minimal
// proxy-wasm host (test/harness/wasm-host.mjs): what each role's own code costs per Thrift call,
// apart from Envoy's side of the path (bench/hcm-floor.mjs) and the whole of it (`make bench`,
// path meltemi_per_request). For A/B work on the roles and to profile them (`node --cpu-prof`).
//
//   node bench/micro-roles.mjs [--role client|server] [--wasm FILE] [--baseline-wasm FILE]
//        [--payload BYTES] [--depth N] [--requests N] [--repeats N]
//
// client: the role in front of HCM. Each round is one read of `depth` Thrift calls from the client
// (the role writes them to HCM as HTTP/2 streams) and one read of HCM's answers (HEADERS :status
// 200 and DATA with the reply frame per stream), which the role turns back into the replies.
// server: the role in the internal listener. Each round is one HTTP/1.1 request as Envoy's router
// writes it (the router sends one call at a time on a connection) and the server's reply frame.
// Every round's output is checked: the calls reach HCM as streams, the replies reach the client whole.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeThriftCall, encodeThriftReply, h2frame } from './micro-frames.mjs';
import { WasmHost, BUFFER } from '../test/harness/wasm-host.mjs';
import { alternate } from './alternate.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const o = { role: 'client', wasm: path.join(ROOT, 'build/meltemi.wasm'), baseline: null, payload: 16, depth: 4, requests: 200_000, repeats: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--role') o.role = next();
    else if (a === '--wasm') o.wasm = path.resolve(next());
    else if (a === '--baseline-wasm') o.baseline = path.resolve(next());
    else if (a === '--payload') o.payload = Number(next());
    else if (a === '--depth') o.depth = Number(next());
    else if (a === '--requests') o.requests = Number(next());
    else if (a === '--repeats') o.repeats = Number(next());
    else { console.error(`micro-roles: unknown argument ${a}`); process.exit(2); }
  }
  if (o.role === 'server') o.depth = 1;
  return o;
}

const PLUGIN = { codec: 'thrift', mode: 'perRequest', routes: [{ name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'backend' }] }] };

// ---- HTTP/2 frames as HCM writes them ----

const DATA = 0; const HEADERS = 1; const SETTINGS = 4;
const END_STREAM = 0x1; const END_HEADERS = 0x4; const ACK = 0x1;
const WINDOW_UPDATE = 8;
const SETTINGS_MAX_CONCURRENT_STREAMS = 3; const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const settings = (pairs) => Buffer.concat(pairs.map(([id, v]) => { const b = Buffer.alloc(6); b.writeUInt16BE(id, 0); b.writeUInt32BE(v, 2); return b; }));
const windowUpdate = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n, 0); return h2frame(WINDOW_UPDATE, 0, 0, b); };
/** `:status 200` is entry 8 of HPACK's static table: one byte. */
const STATUS_200 = Buffer.from([0x88]);

/** HCM's answer to stream `stream`: 200 and the reply frame as its body. */
const h2Answer = (stream, reply) => Buffer.concat([h2frame(HEADERS, END_HEADERS, stream, STATUS_200), h2frame(DATA, END_STREAM, stream, reply)]);

// ---- the runs ----

class RoleHost extends WasmHost {
  read(type, bytes) {
    const out = this.feed(type, bytes);
    if (this.logs.length > 0) throw new Error(`micro-roles: the role logged: ${this.logs.join('; ')}`);
    return out;
  }
}

function runClient(wasmPath, o) {
  const host = new RoleHost(wasmPath, { ...PLUGIN, role: 'client' });
  const value = 'x'.repeat(o.payload);
  const window = 64;
  const calls = []; const replies = [];
  for (let k = 0; k < window; k++) {
    calls.push(Buffer.concat(Array.from({ length: o.depth }, (_, i) => encodeThriftCall('echo', 1 + k * o.depth + i, value))));
    replies.push(Array.from({ length: o.depth }, (_, i) => encodeThriftReply('echo', 1 + k * o.depth + i, value)));
  }
  // HCM's SETTINGS as per-request mode configures it (connectionManager in
  // controller/src/per-request.mts), its acknowledgement of the role's, and its connection window.
  host.read(BUFFER.UpstreamData, Buffer.concat([
    h2frame(SETTINGS, 0, 0, settings([[SETTINGS_MAX_CONCURRENT_STREAMS, 1024], [SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20]])),
    h2frame(SETTINGS, ACK, 0, Buffer.alloc(0)),
    windowUpdate(24 << 20),
  ]));
  let stream = 1;
  let sent = 0;
  const round = (k, check) => {
    const toHcm = host.read(BUFFER.DownstreamData, calls[k % window]);
    if (check && toHcm.length <= calls[k % window].length) throw new Error(`micro-roles: ${toHcm.length} B to HCM for ${calls[k % window].length} B of calls`);
    sent += calls[k % window].length;
    const parts = replies[k % window].map((r, i) => h2Answer(stream + 2 * i, r));
    // HCM gives the connection window back as it reads (here once a megabyte has come).
    if (sent >= 1 << 20) { parts.push(windowUpdate(sent)); sent = 0; }
    const answers = Buffer.concat(parts);
    stream += 2 * o.depth;
    const toClient = host.read(BUFFER.UpstreamData, answers);
    if (check && !toClient.equals(Buffer.concat(replies[k % window]))) throw new Error(`micro-roles: the client got ${toClient.length} B, not its ${o.depth} replies`);
  };
  return timed(host, o, round);
}

function runServer(wasmPath, o) {
  const host = new RoleHost(wasmPath, { ...PLUGIN, role: 'server' });
  const value = 'x'.repeat(o.payload);
  const window = 64;
  const requests = []; const calls = []; const replies = [];
  for (let k = 0; k < window; k++) {
    const call = encodeThriftCall('echo', 1 + k, value);
    calls.push(call);
    replies.push(encodeThriftReply('echo', 1 + k, value));
    // What Envoy's router writes: the client role's headers, the route table's two, x-forwarded-proto.
    const head = 'POST /-/echo HTTP/1.1\r\nhost: meltemi\r\nmethod: echo\r\ncontent-length: ' + call.length +
      '\r\nx-forwarded-proto: http\r\nx-meltemi-route: echo\r\nx-meltemi-cluster: backend\r\n\r\n';
    requests.push(Buffer.concat([Buffer.from(head), call]));
  }
  const round = (k, check) => {
    const toServer = host.read(BUFFER.DownstreamData, requests[k % window]);
    if (check && !toServer.equals(calls[k % window])) throw new Error(`micro-roles: the server got ${toServer.length} B, not the call's ${calls[k % window].length}`);
    const toRouter = host.read(BUFFER.UpstreamData, replies[k % window]);
    if (check && !toRouter.subarray(0, 12).equals(Buffer.from('HTTP/1.1 200'))) throw new Error(`micro-roles: the router got ${toRouter.subarray(0, 40)}`);
  };
  return timed(host, o, round);
}

function timed(host, o, round) {
  const rounds = Math.ceil(o.requests / o.depth);
  for (let k = 0; k < Math.min(rounds, 2000); k++) round(k, true); // warm-up and checks
  host.calls.clear();
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < rounds; k++) round(k, (k & 1023) === 0);
  const ns = Number(process.hrtime.bigint() - t0);
  const requests = rounds * o.depth;
  const calls = [...host.calls].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name.replace(/^proxy_/, '')} ${(n / requests).toFixed(2)}`);
  return { time: ns / requests, nsPerCall: ns / requests, hostCallsPerCall: [...host.calls.values()].reduce((a, b) => a + b, 0) / requests, calls };
}

const o = parseArgs(process.argv.slice(2));
const run = o.role === 'server' ? runServer : runClient;
const show = (label, r) => console.log(`${label}: ${r.nsPerCall.toFixed(0)} ns/call, ${r.hostCallsPerCall.toFixed(2)} host calls/call (${r.calls.join(', ')})`);
console.log(`micro-roles: ${o.role} role, Thrift, ${o.payload} B, depth ${o.depth}, ${o.requests} calls${o.baseline ? `, ${o.repeats} alternations` : ''}`);
alternate((wasm) => run(wasm, o), o, show, ROOT, 'call');
