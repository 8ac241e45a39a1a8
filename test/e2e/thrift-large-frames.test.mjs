// Frames larger than one TCP read, pipelined, through Meltemi: after routing, the filter reads only
// the first bytes of each framed Thrift message and lets the rest pass (see skipFrames in
// assembly/roles/per-connection.ts). Every reply must still be its own call's payload, and every
// call and reply must be counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thriftMesh } from './lib/mesh.mjs';

const plugin = {
  codec: 'thrift',
  routes: [{ name: 'echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'v1' }] }],
};

test('large pipelined frames pass through intact and are all counted', async (t) => {
  const mesh = await thriftMesh(t, { plugin, servers: { v1: {} } });
  const c = await mesh.client();
  const sizes = [10, 300_000, 17, 70_000, 4096, 1, 250_000, 65_536, 33];
  const payloads = sizes.map((n, i) => String.fromCharCode(97 + i).repeat(n));
  // First call alone (it routes the connection), then the rest pipelined on the same connection.
  assert.equal(await c.echo(payloads[0]), payloads[0]);
  const replies = await Promise.all(payloads.slice(1).map((p) => c.echo(p)));
  replies.forEach((r, i) => assert.ok(r === payloads[i + 1], `reply ${i + 1} (${sizes[i + 1]} bytes) is its own payload`));
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'echo', meltemi_kind: 'call' }), sizes.length);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'echo', meltemi_status: 'reply' }), sizes.length);
  assert.equal(s.value('meltemi_active_requests'), 0);
  assert.equal(s.value('meltemi_decode_error_total'), 0);
  assert.equal(s.value('meltemi_truncated_total'), 0);
});
