// Status that tells the truth, against the real parts: `meltemi run` reads istiod's /debug/syncz
// (--istiod-url), and a MetaRouter is Programmed only when the sidecars took its config.
//
//   kube-apiserver + etcd with Istio's CRDs and deploy/meltemi.yaml; the real controller
//   istiod (pilot-discovery, test/istio/fetch-istiod.sh) --> ECDS/LDS over ADS --> Envoy 1.40 as a sidecar
//   the filter the sidecar runs is an OLDER build (89506ac, before `scope` existed, built by
//   test/upgrade/build-old.sh): the controller validates with today's filter, renders `scope`, and
//   the old filter refuses it in proxy_on_configure, so Envoy NACKs the ECDS update. Rolling the
//   module forward (the controller's --module-url) makes the same MetaRouter Programmed again.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { until, freePort } from '../kube/cluster.mjs';
import { startEnvoy } from '../harness/index.mjs';
import { Istiod, istiodBinaries, istioVersion, sidecarBootstrap } from '../istio/istiod.mjs';
import { oldBuild, BEFORE_SCOPE, BEFORE_PER_REQUEST } from '../upgrade/old-build.mjs';
import { ROOT } from './helpers.mjs';
import { KubeEnv, KINDS, condition, router, installIstio } from './kube-env.mjs';

const NEW_WASM = join(ROOT, 'build/meltemi.wasm');
const K = { ...KINDS, Sidecar: { group: 'networking.istio.io', version: 'v1', plural: 'sidecars', namespaced: true } };
const sha = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const env = new KubeEnv();
const evidence = {};
let istiod, old, version;
const WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';

const apply = (o) => env.admin.apply(K[o.kind], o);
const moduleArgs = (wasm) => ['--module-url', `file://${wasm}`, '--module-sha256', sha(wasm), '--istiod-url', `http://127.0.0.1:${istiod.httpPort}`, '--istiod-poll', '0.5'];
const programmed = async (ns, name) => condition(await env.getOpt('MetaRouter', ns, name), 'Programmed');
const ecdsStat = (stats, counter) => [...stats].filter(([k]) => k.startsWith('extension_config_discovery.network_filter.') && k.endsWith(`.${counter}`)).reduce((n, [, v]) => n + v, 0);

before(async () => {
  old = oldBuild(BEFORE_SCOPE);
  const bin = istiodBinaries();
  version = istioVersion(bin);
  await env.start();
  await installIstio(env);
  istiod = new Istiod(bin, env.cluster.writeKubeconfig('istiod', env.cluster.adminToken));
  await istiod.start();
  // Now that istiod's debug port is known: the controller as an operator who rolled it forward
  // before the filter runs it, its WasmPlugins pointing at the old module.
  await env.restartController(moduleArgs(old.wasm));
}, { timeout: 90 * 60 * 1000 });

after(async () => {
  if (process.env.MELTEMI_TEST_LOGS && istiod) process.stdout.write(istiod.logs().replace(/^/gm, '# istiod: '));
  await istiod?.stop();
  await env.stop();
  process.stdout.write(`# istio ${version}: Rejected after the sidecar connected ${evidence.rejectedMs} ms, Programmed after the module roll ${evidence.fixedMs} ms\n`);
});

test('a sidecar whose filter refuses the config turns Programmed False naming the proxy and Envoy\'s error; the module rolled forward turns it True', async (t) => {
  const ns = await env.namespace('status');
  const port = await freePort();
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port }] } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*'] }] } });
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], routes: [{ name: 'all', route: [{ destination: { host: 'thrift-demo' } }] }] }));
  const name = `meltemi-thrift-demo-${port}`;
  const plugin = await until('WasmPlugin with scope', async () => { const w = await env.getOpt('WasmPlugin', ns, name); return w?.spec.pluginConfig.scope && w; });
  assert.equal(plugin.spec.url, `file://${old.wasm}`);

  // No proxy of the namespace is connected yet: applied, and nothing refused it.
  const idle = await until('Programmed True with no proxy', async () => { const c = await programmed(ns, 'thrift-demo'); return c?.status === 'True' && c; });
  assert.equal(idle.message, 'WasmPlugin and EnvoyFilter are applied; no proxy in their scope is connected to istiod');

  const t0 = Date.now();
  const envoy = await startEnvoy({ t, config: sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${version}.0` }), readyTimeout: 60000 });
  const rejected = await until('Programmed False (Rejected)', async () => { const c = await programmed(ns, 'thrift-demo'); return c?.status === 'False' && c; }, 60000, 200);
  evidence.rejectedMs = Date.now() - t0;
  process.stdout.write(`# ${JSON.stringify(rejected)}\n`);
  const proxyId = `client.${ns}`;   // istiod's name for the connection: <pod>.<namespace>
  assert.equal(rejected.reason, 'Rejected');
  assert.ok(rejected.message.startsWith(`proxy ${proxyId} rejected the config: `), rejected.message);
  assert.equal(rejected.message, `proxy ${proxyId} rejected the config: Unable to create Wasm plugin ${ns}.${name}~istio-translated-wasmplugin (the proxy's log has the reason)`);
  // What Envoy itself says: the update was refused, and the old filter said why in its log.
  const stats = await envoy.stats();
  assert.ok(ecdsStat(stats, 'update_rejected') + ecdsStat(stats, 'config_fail') >= 1, 'Envoy counted the refused ECDS update');
  assert.match(envoy.logs(), /meltemi: invalid plugin configuration: <root>: unknown field "scope"/);
  const syncz = JSON.parse((await istiod.debug('/debug/syncz')).body).find((p) => p.proxy === proxyId);
  process.stdout.write(`# syncz ECDS: ${JSON.stringify(syncz.resources['type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig'])}\n`);

  // The fix: the filter rolled forward. The same MetaRouter, the WasmPlugin now points at today's module.
  const t1 = Date.now();
  await env.restartController(moduleArgs(NEW_WASM));
  await until('WasmPlugin on the new module', async () => (await env.getOpt('WasmPlugin', ns, name))?.spec.url === `file://${NEW_WASM}`);
  const fixed = await until('Programmed True', async () => { const c = await programmed(ns, 'thrift-demo'); return c?.status === 'True' && c; }, 60000, 200);
  evidence.fixedMs = Date.now() - t1;
  assert.equal(fixed.message, 'WasmPlugin and EnvoyFilter are applied and acknowledged by 1 proxy');
  assert.ok(ecdsStat(await envoy.stats(), 'config_reload') >= 1, 'Envoy loaded the config');
  assert.equal(condition(await env.getOpt('MetaRouter', ns, 'thrift-demo'), 'Accepted').status, 'True');

  // meltemi describe reads the WasmPlugin the controller applied, and the filter explains a request with it.
  const d = spawnSync(process.execPath, [join(ROOT, 'controller/bin/meltemi.mjs'), 'describe', `${ns}/thrift-demo`,
    '--kubeconfig', env.cluster.writeKubeconfig('describe', env.cluster.adminToken), '--attr', 'method=sayHello', '--json'], { encoding: 'utf8' });
  assert.equal(d.status, 0, d.stderr);
  const e = JSON.parse(d.stdout);
  assert.equal(e.route, 'all');
  assert.deepEqual(e.destinations, [{ cluster: `outbound|${port}||thrift-demo.${ns}.svc.cluster.local`, weight: 1, share: 1 }]);
});

/** The filters of the outbound listener on `port` and, for the Wasm ones, the module file of their ECDS config. */
async function listenerFilters(envoy, port) {
  const configs = JSON.parse((await envoy.admin('/config_dump')).body).configs;
  const of = (t) => configs.find((c) => c['@type'].endsWith(`.${t}`));
  const listener = of('ListenersConfigDump')?.dynamic_listeners?.map((l) => l.active_state?.listener).find((l) => l?.address?.socket_address?.port_value === port);
  const ecds = (of('EcdsConfigDump')?.ecds_filters ?? []).map((f) => f.ecds_filter);
  return (listener?.filter_chains?.[0]?.filters ?? []).map((f) => {
    if (!f.config_discovery?.type_urls?.includes(WASM_TYPE)) return { name: f.name };
    return { name: f.name, module: ecds.find((e) => e.name === f.name)?.typed_config?.config?.vm_config?.code?.local?.filename };
  });
}

test('a canary module runs on the canary workload alone: its own WasmPlugin, and the stable filter removed from its listener; every other workload keeps the stable one', async (t) => {
  const stable = oldBuild(BEFORE_PER_REQUEST);   // the module the mesh runs; today's build is the canary
  await env.restartController([...moduleArgs(stable.wasm), '--filter-wasm', stable.wasm,
    '--canary-module-url', `file://${NEW_WASM}`, '--canary-module-sha256', sha(NEW_WASM), '--canary-selector', 'track=canary']);
  const ns = await env.namespace('canary');
  const port = await freePort();
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port }] } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*'] }] } });
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], routes: [{ name: 'all', route: [{ destination: { host: 'thrift-demo' } }] }] }));
  const name = `meltemi-thrift-demo-${port}`;
  const canary = await until('canary WasmPlugin', () => env.getOpt('WasmPlugin', ns, `${name}-canary`));
  assert.equal(canary.spec.url, `file://${NEW_WASM}`);
  assert.deepEqual(canary.spec.selector, { matchLabels: { track: 'canary' } });
  assert.equal((await env.getOpt('WasmPlugin', ns, name)).spec.url, `file://${stable.wasm}`);
  assert.ok(await env.getOpt('EnvoyFilter', ns, `${name}-canary`), 'the EnvoyFilter that takes the stable filter off the canary');

  const sidecar = (workload, labels) => {
    const boot = sidecarBootstrap({ namespace: ns, xdsAddress: istiod.xdsAddress, istioVersion: `${version}.0`, workload });
    boot.node.metadata.LABELS = labels;
    return startEnvoy({ t, config: boot, readyTimeout: 60000 });
  };
  const [plain, tried] = await Promise.all([sidecar('client', { app: 'client' }), sidecar('canary', { app: 'client', track: 'canary' })]);
  const stableFilters = await until('the stable sidecar runs the stable module', async () => { const f = await listenerFilters(plain, port); return f.some((x) => x.module) && f; }, 60000, 200);
  const canaryFilters = await until('the canary sidecar runs the canary module', async () => { const f = await listenerFilters(tried, port); return f.some((x) => x.module) && f; }, 60000, 200);
  process.stdout.write(`# stable sidecar: ${JSON.stringify(stableFilters)}\n# canary sidecar: ${JSON.stringify(canaryFilters)}\n`);
  assert.deepEqual(stableFilters, [{ name: `extensions.istio.io/trafficextension/${ns}.${name}~istio-translated-wasmplugin`, module: stable.wasm }, { name: 'envoy.filters.network.tcp_proxy' }]);
  assert.deepEqual(canaryFilters, [{ name: `extensions.istio.io/trafficextension/${ns}.${name}-canary~istio-translated-wasmplugin`, module: NEW_WASM }, { name: 'envoy.filters.network.tcp_proxy' }]);
  const c = await until('Programmed True for both', async () => { const x = await programmed(ns, 'thrift-demo'); return x?.status === 'True' && x.message.includes('2 proxies') && x; }, 60000, 200);
  assert.equal(c.message, 'WasmPlugin and EnvoyFilter are applied and acknowledged by 2 proxies');
});

test('with an istiod replica unreachable, Programmed is Unknown and says why; the objects stay applied', async () => {
  const closed = await freePort();   // nothing listens there
  // Two replicas listed, one of them down: the view would be partial, so the status is not claimed.
  await env.restartController(['--module-url', `file://${NEW_WASM}`, '--module-sha256', sha(NEW_WASM), '--istiod-url', `http://127.0.0.1:${istiod.httpPort},http://127.0.0.1:${closed}`, '--istiod-poll', '0.5']);
  const ns = await env.namespace('unreachable');
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { ports: [{ name: 'tcp-metaprotocol-thrift-demo', port: 9090 }] } });
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], routes: [{ name: 'all', route: [{ destination: { host: 'thrift-demo' } }] }] }));
  const c = await until('Programmed Unknown', async () => { const x = await programmed(ns, 'thrift-demo'); return x?.status === 'Unknown' && x; });
  assert.equal(c.reason, 'IstiodUnreachable');
  assert.match(c.message, new RegExp(`^WasmPlugin and EnvoyFilter are applied; proxy status unknown: http://127\\.0\\.0\\.1:${closed}/debug/syncz: `));
  assert.ok(await env.getOpt('WasmPlugin', ns, 'meltemi-thrift-demo-9090'));
  assert.equal(env.logs.filter((l) => l.msg === 'cannot read proxy status from istiod').length, 1, 'logged once, not on every poll');
});
