// Thrift routing through the real Envoy and the real Meltemi filter, with real Apache Thrift
// clients and servers. Routing is per connection: the first request picks the route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thriftMesh, answeredBy } from './lib/mesh.mjs';
import { waitFor, startEnvoy, meltemiBootstrap } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';

const byMethod = {
  codec: 'thrift',
  routes: [
    { name: 'hello-to-v2', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }] },
    { name: 'rest-to-v1', route: [{ cluster: 'v1' }] },
  ],
};

test('routes each connection by the method of its first request', async (t) => {
  const mesh = await thriftMesh(t, { plugin: byMethod });
  const hello = await mesh.client();
  assert.equal(answeredBy(await hello.sayHello('alice')), 'v2');
  const other = await mesh.client();
  assert.equal(await other.echo('x'), 'x');
  assert.deepEqual(mesh.servers.v1.calls.map((c) => c.method), ['echo']);
  assert.deepEqual(mesh.servers.v2.calls.map((c) => c.method), ['sayHello']);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'hello-to-v2', meltemi_kind: 'call' }), 1);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'hello-to-v2', meltemi_status: 'reply' }), 1);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'rest-to-v1', meltemi_kind: 'call' }), 1);
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'rest-to-v1' }), 1);
  assert.equal(s.get('meltemi_active_requests'), 0);
  // A config without `service` is labelled by Envoy's name for the plugin (the filter's config.name).
  assert.deepEqual(s.series('meltemi_connections_total').map((x) => x.labels.meltemi_service), ['meltemi']);
});

for (const transport of ['framed', 'buffered']) {
  for (const protocol of ['binary', 'compact']) {
    test(`routes ${transport} ${protocol} traffic (transport and protocol detected from the bytes)`, async (t) => {
      const opts = { transport, protocol };
      const mesh = await thriftMesh(t, { plugin: byMethod, servers: { v1: opts, v2: opts } });
      const c = await mesh.client();
      // Several calls on one connection: all stay on the connection's route.
      for (let i = 0; i < 5; i++) assert.equal(answeredBy(await c.sayHello(`n${i}`)), 'v2');
      const d = await mesh.client();
      assert.equal(await d.add(2, 3), 5);
      assert.equal(mesh.servers.v1.calls.length, 1);
      assert.equal(mesh.servers.v2.calls.length, 5);
      assert.equal(await mesh.envoy.metric('meltemi_responses_total', { meltemi_route: 'hello-to-v2', meltemi_status: 'reply' }), 5);
    });
  }
}

test('routes on the service name of a multiplexed connection', async (t) => {
  const plugin = {
    codec: 'thrift',
    routes: [
      { name: 'calculator', match: { attributes: { service: { exact: 'Calculator' } } }, route: [{ cluster: 'v2' }] },
      { name: 'greeter', match: { attributes: { service: { prefix: 'Greet' }, method: { regex: 'say[A-Z][a-z]+' } } }, route: [{ cluster: 'v1' }] },
    ],
  };
  const mux = { multiplexed: true };
  const mesh = await thriftMesh(t, { plugin, servers: { v1: mux, v2: mux } });
  const calc = await mesh.client({ multiplexed: true, service: 'Calculator' });
  assert.equal(await calc.whoami(), 'v2:Calculator');
  assert.equal(await calc.multiply(6, 7), 42);
  const greet = await mesh.client({ multiplexed: true, service: 'Greeter' });
  assert.equal(answeredBy(await greet.sayHello('bob')), 'v1');
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'calculator', meltemi_kind: 'call' }), 2);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: 'greeter', meltemi_kind: 'call' }), 1);
});

test('splits connections 20/80 by weight', async (t) => {
  const plugin = { codec: 'thrift', routes: [{ name: 'split', route: [{ cluster: 'v1', weight: 20 }, { cluster: 'v2', weight: 80 }] }] };
  const mesh = await thriftMesh(t, { plugin });
  const n = 300;
  const counts = { v1: 0, v2: 0 };
  for (let i = 0; i < n; i += 30) {
    const batch = await Promise.all(Array.from({ length: 30 }, async () => {
      const c = await mesh.client();
      const who = answeredBy(await c.sayHello('w'));
      c.close();
      return who;
    }));
    for (const who of batch) counts[who]++;
  }
  assert.equal(counts.v1 + counts.v2, n);
  // Binomial(300, 0.2): mean 60, sd 6.9. Four standard deviations either side.
  assert.ok(counts.v1 >= 32 && counts.v1 <= 88, `v1 got ${counts.v1} of ${n}`);
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_route_connections_total', { meltemi_route: 'split' }), n);
});

test('a connection whose first request matches no route is refused, or sent to defaultCluster', async (t) => {
  const plugin = { codec: 'thrift', routes: [{ name: 'only-echo', match: { attributes: { method: { exact: 'echo' } } }, route: [{ cluster: 'v2' }] }] };
  const mesh = await thriftMesh(t, { plugin });
  const c = await mesh.client();
  await assert.rejects(c.sayHello('nobody'), /closed|ECONNRESET|EPIPE/);
  assert.equal(await c.closed, 'peer');
  assert.equal(await mesh.envoy.metric('meltemi_no_route_total'), 1);
  assert.equal(mesh.servers.v1.calls.length + mesh.servers.v2.calls.length, 0);

  const withDefault = await thriftMesh(t, { plugin: { ...plugin, defaultCluster: 'v1' } });
  const d = await withDefault.client();
  assert.equal(answeredBy(await d.sayHello('somebody')), 'v1');
  const s = await withDefault.envoy.metrics();
  assert.equal(s.get('meltemi_no_route_total'), 1);
  assert.equal(s.get('meltemi_requests_total', { meltemi_route: '_default', meltemi_kind: 'call' }), 1);
});

test('mismatch policy keep: later requests stay on the connection\'s route and are counted', async (t) => {
  const mesh = await thriftMesh(t, { plugin: byMethod });
  const c = await mesh.client();
  assert.equal(answeredBy(await c.sayHello('a')), 'v2');
  assert.equal(await c.echo('b'), 'b');
  assert.equal(mesh.servers.v2.calls.length, 2, 'the echo stayed on v2');
  assert.equal(await mesh.envoy.metric('meltemi_route_mismatch_total'), 1);
});

test('mismatch policy close: the connection closes once answered, and a new one is routed afresh', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { ...byMethod, mismatchPolicy: 'close' } });
  const c = await mesh.client();
  // A slow call in flight, then a request for another route on the same connection.
  const slow = c.echo('delay:300:first');
  await waitFor(() => mesh.servers.v1.calls.length === 1);
  const other = c.sayHello('needs-v2');
  assert.equal(await slow, 'delay:300:first', 'the in-flight answer is delivered before the close');
  await assert.rejects(other, /closed|ECONNRESET|EPIPE/);
  assert.equal(await c.closed, 'peer');
  assert.deepEqual(mesh.servers.v1.calls.map((x) => x.args), [['delay:300:first']], 'v1 got only the slow echo: the mismatched request never reached v1');
  assert.equal(mesh.servers.v2.calls.length, 0, 'the mismatched request never reached v2');
  const fresh = await mesh.client();
  assert.equal(answeredBy(await fresh.sayHello('again')), 'v2');
  assert.equal(await mesh.envoy.metric('meltemi_route_mismatch_total'), 1);
});

test('a route naming a cluster Envoy lacks: its connections are closed, counted in no_cluster and logged; others are not', async (t) => {
  const v1 = await startThriftServer({ name: 'v1' });
  t.after(() => v1.stop());
  const plugin = {
    codec: 'thrift',
    routes: [
      { name: 'typo', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v1-typo' }] },
      { name: 'down', match: { attributes: { method: { exact: 'add' } } }, route: [{ cluster: 'dead' }] },
      { name: 'rest', route: [{ cluster: 'v1' }] },
    ],
  };
  // `dead` exists but nothing listens on it (port 1, tcpmux, privileged: no test beside this one can
  // take it): a connect failure, which is not a missing cluster.
  const envoy = await startEnvoy({
    t, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: meltemiBootstrap({ plugin, clusters: { v1: [{ port: v1.port }], dead: [{ port: 1 }] } }),
  });
  const port = await envoy.listenerPort('meltemi');
  const client = async () => {
    const c = await thriftClient({ port, timeout: 5000 });
    t.after(() => c.close());
    return c;
  };
  for (let i = 0; i < 2; i++) {
    const c = await client();
    await assert.rejects(c.sayHello(`lost-${i}`), /closed|ECONNRESET|EPIPE/);
  }
  await assert.rejects((await client()).add(1, 2), /closed|ECONNRESET|EPIPE/);
  assert.equal(await (await client()).echo('fine'), 'fine');
  await envoy.waitForLog(/meltemi conn=\d+\.\d+: route typo sends to cluster v1-typo, which Envoy does not have; tcp_proxy closed the connection/);
  await waitFor(async () => (await envoy.stats()).get('tcp.meltemi.downstream_cx_no_route') === 2, { message: "tcp_proxy's own count" });
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_no_cluster_total'), 2, 'the two connections routed to v1-typo, not the connect failure nor the answered one');
  assert.doesNotMatch(envoy.logs(), /cluster (dead|v1),/);
});
