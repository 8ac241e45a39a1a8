// Values whose length a client decides (a method name, a password) reach string builders: stat
// labels, the per-request :path, the base64 of session state. Built by appending, each copy of
// the growing string stays garbage until the callback returns (the minimal runtime collects
// between callbacks only), so one 32 KiB name took gigabytes and the VM died. Here the real
// build/meltemi.wasm (test/harness/wasm-host.mjs) gets such calls in every role that builds them:
// no trap, and the VM stays small.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmHost, BUFFER, repoPath } from '../harness/index.mjs';
import { encodeThriftCall } from '../../bench/micro-frames.mjs';

/** 32 KiB of name, half of it bytes no label or path may carry. */
const HOSTILE = 'a\u0001'.repeat(16 * 1024);
const ROUTES = [{ name: 'all', route: [{ cluster: 'backend' }] }];
const MIB = 1 << 20;

/** Feeds `bytes` from the client; returns what the filter passed on and the VM's memory. */
function feed(config, bytes) {
  const host = new WasmHost(repoPath('build/meltemi.wasm'), config);
  const out = host.feed(BUFFER.DownstreamData, bytes);
  return { out, memory: host.exports.memory.buffer.byteLength, logs: host.logs };
}

test('a Thrift call with a 32 KiB method name: per connection, counted and forwarded, the VM small', () => {
  const call = encodeThriftCall(HOSTILE, 1, 'x');
  const { out, memory } = feed({ codec: 'thrift', routes: ROUTES }, call);
  assert.ok(out.equals(call), 'the call is forwarded whole');
  assert.ok(memory <= 16 * MIB, `VM memory ${memory / MIB} MiB`);
});

test('the same per request (client role): one HTTP/2 stream toward HCM, the VM small', () => {
  const call = encodeThriftCall(HOSTILE, 1, 'x');
  const { out, memory } = feed({ codec: 'thrift', mode: 'perRequest', role: 'client', routes: ROUTES }, call);
  assert.ok(out.subarray(0, 3).toString() === 'PRI', 'HTTP/2 toward HCM');
  assert.ok(out.length > call.length, 'the call travels as its stream');
  assert.ok(memory <= 16 * MIB, `VM memory ${memory / MIB} MiB`);
});

test('Redis AUTH with a 256 KiB password per request: session state carried, the VM small', () => {
  const password = 'p'.repeat(256 * 1024);
  const auth = Buffer.from(`*2\r\n$4\r\nAUTH\r\n$${password.length}\r\n${password}\r\n`);
  const get = Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n');
  const { out, memory } = feed({ codec: 'redis', mode: 'perRequest', role: 'client', routes: ROUTES }, Buffer.concat([auth, get]));
  // The GET's headers carry the AUTH as base64, a third larger than the frame (HCM, whose header
  // limit is far below, would refuse that call; the VM must survive building it).
  assert.ok(out.length > Math.ceil(auth.length / 3) * 4, `${out.length} B toward HCM: the GET carries the session`);
  assert.ok(memory <= 32 * MIB, `VM memory ${memory / MIB} MiB`);
});
