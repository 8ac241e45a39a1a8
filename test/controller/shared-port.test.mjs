// Per-request mode on a port other services share, in the pure render: the EnvoyFilter patches only
// the routed host's own listeners (<address>_<port>), the client role's scope drops loopback, two
// per-request routers may then share the port; a host Istio gives no listener of its own is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { render, toRenderInput, DEFAULT_OPTIONS, assertIstio } from './helpers.mjs';

const AP = { apiVersion: 'meltemi.dev/v1alpha1', kind: 'ApplicationProtocol', metadata: { name: 'thrift' }, spec: { protocol: 'thrift', codec: 'thrift' } };
const service = (name, spec) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'demo' }, spec: { selector: { app: name }, ...spec } });
const thrift = (name, clusterIP) => service(name, { ...(clusterIP ? { clusterIP, clusterIPs: [clusterIP] } : { clusterIP: 'None' }), ports: [{ name: 'tcp-metaprotocol-thrift', port: 9090 }] });
const router = (name, mode = 'perRequest', created = '2026-01-01T00:00:00Z') => ({ apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter',
  metadata: { name, namespace: 'demo', creationTimestamp: created }, spec: { hosts: [name], mode, routes: [{ name: 'all', route: [{ destination: { host: name } }] }] } });
const renderAll = (...objs) => render(toRenderInput([AP, ...objs]), DEFAULT_OPTIONS);
const of = (out, kind, name) => out.resources.find((r) => r.kind === kind && r.metadata.name === name);

test('alone on its port, a per-request EnvoyFilter matches the port, as before', () => {
  const out = renderAll(thrift('a', '10.0.0.1'), router('a'));
  assert.deepEqual(of(out, 'EnvoyFilter', 'meltemi-a-9090').spec.configPatches.map((p) => p.match.listener), [{ portNumber: 9090, filterChain: { filter: { name: 'envoy.filters.network.tcp_proxy' } } }]);
  assert.deepEqual(of(out, 'WasmPlugin', 'meltemi-a-9090').spec.pluginConfig.scope.destinations, ['10.0.0.1', '127.0.0.0/8', '::1/128']);
});

test('two per-request Services and a plain TCP one on one port: each EnvoyFilter patches its own listener, each client role is scoped to its address', () => {
  const plain = service('plain', { clusterIP: '10.0.0.9', clusterIPs: ['10.0.0.9'], ports: [{ name: 'tcp', port: 9090 }] });
  const out = renderAll(thrift('a', '10.0.0.1'), thrift('b', '10.0.0.2'), plain, router('a'), router('b', 'perRequest', '2026-01-02T00:00:00Z'));
  for (const [k, ip] of [['a', '10.0.0.1'], ['b', '10.0.0.2']]) {
    assert.equal(out.conditions.get(`demo/${k}`).status, 'True', out.conditions.get(`demo/${k}`).message);
    const filter = of(out, 'EnvoyFilter', `meltemi-${k}-9090`);
    assertIstio(filter);
    assert.deepEqual(filter.spec.configPatches.map((p) => p.match.listener), [{ name: `${ip}_9090`, portNumber: 9090, filterChain: { filter: { name: 'envoy.filters.network.tcp_proxy' } } }]);
    assert.deepEqual(of(out, 'WasmPlugin', `meltemi-${k}-9090`).spec.pluginConfig.scope, { destinations: [ip] });
  }
  assert.equal(out.routes.size, 2, 'a route table each');
});

test('a shared per-request port is refused for a host with no address, and still conflicts with a per-connection router', () => {
  const headless = renderAll(thrift('a'), thrift('b', '10.0.0.2'), router('a'));
  const c = headless.conditions.get('demo/a');
  assert.equal(`${c.status} ${c.reason}: ${c.message}`, 'False SharedPort: host a.demo.svc.cluster.local port 9090: per-request mode on a port shared with Service demo/b needs a listener of its own, which Istio builds only for a host with an IP address (a ClusterIP, or a ServiceEntry\'s spec.addresses); this host has none, so its connection manager would replace the others\' tcp_proxy too: give it an address or a port of its own');
  assert.equal(headless.resources.length, 0);
  const mixed = renderAll(thrift('a', '10.0.0.1'), thrift('b', '10.0.0.2'), router('a'), router('b', 'perConnection', '2026-01-02T00:00:00Z'));
  assert.equal(mixed.conditions.get('demo/a').status, 'True');
  assert.equal(mixed.conditions.get('demo/b').reason, 'Conflict');
  assert.equal(mixed.conditions.get('demo/b').message, 'port 9090 in namespace demo is already routed by MetaRouter demo/a');
  // Two routers for one host on a shared port would patch the same listener: still a conflict.
  const sameHost = { ...router('a', 'perRequest', '2026-01-03T00:00:00Z'), metadata: { name: 'a-too', namespace: 'demo', creationTimestamp: '2026-01-03T00:00:00Z' } };
  const twice = renderAll(thrift('a', '10.0.0.1'), thrift('b', '10.0.0.2'), router('a'), sameHost);
  assert.equal(twice.conditions.get('demo/a-too').message, 'port 9090 in namespace demo is already routed by MetaRouter demo/a');
});
