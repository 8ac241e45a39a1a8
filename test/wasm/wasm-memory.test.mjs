// The VM's memory over many connections, with the real build/meltemi.wasm in Node behind
// test/harness/wasm-host.mjs (Envoy's V8, the filter's own exports). The module runs
// AssemblyScript's minimal runtime, whose collector runs only when the filter asks for it
// (assembly/host/collector.ts: as the outermost host callback returns). If it never ran, or lost
// track of what is live, memory would grow with every connection or the VM would trap; here each
// connection allocates its context, codecs, streams and per-call strings, so 100,000 of them
// would need hundreds of MiB without collection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmHost, BUFFER, repoPath } from '../harness/index.mjs';
import { encodeThriftCall, encodeThriftReply, encodeDubboRequest, encodeDubboResponse } from '../../bench/micro-frames.mjs';


const CASES = [
  {
    name: 'thrift',
    /** 500 open connections' state (4 MiB as measured); twice that is the bound. */
    boundMiB: 8,
    config: { codec: 'thrift', routes: [{ name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'backend' }] }] },
    call: (i) => encodeThriftCall('echo', i, 'x'.repeat(16)),
    reply: (i) => encodeThriftReply('echo', i, 'x'.repeat(16)),
  },
  {
    name: 'dubbo',
    /**
     * 16 MiB as measured, with the access log on: 500 connections' state lies just past the 8 MiB
     * doubling (8 MiB with 6-digit context ids), so the bound is what was measured.
     */
    boundMiB: 16,
    config: { codec: 'dubbo', routes: [{ name: 'all', route: [{ cluster: 'backend' }] }], accessLog: true },
    call: (i) => encodeDubboRequest(i),
    reply: (i) => encodeDubboResponse(i),
  },
];

/**
 * Runs `n` connections through the filter, `open` of them at a time, each with two calls and their
 * replies; returns the VM's memory in bytes afterwards.
 */
function connections(host, c, n, open, firstId) {
  const e = host.exports;
  for (let done = 0; done < n; done += open) {
    const ids = Array.from({ length: Math.min(open, n - done) }, (_, k) => host.openConnection(firstId + done + k));
    for (let call = 1; call <= 2; call++) {
      for (const ctx of ids) host.feed(BUFFER.DownstreamData, c.call(call), ctx);
      for (const ctx of ids) host.feed(BUFFER.UpstreamData, c.reply(call), ctx);
    }
    for (const ctx of ids) {
      e.proxy_on_downstream_connection_close(ctx, 0);
      e.proxy_on_delete(ctx);
    }
  }
  return e.memory.buffer.byteLength;
}

for (const c of CASES) {
  test(`${c.name}: VM memory stays flat over 100,000 connections, 500 open at a time`, (t) => {
    const host = new WasmHost(repoPath('build/meltemi.wasm'), c.config);
    // Context ids of one length in both phases: a connection keeps its label (`<vm>.<id>`), and the
    // state of 500 connections sits near a TLSF doubling, which one more digit each can cross.
    const warm = connections(host, c, 10_000, 500, 1_000_000);
    const after = connections(host, c, 90_000, 500, 2_000_000);
    assert.deepEqual(host.logs.filter((l) => !/access/.test(l)), [], 'no warnings from the filter');
    const mib = (b) => (b / 1048576).toFixed(2);
    t.diagnostic(`memory ${mib(warm)} MiB after 10,000 connections, ${mib(after)} MiB after 100,000`);
    // Growth after the first 10,000 would be a leak (or collection that stopped): TLSF grows
    // memory by doubling, so even one more doubling fails this.
    assert.ok(after <= warm, `memory grew from ${mib(warm)} MiB after 10,000 connections to ${mib(after)} MiB after 100,000`);
    // 500 open connections' state, the same as the incremental runtime measured (boundMiB).
    assert.ok(after <= c.boundMiB * 1048576, `memory ${mib(after)} MiB for 500 open connections (bound ${c.boundMiB} MiB)`);
  });
}

/**
 * What one HTTP/1.1 request of Envoy's router carries into the server role of per-request mode
 * (as bench/micro-roles.mjs builds it): the call as its body, the route the router chose.
 */
function routerRequest(call) {
  const head = 'POST /-/echo HTTP/1.1\r\nhost: meltemi\r\ncontent-length: ' + call.length +
    '\r\nx-meltemi-route: echo\r\nx-meltemi-cluster: backend\r\n\r\n';
  return Buffer.concat([Buffer.from(head), call]);
}

test('per-request server role: 4 KiB calls leave no more than a few MiB behind however many callbacks pass between counts', (t) => {
  const config = { codec: 'thrift', mode: 'perRequest', role: 'server', routes: [{ name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'backend' }] }] };
  const host = new WasmHost(repoPath('build/meltemi.wasm'), config);
  const value = 'x'.repeat(4096);
  // 64 connections, as the router keeps to an internal listener under load: the callback count
  // alone let 1024 + 16 x 64 callbacks of garbage pile up between collections (16 MiB measured);
  // the data those callbacks move collects sooner (collector.ts COLLECT_BYTES: 4 MiB measured).
  // Twice that is the bound: TLSF grows memory by doubling.
  const ids = Array.from({ length: 64 }, (_, k) => host.openConnection(3_000_000 + k));
  let calls = 0;
  for (let round = 1; round <= 60; round++) {
    for (const ctx of ids) {
      const call = encodeThriftCall('echo', round, value);
      const toServer = host.feed(BUFFER.DownstreamData, routerRequest(call), ctx);
      assert.ok(toServer.equals(call), 'the server gets the call');
      const toRouter = host.feed(BUFFER.UpstreamData, encodeThriftReply('echo', round, value), ctx);
      assert.equal(toRouter.subarray(0, 12).toString(), 'HTTP/1.1 200', 'the router gets a 200');
      calls++;
    }
  }
  assert.deepEqual(host.logs, [], 'no warnings from the filter');
  const mib = host.exports.memory.buffer.byteLength / 1048576;
  t.diagnostic(`memory ${mib.toFixed(2)} MiB after ${calls} calls of 4 KiB on 64 connections`);
  assert.ok(mib <= 8, `memory ${mib.toFixed(2)} MiB after ${calls} calls of 4 KiB (bound 8 MiB)`);
});
