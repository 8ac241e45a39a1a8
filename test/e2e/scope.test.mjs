// scope: Istio applies a network WasmPlugin by port, so other TCP services on a routed port get
// the filter too. Connections whose destination is outside the config's scope pass through
// untouched to tcp_proxy's own cluster; those inside are routed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thriftMesh, answeredBy } from './lib/mesh.mjs';

const routes = [
  { name: 'hello-to-v2', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }] },
];

test('a connection to another destination passes through untouched to tcp_proxy\'s cluster', async (t) => {
  // tcp_proxy's plain cluster is the first one (v1); the route would say v2.
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', scope: { destinations: ['10.255.0.1', 'fd00::1/128'] }, routes } });
  const c = await mesh.client();
  assert.equal(answeredBy(await c.sayHello('outsider')), 'v1');
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_out_of_scope_total'), 1);
  assert.equal(s.value('meltemi_connections_total'), 0);
  // Absent, not 0: a labelled series is defined on first use (the next test reads this one as 1).
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'hello-to-v2', meltemi_kind: 'call' }), undefined);
});

test('a connection to a destination in scope is routed', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', scope: { destinations: ['10.255.0.1', '127.0.0.0/8'] }, routes } });
  const c = await mesh.client();
  assert.equal(answeredBy(await c.sayHello('insider')), 'v2');
  const s = await mesh.envoy.metrics();
  assert.equal(s.value('meltemi_out_of_scope_total'), 0);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'hello-to-v2', meltemi_kind: 'call' }), 1);
});
