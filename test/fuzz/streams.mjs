// Fuzzes whole connections through the real filter (build/meltemi.wasm) in every role: mutated
// frames of each codec (the seeds and mutations of test/fuzz/run.mjs), pipelined, cut into random
// reads, in both directions, then the stream's end. Where run.mjs checks the codecs alone, this
// checks what a hostile client or server does to a connection: the framing across reads, the
// policies, the per-request roles' HTTP/2 and HTTP/1.1 framing, local replies, closes.
//
// The host is test/harness/wasm-host.mjs with Envoy's buffering added: a read the filter answers
// with StopIteration stays in the buffer and the next read is appended to it; proxy_continue_stream
// passes it on; proxy_close_stream closes the connection whose context is in effect, and Envoy's
// close and delete callbacks follow. Every few hostile connections a good one must still be served
// by the same VM. Findings:
// - trap: the VM threw (an abort, out-of-bounds access, unreachable): in Envoy it would die.
// - stuck: both streams ended while the filter held some of their bytes and had not closed the
//   connection: nothing would ever move them.
// - sick: a good connection after hostile ones was not served as on a fresh VM.
//
//   node test/fuzz/streams.mjs [--connections N] [--seed S] [--workloads a,b]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmHost, BUFFER } from '../harness/wasm-host.mjs';
import { rng, mutate, seedsOf } from './run.mjs';
import { encodeThriftCall, encodeThriftReply, encodeDubboRequest, encodeDubboResponse, h2frame } from '../../bench/micro-frames.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROOT_CONTEXT = 1;
const STOP = 1;
const STREAM = { Downstream: 2, Upstream: 3 };
const EMPTY = Buffer.alloc(0);

const thriftRoutes = [
  { name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'a' }] },
  { name: 'rest', route: [{ cluster: 'b' }] },
];
const POLICIES = {
  authorization: { defaultAction: 'ALLOW', rules: [{ name: 'no-add', action: 'DENY', match: { attributes: { method: { exact: 'add' } } } }] },
  localRateLimit: { tokenBucket: { maxTokens: 1000000, tokensPerFill: 1000000, fillIntervalMs: 1000 } },
};
/** A THeader call and its reply, as the npm `thrift` library writes them (test/unit/fixtures/thrift.ts). */
function headerFixture(name) {
  const text = readFileSync(path.join(ROOT, 'test/unit/fixtures/thrift.ts'), 'utf8');
  return Buffer.from(new RegExp(`export const ${name} = "([0-9a-f]+)"`).exec(text)[1], 'hex');
}
const headerCall = headerFixture('HEADER_BINARY_CALL_SAYHELLO');
const headerReply = headerFixture('HEADER_BINARY_REPLY_SAYHELLO');
const redisCall = Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n');
const redisReply = Buffer.from('$1\r\nv\r\n');

/** A call as Envoy's router writes it to the server role (HTTP/1.1, the call as the body). */
function routerRequest(call, route = 'echo') {
  return Buffer.concat([Buffer.from(`POST /-/echo HTTP/1.1\r\nhost: meltemi\r\ncontent-length: ${call.length}\r\nx-meltemi-route: ${route}\r\nx-meltemi-cluster: a\r\n\r\n`), call]);
}

/**
 * The roles and configs fuzzed. `good` serves one good exchange on a fresh connection and says
 * what is wrong with it, or null. `seeds`: which of the codec's seed frames to mutate (all without). `hcm`: the upstream is HCM speaking HTTP/2 (the client role), which
 * answers the streams the role opened; otherwise the server's bytes are the codec's.
 */
export const WORKLOADS = {
  'thrift-per-connection': {
    codec: 'thrift', config: { codec: 'thrift', routes: thriftRoutes },
    good: (c) => c.expectEcho(encodeThriftCall('echo', 7, 'hello'), encodeThriftReply('echo', 7, 'hello')),
  },
  'thrift-policies': {
    codec: 'thrift', config: { codec: 'thrift', routes: [{ ...thriftRoutes[0], ...POLICIES }, { ...thriftRoutes[1], ...POLICIES }] },
    good: (c) => c.expectEcho(encodeThriftCall('echo', 7, 'hello'), encodeThriftReply('echo', 7, 'hello')),
  },
  'thrift-header-mutation': {
    codec: 'thrift', config: { codec: 'thrift', codecOptions: { transport: 'header' }, routes: [{ name: 'all', route: [{ cluster: 'a' }], requestMutation: [{ key: 'x-fuzz', value: 'yes' }], responseMutation: [{ key: 'x-via', value: 'meltemi' }] }] },
    good: (c) => c.expectRewritten(headerCall, headerReply),
    // THeader seeds only: other transports are refused outright when it is pinned.
    seeds: (frame) => frame.length > 6 && frame[4] === 0x0f && frame[5] === 0xff,
  },
  'dubbo-per-connection': {
    codec: 'dubbo', config: { codec: 'dubbo', routes: [{ name: 'all', route: [{ cluster: 'a' }], requestMutation: [{ key: 'x-fuzz', value: 'yes' }], ...POLICIES }] },
    good: (c) => c.expectForwarded(encodeDubboRequest(9), encodeDubboResponse(9)),
  },
  'redis-per-connection': {
    codec: 'redis', config: { codec: 'redis', routes: [{ name: 'kv', match: { attributes: { command: { regex: 'GET|SET' } } }, route: [{ cluster: 'a' }], ...POLICIES }, { name: 'rest', route: [{ cluster: 'b' }] }] },
    good: (c) => c.expectEcho(redisCall, redisReply),
  },
  'thrift-per-request-client': {
    codec: 'thrift', config: { codec: 'thrift', mode: 'perRequest', role: 'client', routes: thriftRoutes }, hcm: true,
    good: (c) => c.expectToHcm(encodeThriftCall('echo', 7, 'hello')),
  },
  'dubbo-per-request-client': {
    codec: 'dubbo', config: { codec: 'dubbo', mode: 'perRequest', role: 'client', routes: [{ name: 'all', route: [{ cluster: 'a' }] }] }, hcm: true,
    good: (c) => c.expectToHcm(encodeDubboRequest(9)),
  },
  'redis-per-request-client': {
    codec: 'redis', config: { codec: 'redis', mode: 'perRequest', role: 'client', routes: [{ name: 'all', route: [{ cluster: 'a' }] }] }, hcm: true,
    good: (c) => c.expectToHcm(redisCall),
  },
  'thrift-per-request-server': {
    codec: 'thrift', config: { codec: 'thrift', mode: 'perRequest', role: 'server', routes: thriftRoutes }, server: true,
    good: (c) => c.expectServed(encodeThriftCall('echo', 7, 'hello'), encodeThriftReply('echo', 7, 'hello')),
  },
  'dubbo-per-request-server': {
    codec: 'dubbo', config: { codec: 'dubbo', mode: 'perRequest', role: 'server', routes: [{ name: 'all', route: [{ cluster: 'a' }] }] }, server: true,
    good: (c) => c.expectServed(encodeDubboRequest(9), encodeDubboResponse(9), 'all'),
  },
  'redis-per-request-server': {
    codec: 'redis', config: { codec: 'redis', mode: 'perRequest', role: 'server', routes: [{ name: 'all', route: [{ cluster: 'a' }] }] }, server: true,
    good: (c) => c.expectServed(redisCall, redisReply, 'all'),
  },
};

/** One VM of the filter behind an Envoy-like connection model. */
class Vm {
  constructor(wasmPath, config) {
    this.effective = 0;
    this.closing = new Set();
    this.conns = new Map();
    const vm = this;
    this.host = new WasmHost(wasmPath, config, {
      imports: {
        proxy_set_effective_context(ctx) { vm.effective = ctx; return 0; },
        proxy_close_stream() { vm.closing.add(vm.effective); return 0; },
        proxy_continue_stream(type) { vm.conns.get(vm.effective)?.continued.add(type === STREAM.Upstream ? 'up' : 'down'); return 0; },
      },
    });
    this.e = this.host.exports;
    this.nextId = 10;
  }

  open() {
    const id = this.nextId++;
    this.conns.set(id, { id, held: { down: EMPTY, up: EMPTY }, out: { down: [], up: [] }, continued: new Set(), closed: false });
    this.effective = id;
    this.host.openConnection(id);
    return this.conns.get(id);
  }

  /** A read of `bytes` from the client ('down') or the server ('up'); `end`: the stream ends with it. */
  read(c, dir, bytes, end = false) {
    if (c.closed) return;
    const type = dir === 'down' ? BUFFER.DownstreamData : BUFFER.UpstreamData;
    const buf = Buffer.concat([c.held[dir], bytes]);
    this.host.buffers.set(type, buf);
    this.effective = c.id;
    c.continued.clear();
    const status = dir === 'down' ? this.e.proxy_on_downstream_data(c.id, buf.length, end ? 1 : 0) : this.e.proxy_on_upstream_data(c.id, buf.length, end ? 1 : 0);
    const left = this.host.buffers.get(type);
    if (status !== STOP || c.continued.has(dir)) {
      if (left.length > 0) c.out[dir].push(left);
      c.held[dir] = EMPTY;
    } else {
      c.held[dir] = left;
    }
    this.settle();
  }

  /** Runs due timers and Envoy's side of the closes the filter asked for. */
  settle() {
    this.e.proxy_on_tick(ROOT_CONTEXT);
    for (const id of this.closing) {
      const c = this.conns.get(id);
      if (!c || c.closed) continue;
      c.closed = true;
      this.effective = id;
      this.e.proxy_on_downstream_connection_close(id, 0);
      this.e.proxy_on_delete(id);
    }
    this.closing.clear();
  }

  /** The connection goes away from Envoy's side (peer closed): close and delete callbacks. */
  drop(c) {
    if (c.closed) return;
    c.closed = true;
    this.effective = c.id;
    this.e.proxy_on_downstream_connection_close(c.id, 1);
    this.e.proxy_on_delete(c.id);
    this.conns.delete(c.id);
  }

  taken(c, dir) {
    const out = Buffer.concat(c.out[dir]);
    c.out[dir] = [];
    return out;
  }
}

/** The good exchanges, on a fresh connection of `vm`. */
class GoodCheck {
  constructor(vm) {
    this.vm = vm;
    this.c = vm.open();
  }

  /** The call reaches the server and the reply the client, each as they were. */
  expectEcho(call, reply) {
    return this.exchange(call, reply, (sent, got) => sent.equals(call) && got.equals(reply));
  }

  /** With a request mutation: the call reaches the server whole (longer), the reply as it was. */
  expectForwarded(call, reply) {
    return this.exchange(call, reply, (sent, got) => sent.length > call.length && got.equals(reply));
  }

  /** With both mutations: each frame passes whole and rewritten (longer each way). */
  expectRewritten(call, reply) {
    return this.exchange(call, reply, (sent, got) => sent.length > call.length && got.length > reply.length);
  }

  /** One call and its reply on the good connection; `ok(toServer, toClient)` judges what passed. */
  exchange(call, reply, ok) {
    const { vm, c } = this;
    vm.read(c, 'down', call);
    const toServer = vm.taken(c, 'down');
    vm.read(c, 'up', reply);
    const toClient = vm.taken(c, 'up');
    if (!ok(toServer, toClient)) return `a ${call.length} B call reached the server as ${toServer.length} B, its ${reply.length} B reply the client as ${toClient.length} B`;
    return this.done();
  }

  expectToHcm(call) {
    const { vm, c } = this;
    vm.read(c, 'down', call);
    const toHcm = vm.taken(c, 'down');
    if (!toHcm.subarray(0, 24).equals(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'))) return `HCM got ${toHcm.length} B that do not open HTTP/2`;
    if (toHcm.length < 24 + call.length) return `HCM got ${toHcm.length} B for a ${call.length} B call`;
    return this.done();
  }

  expectServed(call, reply, route = 'echo') {
    const { vm, c } = this;
    vm.read(c, 'down', routerRequest(call, route));
    const toServer = vm.taken(c, 'down');
    if (!toServer.equals(call)) return `the server got ${toServer.length} B, not the call's ${call.length}`;
    vm.read(c, 'up', reply);
    const toRouter = vm.taken(c, 'up');
    if (!toRouter.subarray(0, 12).equals(Buffer.from('HTTP/1.1 200'))) return `the router got ${JSON.stringify(toRouter.subarray(0, 40).toString('latin1'))}`;
    return this.done();
  }

  done() {
    const { vm, c } = this;
    if (c.closed) return 'the filter closed the good connection';
    if (vm.host.logs.length > 0) return `the filter logged on the good connection: ${vm.host.logs.join('; ')}`;
    vm.drop(c);
    return null;
  }
}

// ---- HCM's side of the client role ----

const H2 = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4 };
/** HPACK: `:status` from the static table (200 is index 8), others as a literal with name index 8. */
const status = (code) => (code === 200 ? Buffer.from([0x88]) : Buffer.concat([Buffer.from([0x08, 3]), Buffer.from(String(code))]));

/** The stream ids of the HEADERS frames in what the client role wrote toward HCM. */
function streamsOpened(toHcm) {
  const ids = [];
  let at = toHcm.subarray(0, 3).toString('latin1') === 'PRI' ? 24 : 0;
  while (at + 9 <= toHcm.length) {
    const len = toHcm.readUIntBE(at, 3);
    if (toHcm[at + 3] === H2.HEADERS) ids.push(toHcm.readUInt32BE(at + 5) & 0x7fffffff);
    at += 9 + len;
  }
  return ids;
}

/**
 * What HCM might answer to the streams the role opened: 200 with a reply frame (often mutated),
 * Envoy's own errors (404, 503, 504) with a text body, or a reset; in random order.
 */
function hcmAnswers(r, ids, replies, codec) {
  const parts = [h2frame(H2.SETTINGS, 0, 0, EMPTY)];
  const order = ids.slice().sort(() => r.next() - 0.5);
  for (const id of order) {
    const roll = r.next();
    if (roll < 0.75) {
      const seed = r.pick(replies);
      parts.push(h2frame(H2.HEADERS, 0x4, id, status(200)), h2frame(H2.DATA, 0x1, id, r.chance(0.5) ? seed : mutate(r, seed, codec, replies)));
    } else if (roll < 0.9) {
      parts.push(h2frame(H2.HEADERS, 0x4, id, status(r.pick([404, 503, 504]))), h2frame(H2.DATA, 0x1, id, Buffer.from('upstream connect error')));
    } else {
      const code = Buffer.alloc(4);
      code.writeUInt32BE(r.int(14));
      parts.push(h2frame(H2.RST_STREAM, 0, id, code));
    }
  }
  return Buffer.concat(parts);
}

/** Cuts `buf` into reads of random sizes (1-byte reads included). */
function cut(r, buf) {
  const reads = [];
  let at = 0;
  while (at < buf.length) {
    const n = r.chance(0.3) ? 1 + r.int(8) : 1 + r.int(Math.max(1, buf.length - at));
    reads.push(buf.subarray(at, at + n));
    at += n;
  }
  return reads;
}

/** A hostile stream: 1-4 frames, each a seed mutated or (sometimes) left whole. */
function stream(r, pool, codec) {
  const n = 1 + r.int(4);
  const parts = [];
  for (let i = 0; i < n; i++) {
    const seed = r.pick(pool);
    parts.push(r.chance(0.3) ? seed : mutate(r, seed, codec, pool));
  }
  return Buffer.concat(parts);
}

/**
 * Runs `connections` hostile connections through workload `name`; returns
 * {connections, traps, stuck, sick, closed, answered (the client got bytes back), samples}.
 */
export function fuzzStreams(name, { connections = 2000, seed = 1, wasmPath = path.join(ROOT, 'build/meltemi.wasm'), goodEvery = 50 } = {}) {
  const w = WORKLOADS[name];
  const r = rng(seed);
  const all = seedsOf(w.codec);
  const seeds = w.seeds ? { requests: all.requests.filter(w.seeds), responses: all.responses.filter(w.seeds) } : all;
  const res = { connections: 0, traps: 0, stuck: 0, sick: 0, closed: 0, answered: 0, samples: [] };
  const note = (kind, input, detail, full = null) => { if (res.samples.length < 5) res.samples.push({ kind, detail, input: input.toString('hex').slice(0, 400), full }); };
  let vm = new Vm(wasmPath, w.config);
  for (let i = 0; i < connections; i++) {
    res.connections++;
    const c = vm.open();
    let down = stream(r, seeds.requests, w.codec);
    if (w.server) down = r.chance(0.8) ? routerRequest(down) : down;
    let up = w.hcm || r.chance(0.05) ? EMPTY : stream(r, seeds.responses, w.codec);
    try {
      vm.host.logs.length = 0;
      for (const read of cut(r, down)) vm.read(c, 'down', read);
      // The client role's upstream is HCM: it answers the streams the role opened (sometimes with
      // garbage for good measure).
      if (w.hcm) up = r.chance(0.05) ? stream(r, seeds.responses, w.codec) : hcmAnswers(r, streamsOpened(vm.taken(c, 'down')), seeds.responses, w.codec);
      for (const read of cut(r, up)) vm.read(c, 'up', read);
      // The server's stream ends first (or the client's), then the other.
      const ends = r.chance(0.5) ? ['up', 'down'] : ['down', 'up'];
      for (const dir of ends) vm.read(c, dir, EMPTY, true);
      for (const dir of ends) {
        if (!c.closed && c.held[dir].length > 0) {
          res.stuck++;
          note('stuck', dir === 'down' ? down : up, `${c.held[dir].length} B held after both ends (${dir === 'down' ? "the client's" : "the server's"} bytes)`);
          break;
        }
      }
      if (c.closed) res.closed++;
      if (c.out.up.length > 0) res.answered++;
      vm.drop(c);
    } catch (e) {
      res.traps++;
      note('trap', down, String(e.stack ?? e).split('\n').slice(0, 3).join(' | '), { down: down.toString('hex'), up: up.toString('hex'), connection: i });
      vm = new Vm(wasmPath, w.config); // the VM is gone, as Envoy's would be
      continue;
    }
    if ((i + 1) % goodEvery === 0) {
      vm.host.logs.length = 0;
      let why;
      try {
        why = w.good(new GoodCheck(vm));
      } catch (e) {
        why = `trap: ${e}`;
      }
      if (why) {
        res.sick++;
        note('sick', down, why);
        vm = new Vm(wasmPath, w.config);
      }
    }
  }
  return res;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
  const names = opt('--workloads', Object.keys(WORKLOADS).join(',')).split(',');
  let bad = 0;
  for (const name of names) {
    const t0 = Date.now();
    const res = fuzzStreams(name, { connections: Number(opt('--connections', 20000)), seed: Number(opt('--seed', 1)) });
    console.log(`${name}: ${res.connections} connections, ${res.answered} answered, ${res.closed} closed by the filter, ${res.traps} traps, ${res.stuck} stuck, ${res.sick} sick (${Date.now() - t0} ms)`);
    for (const s of res.samples) console.log(`  ${s.kind}: ${s.detail}\n    input ${s.input}`);
    bad += res.traps + res.stuck + res.sick;
  }
  process.exit(bad > 0 ? 1 : 0);
}
