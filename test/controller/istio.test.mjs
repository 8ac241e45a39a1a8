// Istio in the loop: the controller's WasmPlugin and EnvoyFilter, read by a real istiod, program a real
// Envoy that routes real Apache Thrift calls. Nothing here writes Envoy config except the few lines
// every Istio proxy's bootstrap has (node identity and where istiod is).
//
//   kube-apiserver + etcd (test/kube) with Istio's CRDs and deploy/meltemi.yaml
//   `meltemi run` (the real controller, as its ServiceAccount)  --> WasmPlugin + EnvoyFilter
//   istiod (pilot-discovery, test/istio/fetch-istiod.sh)         --> LDS/CDS/EDS/ECDS over ADS
//   Envoy 1.40 (the wheel) as a sidecar of namespace <ns>, INTERCEPTION_MODE NONE: the outbound
//   listener of the Service port is bound on 127.0.0.1:<port>
//   two real Thrift servers v1 and v2 on 127.0.0.1, the Service's endpoints through WorkloadEntries
//   (there are no pods: istiod lets a Kubernetes Service select WorkloadEntries, labels included, so
//   DestinationRule subsets by label work)
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { until, freePort } from '../kube/cluster.mjs';
import { startEnvoy, requireStat } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { Istiod, istiodBinaries, istioVersion, sidecarBootstrap } from '../istio/istiod.mjs';
import { ROOT } from './helpers.mjs';
import { KubeEnv, KINDS, condition, router, thriftDemoObjects, installIstio } from './kube-env.mjs';

const WASM = join(ROOT, 'build/meltemi.wasm');
const K = {
  ...KINDS,
  Sidecar: { group: 'networking.istio.io', version: 'v1', plural: 'sidecars', namespaced: true },
  WorkloadEntry: { group: 'networking.istio.io', version: 'v1', plural: 'workloadentries', namespaced: true },
};
const WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';
const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

const env = new KubeEnv();
const evidence = {};
let istiod, sha256;

const apply = (o) => env.admin.apply(K[o.kind], o);
const ofType = (configs, t) => configs.find((c) => c['@type'].endsWith(`.${t}`));

/** The outbound listener istiod bound for the demo's Service port, and the ECDS filter it names (if any). */
async function programmed(demo) {
  const configs = JSON.parse((await demo.envoy.admin('/config_dump')).body).configs;
  const listener = ofType(configs, 'ListenersConfigDump')?.dynamic_listeners
    ?.map((l) => l.active_state?.listener).find((l) => l?.address?.socket_address?.port_value === demo.port);
  const ecds = (ofType(configs, 'EcdsConfigDump')?.ecds_filters ?? []).map((f) => f.ecds_filter);
  const filters = listener?.filter_chains?.[0]?.filters ?? [];
  const wasmRef = filters.find((f) => f.config_discovery?.type_urls?.includes(WASM_TYPE));
  const wasm = wasmRef && ecds.find((e) => e.name === wasmRef.name)?.typed_config;
  const tcp = filters.find((f) => f.name === TCP_PROXY)?.typed_config;
  return { listener, filters, wasmRef, wasm, tcp, ecds };
}

/** A counter of the ECDS subscription of the Wasm filter (its name is Istio's, never hard-coded). */
const ecdsStat = (stats, counter) => [...stats].find(([k]) => k.startsWith('extension_config_discovery.network_filter.') && k.endsWith(`.${counter}`))?.[1];

/** The plugin config Envoy runs (what istiod put in the ECDS Wasm config), parsed. */
const runningConfig = (p) => p.wasm && JSON.parse(p.wasm.config.configuration.value);

/** One Thrift call on a new connection through the demo's sidecar listener. */
async function call(demo, method, arg) {
  const c = await thriftClient({ port: demo.port });
  try { return await c[method](arg); } finally { c.close(); }
}
const answeredBy = (reply) => reply.split(':')[0];
const routes = (hello, rest) => [
  { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ destination: { host: 'thrift-demo', subset: hello } }] },
  { name: 'rest', route: [{ destination: { host: 'thrift-demo', subset: rest } }] },
];

/**
 * Everything one test needs, of its own: two real Thrift servers v1 and v2, a fresh namespace with
 * the Service (on a free port), WorkloadEntries, DestinationRule, Sidecar and a MetaRouter sending
 * sayHello to `hello` and the rest to `rest`, the WasmPlugin and EnvoyFilter the controller made
 * for it, and a sidecar Envoy of the namespace running the Wasm filter istiod pushed. All stopped
 * when `t` ends.
 */
async function thriftDemo(t, label, { hello, rest }) {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const ns = await env.namespace(label);
  const port = await freePort();   // the Service port: Envoy binds the outbound listener on 127.0.0.1:<port>
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const name = `meltemi-thrift-demo-${port}`;
  for (const o of thriftDemoObjects(ns, port, { v1: servers.v1.port, v2: servers.v2.port })) await apply(o);
  const t0 = Date.now();
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], routes: routes(hello, rest) }));
  const wasmPlugin = await until('WasmPlugin', () => env.getOpt('WasmPlugin', ns, name));
  const envoyFilter = await until('EnvoyFilter', () => env.getOpt('EnvoyFilter', ns, name));
  const renderedMs = Date.now() - t0;
  const status = await until('Programmed', async () => {
    const m = await env.getOpt('MetaRouter', ns, 'thrift-demo'); return condition(m, 'Programmed')?.status === 'True' && m;
  });
  const t1 = Date.now();
  const envoy = await startEnvoy({
    t,
    config: sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${evidence.istioVersion}.0` }),
    readyTimeout: 60000,
  });
  const demo = { servers, ns, port, host, name, envoy, wasmPlugin, envoyFilter, status, renderedMs };
  demo.initial = await until('Envoy has the listener with the Wasm filter and its ECDS config', async () => {
    const r = await programmed(demo); return r.wasm && r.tcp && r;
  }, 60000, 200);
  demo.envoyMs = Date.now() - t1;
  return demo;
}

before(async () => {
  assert.ok(existsSync(WASM), `${WASM} missing: run make build`);
  sha256 = createHash('sha256').update(readFileSync(WASM)).digest('hex');
  let t0 = Date.now();
  const bin = istiodBinaries();
  evidence.istiodFetchMs = Date.now() - t0;
  await env.start(['--module-url', `file://${WASM}`, '--module-sha256', sha256]);
  await installIstio(env);
  istiod = new Istiod(bin, env.cluster.writeKubeconfig('istiod', env.cluster.adminToken));
  t0 = Date.now();
  await istiod.start();
  evidence.istiodReadyMs = Date.now() - t0;
  evidence.istioVersion = istioVersion(bin);
}, { timeout: 90 * 60 * 1000 });

after(async () => {
  if (process.env.MELTEMI_TEST_LOGS && istiod) process.stdout.write(istiod.logs().replace(/^/gm, '# istiod: '));
  await istiod?.stop();
  await env.stop();
  process.stdout.write(`# istio ${evidence.istioVersion}: fetch-istiod ${evidence.istiodFetchMs} ms, istiod ready ${evidence.istiodReadyMs} ms, ` +
    `WasmPlugin after MetaRouter ${evidence.renderedMs} ms, Envoy programmed ${evidence.envoyMs} ms, re-route ${evidence.rerouteMs} ms, removal ${evidence.removeMs} ms\n`);
});

test('istiod turns the controller\'s WasmPlugin and EnvoyFilter into a Wasm filter (ECDS) before tcp_proxy with max_early_data_bytes, and real Thrift calls are routed by method', async (t) => {
  const demo = await thriftDemo(t, 'istio', { hello: 'v2', rest: 'v1' });
  const { servers, port, host, envoy, wasmPlugin, envoyFilter, initial: p } = demo;
  evidence.renderedMs = demo.renderedMs;
  evidence.envoyMs = demo.envoyMs;
  assert.equal(envoyFilter.spec.configPatches[0].patch.value.typed_config.max_early_data_bytes, 65536);
  assert.equal(wasmPlugin.spec.url, `file://${WASM}`);
  assert.equal(condition(demo.status, 'Accepted').status, 'True');

  // The listener: bound on loopback at the Service port; the Wasm filter (an ECDS reference) comes
  // right before tcp_proxy; the EnvoyFilter's MERGE gave tcp_proxy max_early_data_bytes.
  assert.deepEqual(p.listener.address.socket_address, { address: '127.0.0.1', port_value: port });
  assert.deepEqual(p.filters.map((f) => f.name), [p.wasmRef.name, TCP_PROXY], JSON.stringify(p.filters));
  assert.deepEqual(p.wasmRef.config_discovery.type_urls, [WASM_TYPE, RBAC_TYPE]);
  assert.ok(p.wasmRef.config_discovery.config_source.ads, 'ECDS over ADS');
  assert.equal(p.tcp.max_early_data_bytes, 65536);
  assert.equal(p.tcp.cluster, `outbound|${port}||${host}`);
  // The Wasm config: istiod's translation of the WasmPlugin (file:// -> local filename, root id = pluginName).
  assert.equal(p.wasm['@type'], WASM_TYPE);
  assert.equal(p.wasm.config.root_id, 'meltemi');
  // Istio >= 1.30 translates a WasmPlugin into a TrafficExtension named "<name>~istio-translated-wasmplugin".
  assert.match(p.wasm.config.name, new RegExp(`^${demo.ns}\\.${demo.name}(~|$)`));
  assert.deepEqual(p.wasm.config.vm_config.code, { local: { filename: WASM } });
  assert.equal(p.wasm.config.failure_policy, 'FAIL_CLOSED', 'the WasmPlugin\'s failStrategy FAIL_CLOSE');
  assert.deepEqual(runningConfig(p), wasmPlugin.spec.pluginConfig);
  process.stdout.write(`# listener ${p.listener.name}: ${JSON.stringify(p.filters)}\n`);
  process.stdout.write(`# ECDS: ${JSON.stringify({ ...p.wasm, config: { ...p.wasm.config, configuration: '...' } })}\n`);

  // Istio built the subset clusters from the DestinationRule, with the WorkloadEntries as endpoints.
  const clusters = JSON.parse((await envoy.admin('/clusters?format=json')).body).cluster_statuses;
  const endpointsOf = (c) => clusters.find((s) => s.name === c)?.host_statuses?.map((h) => h.address.socket_address.port_value);
  assert.deepEqual(endpointsOf(`outbound|${port}|v1|${host}`), [servers.v1.port]);
  assert.deepEqual(endpointsOf(`outbound|${port}|v2|${host}`), [servers.v2.port]);

  // Real Thrift calls through the listener istiod made: sayHello to v2, the rest to v1.
  assert.equal(answeredBy(await call(demo, 'sayHello', 'alice')), 'v2');
  assert.equal(await call(demo, 'echo', 'e1'), 'e1');
  assert.deepEqual(servers.v1.calls.map((c) => c.method), ['echo']);
  assert.deepEqual(servers.v2.calls.map((c) => c.method), ['sayHello']);
  const s = await envoy.stats();
  assert.ok(s.get('wasm.envoy.wasm.runtime.v8.active') >= 1, 'the Wasm VM is loaded');
  const m = await envoy.metrics();
  // Labelled by the Service's host and Istio's own cluster names.
  const service = { meltemi_service: host };
  assert.equal(m.get('meltemi_requests_total', { ...service, meltemi_route: 'hello', meltemi_cluster: `outbound|${port}|v2|${host}`, meltemi_kind: 'call' }), 1);
  assert.equal(m.get('meltemi_responses_total', { ...service, meltemi_route: 'hello', meltemi_status: 'reply' }), 1);
  assert.equal(m.get('meltemi_requests_total', { ...service, meltemi_route: 'rest', meltemi_kind: 'call' }), 1);
  for (const x of m.series('meltemi_responses_total', service)) {
    process.stdout.write(`# ${x.name}{${Object.entries(x.labels).map(([k, v]) => `${k}="${v}"`).join(',')}} ${x.value}\n`);
  }
  assert.equal(ecdsStat(s, 'config_reload'), 1);
  assert.equal(ecdsStat(s, 'config_fail'), 0);
  assert.equal(ecdsStat(s, 'update_rejected'), 0);
  assert.deepEqual(envoy.logs().split('\n').filter((l) => /\]\[(error|critical)\]/.test(l)), [], 'Envoy logged no errors');
  assert.equal(requireStat(s, 'listener_manager.lds.update_rejected'), 0);
  assert.equal(requireStat(s, 'cluster_manager.cds.update_rejected'), 0);
});

test('changing the MetaRouter changes the WasmPlugin, istiod pushes it by ECDS, and new connections follow the new routes', async (t) => {
  const demo = await thriftDemo(t, 'istio-change', { hello: 'v2', rest: 'v1' });
  const { servers, ns, port, host, name, envoy } = demo;
  const open = await thriftClient({ port });            // a connection routed before the change
  t.after(() => open.close());
  assert.equal(answeredBy(await open.sayHello('before')), 'v2');
  const t0 = Date.now();
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], routes: routes('v1', 'v2') }));
  const wasmPlugin = await until('WasmPlugin swapped', async () => {
    const w = await env.getOpt('WasmPlugin', ns, name);
    return w?.spec.pluginConfig.routes[0].route[0].cluster === `outbound|${port}|v1|${host}` && w;
  });
  await until('Envoy runs the new plugin config', async () => {
    const c = runningConfig(await programmed(demo)); return c && JSON.stringify(c) === JSON.stringify(wasmPlugin.spec.pluginConfig);
  }, 30000, 200);
  // Workers pick up the new filter config right after the main thread: poll with new connections.
  await until('sayHello answered by v1', async () => answeredBy(await call(demo, 'sayHello', 'after')) === 'v1', 10000, 100);
  evidence.rerouteMs = Date.now() - t0;
  assert.equal(await call(demo, 'echo', 'e2'), 'e2');
  assert.equal(servers.v2.calls.at(-1).method, 'echo');
  assert.ok(servers.v1.calls.every((c) => c.method === 'sayHello' && c.args[0] === 'after'), JSON.stringify(servers.v1.calls));
  // The connection opened before the change keeps the route its first request picked.
  assert.equal(answeredBy(await open.sayHello('still')), 'v2');
  const p = await programmed(demo);
  assert.deepEqual(p.filters.map((f) => f.name), [p.wasmRef.name, TCP_PROXY]);
  assert.equal(p.tcp.max_early_data_bytes, 65536);
  const s = await envoy.stats();
  assert.equal(ecdsStat(s, 'config_reload'), 2, 'one ECDS update for the change');
  assert.equal(ecdsStat(s, 'config_fail'), 0);
  assert.ok(await envoy.metric('meltemi_requests_total', { meltemi_route: 'hello', meltemi_kind: 'call' }) >= 3);
});

test('deleting the MetaRouter deletes the WasmPlugin and EnvoyFilter, and istiod takes the filter off the listener', async (t) => {
  const demo = await thriftDemo(t, 'istio-delete', { hello: 'v2', rest: 'v1' });
  const { ns, name, envoy } = demo;
  assert.equal(answeredBy(await call(demo, 'sayHello', 'routed')), 'v2', 'the filter routes before the delete');
  const t0 = Date.now();
  await env.del('MetaRouter', ns, 'thrift-demo');
  await until('WasmPlugin and EnvoyFilter deleted', async () =>
    !(await env.getOpt('WasmPlugin', ns, name)) && !(await env.getOpt('EnvoyFilter', ns, name)));
  const p = await until('listener without the Wasm filter and without max_early_data_bytes', async () => {
    const r = await programmed(demo); return r.listener && !r.wasmRef && r.tcp && r.tcp.max_early_data_bytes === undefined && r;
  }, 30000, 200);
  evidence.removeMs = Date.now() - t0;
  assert.deepEqual(p.filters.map((f) => f.name), [TCP_PROXY]);
  // Plain Istio TCP routing again: calls reach some endpoint of the Service, and no route counter moves.
  const before = await envoy.metrics();
  assert.equal(before.get('meltemi_requests_total', { meltemi_route: 'hello', meltemi_kind: 'call' }), 1);
  assert.ok(['v1', 'v2'].includes(answeredBy(await call(demo, 'sayHello', 'plain'))));
  const after = await envoy.metrics();
  assert.equal(after.get('meltemi_requests_total', { meltemi_route: 'hello', meltemi_kind: 'call' }) ?? 1, 1);
  assert.equal(after.get('meltemi_requests_total', { meltemi_route: 'rest', meltemi_kind: 'call' }) ?? 0, 0);
});
