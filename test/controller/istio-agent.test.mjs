// Istio in the loop with Istio's own agent: the filter is pulled by `oci://` from a real registry
// through pilot-agent's Wasm cache, as in a real mesh, and real Thrift calls are routed by it, also
// between sidecars with mutual TLS.
//
//   scripts/images/build.mjs --out <tmp>, crane push  --> registry (go-containerregistry) on 127.0.0.1
//   kube-apiserver + etcd (test/kube), Istio's CRDs, deploy/meltemi.yaml
//   `meltemi run --module-url oci://<registry>/meltemi:<version> --module-sha256 <manifest digest>`
//   istiod (pilot-discovery)            --> ECDS Wasm config with a remote code source (the oci:// url)
//   pilot-agent proxy sidecar (test/istio/agent.mjs) running Envoy 1.40 (the wheel), INTERCEPTION_MODE
//     NONE: the agent intercepts the ECDS update, pulls the image, checks the digest, writes
//     plugin.wasm into its cache and hands Envoy a local file instead
//   two real Thrift servers v1 and v2, the Service's endpoints through WorkloadEntries
//   istiod's CA on its secure port: each agent gets its workload certificate with a TokenRequest
//   token (audience istio-ca) and serves it to Envoy over SDS; the mTLS test adds two server
//   sidecars (127.0.0.2, 127.0.0.3) behind PeerAuthentication STRICT
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { until, freePort } from '../kube/cluster.mjs';
import { answeredBy } from '../e2e/lib/mesh.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { Istiod, istiodBinaries, istioVersion } from '../istio/istiod.mjs';
import { Agent, WASM_CACHE, agentBinaries } from '../istio/agent.mjs';
import { Registry, crane, craneBinaries } from '../images/registry.mjs';
import { ROOT } from './helpers.mjs';
import { KubeEnv, KINDS, condition, router, thriftDemoObjects, installIstio, pathOf } from './kube-env.mjs';

const WASM = join(ROOT, 'build/meltemi.wasm');
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const K = {
  ...KINDS,
  Sidecar: { group: 'networking.istio.io', version: 'v1', plural: 'sidecars', namespaced: true },
  WorkloadEntry: { group: 'networking.istio.io', version: 'v1', plural: 'workloadentries', namespaced: true },
  PeerAuthentication: { group: 'security.istio.io', version: 'v1', plural: 'peerauthentications', namespaced: true },
};
const WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';
const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

const work = mkdtempSync(join(tmpdir(), 'meltemi-istio-agent-'));
const env = new KubeEnv();
const evidence = {};
let istiod, registry, agentBin, image, rdsPort;

/** The agents' cache folder for this run's image: named by the url without its tag (the registry's port makes it this run's own). */
const cacheDir = () => join(WASM_CACHE, createHash('sha256').update(`oci://${registry.host}/meltemi`).digest('hex'));
const apply = (o) => env.admin.apply(K[o.kind], o);
const ofType = (configs, t) => configs.find((c) => c['@type'].endsWith(`.${t}`));

/** The outbound listener of the demo's Service port, its filters, and the ECDS config of the first. */
async function programmed(demo) {
  const configs = JSON.parse((await demo.agent.admin('/config_dump')).body).configs;
  const listener = ofType(configs, 'ListenersConfigDump')?.dynamic_listeners
    ?.map((l) => l.active_state?.listener).find((l) => l?.address?.socket_address?.port_value === demo.port);
  const ecds = (ofType(configs, 'EcdsConfigDump')?.ecds_filters ?? []).map((f) => f.ecds_filter);
  const filters = listener?.filter_chains?.[0]?.filters ?? [];
  const ref = filters.find((f) => f.config_discovery?.type_urls?.includes(WASM_TYPE));
  const ecdsConfig = ref && ecds.find((e) => e.name === ref.name)?.typed_config;
  return { listener, filters, ref, ecdsConfig };
}

async function call(demo, method, arg) {
  const c = await thriftClient({ port: demo.port });
  try { return await c[method](arg); } finally { c.close(); }
}

/**
 * What a pod of service account `sa` in `ns` has mounted for its agent: istiod's root certificate
 * (the ConfigMap istiod writes into every namespace) and a token for audience istio-ca from the
 * API server's TokenRequest, which istiod's CA checks by TokenReview.
 */
async function workloadIdentity(ns, sa) {
  await env.admin.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } }).catch((e) => { if (e.status !== 409) throw e; });
  const token = (await env.admin.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['istio-ca'], expirationSeconds: 3600 } })).status.token;
  const rootCert = await until('istio-ca-root-cert in the namespace', async () =>
    (await env.admin.request('GET', `/api/v1/namespaces/${ns}/configmaps/istio-ca-root-cert`).catch(() => undefined))?.data?.['root-cert.pem']);
  return { address: istiod.caAddress, rootCert, token };
}

/**
 * A namespace of its own with the Thrift Service (free port), WorkloadEntries v1/v2, DestinationRule,
 * Sidecar and a MetaRouter sending sayHello to v2 and the rest to v1; the controller's WasmPlugin
 * for it; then `beforeSidecar(demo)` if given, and a sidecar (pilot-agent + Envoy) of the namespace.
 * All stopped when `t` ends.
 */
async function thriftDemo(t, label, { beforeSidecar } = {}) {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const ns = await env.namespace(label);
  const port = await freePort();
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const name = `meltemi-thrift-demo-${port}`;
  for (const o of thriftDemoObjects(ns, port, { v1: servers.v1.port, v2: servers.v2.port })) await apply(o);
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], routes: [
    { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ destination: { host: 'thrift-demo', subset: 'v2' } }] },
    { name: 'rest', route: [{ destination: { host: 'thrift-demo', subset: 'v1' } }] },
  ] }));
  const wasmPlugin = await until('WasmPlugin', () => env.getOpt('WasmPlugin', ns, name));
  await until('Programmed', async () => condition(await env.getOpt('MetaRouter', ns, 'thrift-demo'), 'Programmed')?.status === 'True');
  const demo = { servers, ns, port, host, name, wasmPlugin };
  await beforeSidecar?.(demo);
  const t0 = Date.now();
  const agent = await new Agent(agentBin, {
    namespace: ns, workload: 'client', xdsAddress: istiod.xdsAddress, ca: await workloadIdentity(ns, 'default'),
    // The registry speaks plain HTTP; the agent's fetcher falls back to it for any host, and this is
    // the setting a registry with a self-signed certificate needs.
    env: { WASM_INSECURE_REGISTRIES: registry.host },
  }).start();
  t.after(() => agent.stop());
  return Object.assign(demo, { agent, agentReadyMs: Date.now() - t0 });
}

before(async () => {
  const bin = istiodBinaries();
  agentBin = agentBinaries();
  const craneBin = craneBinaries();
  const out = join(work, 'layouts');
  execFileSync(process.execPath, [join(ROOT, 'scripts/images/build.mjs'), '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  image = JSON.parse(readFileSync(join(out, 'images.json'), 'utf8')).wasm;
  registry = await new Registry(craneBin).start();
  image.ref = `${registry.host}/meltemi:${VERSION}`;
  crane(craneBin, ['push', join(out, 'meltemi'), image.ref]);
  assert.equal(crane(craneBin, ['digest', image.ref]), image.digest);
  rdsPort = await freePort();
  await env.start(['--module-url', `oci://${image.ref}`, '--module-sha256', image.digest.slice('sha256:'.length), '--rds-port', String(rdsPort)]);
  await installIstio(env);
  istiod = new Istiod(bin, env.cluster.writeKubeconfig('istiod', env.cluster.adminToken), { ca: true });
  await istiod.start();
  evidence.istioVersion = istioVersion(bin);
}, { timeout: 90 * 60 * 1000 });

after(async () => {
  await istiod?.stop();
  await env.stop();
  await registry?.stop();
  if (registry) rmSync(cacheDir(), { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(`# istio ${evidence.istioVersion} with pilot-agent: image ${image?.digest}, agent+Envoy ready ${evidence.agentReadyMs} ms, ` +
    `module pulled and running ${evidence.pulledMs} ms\n`);
});

test('pilot-agent pulls the filter by oci:// with its digest, hands Envoy the cached file, and real Thrift calls are routed by it', async (t) => {
  const demo = await thriftDemo(t, 'agent');
  const { servers, port, host, agent, wasmPlugin } = demo;
  evidence.agentReadyMs = demo.agentReadyMs;
  assert.equal(wasmPlugin.spec.url, `oci://${image.ref}`);
  assert.equal(wasmPlugin.spec.sha256, image.digest.slice(7));
  const t0 = Date.now();
  const p = await until('Envoy runs the Wasm filter from the agent\'s cache', async () => {
    const r = await programmed(demo); return r.ecdsConfig?.config?.vm_config?.code?.local && r;
  }, 60000, 200);
  evidence.pulledMs = Date.now() - t0;
  assert.deepEqual(p.filters.map((f) => f.name), [p.ref.name, TCP_PROXY]);
  assert.deepEqual(p.ref.config_discovery.type_urls, [WASM_TYPE, RBAC_TYPE]);
  const file = p.ecdsConfig.config.vm_config.code.local.filename;
  assert.equal(file, join(cacheDir(), `${image.digest.slice(7)}.wasm`),
    'in the agent\'s cache, named by the url without its tag and by the checksum');
  assert.ok(readFileSync(file).equals(readFileSync(WASM)), 'the cached module is build/meltemi.wasm');
  process.stdout.write(`# config_dump ECDS: ${JSON.stringify({ ...p.ecdsConfig, config: { ...p.ecdsConfig.config, configuration: '...' } })}\n`);

  assert.equal(answeredBy(await call(demo, 'sayHello', 'alice')), 'v2');
  assert.equal(await call(demo, 'echo', 'e1'), 'e1');
  assert.deepEqual(servers.v1.calls.map((c) => c.method), ['echo']);
  assert.deepEqual(servers.v2.calls.map((c) => c.method), ['sayHello']);
  // Scraped as Prometheus does (ENVOY_PROMETHEUS_PORT), labelled by the extraStatTags pilot-agent
  // wrote into the bootstrap (test/istio/agent.mjs sets docs/metrics.md's).
  const m = await agent.metrics();
  const hello = { meltemi_service: host, meltemi_route: 'hello', meltemi_cluster: `outbound|${port}|v2|${host}`, meltemi_kind: 'call' };
  assert.equal(m.get('meltemi_requests_total', hello), 1);
  assert.equal(m.get('meltemi_requests_total', { meltemi_service: host, meltemi_route: 'rest', meltemi_cluster: `outbound|${port}|v1|${host}`, meltemi_kind: 'call' }), 1);
  for (const x of m.series('meltemi_requests_total')) process.stdout.write(`# pilot-agent :15090 ${x.name}{${Object.entries(x.labels).map(([k, v]) => `${k}="${v}"`).join(',')}} ${x.value}\n`);
  assert.equal(p.ecdsConfig['@type'], WASM_TYPE, 'the Wasm filter, not the deny-all RBAC the agent puts in when a pull fails');
  assert.match(agent.logs(), new RegExp(`fetching image meltemi from registry ${registry.host.replace(/\./g, '\\.')} with tag ${VERSION}`));
});

/**
 * sayHello to v2, the rest to v1. (No rule on principals: per connection one never holds, the
 * filter sees the application's plaintext connection, not the sidecars' mTLS, so the controller
 * refuses it: test/controller/render.test.mjs.)
 */
const defaultMtlsRoutes = () => [
  { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ destination: { host: 'thrift-demo', subset: 'v2' } }] },
  { name: 'rest', route: [{ destination: { host: 'thrift-demo', subset: 'v1' } }] },
];

/**
 * Two server sidecars (v1 on 127.0.0.2, v2 on 127.0.0.3), each a pilot-agent + Envoy whose Sidecar
 * ingress listener takes mTLS on <ip>:<free port> and forwards to its Thrift server, and a client
 * sidecar on 127.0.0.1 whose outbound listener runs the filter; PeerAuthentication STRICT in the
 * namespace and a DestinationRule with ISTIO_MUTUAL, so the client's subset clusters present the
 * certificate the client's agent got from istiod's CA over SDS.
 */
async function mtlsDemo(t, { mode = 'perConnection', routes = defaultMtlsRoutes } = {}) {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }) };
  t.after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const ns = await env.namespace('mtls');
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const ip = { v1: '127.0.0.2', v2: '127.0.0.3' };
  // The inbound ports are bound on the servers' own addresses: free there.
  const port = await freePort();
  const inbound = { v1: await freePort(ip.v1), v2: await freePort(ip.v2) };
  await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port, targetPort: 'thrift' }] } });
  for (const v of ['v1', 'v2']) {
    await apply({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: `thrift-demo-${v}`, namespace: ns },
      spec: { address: ip[v], labels: { app: 'thrift-demo', version: v }, ports: { thrift: inbound[v] }, serviceAccount: 'default' } });
    // The server's own Sidecar: its inbound listener, and no outbound ones (the client binds the Service port).
    await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: `thrift-demo-${v}`, namespace: ns },
      spec: { workloadSelector: { labels: { app: 'thrift-demo', version: v } },
        ingress: [{ port: { number: inbound[v], protocol: 'TCP', name: 'tcp-thrift' }, bind: ip[v], defaultEndpoint: `127.0.0.1:${servers[v].port}` }],
        egress: [{ hosts: ['istio-system/*'] }] } });
  }
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*'] }] } });
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'thrift-demo', namespace: ns },
    spec: { host, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } });
  await apply({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: ns }, spec: { mtls: { mode: 'STRICT' } } });
  await apply(router(ns, 'thrift-demo', { hosts: ['thrift-demo'], mode, routes: routes(`spiffe://cluster.local/ns/${ns}/sa/default`) }));
  await until('Programmed', async () => condition(await env.getOpt('MetaRouter', ns, 'thrift-demo'), 'Programmed')?.status === 'True');
  const accepted = condition(await env.getOpt('MetaRouter', ns, 'thrift-demo'), 'Accepted');
  const identity = await workloadIdentity(ns, 'default');
  const sidecar = async (workload, o) => {
    const a = await new Agent(agentBin, { namespace: ns, workload, xdsAddress: istiod.xdsAddress, ca: identity, env: { WASM_INSECURE_REGISTRIES: registry.host }, ...o }).start();
    t.after(() => a.stop());
    return a;
  };
  const serverSidecars = {
    v1: await sidecar('thrift-demo-v1', { ip: ip.v1, labels: { app: 'thrift-demo', version: 'v1' } }),
    v2: await sidecar('thrift-demo-v2', { ip: ip.v2, labels: { app: 'thrift-demo', version: 'v2' } }),
  };
  // Per request the client's Envoy takes its routes from the controller's RDS through a static
  // cluster: what a pod's bootstrapOverride gives it (ISTIO_BOOTSTRAP_OVERRIDE, merged by the agent).
  const override = join(work, `bootstrap-${ns}.json`);
  writeFileSync(override, JSON.stringify({ static_resources: { clusters: [{
    name: 'meltemi-rds', type: 'STATIC', connect_timeout: '1s',
    load_assignment: { cluster_name: 'meltemi-rds', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: rdsPort } } } }] }] },
  }] } }));
  const agent = await sidecar('client', mode === 'perRequest' ? { env: { WASM_INSECURE_REGISTRIES: registry.host, ISTIO_BOOTSTRAP_OVERRIDE: override } } : {});
  return { servers, ns, port, host, ip, inbound, agent, serverSidecars, accepted };
}

const dump = async (a, t) => ofType(JSON.parse((await a.admin('/config_dump')).body).configs, t);

test('mutual TLS between sidecars (STRICT, certificates from istiod\'s CA over the agents\' SDS), and calls still routed by the filter', async (t) => {
  const demo = await mtlsDemo(t);
  const { servers, ns, port, host, ip, inbound, agent, serverSidecars } = demo;
  await until('client runs the Wasm filter', async () => (await programmed(demo)).ecdsConfig?.config?.vm_config?.code?.local, 60000, 200);
  // Server side: the inbound listener istiod made from the Sidecar ingress asks for a client certificate.
  const inboundOf = async (v) => (await dump(serverSidecars[v], 'ListenersConfigDump')).dynamic_listeners
    ?.map((l) => l.active_state?.listener).find((l) => l?.address?.socket_address?.port_value === inbound[v]);
  const listener = await until('v2 inbound listener', () => inboundOf('v2'), 30000, 200);
  assert.equal(listener.address.socket_address.address, ip.v2);
  const tlsChains = listener.filter_chains.filter((c) => c.transport_socket?.name === 'envoy.transport_sockets.tls');
  assert.ok(tlsChains.length > 0, JSON.stringify(listener.filter_chains.map((c) => c.filter_chain_match)));
  assert.ok(listener.filter_chains.every((c) => c.transport_socket?.name === 'envoy.transport_sockets.tls'), 'STRICT: no plaintext filter chain');
  const downstream = tlsChains[0].transport_socket.typed_config;
  assert.equal(downstream.require_client_certificate, true);
  process.stdout.write(`# server inbound ${listener.name}: ${JSON.stringify({ filter_chain_match: tlsChains[0].filter_chain_match, transport_socket: tlsChains[0].transport_socket })}\n`);
  // Client side: the subset clusters the filter routes to present the SDS certificate and check the server's SAN.
  const clusters = (await dump(agent, 'ClustersConfigDump')).dynamic_active_clusters.map((c) => c.cluster);
  const v2 = clusters.find((c) => c.name === `outbound|${port}|v2|${host}`);
  const upstream = (v2.transport_socket_matches ?? []).find((m) => m.transport_socket.name === 'envoy.transport_sockets.tls')?.transport_socket ?? v2.transport_socket;
  assert.equal(upstream?.name, 'envoy.transport_sockets.tls', JSON.stringify(v2));
  assert.deepEqual(upstream.typed_config.common_tls_context.tls_certificate_sds_secret_configs.map((c) => c.name), ['default']);
  process.stdout.write(`# client cluster ${v2.name} transport socket: ${JSON.stringify(upstream)}\n`);
  // Every sidecar's certificate is istiod's, for the namespace's service account.
  const certs = JSON.parse((await serverSidecars.v2.admin('/certs')).body).certificates;
  const sans = certs.flatMap((c) => c.cert_chain ?? []).flatMap((c) => c.subject_alt_names ?? []).map((s) => s.uri).filter(Boolean);
  assert.ok(sans.includes(`spiffe://cluster.local/ns/${ns}/sa/default`), JSON.stringify(certs));

  // Calls through the client's sidecar: routed by the filter, carried over mTLS to the server sidecars.
  assert.equal(answeredBy(await call(demo, 'sayHello', 'alice')), 'v2');
  assert.equal(await call(demo, 'echo', 'e1'), 'e1');
  assert.deepEqual(servers.v1.calls.map((c) => c.method), ['echo']);
  assert.deepEqual(servers.v2.calls.map((c) => c.method), ['sayHello']);
  const m = await agent.metrics();
  assert.equal(m.get('meltemi_requests_total', { meltemi_route: 'hello', meltemi_kind: 'call' }), 1);
  assert.equal(m.get('meltemi_requests_total', { meltemi_route: 'rest', meltemi_kind: 'call' }), 1);
  assert.equal(demo.accepted.status, 'True');
  // STRICT: a plaintext client straight to a server sidecar gets no answer.
  const direct = await thriftClient({ host: ip.v2, port: inbound.v2 });
  t.after(() => direct.close());
  await assert.rejects(direct.sayHello('plaintext'), /closed|ECONNRESET|EPIPE/, 'closed by the sidecar, not timed out');
  assert.equal(servers.v2.calls.length, 1, 'the plaintext call never reached the server');
});

test('per request, a rule on principals holds on the server\'s sidecar over mTLS: the caller\'s SPIFFE id is allowed on one route and denied on another', async (t) => {
  const routes = (principal) => [
    { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ destination: { host: 'thrift-demo', subset: 'v2' } }],
      authorization: { defaultAction: 'DENY', rules: [{ name: 'only-default', action: 'ALLOW', principals: [principal] }] } },
    { name: 'rest', route: [{ destination: { host: 'thrift-demo', subset: 'v1' } }],
      authorization: { rules: [{ name: 'not-default', action: 'DENY', principals: [principal] }] } },
  ];
  const demo = await mtlsDemo(t, { mode: 'perRequest', routes });
  const { servers, agent, serverSidecars } = demo;
  assert.ok(!demo.accepted.message.includes('.principals:'), demo.accepted.message);
  await until('client runs the Wasm filter', async () => (await programmed(demo)).ecdsConfig?.config?.vm_config?.code?.local, 60000, 200);
  await until('server v2 runs the server role', async () => {
    const ecds = (await dump(serverSidecars.v2, 'EcdsConfigDump'))?.ecds_filters ?? [];
    return ecds.some((f) => f.ecds_filter?.typed_config?.config?.vm_config?.code?.local);
  }, 60000, 200);
  const c = await thriftClient({ port: demo.port, timeout: 10_000 });
  t.after(() => c.close());
  // The client's route table comes by RDS from the controller: poll until the allowed call goes through.
  await until('sayHello allowed and answered by v2', async () => answeredBy(await c.sayHello('alice').catch((e) => `x:${e.message}`)) === 'v2', 30000, 500);
  const denied = await c.echo('e1').then((r) => `answered ${r}`, (e) => e.message);
  process.stdout.write(`# per request over mTLS, echo: ${denied}\n`);
  assert.match(denied, /denied by authorization rule not-default/);
  assert.deepEqual(servers.v1.calls, [], 'the denied call never reached v1');
  assert.ok(servers.v2.calls.some((x) => x.method === 'sayHello'));
});

// Last in this file: it stops the controller, which would otherwise put the right digest back.
test('a wrong sha256 is refused by the agent: it never hands Envoy the module and puts a deny-all RBAC filter in its place (fail closed)', async (t) => {
  const wrong = 'f'.repeat(64);
  const demo = await thriftDemo(t, 'agent-sha', {
    beforeSidecar: async ({ ns, name }) => {
      env.controller.kill('SIGTERM');
      await new Promise((r) => (env.controller.exitCode !== null ? r() : env.controller.on('exit', r)));
      await env.admin.request('PATCH', `${pathOf('WasmPlugin', ns)}/${name}`, { spec: { sha256: wrong } }, 'application/merge-patch+json');
    },
  });
  const { agent, servers } = demo;
  const p = await until('the listener\'s ECDS config is the agent\'s deny-all RBAC', async () => {
    const r = await programmed(demo); return r.ecdsConfig && r;
  }, 60000, 200);
  process.stdout.write(`# config_dump ECDS with a wrong sha256: ${JSON.stringify(p.ecdsConfig)}\n`);
  assert.equal(p.ecdsConfig['@type'], RBAC_TYPE);
  assert.deepEqual(p.filters.map((f) => f.name), [p.ref.name, TCP_PROXY], 'same listener, same filter slot');
  const mismatch = agent.logs().split('\n').find((l) => l.includes('which does not match'));
  assert.match(mismatch, new RegExp(`module downloaded from oci://${registry.host.replace(/\./g, '\\.')}/meltemi:${VERSION} has checksum ${image.digest.slice(7)}, which does not match: ${wrong}`));
  process.stdout.write(`# agent: ${mismatch.trim()}\n`);
  // Fail closed: the connection is closed before any call reaches a server.
  await assert.rejects(call(demo, 'sayHello', 'denied'), /closed|ECONNRESET|EPIPE/, 'closed by the deny-all filter, not timed out');
  assert.deepEqual([...servers.v1.calls, ...servers.v2.calls], []);
  assert.ok(!existsSync(join(cacheDir(), `${wrong}.wasm`)), 'nothing cached under the wrong checksum');
});
