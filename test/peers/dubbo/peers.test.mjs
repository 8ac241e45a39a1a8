// Smoke test of the real Dubbo peers, consumer -> provider directly (no proxy):
//   node --test test/peers/dubbo/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt, startProvider, runConsumer } from './index.mjs';

let v1;

before(async () => {
  ensureBuilt(); // no-op when the jar is fresh
  v1 = await startProvider({ name: 'v1', jitterMs: 3, replyAttachments: { 'x-from': 'v1' } });
}, { timeout: 15 * 60_000 });

after(async () => { await v1?.stop(); });

test('sayHello reaches the provider with every attachment', { timeout: 120_000 }, async () => {
  const lines = await runConsumer({
    url: v1.url, method: 'sayHello', arg: 'alice', calls: 3,
    attachments: { 'x-tenant': 'blue', 'x-user': 'alice' },
  });
  assert.equal(lines.length, 3);
  for (const l of lines) {
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.server, 'v1');
    assert.equal(l.reply, 'hello alice');
    assert.equal(l.match, true);
    assert.equal(l.attachments['x-tenant'], 'blue');
    assert.equal(l.attachments['x-user'], 'alice');
    // What came off the wire, before Dubbo's ContextFilter strips the framework keys.
    assert.equal(l.invocationAttachments.path, 'dev.meltemi.demo.GreetService');
    assert.equal(l.invocationAttachments.version, '1.0.0');
    assert.match(l.remote, /^127\.0\.0\.1:\d+$/, 'the consumer must stay on loopback');
    assert.equal(l.responseAttachments['x-from'], 'v1', 'response attachments come back to the consumer');
  }
});

test('pipelined async calls on one connection are each matched to their own request', { timeout: 120_000 }, async () => {
  const n = 300;
  const lines = await runConsumer({ url: v1.url, async: true, calls: n, concurrency: 64, connections: 1 });
  assert.equal(lines.length, n);
  const seen = new Set();
  let outOfOrder = 0;
  lines.forEach((l, k) => {
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.reply, `hello call-${l.i}`);
    assert.equal(l.match, true);
    seen.add(l.i);
    if (l.i !== k) outOfOrder++;
  });
  assert.equal(seen.size, n);
  // With provider jitter the replies come back out of order: correlation, not ordering, matches them.
  assert.ok(outOfOrder > 0, 'expected some out-of-order completions');

  const sum = await runConsumer({ url: v1.url, async: true, calls: 2000, concurrency: 128, summary: true });
  assert.equal(sum.calls, 2000);
  assert.equal(sum.ok, 2000, JSON.stringify(sum));
  assert.equal(sum.mismatches, 0);
  assert.deepEqual(sum.servers, { v1: 2000 });
});

test('group, second interface, exceptions, echo payloads and oneway', { timeout: 180_000 }, async () => {
  const g = await startProvider({ name: 'v2', group: 'canary' });
  try {
    const [hello] = await runConsumer({ url: g.url, group: 'canary', arg: 'bob' });
    assert.equal(hello.server, 'v2');
    assert.equal(hello.reply, 'hello bob');
    const [order] = await runConsumer({
      url: g.url, group: 'canary', interface: 'dev.meltemi.demo.OrderService', method: 'getOrder', arg: '42',
    });
    assert.equal(order.reply, 'order 42');
    const [wrongGroup] = await runConsumer({ url: g.url, arg: 'bob', timeoutMs: 3000 });
    assert.equal(wrongGroup.ok, false, 'no service without the group');
  } finally {
    await g.stop();
  }
  const [boom] = await runConsumer({ url: v1.url, method: 'fail', arg: 'boom' });
  assert.equal(boom.ok, false);
  assert.match(boom.error, /IllegalStateException: boom/);

  const sum = await runConsumer({ url: v1.url, method: 'echo', payload: 4096, calls: 200, concurrency: 4, summary: true });
  assert.equal(sum.ok, 200, JSON.stringify(sum));
  assert.equal(sum.mismatches, 0);

  const oneway = await runConsumer({ url: v1.url, oneway: true, calls: 5 });
  assert.equal(oneway.length, 5);
  assert.ok(oneway.every((l) => l.ok && l.oneway));
});

test('stop() ends the provider JVM', { timeout: 120_000 }, async () => {
  const p = await startProvider({ name: 'tmp' });
  process.kill(p.pid, 0); // alive
  await p.stop();
  assert.throws(() => process.kill(p.pid, 0), /ESRCH/);
});
