// Istio in the loop, per-request mode: a MetaRouter with `mode: perRequest` makes the controller
// render the client role's WasmPlugin, an EnvoyFilter replacing the outbound tcp_proxy by an HTTP/2
// connection manager that takes its routes from the controller's RDS, and the server role's
// WasmPlugin. A real istiod programs a real sidecar Envoy from them; the calls of ONE client
// connection split per call over Istio's own subset clusters, and a MetaRouter edit moves the calls
// of that open connection within seconds, with no reconnect.
//
//   kube-apiserver + etcd, `meltemi run --rds-port P` (the real controller), istiod, the client's
//   sidecar Envoy (its bootstrap has the static meltemi-rds cluster, as a bootstrapOverride gives a
//   pod), and the servers' side as one Envoy running the server role in front of each real Thrift
//   server (the WorkloadEntries' addresses): a server-side sidecar programmed by istiod is not in
//   this test.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { until, freePort } from '../kube/cluster.mjs';
import { startEnvoy, staticClusters, socketAddress } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { Istiod, istiodBinaries, istioVersion, sidecarBootstrap } from '../istio/istiod.mjs';
import { ROOT } from './helpers.mjs';
import { KubeEnv, KINDS, router, installIstio } from './kube-env.mjs';

const WASM = join(ROOT, 'build/meltemi.wasm');
const K = {
  ...KINDS,
  Sidecar: { group: 'networking.istio.io', version: 'v1', plural: 'sidecars', namespaced: true },
  WorkloadEntry: { group: 'networking.istio.io', version: 'v1', plural: 'workloadentries', namespaced: true },
};
const HCM = 'envoy.filters.network.http_connection_manager';

const env = new KubeEnv();
let istiod;
let rdsPort;
let version;

const apply = (o) => env.admin.apply(K[o.kind], o);
const answeredBy = (reply) => reply.split(':')[0];

before(async () => {
  assert.ok(existsSync(WASM), `${WASM} missing: run make build`);
  const sha256 = createHash('sha256').update(readFileSync(WASM)).digest('hex');
  const bin = istiodBinaries();
  rdsPort = await freePort();
  await env.start(['--module-url', `file://${WASM}`, '--module-sha256', sha256, '--rds-port', String(rdsPort)]);
  await installIstio(env);
  istiod = new Istiod(bin, env.cluster.writeKubeconfig('istiod', env.cluster.adminToken));
  await istiod.start();
  version = istioVersion(bin);
}, { timeout: 90 * 60 * 1000 });

after(async () => {
  await istiod?.stop();
  await env.stop();
});

/** The servers' side: per server, a listener with the server role before a tcp_proxy to it. */
async function serverSide(t, servers) {
  const pr = await import(join(ROOT, 'dist/controller/per-request.mjs'));
  const plugin = pr.roleConfig({ codec: 'thrift', mode: 'perRequest', routes: [] }, 'server');
  const ports = {};
  const listeners = [];
  for (const [name, s] of Object.entries(servers)) {
    ports[name] = await freePort();
    listeners.push({
      name: `inbound-${name}`, address: socketAddress(ports[name]),
      filter_chains: [{ filters: [pr.wasmFilter(plugin, WASM), {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: `inbound_${name}`, cluster: `app-${name}` },
      }] }],
    });
  }
  const clusters = staticClusters(Object.fromEntries(Object.entries(servers).map(([n, s]) => [`app-${n}`, [{ port: s.port }]])));
  await startEnvoy({ t, config: { static_resources: { listeners, clusters } }, logLevel: 'warning' });
  return ports;
}

test('per-request mode through istiod: the calls of one connection split per call, and a MetaRouter edit moves them with no reconnect', { timeout: 180_000 }, async (t) => {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const inbound = await serverSide(t, servers);
  const ns = await env.namespace('istio-pr');
  const port = await freePort();
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const name = `meltemi-thrift-demo-${port}`;
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port, targetPort: 'thrift' }] } });
  for (const v of ['v1', 'v2']) {
    await apply({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: `thrift-demo-${v}`, namespace: ns },
      spec: { address: '127.0.0.1', labels: { app: 'thrift-demo', version: v }, ports: { thrift: inbound[v] } } });
  }
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { host, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns },
    spec: { egress: [{ hosts: ['./*'] }] } });
  const split = (w1, w2) => [{ name: 'split', route: [
    { destination: { host: 'thrift-demo', subset: 'v1' }, weight: w1 },
    { destination: { host: 'thrift-demo', subset: 'v2' }, weight: w2 },
  ] }];
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest', routes: split(20, 80) }));
  const wasmPlugin = await until('client WasmPlugin', () => env.getOpt('WasmPlugin', ns, name));
  const serverPlugin = await until('server WasmPlugin', () => env.getOpt('WasmPlugin', ns, `${name}-server`));
  const envoyFilter = await until('EnvoyFilter', () => env.getOpt('EnvoyFilter', ns, name));
  assert.equal(wasmPlugin.spec.pluginConfig.role, 'client');
  assert.equal(serverPlugin.spec.pluginConfig.role, 'server');
  assert.deepEqual(serverPlugin.spec.selector.matchLabels, { app: 'thrift-demo' });
  assert.deepEqual(serverPlugin.spec.match, [{ mode: 'SERVER' }]);
  const patch = envoyFilter.spec.configPatches[0].patch;
  assert.equal(patch.operation, 'REPLACE');
  assert.equal(patch.value.name, HCM);

  // The client's sidecar: istiod's bootstrap plus the static cluster of the controller's RDS.
  const boot = sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${version}.0` });
  boot.static_resources.clusters.push(...staticClusters({ 'meltemi-rds': [{ port: rdsPort }] }));
  const envoy = await startEnvoy({ t, config: boot, readyTimeout: 60000 });
  const listener = await until('the listener runs the connection manager, after the Wasm filter', async () => {
    const configs = JSON.parse((await envoy.admin('/config_dump')).body).configs;
    const l = configs.find((c) => c['@type'].endsWith('.ListenersConfigDump'))?.dynamic_listeners
      ?.map((x) => x.active_state?.listener).find((x) => x?.address?.socket_address?.port_value === port);
    const filters = l?.filter_chains?.[0]?.filters ?? [];
    return filters.some((f) => f.name === HCM) && filters;
  }, 60000, 200);
  assert.ok(listener[0].config_discovery, 'the Wasm filter (ECDS) comes first');
  const hcm = listener.find((f) => f.name === HCM).typed_config;
  assert.equal(hcm.rds.route_config_name, `meltemi/${ns}/${name}`);
  await until('RDS delivered the route table', async () => (await envoy.stat(`http.${name.replace(/-/g, '_')}.rds.meltemi/${ns}/${name}.update_success`)) >= 1
    || [...(await envoy.stats())].some(([k, v]) => k.includes('.rds.') && k.endsWith('.update_success') && v >= 1), 30000, 200);
  process.stdout.write(`# per-request listener: ${JSON.stringify(listener.map((f) => f.name))}; rds ${JSON.stringify(hcm.rds)}\n`);

  // One client connection: the split acts per call.
  const c = await thriftClient({ port, timeout: 10_000 });
  t.after(() => c.close());
  const n = 400;
  const by = { v1: 0, v2: 0 };
  for (let i = 0; i < n; i++) by[answeredBy(await c.sayHello(`c${i}`))]++;
  process.stdout.write(`# one connection, ${n} calls at 20/80: v1 ${by.v1}, v2 ${by.v2}\n`);
  // Binomial(400, 0.2): mean 80, sd 8; 4 sd either way.
  assert.ok(Math.abs(by.v1 - 80) <= 32, `v1 answered ${by.v1} of ${n}`);

  // Edit the MetaRouter: every call to v1. The open connection follows within seconds, by RDS.
  const t0 = Date.now();
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest', routes: split(100, 0) }));
  let calls = 0;
  await until('the open connection\'s calls reach v1 only', async () => {
    for (let i = 0; i < 20; i++) { calls++; if (answeredBy(await c.sayHello('after')) !== 'v1') return false; }
    return true;
  }, 30000, 100);
  const movedMs = Date.now() - t0;
  process.stdout.write(`# MetaRouter edit reached the open connection after ${movedMs} ms (${calls} calls)\n`);
  assert.equal(c.isClosed, false, 'no reconnect');
  const s = await envoy.stats();
  assert.equal(await envoy.metric('meltemi_connections_total'), 1, 'one client connection throughout');
  assert.equal(s.get('listener_manager.listener_modified') ?? 0, 0, 'the listener was never replaced (no drain)');
});

test('per-request mode through istiod: the DestinationRule\'s consistentHash.httpHeaderName pins calls by a metadata key, and mirror copies them to a shadow', { timeout: 180_000 }, async (t) => {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }), shadow: await startThriftServer({ name: 'shadow' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const inbound = await serverSide(t, servers);
  const ns = await env.namespace('istio-pr-hash');
  const port = await freePort();
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const name = `meltemi-thrift-demo-${port}`;
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port, targetPort: 'thrift' }] } });
  for (const [v, labels] of [['v1', { pool: 'yes' }], ['v2', { pool: 'yes' }], ['shadow', {}]]) {
    await apply({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: `thrift-demo-${v}`, namespace: ns },
      spec: { address: '127.0.0.1', labels: { app: 'thrift-demo', version: v, ...labels }, ports: { thrift: inbound[v] } } });
  }
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'thrift-demo', namespace: ns },
    spec: {
      host,
      trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'method' } } },
      subsets: [{ name: 'pool', labels: { pool: 'yes' } }, { name: 'shadow', labels: { version: 'shadow' } }],
    } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*'] }] } });
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest', routes: [{
    name: 'pooled', route: [{ destination: { host: 'thrift-demo', subset: 'pool' } }],
    mirror: { host: 'thrift-demo', subset: 'shadow' }, mirrorPercentage: { value: 100 },
  }] }));
  const wasmPlugin = await until('client WasmPlugin', () => env.getOpt('WasmPlugin', ns, name));
  assert.equal(wasmPlugin.spec.pluginConfig.routes[0].hashKey, 'method', 'the DestinationRule\'s header names the hash key');
  assert.deepEqual(wasmPlugin.spec.pluginConfig.routes[0].mirror, { cluster: `outbound|${port}|shadow|${host}`, percent: 100 });
  const status = await until('Accepted without warnings', async () => {
    const m = await env.getOpt('MetaRouter', ns, 'thrift-demo');
    return m?.status?.conditions?.find((c) => c.type === 'Accepted' && c.status === 'True') && m;
  });
  assert.doesNotMatch(status.status.conditions.find((c) => c.type === 'Accepted').message, /mirror/, 'mirror is programmed, not ignored');

  const boot = sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${version}.0` });
  boot.static_resources.clusters.push(...staticClusters({ 'meltemi-rds': [{ port: rdsPort }] }));
  const envoy = await startEnvoy({ t, config: boot, readyTimeout: 60000 });
  await until('the pool cluster has both endpoints and the route table arrived', async () => {
    const clusters = JSON.parse((await envoy.admin('/clusters?format=json')).body).cluster_statuses ?? [];
    const pool = clusters.find((c) => c.name === `outbound|${port}|pool|${host}`);
    const rds = [...(await envoy.stats())].some(([k, v]) => k.includes('.rds.') && k.endsWith('.update_success') && v >= 1);
    return pool?.host_statuses?.length === 2 && rds;
  }, 60000, 200);
  const configs = JSON.parse((await envoy.admin('/config_dump?resource=dynamic_active_clusters')).body).configs;
  const pool = configs.map((c) => c.cluster).find((c) => c?.name === `outbound|${port}|pool|${host}`);
  assert.equal(pool.lb_policy, 'RING_HASH', 'istiod made the pool consistent-hash from the DestinationRule');

  const c = await thriftClient({ port, timeout: 10_000 });
  t.after(() => c.close());
  for (let i = 0; i < 40; i++) await c.sayHello(`h${i}`);
  for (let i = 0; i < 40; i++) await c.echo(`e${i}`);
  const hellos = (s) => s.calls.filter((x) => x.method === 'sayHello').length;
  const echoes = (s) => s.calls.filter((x) => x.method === 'echo').length;
  process.stdout.write(`# hash on method: sayHello v1 ${hellos(servers.v1)} v2 ${hellos(servers.v2)}; echo v1 ${echoes(servers.v1)} v2 ${echoes(servers.v2)}\n`);
  assert.ok([hellos(servers.v1), hellos(servers.v2)].sort().join() === '0,40', 'every sayHello reached one endpoint');
  assert.ok([echoes(servers.v1), echoes(servers.v2)].sort().join() === '0,40', 'every echo reached one endpoint');
  await until('the shadow got every call', () => servers.shadow.calls.length === 80, 10000, 50);
  process.stdout.write(`# mirror: the shadow got ${servers.shadow.calls.length} of 80 calls\n`);
});

/** A server's sidecar as istiod programs it: an inbound listener on `inbound` (Sidecar ingress) to the app. */
async function serverSidecar(t, ns, v, inbound, appPort) {
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: `thrift-demo-${v}`, namespace: ns },
    spec: {
      workloadSelector: { labels: { app: 'thrift-demo', version: v } },
      ingress: [{ port: { number: inbound, protocol: 'TCP', name: 'thrift' }, defaultEndpoint: `127.0.0.1:${appPort}`, bind: '127.0.0.1' }],
      egress: [{ hosts: ['./*'] }],
    } });
  const boot = sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${version}.0`, workload: `thrift-demo-${v}` });
  boot.node.metadata.LABELS = { app: 'thrift-demo', version: v };
  return startEnvoy({ t, config: boot, readyTimeout: 60000 });
}

test('per-request mode through istiod on both sides: the server sidecars run the server role on their inbound listeners', { timeout: 180_000 }, async (t) => {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const ns = await env.namespace('istio-pr-both');
  const port = await freePort();
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const inbound = { v1: await freePort(), v2: await freePort() };
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port, targetPort: 'thrift' }] } });
  for (const v of ['v1', 'v2']) {
    await apply({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: `thrift-demo-${v}`, namespace: ns },
      spec: { address: '127.0.0.1', labels: { app: 'thrift-demo', version: v }, ports: { thrift: inbound[v] } } });
  }
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { host, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*'] }] } });
  // No workload certificates here (no Istio agent): plaintext between the sidecars.
  await env.admin.apply({ group: 'security.istio.io', version: 'v1', plural: 'peerauthentications', namespaced: true },
    { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: ns }, spec: { mtls: { mode: 'DISABLE' } } });
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest', routes: [{ name: 'split', route: [
    { destination: { host: 'thrift-demo', subset: 'v1' }, weight: 50 },
    { destination: { host: 'thrift-demo', subset: 'v2' }, weight: 50 },
  ] }] }));
  const name = `meltemi-thrift-demo-${port}`;
  await until('server WasmPlugin', () => env.getOpt('WasmPlugin', ns, `${name}-server`));
  const sidecars = { v1: await serverSidecar(t, ns, 'v1', inbound.v1, servers.v1.port), v2: await serverSidecar(t, ns, 'v2', inbound.v2, servers.v2.port) };
  for (const [v, e] of Object.entries(sidecars)) {
    const filters = await until(`${v}'s inbound listener runs the Wasm filter before tcp_proxy`, async () => {
      const configs = JSON.parse((await e.admin('/config_dump')).body).configs;
      const l = configs.find((c) => c['@type'].endsWith('.ListenersConfigDump'))?.dynamic_listeners
        ?.map((x) => x.active_state?.listener).find((x) => x?.address?.socket_address?.port_value === inbound[v]);
      const f = l?.filter_chains?.flatMap((c) => c.filters) ?? [];
      return f.some((x) => x.config_discovery) && f.some((x) => x.name === 'envoy.filters.network.tcp_proxy') && f;
    }, 60000, 200);
    process.stdout.write(`# ${v} inbound: ${JSON.stringify(filters.map((f) => f.name))}\n`);
  }
  const boot = sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${version}.0` });
  boot.static_resources.clusters.push(...staticClusters({ 'meltemi-rds': [{ port: rdsPort }] }));
  const client = await startEnvoy({ t, config: boot, readyTimeout: 60000 });
  await until('the route table arrived', async () => [...(await client.stats())].some(([k, v]) => k.includes('.rds.') && k.endsWith('.update_success') && v >= 1), 60000, 200);
  const c = await thriftClient({ port, timeout: 10_000 });
  t.after(() => c.close());
  // A raw client straight to a server sidecar (outside the mesh) passes through the server role.
  const direct = await thriftClient({ port: inbound.v1, timeout: 10_000 });
  t.after(() => direct.close());
  await until('calls flow through both sidecars', async () => (await c.sayHello('first')).includes('hello'), 30000, 200);
  const by = { v1: 0, v2: 0 };
  for (let i = 0; i < 100; i++) by[answeredBy(await c.sayHello(`c${i}`))]++;
  assert.equal(await direct.sayHello('outside'), 'v1: hello outside');
  process.stdout.write(`# both sides: one connection, 100 calls at 50/50: v1 ${by.v1}, v2 ${by.v2}\n`);
  assert.ok(by.v1 >= 30 && by.v2 >= 30, JSON.stringify(by));
  // The server role counted the calls on each server sidecar, per route (the route Envoy chose).
  const counted = {};
  for (const [v, e] of Object.entries(sidecars)) counted[v] = (await e.metric('meltemi_requests_total', { meltemi_route: 'split', meltemi_kind: 'call' })) ?? 0;
  process.stdout.write(`# server role counted ${JSON.stringify(counted)}\n`);
  assert.ok(counted.v1 >= by.v1 && counted.v2 >= by.v2, JSON.stringify(counted));
  assert.equal(await sidecars.v1.metric('meltemi_out_of_scope_total'), 1, 'the raw client passed through');
});
