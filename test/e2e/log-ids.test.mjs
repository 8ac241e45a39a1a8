// `conn=` in log lines names one connection in the whole Envoy process: Envoy runs one Wasm VM per
// worker thread and each VM numbers its contexts from the start, so the id is `<vm>.<context>`,
// the VM's number drawn once from shared data (assembly/engine/conn-label.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thriftMesh } from './lib/mesh.mjs';
import { waitFor } from '../harness/index.mjs';
import { accessLines } from './lib/access-log.mjs';

test('connections on different worker threads never share a conn= id', async (t) => {
  const mesh = await thriftMesh(t, {
    plugin: { codec: 'thrift', accessLog: true, routes: [{ name: 'all', route: [{ cluster: 'v1' }] }] },
    servers: { v1: {} },
    concurrency: 2,
  });
  const n = 16;
  for (let i = 0; i < n; i++) {
    const c = await mesh.client();
    await c.sayHello(`c${i}`);
    await c.close();
  }
  // Envoy's log prefix carries the thread id: [time][thread][level][logger].
  const seen = await waitFor(() => {
    const found = accessLines(mesh.envoy.logs());
    return found.length >= n ? found.map((l) => ({ thread: l.thread, conn: l.entry.conn })) : null;
  }, { message: `${n} access lines` });
  assert.equal(seen.length, n, 'one access line per call');
  for (const { conn } of seen) assert.match(conn, /^\d+\.\d+$/);
  const threads = new Set(seen.map((s) => s.thread));
  t.diagnostic(`${threads.size} worker threads; ids ${seen.map((s) => `${s.conn}@${s.thread}`).join(' ')}`);
  assert.equal(new Set(seen.map((s) => s.conn)).size, n, 'every connection has its own id');
  // One VM number per thread, different between threads.
  const vmOf = new Map();
  for (const { thread, conn } of seen) {
    const vm = conn.split('.')[0];
    assert.equal(vmOf.get(thread) ?? vm, vm, `thread ${thread} logs one VM number`);
    vmOf.set(thread, vm);
  }
  assert.equal(new Set(vmOf.values()).size, threads.size, 'each worker VM has its own number');
  assert.ok(threads.size === 2, `the ${n} connections landed on ${threads.size} worker threads`);
});
