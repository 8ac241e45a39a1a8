// A real kube-apiserver + etcd (test/kube/) with Istio's real WasmPlugin/EnvoyFilter/DestinationRule/ServiceEntry
// CRDs and deploy/meltemi.yaml installed, and the controller running as `meltemi run` in a child
// process, as the ServiceAccount identity that deploy/meltemi.yaml's RBAC binds (so missing permissions
// fail the tests). One environment per test file; each test makes its own namespace (there is no
// controller-manager: nothing is garbage-collected, namespaces never finish terminating).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseAllDocuments } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { Cluster, binaries, until } from '../kube/cluster.mjs';
import { ROOT } from './helpers.mjs';

const { Kube, RESOURCES, ApiError } = await import(new URL('../../dist/controller/kube.mjs', import.meta.url).href);

export const SHA = 'ab'.repeat(32);
export const MODULE = 'oci://ghcr.io/meltemi-dev/meltemi:0.1.0';
export const KINDS = {
  ...RESOURCES,
  CustomResourceDefinition: { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', namespaced: false },
  Namespace: { group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  ServiceAccount: { group: '', version: 'v1', plural: 'serviceaccounts', namespaced: true },
  ClusterRole: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', namespaced: false },
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments', namespaced: true },
  DestinationRule: { group: 'networking.istio.io', version: 'v1', plural: 'destinationrules', namespaced: true },
};

export const docs = (text) => parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean);
export const condition = (mr, type) => mr?.status?.conditions?.find((c) => c.type === type);
export const service = (ns, name, ports) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports } });
export const router = (ns, name, spec) => ({ apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', metadata: { name, namespace: ns }, spec });
/**
 * The Istio objects of the Thrift demo service of the Istio tests in `ns`: Service thrift-demo on
 * `port` (tcp-metaprotocol-thrift-demo), one WorkloadEntry per version on 127.0.0.1:`inbound[v]`, a
 * DestinationRule with a subset per version, and a Sidecar that keeps the namespace's clients to its
 * own services (so the API server's own Service, 443, stays out of their listeners).
 */
export function thriftDemoObjects(ns, port, inbound) {
  const host = `thrift-demo.${ns}.svc.cluster.local`;
  const versions = Object.keys(inbound);
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'thrift-demo', namespace: ns },
      spec: { selector: { app: 'thrift-demo' }, ports: [{ name: 'tcp-metaprotocol-thrift-demo', port, targetPort: 'thrift' }] } },
    ...versions.map((v) => ({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: `thrift-demo-${v}`, namespace: ns },
      spec: { address: '127.0.0.1', labels: { app: 'thrift-demo', version: v }, ports: { thrift: inbound[v] } } })),
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'thrift-demo', namespace: ns },
      spec: { host, subsets: versions.map((v) => ({ name: v, labels: { version: v } })) } },
    { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*'] }] } },
  ];
}

export const dubboRoutes = (v1, v2) => [
  { name: 'say-hello', match: { attributes: { method: { exact: 'sayHello' } } },
    route: [{ destination: { host: 'demo', subset: 'v1' }, weight: v1 }, { destination: { host: 'demo', subset: 'v2' }, weight: v2 }],
    requestMutation: [{ key: 'x-route', value: 'say-hello' }] },
  { name: 'rest', route: [{ destination: { host: 'demo', subset: 'v2' } }] },
];

export function pathOf(kind, namespace) {
  const r = KINDS[kind];
  return `${r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`}${r.namespaced && namespace ? `/namespaces/${namespace}` : ''}/${r.plural}`;
}

/** `meltemi <argv>` from this repository, under the test's node. */
const defaultLaunch = (argv) => ({
  command: process.execPath, args: [join(ROOT, 'controller/bin/meltemi.mjs'), ...argv], env: { ...process.env, MELTEMI_LOG_LEVEL: 'info' },
});

export class KubeEnv {
  logs = [];
  evidence = {};

  /** Starts the cluster only (nothing installed) with an admin client: what helm.test.mjs installs into. */
  async startCluster() {
    const t0 = Date.now();
    const bin = binaries();
    this.evidence.fetchMs = Date.now() - t0;
    this.cluster = await new Cluster(bin).start();
    this.evidence.startupMs = this.cluster.startupMs;
    const kc = new KubeConfig();
    kc.loadFromString(this.cluster.kubeconfig(this.cluster.adminToken));
    this.admin = new Kube(kc, 'meltemi-test');
    return this;
  }

  /**
   * Starts the cluster, installs the CRDs and deploy/meltemi.yaml, and runs `meltemi run <args>`.
   * `launch(argv)` says how: { command, args, env } (default: this repository's CLI under this node;
   * the image test runs the controller image's entrypoint under chroot instead).
   */
  async start(controllerArgs = [], { launch = defaultLaunch } = {}) {
    await this.startCluster();
    const bin = this.cluster.bin;
    const crdFile = readFileSync(join(bin, `istio-crds-v${process.env.ISTIO_API ?? '1.32.0'}.yaml`), 'utf8');
    const istio = docs(crdFile).filter((d) => d.kind === 'CustomResourceDefinition' && ['WasmPlugin', 'EnvoyFilter', 'DestinationRule', 'ServiceEntry'].includes(d.spec.names.kind));
    assert.equal(istio.length, 4, 'Istio CRDs for WasmPlugin, EnvoyFilter, DestinationRule and ServiceEntry');
    const install = docs(readFileSync(join(ROOT, 'deploy/meltemi.yaml'), 'utf8'));
    for (const o of [...istio, ...install]) await this.apply(o);
    for (const crd of [...istio, ...install.filter((o) => o.kind === 'CustomResourceDefinition')]) {
      await until(`CRD ${crd.metadata.name} established`, async () =>
        (await this.getOpt('CustomResourceDefinition', undefined, crd.metadata.name))?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
    }
    for (const o of docs(readFileSync(join(ROOT, 'examples/application-protocols.yaml'), 'utf8'))) await this.apply(o);
    const t0 = Date.now();
    this.launch = launch;
    await this.startController(controllerArgs);
    this.evidence.controllerReadyMs = Date.now() - t0;
    return this;
  }

  /** Runs `meltemi run <args>` (as start()'s `launch` says) as the controller's ServiceAccount and waits until it has synced. */
  async startController(controllerArgs = []) {
    const from = this.logs.length;   // a restarted controller logs its own health port
    const how = (this.launch ?? defaultLaunch)(['run',
      '--kubeconfig', this.cluster.writeKubeconfig('controller', this.cluster.controllerToken),
      '--health-port', '0', '--resync', '1', '--module-url', MODULE, '--module-sha256', SHA, ...controllerArgs]);
    const controller = spawn(how.command, how.args, { stdio: ['ignore', 'pipe', 'inherit'], env: how.env });
    this.controller = controller;
    let buf = '';
    controller.stdout.on('data', (c) => {
      buf += c;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) this.logs.push(JSON.parse(buf.slice(0, i)));
    });
    const health = await until('controller health endpoint', () => this.logs.slice(from).find((l) => l.msg === 'health endpoints'));
    this.healthPort = health.port;
    await until('controller synced', async () => (await this.statusz()).ready);
  }

  /** Stops the controller and runs it again with other arguments (same cluster and identity). */
  async restartController(controllerArgs = []) {
    const c = this.controller;
    if (c && c.exitCode === null) { c.kill('SIGTERM'); await new Promise((r) => c.on('exit', r)); }
    await this.startController(controllerArgs);
  }

  async stop() {
    const c = this.controller;
    if (c && c.exitCode === null) { c.kill('SIGTERM'); await new Promise((r) => c.on('exit', r)); }
    if (this.cluster) {
      const v = await this.cluster.version().catch(() => ({}));
      const e = this.evidence;
      process.stdout.write(`# kube-apiserver ${v.gitVersion ?? '?'}; fetch/build ${e.fetchMs} ms, etcd+apiserver ready ${e.startupMs} ms, controller synced ${e.controllerReadyMs} ms, apiserver restart ${e.restartMs ?? '-'} ms\n`);
      if (process.env.MELTEMI_TEST_LOGS) for (const l of this.logs) process.stdout.write(`# ${JSON.stringify(l)}\n`);
      await this.cluster.stop({ keep: !!process.env.KEEP_KUBE });
    }
  }

  apply(obj) { return this.admin.apply(KINDS[obj.kind], obj); }
  del(kind, namespace, name) { return this.admin.delete(KINDS[kind], namespace, name); }
  async getOpt(kind, namespace, name) {
    try { return await this.admin.request('GET', `${pathOf(kind, namespace)}/${name}`); } catch (e) { if (e instanceof ApiError && e.status === 404) return undefined; throw e; }
  }
  async namespace(prefix) {
    const name = `${prefix}-${randomBytes(3).toString('hex')}`;
    await this.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    return name;
  }
  statusz() {
    return new Promise((resolve, reject) => {
      http.get(`http://127.0.0.1:${this.healthPort}/statusz`, (res) => {
        let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => resolve(JSON.parse(b)));
      }).on('error', reject);
    });
  }
}

/**
 * Every Istio CRD into the env's API server (istiod watches Sidecars, WorkloadEntries,
 * ServiceEntries, TrafficExtensions, ...), established, and the istio-system namespace: what istiod
 * needs before it starts.
 */
export async function installIstio(env) {
  const crds = docs(readFileSync(join(env.cluster.bin, `istio-crds-v${process.env.ISTIO_API ?? '1.32.0'}.yaml`), 'utf8'))
    .filter((d) => d.kind === 'CustomResourceDefinition');
  for (const crd of crds) await env.apply(crd);
  for (const crd of crds) {
    await until(`CRD ${crd.metadata.name} established`, async () =>
      (await env.getOpt('CustomResourceDefinition', undefined, crd.metadata.name))?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
  }
  await env.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } });
}
