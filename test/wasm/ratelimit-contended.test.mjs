// The local rate limit's fail-open under shared-data contention, made visible. A bucket lives in
// Envoy's shared data (one per Envoy process, whatever the worker thread) and is updated by
// compare-and-swap; after 8 lost swaps in a row SharedBuckets.take (assembly/policy/
// shared-bucket.ts) lets the request through and counts ratelimit_contended_total, so a limit that
// failed open leaves a trace. This cannot run in Envoy: its swap loses only when two worker
// threads race on one key between a get and a set, which no test can arrange, let alone eight
// times in a row. So the real build/meltemi.wasm runs in Node behind test/harness/wasm-host.mjs
// (as test/wasm/fuzz.test.mjs runs a real build), with Envoy's shared-data rules and a second
// "worker" that writes the bucket between each get and the filter's set; the control host has no
// such worker, and the limit applies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmHost, BUFFER, STATUS, repoPath } from '../harness/index.mjs';
import { encodeThriftCall } from '../../bench/micro-frames.mjs';

/** One token per hour on the route of `echo`: without contention, only the first call passes. */
const CONFIG = {
  codec: 'thrift',
  routes: [{
    name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'backend' }],
    localRateLimit: { tokenBucket: { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 3_600_000 } },
  }],
};

/** SharedBuckets.take's bound on compare-and-swap attempts (MAX_TRIES). */
const TRIES = 8;

const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };

/** A framed binary TApplicationException (message type 3) for `method`, as a server writes it. */
function thriftException(method, seqid, message, type) {
  const m = Buffer.from(method);
  const text = Buffer.from(message);
  const body = Buffer.concat([Buffer.from([0x80, 0x01, 0x00, 0x03]), u32(m.length), m, u32(seqid),
    Buffer.from([0x0b, 0x00, 0x01]), u32(text.length), text, Buffer.from([0x08, 0x00, 0x02]), u32(type), Buffer.from([0x00])]);
  return Buffer.concat([u32(body.length), body]);
}

/** The header of a framed binary message and, for an exception, its message and type. */
function readThrift(frame) {
  assert.equal(frame.readUInt32BE(0), frame.length - 4, 'one whole frame');
  const type = frame[7];
  const nameLength = frame.readUInt32BE(8);
  const name = frame.subarray(12, 12 + nameLength).toString();
  let at = 12 + nameLength;
  const seqid = frame.readUInt32BE(at);
  at += 4;
  const out = { type, name, seqid };
  while (type === 3 && frame[at] !== 0) {
    const [fieldType, id] = [frame[at], frame.readUInt16BE(at + 1)];
    at += 3;
    if (fieldType === 0x0b) {
      const n = frame.readUInt32BE(at);
      if (id === 1) out.message = frame.subarray(at + 4, at + 4 + n).toString();
      at += 4 + n;
    } else {
      if (id === 2) out.exceptionType = frame.readUInt32BE(at);
      at += 4;
    }
  }
  return out;
}

const host = (imports) => new WasmHost(repoPath('build/meltemi.wasm'), CONFIG, { imports, metrics: true });
/** The shared-data key of the route's bucket (SharedBuckets: <statPrefix>.rl.<route>.<bucket>). */
const BUCKET = 'meltemi.rl.meltemi.echo.0';

test('when every compare-and-swap on the bucket loses, each call passes (fail open) and is counted ratelimit_contended', () => {
  // Envoy's get, after which another worker's set lands at once: the token the filter read is
  // stale by the time it sets. A filter that set with token 0 (which always succeeds) would win.
  const h = host({
    proxy_get_shared_data(keyPtr, keyLen, valuePtr, valueSize, casPtr) {
      const entry = this.shared.get(this.bytes(keyPtr, keyLen).toString('latin1'));
      if (!entry) return STATUS.NotFound;
      this.give(entry.value, valuePtr, valueSize);
      this.view().setUint32(casPtr, entry.cas, true);
      entry.cas += 1000;
      return STATUS.Ok;
    },
  });
  // An empty bucket, filled an hour from now: without contention every call would be refused.
  const empty = Buffer.alloc(12);
  empty.writeBigUInt64LE(process.hrtime.bigint() / 1_000_000n, 4);
  h.shared.set(BUCKET, { value: empty, cas: 1 });
  h.calls.clear();
  const n = 5;
  for (let seqid = 1; seqid <= n; seqid++) {
    const call = encodeThriftCall('echo', seqid, `call ${seqid}`);
    const out = h.feed(BUFFER.DownstreamData, call);
    assert.equal(h.status, 0, `call ${seqid}: the connection carries on`);
    assert.ok(out.equals(call), `call ${seqid} went to the server as it came (not answered locally): ${readThrift(out).name}`);
    assert.equal(h.metric('ratelimit_contended_total'), seqid, `call ${seqid} counted as let through by contention`);
  }
  assert.equal(h.calls.get('proxy_set_shared_data'), n * TRIES, `${TRIES} swaps tried per call, then it passed`);
  assert.equal(h.metric('ratelimited_total'), 0);
  assert.equal(h.metric('local_reply_total'), 0);
  assert.deepEqual(h.logs, []);
});

test('when the swap succeeds, the bucket holds: the second call is answered with the rate-limit error, nothing counted contended', () => {
  const h = host({});
  const first = encodeThriftCall('echo', 1, 'first');
  assert.ok(h.feed(BUFFER.DownstreamData, first).equals(first), 'the first call takes the one token');
  const second = encodeThriftCall('echo', 2, 'second');
  const probe = readThrift(h.feed(BUFFER.DownstreamData, second));
  // Answered locally: a probe (a call of an unknown method with the call's seqid) goes to the
  // server in its place, and the server's answer to it is swapped for the error on the way back.
  assert.deepEqual([probe.type, probe.name, probe.seqid], [1, '__meltemi_local_reply__', 2]);
  const answer = h.feed(BUFFER.UpstreamData, thriftException('__meltemi_local_reply__', 2, 'Invalid method name', 1));
  const error = readThrift(answer);
  assert.deepEqual([error.type, error.name, error.seqid, error.exceptionType], [3, 'echo', 2, 6], 'TApplicationException INTERNAL_ERROR for call 2');
  assert.match(error.message, /rate limit exceeded on route echo/);
  assert.equal(h.metric('ratelimited_total'), 1);
  assert.equal(h.metric('ratelimit_contended_total'), 0, 'defined, never counted');
  const bucket = h.shared.get(BUCKET);
  assert.equal(bucket?.value.readUInt32LE(0), 0, 'the shared bucket holds no token');
});
