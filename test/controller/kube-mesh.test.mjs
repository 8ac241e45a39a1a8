// The controller with --config-namespace istio-system (mesh-wide config): objects go to Istio's root
// namespace, carry no owner reference (those cannot cross namespaces), and are pruned by label; two
// MetaRouters in different namespaces now share one port scope and conflict.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../kube/cluster.mjs';
import { assertIstio } from './helpers.mjs';
import { KubeEnv, condition, service, router, dubboRoutes } from './kube-env.mjs';

const env = new KubeEnv();
const ROOT_NS = 'istio-system';

before(async () => {
  await env.start(['--config-namespace', ROOT_NS]);
  await env.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ROOT_NS } });
}, { timeout: 40 * 60 * 1000 });

after(() => env.stop());

test('mesh-wide: objects in the root namespace, owned by label and annotation, pruned on delete', async () => {
  const ns = await env.namespace('mesh');
  await env.apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  await env.apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  const name = `meltemi-demo-${ns}-20880`;
  const wasm = await until('WasmPlugin in the root namespace', () => env.getOpt('WasmPlugin', ROOT_NS, name));
  const ef = await until('EnvoyFilter in the root namespace', () => env.getOpt('EnvoyFilter', ROOT_NS, name));
  for (const o of [wasm, ef]) {
    assertIstio(o);
    assert.equal(o.metadata.ownerReferences, undefined);
    assert.equal(o.metadata.annotations['meltemi.dev/owner'], `${ns}/demo`);
    assert.equal(o.metadata.labels['meltemi.dev/metarouter-namespace'], ns);
  }
  assert.equal(wasm.spec.pluginConfig.defaultCluster, `outbound|20880||demo.${ns}.svc.cluster.local`);
  await env.del('MetaRouter', ns, 'demo');
  await until('pruned', async () => !(await env.getOpt('WasmPlugin', ROOT_NS, name)) && !(await env.getOpt('EnvoyFilter', ROOT_NS, name)));
});

test('mesh-wide: a second MetaRouter on the same port in another namespace is a conflict', async () => {
  const [a, b] = [await env.namespace('first'), await env.namespace('second')];
  for (const ns of [a, b]) await env.apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20990 }]));
  await env.apply(router(a, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  await until('first programmed', async () => condition(await env.getOpt('MetaRouter', a, 'demo'), 'Programmed')?.status === 'True');
  await env.apply(router(b, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  const mr = await until('second refused', async () => { const m = await env.getOpt('MetaRouter', b, 'demo'); return condition(m, 'Accepted') && m; });
  assert.deepEqual([condition(mr, 'Accepted').status, condition(mr, 'Accepted').reason, condition(mr, 'Accepted').message],
    ['False', 'Conflict', `port 20990 in namespace ${ROOT_NS} is already routed by MetaRouter ${a}/demo`]);
  assert.ok(await env.getOpt('WasmPlugin', ROOT_NS, `meltemi-demo-${a}-20990`));
  assert.equal(await env.getOpt('WasmPlugin', ROOT_NS, `meltemi-demo-${b}-20990`), undefined);
});
