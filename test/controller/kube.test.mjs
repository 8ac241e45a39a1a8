// The controller against a real kube-apiserver + etcd: create, update, delete, bad input with status,
// fail static, drift, schema checks by the real CRDs, quiet resync, API-server restart, the examples.
// The environment (cluster, CRDs, deploy/meltemi.yaml, `meltemi run`) is in kube-env.mjs.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { until } from '../kube/cluster.mjs';
import { ROOT, render, DEFAULT_OPTIONS, assertIstio, assertPluginConfig } from './helpers.mjs';
import { KubeEnv, KINDS, SHA, MODULE, docs, condition, service, router, dubboRoutes, pathOf } from './kube-env.mjs';

const env = new KubeEnv();
let admin, cluster, controller;
const logs = env.logs;
const evidence = env.evidence;
const apply = (o) => env.apply(o);
const del = (...a) => env.del(...a);
const getOpt = (...a) => env.getOpt(...a);
const namespace = (p) => env.namespace(p);
const statusz = () => env.statusz();

before(async () => {
  await env.start();
  ({ admin, cluster, controller } = env);
}, { timeout: 40 * 60 * 1000 });

after(() => env.stop());

test('a Service and a MetaRouter become a WasmPlugin and an EnvoyFilter the API server accepts', async () => {
  const ns = await namespace('create');
  const svc = await apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }, { name: 'http', port: 8080 }]));
  const mr = await apply(router(ns, 'demo', { hosts: [`demo.${ns}.svc.cluster.local`], routes: dubboRoutes(80, 20) }));
  const wasm = await until('WasmPlugin', () => getOpt('WasmPlugin', ns, 'meltemi-demo-20880'));
  const ef = await until('EnvoyFilter', () => getOpt('EnvoyFilter', ns, 'meltemi-demo-20880'));
  // What the API server stored is exactly what the pure render computes from the same objects.
  const protocols = docs(readFileSync(join(ROOT, 'examples/application-protocols.yaml'), 'utf8'));
  const want = render({ services: [svc], protocols, routers: [mr] }, { ...DEFAULT_OPTIONS, moduleUrl: MODULE, moduleSha256: SHA });
  assert.deepEqual(wasm.spec, want.resources[0].spec);
  assert.deepEqual(ef.spec, want.resources[1].spec);
  assertIstio(wasm); assertIstio(ef); assertPluginConfig(wasm.spec.pluginConfig);
  assert.equal(wasm.spec.pluginConfig.routes[0].route[0].cluster, `outbound|20880|v1|demo.${ns}.svc.cluster.local`);
  // Scoped to the ClusterIP the API server allocated: other TCP services on the port pass through.
  assert.ok(svc.spec.clusterIP && svc.spec.clusterIP !== 'None');
  assert.deepEqual(wasm.spec.pluginConfig.scope.destinations, [...svc.spec.clusterIPs, '127.0.0.0/8', '::1/128']);
  for (const o of [wasm, ef]) {
    assert.deepEqual(o.metadata.ownerReferences.map((r) => [r.kind, r.name, r.uid, r.controller]), [['MetaRouter', 'demo', mr.metadata.uid, true]]);
    assert.equal(o.metadata.labels['app.kubernetes.io/managed-by'], 'meltemi');
    assert.ok(o.metadata.managedFields.some((f) => f.manager === 'meltemi' && f.operation === 'Apply'), 'server-side applied by field manager meltemi');
  }
  const status = await until('status', async () => { const m = await getOpt('MetaRouter', ns, 'demo'); return condition(m, 'Programmed')?.status === 'True' && m; });
  assert.equal(condition(status, 'Accepted').status, 'True');
  assert.equal(condition(status, 'Accepted').observedGeneration, 1);
  assert.equal(condition(status, 'Accepted').message, `routes demo.${ns}.svc.cluster.local:20880`);
});

test('changing the MetaRouter changes the WasmPlugin config; deleting it deletes what Meltemi made', async () => {
  const ns = await namespace('update');
  await apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  await apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  await until('WasmPlugin', () => getOpt('WasmPlugin', ns, 'meltemi-demo-20880'));
  await apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(30, 70) }));
  const updated = await until('weights 30/70', async () => {
    const w = await getOpt('WasmPlugin', ns, 'meltemi-demo-20880');
    return w?.spec.pluginConfig.routes[0].route[1].weight === 70 && w;
  });
  assert.deepEqual(updated.spec.pluginConfig.routes[0].route.map((r) => r.weight), [30, 70]);
  await until('observedGeneration 2', async () => condition(await getOpt('MetaRouter', ns, 'demo'), 'Accepted')?.observedGeneration === 2);
  await del('MetaRouter', ns, 'demo');
  await until('WasmPlugin and EnvoyFilter deleted', async () =>
    !(await getOpt('WasmPlugin', ns, 'meltemi-demo-20880')) && !(await getOpt('EnvoyFilter', ns, 'meltemi-demo-20880')));
});

test('bad input is reported in status.conditions and never stops the controller', async () => {
  const ns = await namespace('bad');
  await apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  await apply(service(ns, 'plain', [{ name: 'tcp', port: 7000 }]));
  await apply(service(ns, 'redis', [{ name: 'tcp-metaprotocol-redis-x', port: 6379 }]));
  const cases = {
    weights: [{ hosts: ['demo'], routes: dubboRoutes(0, 0) }, 'InvalidRoute', 'routes[0] (say-hello).route: weights add up to 0'],
    regex: [{ hosts: ['demo'], routes: [{ name: 'r', match: { attributes: { method: { regex: '(a' } } }, route: [{ destination: { host: 'demo' } }] }] }, 'InvalidRoute',
      'routes[0] (r).match.attributes.method: bad regex "(a": missing \')\' at offset 0'],
    protocol: [{ hosts: ['redis'], routes: [] }, 'UnknownProtocol', `host redis port 6379: unknown protocol "redis" (no ApplicationProtocol with spec.protocol redis)`],
    noport: [{ hosts: ['plain'], routes: [] }, 'NoMatchingServicePort', `host plain: Service ${ns}/plain has no port named tcp-metaprotocol-<protocol>-<anything> (ports: tcp)`],
  };
  for (const [name, [spec]] of Object.entries(cases)) await apply(router(ns, name, spec));
  for (const [name, [, reason, message]] of Object.entries(cases)) {
    const mr = await until(`${name} rejected`, async () => { const m = await getOpt('MetaRouter', ns, name); return condition(m, 'Accepted') && m; });
    assert.deepEqual(condition(mr, 'Accepted'), { ...condition(mr, 'Accepted'), status: 'False', reason, message });
    assert.equal(condition(mr, 'Programmed').status, 'False');
  }
  assert.equal(controller.exitCode, null, 'controller still running');
  assert.deepEqual((await admin.list(KINDS.WasmPlugin)).items.filter((w) => w.metadata.namespace === ns), []);
  // The CRD's own OpenAPI schema refuses what is structurally wrong before the controller sees it.
  await assert.rejects(apply(router(ns, 'twokinds', { hosts: ['demo'], routes: [{ name: 'x', match: { attributes: { m: { exact: 'a', prefix: 'b' } } }, route: [] }] })),
    /must have at most 1 properties|Too many/);
});

test('an accepted MetaRouter that turns invalid keeps its last objects (fail static) until fixed', async () => {
  const ns = await namespace('static');
  await apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  await apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  const before = await until('WasmPlugin', () => getOpt('WasmPlugin', ns, 'meltemi-demo-20880'));
  await apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(0, 0) }));
  const mr = await until('rejected', async () => { const m = await getOpt('MetaRouter', ns, 'demo'); return condition(m, 'Accepted')?.status === 'False' && m; });
  assert.equal(condition(mr, 'Accepted').message, 'routes[0] (say-hello).route: weights add up to 0');
  assert.equal(condition(mr, 'Programmed').message, 'kept 2 objects of the last accepted spec');
  const still = await getOpt('WasmPlugin', ns, 'meltemi-demo-20880');
  assert.deepEqual(still.spec, before.spec);
});

test('objects changed or deleted by hand are put back', async () => {
  const ns = await namespace('drift');
  await apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  await apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  const wasm = await until('WasmPlugin', () => getOpt('WasmPlugin', ns, 'meltemi-demo-20880'));
  await admin.request('PATCH', `${pathOf('WasmPlugin', ns)}/meltemi-demo-20880`, { spec: { failStrategy: 'FAIL_OPEN' } }, 'application/merge-patch+json');
  await until('failStrategy restored', async () => (await getOpt('WasmPlugin', ns, 'meltemi-demo-20880'))?.spec.failStrategy === 'FAIL_CLOSE');
  await del('EnvoyFilter', ns, 'meltemi-demo-20880');
  await until('EnvoyFilter recreated', () => getOpt('EnvoyFilter', ns, 'meltemi-demo-20880'), 4000);
  assert.equal((await getOpt('WasmPlugin', ns, 'meltemi-demo-20880')).metadata.uid, wasm.metadata.uid);
});

test('the Istio CRDs in the real API server refuse what Istio would not accept', async () => {
  const ns = await namespace('schema');
  const [wasm, ef] = render({
    services: [service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }])],
    protocols: docs(readFileSync(join(ROOT, 'examples/application-protocols.yaml'), 'utf8')),
    routers: [router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) })],
  }, DEFAULT_OPTIONS).resources;
  const named = (o, name) => ({ ...o, metadata: { name, namespace: ns } });
  await apply(named(wasm, 'good'));
  await apply(named(ef, 'good'));
  await assert.rejects(apply({ ...named(wasm, 'bad1'), spec: { ...wasm.spec, failStrategy: 'FAIL_CLOSED' } }), /failStrategy: Unsupported value: "FAIL_CLOSED"/);
  await assert.rejects(apply({ ...named(wasm, 'bad2'), spec: { ...wasm.spec, sha256: 'nope' } }), /sha256/);
  // Two that @kubernetes-models/istio lets through: unknown fields (server-side apply is strict about
  // them) and Istio's CEL rule that selector and targetRefs exclude each other.
  const both = { ...wasm.spec, selector: { matchLabels: { app: 'x' } }, targetRefs: [{ kind: 'Service', group: '', name: 'demo' }] };
  assert.doesNotThrow(() => assertIstio({ ...wasm, spec: both }));
  await assert.rejects(apply({ ...named(wasm, 'bad3'), spec: { ...wasm.spec, priorty: 10 } }), /\.spec\.priorty: field not declared in schema/);
  await assert.rejects(apply({ ...named(wasm, 'bad4'), spec: both }), /only one of targetRefs or selector can be set/);
});

test('nothing changed, nothing written, nothing logged', async () => {
  const ns = await namespace('quiet');
  await apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  await apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  await until('programmed', async () => condition(await getOpt('MetaRouter', ns, 'demo'), 'Programmed')?.status === 'True');
  const settled = (await statusz()).passes;
  await until('a pass after settling', async () => (await statusz()).passes >= settled + 1, 10000);
  const seen = logs.length;
  const rv = (await getOpt('WasmPlugin', ns, 'meltemi-demo-20880')).metadata.resourceVersion;
  const p0 = (await statusz()).passes;
  await until('three more passes (resync every second)', async () => (await statusz()).passes >= p0 + 3, 15000);
  assert.deepEqual(logs.slice(seen), []);
  assert.equal((await getOpt('WasmPlugin', ns, 'meltemi-demo-20880')).metadata.resourceVersion, rv);
});

test('the controller survives an API server restart and resyncs', async (t) => {
  const ns = await namespace('restart');
  await apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  const seen = logs.length;
  evidence.restartMs = await cluster.restartApiserver();
  await apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  await until('WasmPlugin after restart', () => getOpt('WasmPlugin', ns, 'meltemi-demo-20880'), 60000);
  // The restart broke the watches (else this test proves nothing); every one that broke is
  // restarted and says so once it is back, and the controller is ready again with every kind synced.
  const broken = new Set(logs.slice(seen).filter((l) => l.msg === 'watch failed, restarting').map((l) => l.kind));
  assert.ok(broken.size > 0, `restarting the API server broke no watch: ${JSON.stringify(logs.slice(seen))}`);
  await until('every broken watch resumed', () => [...broken].every((kind) =>
    logs.slice(seen).some((l) => l.msg === 'watch resumed' && l.kind === kind)), 30000);
  const status = await until('ready again', async () => { const s = await statusz(); return s.ready && s; }, 30000);
  assert.deepEqual([...status.synced].sort(), ['ApplicationProtocol', 'DestinationRule', 'EnvoyFilter', 'MetaRouter', 'Service', 'ServiceEntry', 'WasmPlugin']);
  t.diagnostic(`watches broken by the restart and resumed: ${[...broken].sort().join(', ')}`);
  assert.equal(controller.exitCode, null);
  for (const l of logs) assert.ok(l.time && l.level && l.msg, `structured log line ${JSON.stringify(l)}`);
});

test('the examples apply as they are (moved into a test namespace) and are programmed', async () => {
  for (const [file, home] of [['examples/dubbo.yaml', 'dubbo'], ['examples/thrift.yaml', 'thrift']]) {
    const ns = await namespace(home);
    const text = readFileSync(join(ROOT, file), 'utf8').replaceAll(`.${home}.svc`, `.${ns}.svc`).replaceAll(`namespace: ${home}`, `namespace: ${ns}`);
    const objs = docs(text);
    for (const o of objs) await apply(o);
    const mr = objs.find((o) => o.kind === 'MetaRouter');
    const port = objs.find((o) => o.kind === 'Service').spec.ports[0].port;
    const status = await until(`${file} programmed`, async () => { const m = await getOpt('MetaRouter', ns, mr.metadata.name); return condition(m, 'Programmed')?.status === 'True' && m; });
    assert.equal(condition(status, 'Accepted').status, 'True');
    const wasm = await getOpt('WasmPlugin', ns, `meltemi-${mr.metadata.name}-${port}`);
    assertPluginConfig(wasm.spec.pluginConfig);
    assert.equal(wasm.spec.pluginConfig.codec, home);
  }
});

test('route policies pass the MetaRouter CRD and reach the WasmPlugin in the filter format', async () => {
  const ns = await namespace('policy');
  const objs = docs(readFileSync(join(ROOT, 'test/controller/fixtures/policies.yaml'), 'utf8').replaceAll('namespace: shop', `namespace: ${ns}`));
  for (const o of objs.filter((x) => x.kind !== 'ApplicationProtocol')) await apply(o);
  const wasm = await until('WasmPlugin', () => getOpt('WasmPlugin', ns, 'meltemi-orders-20880'));
  const checkout = wasm.spec.pluginConfig.routes[0];
  assert.equal(checkout.timeoutMs, 1500);
  assert.deepEqual(checkout.fault.delay, { percentage: 10, fixedDelayMs: 200 });
  assert.equal(checkout.localRateLimit.conditions[0].tokenBucket.fillIntervalMs, 60000);
  assertPluginConfig(wasm.spec.pluginConfig);
  // The CRD refuses a policy of the wrong shape at apply time.
  const bad = structuredClone(objs.find((o) => o.kind === 'MetaRouter'));
  bad.metadata.name = 'bad-policy';
  bad.spec.routes[0].authorization.rules[0].action = 'MAYBE';
  await assert.rejects(apply(bad), /Unsupported value: "MAYBE"/);
});

const entry = (ns, name, spec) => ({ apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name, namespace: ns }, spec });
const DEMO_HOST = 'org.apache.dubbo.samples.basic.api.demoservice';
const demoEntry = (ns, extra = {}) => entry(ns, 'dubbo-demoservice', {
  hosts: [DEMO_HOST], ports: [{ number: 20880, name: 'tcp-metaprotocol-dubbo', protocol: 'TCP' }],
  resolution: 'STATIC', endpoints: [{ address: '10.244.0.21', labels: { version: 'v1' } }, { address: '10.244.0.22', labels: { version: 'v2' } }], ...extra,
});
const demoRouter = (ns) => ({
  apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', metadata: { name: 'demoservice', namespace: ns },
  spec: { hosts: [DEMO_HOST], routes: [{ name: 'v1', match: { attributes: { method: { exact: 'sayHello' } } },
    route: [{ destination: { host: DEMO_HOST, subset: 'v1' }, weight: 20 }, { destination: { host: DEMO_HOST, subset: 'v2' }, weight: 80 }] }] },
});

test('a MetaRouter on a ServiceEntry host is programmed, and follows the entry as it changes (watched like Services)', async () => {
  const ns = await namespace('entry');
  // The router first: no such host yet, rejected; the entry's arrival alone must fix it.
  await apply(demoRouter(ns));
  await until('rejected without the entry', async () => condition(await getOpt('MetaRouter', ns, 'demoservice'), 'Accepted')?.reason === 'NoMatchingService');
  await apply(demoEntry(ns));
  const wasm = await until('WasmPlugin', () => getOpt('WasmPlugin', ns, 'meltemi-dubbo-demoservice-20880'));
  assertIstio(wasm); assertPluginConfig(wasm.spec.pluginConfig);
  assert.equal(wasm.spec.pluginConfig.defaultCluster, `outbound|20880||${DEMO_HOST}`);
  assert.deepEqual(wasm.spec.pluginConfig.routes[0].route.map((d) => d.cluster), [`outbound|20880|v1|${DEMO_HOST}`, `outbound|20880|v2|${DEMO_HOST}`]);
  assert.equal(wasm.spec.pluginConfig.scope, undefined, 'no addresses: unscoped');
  // The EnvoyFilter is applied after the WasmPlugin: wait for it rather than race the controller.
  await until('EnvoyFilter', () => getOpt('EnvoyFilter', ns, 'meltemi-dubbo-demoservice-20880'));
  const mr = await until('programmed', async () => { const m = await getOpt('MetaRouter', ns, 'demoservice'); return condition(m, 'Programmed')?.status === 'True' && m; });
  assert.equal(condition(mr, 'Accepted').message, `routes ${DEMO_HOST}:20880; host ${DEMO_HOST}: ServiceEntry ${ns}/dubbo-demoservice has no spec.addresses, so the WasmPlugin for port 20880 is not scoped: every TCP service on port 20880 in its namespace gets this route table`);
  // Giving the entry an address scopes the plugin and clears the warning.
  await apply(demoEntry(ns, { addresses: ['240.240.0.9'] }));
  await until('scoped by spec.addresses', async () =>
    (await getOpt('WasmPlugin', ns, 'meltemi-dubbo-demoservice-20880'))?.spec.pluginConfig.scope?.destinations?.[0] === '240.240.0.9');
  await until('warning gone', async () => condition(await getOpt('MetaRouter', ns, 'demoservice'), 'Accepted')?.message === `routes ${DEMO_HOST}:20880`);
  // Deleting the entry: rejected, the last accepted objects stay (fail static).
  await del('ServiceEntry', ns, 'dubbo-demoservice');
  const gone = await until('rejected after delete', async () => { const m = await getOpt('MetaRouter', ns, 'demoservice'); return condition(m, 'Accepted')?.status === 'False' && m; });
  assert.equal(condition(gone, 'Accepted').message, `host ${DEMO_HOST}: no ServiceEntry with this host, and not a Kubernetes Service host (<name>.<namespace>.svc.cluster.local)`);
  assert.equal(condition(gone, 'Programmed').message, 'kept 2 objects of the last accepted spec');
});

test('in the cluster, an unknown MetaRouter field (kept by the CRD) is refused by name and ignored ones are warned of in status', async () => {
  const ns = await namespace('fields');
  await apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  const [{ requestMutation, ...first }, rest] = dubboRoutes(80, 20);
  await apply(router(ns, 'typo', { hosts: ['demo'], routes: [{ ...first, requestMutations: requestMutation }, rest] }));
  await apply(router(ns, 'later', { hosts: ['demo'], routes: [{ ...rest, mirror: { host: 'demo', subset: 'v3' } }], globalRateLimit: { domain: 'demo' } }));
  const typo = await until('typo rejected', async () => { const m = await getOpt('MetaRouter', ns, 'typo'); return condition(m, 'Accepted') && m; });
  assert.deepEqual([condition(typo, 'Accepted').status, condition(typo, 'Accepted').reason, condition(typo, 'Accepted').message],
    ['False', 'InvalidRoute', 'spec.routes[0].requestMutations: unknown field (did you mean requestMutation?)']);
  // 'later' is younger than 'typo' but typo is rejected, so it holds port 20880.
  const later = await until('later programmed', async () => { const m = await getOpt('MetaRouter', ns, 'later'); return condition(m, 'Programmed')?.status === 'True' && m; });
  assert.equal(condition(later, 'Accepted').message,
    `routes demo.${ns}.svc.cluster.local:20880; spec.globalRateLimit: ignored, not implemented yet; spec.routes[0].mirror: ignored, not implemented yet`);
});
