#!/usr/bin/env node
// Fuzzes the codecs in the real Wasm build: mutated frames through the same decode, mutate and
// error-reply paths the filter runs (assembly/fuzz.ts, compiled with asconfig.json's release
// settings into build/fuzz.wasm), counting traps per codec. A trap is an AssemblyScript abort or a
// Wasm runtime error (out-of-bounds access, unreachable, stack overflow): in Envoy, the VM would
// die. A "bad output" is a frame Meltemi produced (mutated request, probe, error reply) that a
// fresh codec does not read back as one whole frame.
//
//   node test/fuzz/run.mjs [--frames N] [--codecs thrift,dubbo,redis] [--seed S]
//
// Seeds are real captured frames: Thrift from the npm `thrift` encoder
// (test/unit/fixtures/thrift.ts), Dubbo from Apache Dubbo 3.3.5 (test/fixtures/dubbo/*.hex), Redis
// from redis-server 7.0 (test/fuzz/corpus/redis.json); plus deeply nested messages built here.
// Mutations: bit flips, byte overwrites, truncations, splices and pipelines of seeds, hostile
// length fields (with and without fixing up the frame's own length), inserted, deleted and
// repeated ranges. Each input is also read in random chunks (1-byte reads included), with a
// random maxFrameBytes and codec options. Exit status 1 on any trap or bad output; crashing inputs
// are written to build/fuzz-crashes/.
import { readFileSync, readdirSync, statSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const WASM = path.join(root, 'build/fuzz.wasm');
export const CODECS = ['thrift', 'dubbo', 'redis']; // indices as in assembly/codecs/registry.ts
const DEFAULT_MAX_FRAME = 4 << 20;

// ---- the module ----

function newestSource(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Builds build/fuzz.wasm when it is missing or older than assembly/ or asconfig.json. */
export function ensureBuilt() {
  const stale = !existsSync(WASM)
    || statSync(WASM).mtimeMs < Math.max(newestSource(path.join(root, 'assembly')), statSync(path.join(root, 'asconfig.json')).mtimeMs);
  if (!stale) return;
  execFileSync(path.join(root, 'node_modules/.bin/asc'),
    ['assembly/fuzz.ts', '--config', 'asconfig.json', '--target', 'release', '--outFile', 'build/fuzz.wasm'],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

class Abort extends Error {}

async function instantiate(module) {
  let memory;
  const str = (ptr) => {
    if (!ptr || !memory) return '';
    const u16 = new Uint16Array(memory.buffer);
    const len = new Uint32Array(memory.buffer)[(ptr - 4) >>> 2] >>> 1;
    return String.fromCharCode(...u16.subarray(ptr >>> 1, (ptr >>> 1) + Math.min(len, 2000)));
  };
  const env = {
    abort(msg, file, line, col) { throw new Abort(`abort: ${str(msg)} at ${str(file)}:${line}:${col}`); },
  };
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module !== 'env' || imp.kind !== 'function' || env[imp.name]) continue;
    env[imp.name] = () => 0; // no host calls are expected on these paths; a stub keeps them harmless
  }
  const instance = await WebAssembly.instantiate(module, { env });
  memory = instance.exports.memory;
  instance.exports._initialize(); // asconfig.json's exportStart: what Envoy calls first, too
  return { exports: instance.exports, str };
}

/** Both kinds of trap must be caught as traps, or a run's "0 traps" would mean nothing. */
async function selfCheck(module, vm) {
  for (const [kind, type] of [[0, Abort], [1, WebAssembly.RuntimeError]]) {
    let caught = null;
    try { vm.exports.selfCheck(kind); } catch (err) { caught = err; }
    if (!(caught instanceof type)) throw new Error(`fuzz self check ${kind}: expected a ${type.name}, got ${caught}`);
    vm = await instantiate(module);
  }
  return vm;
}

// ---- seeds ----

const hex = (s) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function thriftSeeds() {
  const text = readFileSync(path.join(root, 'test/unit/fixtures/thrift.ts'), 'utf8');
  const requests = [];
  const responses = [];
  for (const [, name, h] of text.matchAll(/export const (\w+) = "([0-9a-f]+)"/g)) {
    (/REPLY|EXCEPTION/.test(name) ? responses : requests).push(hex(h));
  }
  for (const depth of [8, 63, 64, 65, 129, 4000]) {
    for (const compact of [false, true]) {
      for (const framed of [false, true]) {
        requests.push(thriftNested(depth, compact, framed, 'struct'));
        requests.push(thriftNested(depth, compact, framed, 'list'));
        responses.push(thriftNested(depth, compact, framed, 'struct', 2));
      }
    }
  }
  return { requests, responses };
}

/** A call (type 1) or reply (2) whose first argument nests `depth` structs or lists. */
function thriftNested(depth, compact, framed, kind, type = 1) {
  const name = Buffer.from('echo');
  const parts = [];
  if (compact) {
    parts.push(Buffer.from([0x82, (type << 5) | 1, 0x07, name.length]), name);
    if (kind === 'struct') {
      parts.push(Buffer.alloc(depth, 0x1c)); // field delta 1, type struct
      parts.push(Buffer.alloc(depth + 1, 0x00)); // stops
    } else {
      parts.push(Buffer.from([0x19])); // field 1, list
      parts.push(Buffer.alloc(depth, 0x19)); // list header: 1 element of type list
      parts.push(Buffer.from([0x15, 0x02, 0x00])); // innermost: 1 i32 (zigzag 1), then stop
    }
  } else {
    parts.push(Buffer.from([0x80, 0x01, 0x00, type]), u32(name.length), name, u32(7));
    if (kind === 'struct') {
      for (let i = 0; i < depth; i++) parts.push(Buffer.from([0x0c, 0x00, 0x01]));
      parts.push(Buffer.alloc(depth + 1, 0x00));
    } else {
      parts.push(Buffer.from([0x0f, 0x00, 0x01]));
      for (let i = 0; i < depth; i++) parts.push(Buffer.from([0x0f]), u32(1));
      parts.push(Buffer.from([0x08]), u32(1), u32(42), Buffer.from([0x00]));
    }
  }
  const body = Buffer.concat(parts);
  return framed ? Buffer.concat([u32(body.length), body]) : body;
}

function dubboSeeds() {
  const dir = path.join(root, 'test/fixtures/dubbo');
  const requests = [];
  const responses = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.hex')).sort()) {
    const bytes = hex(readFileSync(path.join(dir, f), 'utf8'));
    // event-readonly travels provider to consumer, like responses.
    (f.startsWith('request') || f === 'heartbeat-request.hex' || f === 'stream-pipelined-requests.hex' ? requests : responses).push(bytes);
  }
  const template = requests.find((b) => b.length < 1000) ?? requests[0];
  for (const depth of [8, 32, 64, 65, 200, 4000]) {
    requests.push(dubboNested(template, depth, 0x57)); // untyped list 'W' ... 'Z'
    requests.push(dubboNested(template, depth, 0x48)); // untyped map 'H' ... 'Z' (key N each level)
  }
  return { requests, responses };
}

/** A Dubbo request header with a hessian2 body nesting `depth` lists or maps, then a string. */
function dubboNested(template, depth, open) {
  const str = (s) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]); // short string (< 32)
  const parts = [str('2.0.2'), str('dev.meltemi.demo.GreetService'), str('1.0.0'), str('sayHello'), str('Ljava/lang/String;')];
  for (let i = 0; i < depth; i++) parts.push(open === 0x48 ? Buffer.from([0x48, 0x4e]) : Buffer.from([0x57]));
  parts.push(str('x'));
  parts.push(Buffer.alloc(depth, 0x5a));
  parts.push(Buffer.from([0x48]), str('path'), str('dev.meltemi.demo.GreetService'), Buffer.from([0x5a]));
  const body = Buffer.concat(parts);
  const head = Buffer.from(template.subarray(0, 16));
  head.writeUInt32BE(body.length, 12);
  return Buffer.concat([head, body]);
}

function redisSeeds() {
  const { pairs } = JSON.parse(readFileSync(path.join(here, 'corpus/redis.json'), 'utf8'));
  const requests = pairs.map((p) => hex(p.request)).filter((b) => b.length);
  const responses = pairs.map((p) => hex(p.reply)).filter((b) => b.length);
  for (const depth of [8, 64, 127, 128, 129, 1000, 20000]) {
    for (const open of ['*1', '%1', '~1', '>1', '|1']) {
      const inner = open === '%1' ? ':1\r\n' : open === '|1' ? '+a\r\n' : '';
      responses.push(Buffer.from(`${`${open}\r\n${inner}`.repeat(depth)}+deep\r\n`));
    }
    requests.push(Buffer.from(`${'*1\r\n'.repeat(depth)}$4\r\nPING\r\n`));
  }
  return { requests, responses };
}

/** The seed frames of `codec` ({requests, responses}), as the codec fuzzer uses them. */
export function seedsOf(codec) {
  return { thrift: thriftSeeds, dubbo: dubboSeeds, redis: redisSeeds }[codec]();
}

// ---- mutation ----

/** mulberry32: a small seeded generator, so that a run can be repeated. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return { next, int, pick: (arr) => arr[int(arr.length)], chance: (p) => next() < p };
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

const HOSTILE_U32 = [0, 1, 2, 3, 4, 15, 16, 17, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x10000, 0x3fffff, 0x400000, 0x400001, 0x7ffffffc, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff];
const HOSTILE_DECIMAL = ['-1', '-2', '0', '1', '2147483647', '2147483648', '4294967296', '9223372036854775807', '99999999999999999999', '1048576', '1048577', '4194304', '+1', ' 1', '1a', ''];
const INTERESTING_BYTES = [0x00, 0x01, 0x0a, 0x0d, 0x1f, 0x20, 0x3f, 0x4e, 0x57, 0x48, 0x5a, 0x7f, 0x80, 0x81, 0xbf, 0xc0, 0xe0, 0xf0, 0xfe, 0xff];

function mutateOnce(r, buf, codec, pool) {
  if (buf.length === 0) return Buffer.from(r.pick(pool));
  const b = Buffer.from(buf);
  switch (r.int(10)) {
    case 0: { // flip bits
      for (let k = 1 + r.int(4); k > 0; k--) b[r.int(b.length)] ^= 1 << r.int(8);
      return b;
    }
    case 1: { // overwrite bytes with interesting values
      for (let k = 1 + r.int(3); k > 0; k--) b[r.int(b.length)] = r.chance(0.7) ? r.pick(INTERESTING_BYTES) : r.int(256);
      return b;
    }
    case 2: // truncate
      return b.subarray(0, r.int(b.length));
    case 3: { // hostile 32-bit length at a random or a meaningful offset
      if (b.length < 4) return b;
      const offsets = codec === 'dubbo' ? [12, 16, 17] : [0, 4, 8];
      const at = r.chance(0.5) ? Math.min(r.pick(offsets), b.length - 4) : r.int(b.length - 3);
      const v = r.chance(0.8) ? r.pick(HOSTILE_U32) : r.int(0x100000000);
      (r.chance(0.85) ? b.writeUInt32BE(v >>> 0, at) : b.writeUInt32LE(v >>> 0, at));
      return b;
    }
    case 4: { // hostile decimal after a RESP type byte, or a hostile varint (compact, hessian lengths)
      if (codec === 'redis') {
        const s = b.toString('latin1');
        const marks = [...s.matchAll(/[*$%~>|=!(,:#_]([^\r\n]*)\r\n/g)];
        if (!marks.length) return b;
        const m = r.pick(marks);
        const start = m.index + 1;
        return Buffer.concat([b.subarray(0, start), Buffer.from(r.pick(HOSTILE_DECIMAL)), b.subarray(start + m[1].length)]);
      }
      const at = r.int(b.length);
      const varint = Buffer.from(r.pick([[0xff, 0xff, 0xff, 0xff, 0x0f], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80], [0x7f], [0xbf, 0xff], [0x38, 0xff, 0xff], [0x53, 0xff, 0xff], [0x52, 0x7f, 0xff]]));
      return Buffer.concat([b.subarray(0, at), varint, b.subarray(Math.min(b.length, at + varint.length))]);
    }
    case 5: { // splice: a prefix of this frame, a suffix of another
      const other = r.pick(pool);
      return Buffer.concat([b.subarray(0, r.int(b.length + 1)), other.subarray(r.int(other.length + 1))]);
    }
    case 6: // pipeline: another whole seed after this one
      return Buffer.concat([b, r.pick(pool)]);
    case 7: { // insert random bytes
      const at = r.int(b.length + 1);
      const junk = Buffer.alloc(1 + r.int(16));
      for (let i = 0; i < junk.length; i++) junk[i] = r.chance(0.5) ? r.pick(INTERESTING_BYTES) : r.int(256);
      return Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
    }
    case 8: { // delete a range
      const at = r.int(b.length);
      return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(32)))]);
    }
    default: { // repeat a range (nesting and count amplification)
      const at = r.int(b.length);
      const piece = b.subarray(at, Math.min(b.length, at + 1 + r.int(8)));
      const times = 2 + r.int(r.chance(0.02) ? 300 : 8);
      return Buffer.concat([b.subarray(0, at), ...Array(times).fill(piece), b.subarray(at)]);
    }
  }
}

/** Rewrites the frame's own length so that the mutation reaches decode instead of frameSize. */
function fixLength(buf, codec) {
  const b = Buffer.from(buf);
  if (codec === 'thrift' && b.length >= 8 && (b[4] === 0x80 || b[4] === 0x82)) b.writeUInt32BE(b.length - 4, 0);
  if (codec === 'dubbo' && b.length >= 16 && b[0] === 0xda && b[1] === 0xbb) b.writeUInt32BE(b.length - 16, 12);
  return b;
}

export function mutate(r, seed, codec, pool) {
  let b = seed;
  const n = r.chance(0.05) ? 0 : 1 + r.int(r.chance(0.2) ? 8 : 3);
  for (let i = 0; i < n; i++) b = mutateOnce(r, b, codec, pool);
  if (r.chance(0.5)) b = fixLength(b, codec);
  return b;
}

// ---- the run ----

const VARIANTS = { thrift: 5, dubbo: 2, redis: 2 };

/**
 * Runs `frames` mutated inputs per codec; returns {codec: {frames, traps, decoded, rejected,
 * produced, badOutputs, routed, ms, samples}}. `onTrap(codec, input, error)` sees each trap.
 */
export async function fuzz({ frames = 1_000_000, codecs = CODECS, seed = 1, progress, crashDir } = {}) {
  ensureBuilt();
  const module = new WebAssembly.Module(readFileSync(WASM));
  let vm = await instantiate(module);
  vm = await selfCheck(module, vm);
  const seeds = { thrift: thriftSeeds(), dubbo: dubboSeeds(), redis: redisSeeds() };
  const results = {};
  for (const name of codecs) {
    const index = CODECS.indexOf(name);
    if (index < 0) throw new Error(`unknown codec ${name}`);
    const r = rng(seed * 7919 + index);
    const { requests, responses } = seeds[name];
    const all = [...requests, ...responses];
    const res = { frames: 0, traps: 0, decoded: 0, rejected: 0, produced: 0, badOutputs: 0, routed: 0, ms: 0, samples: [] };
    const t0 = performance.now();
    for (let i = 0; i < frames; i++) {
      const toServer = r.chance(0.5);
      const own = toServer ? requests : responses;
      const input = mutate(r, r.chance(0.9) ? r.pick(own) : r.pick(all), name, r.chance(0.8) ? own : all);
      const len = input.length;
      // Reads of one byte now and then; at most ~256 reads per input (an unframed message is walked
      // again from its start on every read, as the filter does: many tiny reads cost quadratic time).
      const floor = Math.max(1, Math.ceil(len / 256));
      const chunk = r.chance(0.1) ? floor : r.chance(0.5) ? len : floor + r.int(Math.max(1, len - floor + 1));
      const maxFrame = r.chance(0.7) ? DEFAULT_MAX_FRAME : r.pick([16, 64, 256, 1024, Math.max(16, len - 1), Math.max(16, len), len + 1]);
      const variant = r.chance(0.6) ? 0 : r.int(VARIANTS[name]);
      const replace = r.chance(0.5) ? 1 : 0;
      res.frames++;
      try {
        const at = vm.exports.inputBuffer(len);
        new Uint8Array(vm.exports.memory.buffer, at, len).set(input);
        vm.exports.run(index, variant, toServer ? 0 : 1, len, chunk, maxFrame, replace);
        const c = vm.exports.counter;
        res.decoded += c(0);
        res.rejected += c(1);
        res.produced += c(2);
        res.routed += c(4);
        if (c(3) > 0) {
          res.badOutputs += c(3);
          const note = vm.str(vm.exports.badNote());
          if (res.samples.length < 5) res.samples.push({ kind: 'bad output', note, input: input.toString('hex'), toServer, variant, chunk, maxFrame });
        }
      } catch (err) {
        if (!(err instanceof WebAssembly.RuntimeError || err instanceof Abort || err instanceof RangeError)) throw err;
        res.traps++;
        const sample = { kind: 'trap', error: String(err.message), input: input.toString('hex'), toServer, variant, chunk, maxFrame, replace };
        if (res.samples.length < 5) res.samples.push(sample);
        if (crashDir && res.traps <= 20) {
          mkdirSync(crashDir, { recursive: true });
          writeFileSync(path.join(crashDir, `${name}-${res.traps}.json`), `${JSON.stringify(sample, null, 1)}\n`);
        }
        vm = await instantiate(module); // a trapped instance may be mid-allocation: start afresh
      }
      if (progress && (i + 1) % 100_000 === 0) progress(name, i + 1, res);
    }
    res.ms = performance.now() - t0;
    res.memoryBytes = vm.exports.memory.buffer.byteLength;
    results[name] = res;
  }
  return results;
}

export function formatResults(results) {
  const rows = [['codec', 'frames tried', 'traps', 'bad outputs', 'frames decoded', 'inputs refused', 'produced frames checked', 'time (s)']];
  for (const [name, r] of Object.entries(results)) {
    rows.push([name, r.frames, r.traps, r.badOutputs, r.decoded, r.rejected, r.produced, (r.ms / 1000).toFixed(1)].map(String));
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
  const frames = Number(opt('frames', '1000000'));
  const codecs = opt('codecs', CODECS.join(',')).split(',');
  const seed = Number(opt('seed', '1'));
  if (!Number.isInteger(frames) || frames < 1) throw new Error('--frames: expected a positive integer');
  console.log(`fuzzing ${codecs.join(', ')}: ${frames} mutated frames each, seed ${seed}, build/fuzz.wasm`);
  const results = await fuzz({
    frames, codecs, seed, crashDir: path.join(root, 'build/fuzz-crashes'),
    progress: (name, n, r) => process.stderr.write(`  ${name}: ${n} frames, ${r.traps} traps, ${r.badOutputs} bad outputs\n`),
  });
  console.log(formatResults(results));
  let failed = false;
  for (const [name, r] of Object.entries(results)) {
    for (const s of r.samples) console.log(`${name} ${s.kind}: ${s.error ?? s.note}\n  input ${s.input.slice(0, 400)}${s.input.length > 400 ? '...' : ''}\n  ${JSON.stringify({ toServer: s.toServer, variant: s.variant, chunk: s.chunk, maxFrame: s.maxFrame })}`);
    if (r.traps || r.badOutputs) failed = true;
  }
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
