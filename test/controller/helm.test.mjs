// The Helm chart deploy/helm/meltemi with the real Helm (test/helm/fetch-helm.sh builds it from the Go
// module proxy) and a real kube-apiserver + etcd (test/kube): strict lint, what values render, the
// values schema refusing bad values by name, deploy/meltemi.yaml in step with the chart, and install,
// upgrade, rollback and uninstall into the API server. No kubelet runs Pods there, so the test runs the
// installed Deployment's own container args and env as `meltemi run`, with the ServiceAccount identity
// the chart's ClusterRoleBinding names: the chart's RBAC is all the controller gets.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../kube/cluster.mjs';
import { ROOT } from './helpers.mjs';
import { KubeEnv, SHA, docs, condition, service, router, dubboRoutes, pathOf } from './kube-env.mjs';

const CHART = join(ROOT, 'deploy/helm/meltemi');
const HELM = join(execFileSync('bash', [join(ROOT, 'test/helm/fetch-helm.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop(), 'helm');
const RELEASE = 'meltemi';
const NS = 'meltemi-system';
// Helm's own cache, config and data (repositories, plugins) in a temp folder, never the user's.
const home = mkdtempSync(join(tmpdir(), 'meltemi-helm-'));
const helmEnv = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };

/** Runs helm; returns its exit status and output (the test asserts on both). */
function helm(...args) {
  const r = spawnSync(HELM, args, { encoding: 'utf8', env: helmEnv, timeout: 120000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function helmOk(...args) {
  const r = helm(...args);
  assert.equal(r.status, 0, `helm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const template = (...set) => docs(helmOk('template', RELEASE, CHART, '--namespace', NS, ...set.flatMap((s) => ['--set', s])));
const find = (objs, kind, name) => objs.find((o) => o.kind === kind && (!name || o.metadata.name === name));
const container = (deployment) => deployment.spec.template.spec.containers[0];

test("the chart's version and appVersion are package.json's", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const chart = docs(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'))[0];
  assert.equal(chart.version, pkg.version);
  assert.equal(chart.appVersion, pkg.version);
});

test('helm lint --strict passes with the default values and with every option set', () => {
  for (const set of [[], ['image.digest=sha256:' + 'cd'.repeat(32), 'imagePullSecrets[0].name=regcred', `module.sha256=${SHA}`,
    'rds.enabled=true', 'configNamespace=istio-system', 'statPrefix=mesh', 'maxEarlyDataBytes=131072', 'nodeSelector.pool=infra',
    'tolerations[0].key=infra', 'tolerations[0].operator=Exists', 'crds.keep=false']]) {
    const out = helmOk('lint', '--strict', CHART, ...set.flatMap((s) => ['--set', s]));
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    assert.doesNotMatch(out, /\[(WARNING|ERROR)\]/);
  }
  // What docs/install.md says to hand to a registry or another cluster.
  assert.match(helmOk('package', CHART, '--destination', home), /Successfully packaged chart and saved it to: .*meltemi-0\.1\.0\.tgz/);
});

test('values render what they say: a digest pins the image, pull secrets, module, fail strategy, log level, RDS', () => {
  const digest = 'sha256:' + 'cd'.repeat(32);
  const objs = template(`image.digest=${digest}`, 'image.tag=ignored', 'imagePullSecrets[0].name=regcred', 'module.url=oci://registry.example/meltemi:9',
    `module.sha256=${SHA}`, 'failStrategy=FAIL_OPEN', 'logLevel=debug', 'rds.enabled=true', 'rds.port=15999', 'nodeSelector.pool=infra');
  const d = find(objs, 'Deployment');
  const c = container(d);
  assert.equal(c.image, `ghcr.io/meltemi-dev/meltemi-controller@${digest}`);
  assert.deepEqual(d.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
  assert.deepEqual(d.spec.template.spec.nodeSelector, { pool: 'infra' });
  assert.deepEqual(c.args, ['run', '--module-url=oci://registry.example/meltemi:9', `--module-sha256=${SHA}`, '--fail-strategy=FAIL_OPEN',
    '--cluster-domain=cluster.local', '--resync=300', '--health-port=8081', '--rds-port=15999']);
  assert.deepEqual(c.env, [{ name: 'MELTEMI_LOG_LEVEL', value: 'debug' }]);
  const rds = find(objs, 'Service', 'meltemi-rds');
  assert.deepEqual(rds.spec.ports, [{ name: 'http-rds', port: 15999, targetPort: 'rds', protocol: 'TCP' }]);
  assert.ok(c.ports.some((p) => p.name === 'rds' && p.containerPort === 15999));

  // The defaults: the tag is the appVersion, the module is the same version's OCI image, no RDS.
  const plain = template();
  const pc = container(find(plain, 'Deployment'));
  assert.equal(pc.image, 'ghcr.io/meltemi-dev/meltemi-controller:0.1.0');
  assert.equal(pc.args[1], '--module-url=oci://ghcr.io/meltemi-dev/meltemi:0.1.0');
  assert.ok(!pc.args.some((a) => a.startsWith('--module-sha256') || a.startsWith('--rds-port')));
  assert.equal(find(plain, 'Service'), undefined);
  assert.equal(find(plain, 'Deployment').spec.template.spec.imagePullSecrets, undefined);
  // Non-root, read-only root filesystem, no capabilities.
  assert.equal(find(plain, 'Deployment').spec.template.spec.securityContext.runAsNonRoot, true);
  assert.deepEqual(pc.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  // CRDs survive uninstall unless crds.keep=false; crds.install=false leaves them out.
  for (const crd of plain.filter((o) => o.kind === 'CustomResourceDefinition')) assert.equal(crd.metadata.annotations['helm.sh/resource-policy'], 'keep');
  assert.equal(template('crds.keep=false').find((o) => o.kind === 'CustomResourceDefinition').metadata.annotations, undefined);
  assert.equal(template('crds.install=false').filter((o) => o.kind === 'CustomResourceDefinition').length, 0);
});

test('monitoring: off by default; on, a PrometheusRule with the alerts and the Grafana dashboard as a ConfigMap', () => {
  const plain = template();
  assert.equal(find(plain, 'PrometheusRule'), undefined);
  assert.equal(find(plain, 'ConfigMap', 'meltemi-dashboard'), undefined);
  const on = ['monitoring.dashboard.enabled=true', 'monitoring.prometheusRule.enabled=true'];
  assert.match(helmOk('lint', '--strict', CHART, ...on.flatMap((x) => ['--set', x])), /1 chart\(s\) linted, 0 chart\(s\) failed/);
  const objs = template(...on, 'monitoring.prometheusRule.labels.release=prom');
  const rule = find(objs, 'PrometheusRule', 'meltemi');
  assert.equal(rule.metadata.labels.release, 'prom', 'the Prometheus operator\'s rule selector label');
  assert.deepEqual(rule.spec.groups[0].rules.map((r) => r.alert),
    ['MeltemiErrorRatioHigh', 'MeltemiLocalRepliesHigh', 'MeltemiDenialsSpike', 'MeltemiBadInput', 'MeltemiWasmMemoryGrowth']);
  // Helm leaves Prometheus's own templates in the annotations for Prometheus to fill.
  assert.match(rule.spec.groups[0].rules[0].annotations.summary, /\{\{ \$labels\.meltemi_service \}\}/);
  const dashboard = find(objs, 'ConfigMap', 'meltemi-dashboard');
  assert.equal(dashboard.metadata.labels.grafana_dashboard, '1');
  assert.deepEqual(JSON.parse(dashboard.data['meltemi.json']), JSON.parse(readFileSync(join(CHART, 'dashboards/meltemi.json'), 'utf8')));
});

test("values.schema.json refuses bad values, naming the field", () => {
  const cases = [
    ['failStrategy=FAIL_SOMETIMES', "at '/failStrategy': value must be one of 'FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD'"],
    ['image.digest=sha256:abc', "at '/image/digest': 'sha256:abc' does not match pattern"],
    ['module.sha256=ABC', "at '/module/sha256': 'ABC' does not match pattern"],
    ['logLevel=verbose', "at '/logLevel': value must be one of 'debug', 'info', 'warn', 'error'"],
    ['imagePullSecrets[0].nmae=regcred', "at '/imagePullSecrets/0': missing property 'name'"],
    ['failstrategy=FAIL_OPEN', "at '': additional properties 'failstrategy' not allowed"],
  ];
  for (const [set, message] of cases) {
    const r = helm('template', RELEASE, CHART, '--set', set);
    assert.notEqual(r.status, 0, set);
    assert.ok(r.stderr.includes("values don't meet the specifications of the schema"), r.stderr);
    assert.ok(r.stderr.includes(message), `${set}: ${r.stderr}`);
  }
});

test('deploy/meltemi.yaml is the chart rendered with its default values (make manifest)', () => {
  const want = execFileSync('bash', [join(ROOT, 'scripts/render-manifest.sh')], { encoding: 'utf8', env: { ...helmEnv, HELM } });
  const have = readFileSync(join(ROOT, 'deploy/meltemi.yaml'), 'utf8');
  const [a, b] = [have.split('\n'), want.split('\n')];
  const line = a.findIndex((l, i) => l !== b[i]);
  assert.ok(have === want, `deploy/meltemi.yaml differs from the chart at line ${line + 1} (${JSON.stringify(a[line])}, the chart renders ${JSON.stringify(b[line])}): run \`make manifest\` and commit it`);
  assert.deepEqual(docs(have).map((o) => o.kind),
    ['Namespace', 'ServiceAccount', 'CustomResourceDefinition', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'Deployment']);
});

// The install, upgrade, rollback and uninstall tests share one API server and run in order.
const env = new KubeEnv();
let kubeconfig;
/** helm against the test API server, in the release's namespace. */
const helmIn = (...args) => helmOk(...args, '--kubeconfig', kubeconfig, '--namespace', NS);

before(async () => {
  await env.startCluster();
  kubeconfig = env.cluster.writeKubeconfig('helm', env.cluster.adminToken);
  // The Istio CRDs the controller watches (the chart does not install Istio's).
  const istio = docs(readFileSync(join(env.cluster.bin, `istio-crds-v${process.env.ISTIO_API ?? '1.32.0'}.yaml`), 'utf8'))
    .filter((d) => d.kind === 'CustomResourceDefinition' && ['WasmPlugin', 'EnvoyFilter', 'DestinationRule', 'ServiceEntry'].includes(d.spec.names.kind));
  for (const crd of istio) await env.apply(crd);
}, { timeout: 40 * 60 * 1000 });

after(async () => {
  await env.stop();
  rmSync(home, { recursive: true, force: true });
});

/**
 * Runs the live Deployment's container as `meltemi run`: its args and env, with --kubeconfig (no Pod,
 * so no in-cluster config) of the ServiceAccount's identity and free health and RDS ports instead of
 * the fixed ones (a later --flag wins). Resolves once the controller's caches have all synced.
 */
async function runDeployment() {
  const d = await env.getOpt('Deployment', NS, 'meltemi-controller');
  const c = container(d);
  assert.equal(c.args[0], 'run');
  const args = [...c.args, '--kubeconfig', env.cluster.writeKubeconfig('controller', env.cluster.controllerToken), '--health-port=0', '--resync=1'];
  if (c.args.some((a) => a.startsWith('--rds-port='))) args.push('--rds-port=0');
  const vars = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
  const { KUBERNETES_SERVICE_HOST, ...outside } = process.env;
  const child = spawn(process.execPath, [join(ROOT, 'controller/bin/meltemi.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...outside, ...vars } });
  env.controller = child;
  env.logs.length = 0;
  let buf = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    buf += chunk;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) env.logs.push(JSON.parse(buf.slice(0, i)));
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const health = await until('controller health endpoint', () => {
    if (child.exitCode !== null) throw new Error(`meltemi ${args.join(' ')} exited ${child.exitCode}: ${stderr}`);
    return env.logs.find((l) => l.msg === 'health endpoints');
  });
  env.healthPort = health.port;
  const t0 = Date.now();
  await until('controller synced', async () => (await env.statusz()).ready);
  env.evidence.controllerReadyMs = Date.now() - t0;
  return { child, args, logs: env.logs };
}

async function stopController() {
  const c = env.controller;
  if (c && c.exitCode === null) { c.kill('SIGTERM'); await new Promise((r) => c.on('exit', r)); }
  env.controller = undefined;
}

test('helm install creates the CRDs, RBAC and Deployment, and the Deployment runs the controller with that RBAC', { timeout: 180000 }, async () => {
  const out = helmIn('install', RELEASE, CHART, '--create-namespace', '--set', `module.sha256=${SHA}`);
  assert.match(out, /STATUS: deployed/);
  assert.match(out, /REVISION: 1/);
  for (const name of ['applicationprotocols.meltemi.dev', 'metarouters.meltemi.dev']) {
    await until(`CRD ${name} established`, async () =>
      (await env.getOpt('CustomResourceDefinition', undefined, name))?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
  }
  assert.ok(await env.getOpt('ServiceAccount', NS, 'meltemi'));
  const role = await env.getOpt('ClusterRole', undefined, 'meltemi-controller');
  const verbs = Object.fromEntries(role.rules.flatMap((r) => r.resources.map((res) => [`${r.apiGroups[0] || 'core'}/${res}`, r.verbs.join(',')])));
  assert.deepEqual(verbs, {
    'core/services': 'list,watch', 'meltemi.dev/applicationprotocols': 'list,watch', 'meltemi.dev/metarouters': 'list,watch',
    'networking.istio.io/serviceentries': 'list,watch', 'networking.istio.io/destinationrules': 'list,watch',
    'meltemi.dev/metarouters/status': 'patch', 'meltemi.dev/metarouters/finalizers': 'update',
    'extensions.istio.io/wasmplugins': 'list,watch,create,patch,delete', 'networking.istio.io/envoyfilters': 'list,watch,create,patch,delete',
  });
  const binding = await env.getOpt('ClusterRoleBinding', undefined, 'meltemi-controller');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'meltemi', namespace: NS }]);
  const d = await env.getOpt('Deployment', NS, 'meltemi-controller');
  assert.equal(d.metadata.annotations['meta.helm.sh/release-name'], RELEASE);
  assert.equal(d.spec.template.spec.serviceAccountName, 'meltemi');
  assert.ok(container(d).args.includes(`--module-sha256=${SHA}`));

  // The ApplicationProtocols go in once their CRD exists (docs/install.md), then a MetaRouter: the
  // controller, with only the chart's RBAC, writes its WasmPlugin and EnvoyFilter and its status.
  for (const o of docs(readFileSync(join(ROOT, 'examples/application-protocols.yaml'), 'utf8'))) await env.apply(o);
  await runDeployment();
  const ns = await env.namespace('helm');
  await env.apply(service(ns, 'demo', [{ name: 'tcp-metaprotocol-dubbo-demo', port: 20880 }]));
  await env.apply(router(ns, 'demo', { hosts: ['demo'], routes: dubboRoutes(80, 20) }));
  const wasm = await until('WasmPlugin', () => env.getOpt('WasmPlugin', ns, 'meltemi-demo-20880'));
  assert.equal(wasm.spec.sha256, SHA);
  assert.equal(wasm.spec.failStrategy, 'FAIL_CLOSE');
  assert.ok(await until('EnvoyFilter', () => env.getOpt('EnvoyFilter', ns, 'meltemi-demo-20880')));
  await until('Programmed=True', async () => condition(await env.getOpt('MetaRouter', ns, 'demo'), 'Programmed')?.status === 'True');
  assert.deepEqual(env.logs.filter((l) => l.level === 'error'), []);
  await stopController();
  env.routed = ns;
});

test('helm upgrade changes the Deployment (fail strategy, log level, RDS Service) and the controller runs it; rollback restores revision 1', { timeout: 180000 }, async () => {
  const out = helmIn('upgrade', RELEASE, CHART, '--reuse-values', '--set', 'failStrategy=FAIL_OPEN', '--set', 'logLevel=debug', '--set', 'rds.enabled=true',
    '--set', 'statPrefix=mesh', '--set', 'maxEarlyDataBytes=131072');
  assert.match(out, /REVISION: 2/);
  const c = container(await env.getOpt('Deployment', NS, 'meltemi-controller'));
  assert.ok(c.args.includes('--fail-strategy=FAIL_OPEN') && c.args.includes('--rds-port=15081') && c.args.includes(`--module-sha256=${SHA}`), c.args.join(' '));
  assert.deepEqual(c.env, [{ name: 'MELTEMI_LOG_LEVEL', value: 'debug' }]);
  assert.equal((await env.getOpt('Service', NS, 'meltemi-rds')).spec.ports[0].port, 15081);

  // Every upgraded flag parses and takes effect: the same MetaRouter is rendered fail-open, with the
  // new stat prefix, and the controller serves RDS and logs at debug.
  const { logs } = await runDeployment();
  assert.ok(logs.some((l) => l.msg === 'route discovery (REST RDS)'), 'RDS server started');
  const ns = env.routed;
  const wasm = await until('WasmPlugin fail-open', async () => { const w = await env.getOpt('WasmPlugin', ns, 'meltemi-demo-20880'); return w?.spec.failStrategy === 'FAIL_OPEN' && w; });
  assert.equal(wasm.spec.pluginConfig.statPrefix, 'mesh');
  assert.deepEqual(logs.filter((l) => l.level === 'error'), []);
  await stopController();

  assert.match(helmIn('rollback', RELEASE, '1'), /Rollback was a success/);
  const back = container(await env.getOpt('Deployment', NS, 'meltemi-controller'));
  assert.ok(back.args.includes('--fail-strategy=FAIL_CLOSE') && !back.args.some((a) => a.startsWith('--rds-port')), back.args.join(' '));
  await until('RDS Service deleted', async () => !(await env.getOpt('Service', NS, 'meltemi-rds')));
  assert.match(helmIn('history', RELEASE), /3\s+.*deployed\s+meltemi-0\.1\.0\s+0\.1\.0\s+Rollback to 1/);
});

test('helm uninstall removes the controller and its RBAC, and keeps the CRDs and the MetaRouters', { timeout: 120000 }, async () => {
  const out = helmIn('uninstall', RELEASE);
  assert.match(out, /release "meltemi" uninstalled/);
  assert.match(out, /These resources were kept due to the resource policy:\n(\[CustomResourceDefinition\] \S+\n){2}/);
  await until('Deployment, ServiceAccount, ClusterRole and binding deleted', async () =>
    !(await env.getOpt('Deployment', NS, 'meltemi-controller')) && !(await env.getOpt('ServiceAccount', NS, 'meltemi'))
    && !(await env.getOpt('ClusterRole', undefined, 'meltemi-controller')) && !(await env.getOpt('ClusterRoleBinding', undefined, 'meltemi-controller')));
  assert.ok(await env.getOpt('CustomResourceDefinition', undefined, 'metarouters.meltemi.dev'));
  assert.ok(await env.getOpt('MetaRouter', env.routed, 'demo'));
  assert.equal(helm('status', RELEASE, '--kubeconfig', kubeconfig, '--namespace', NS).status, 1);
});

test('a kubectl-applied deploy/meltemi.yaml is taken over by helm install once annotated with the release (docs/install.md)', { timeout: 120000 }, async () => {
  const manifest = docs(readFileSync(join(ROOT, 'deploy/meltemi.yaml'), 'utf8'));
  for (const o of manifest) await env.apply(o);
  const refused = helm('install', RELEASE, CHART, '--kubeconfig', kubeconfig, '--namespace', NS);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /ServiceAccount "meltemi" in namespace "meltemi-system" exists and cannot be imported into the current release: invalid ownership metadata; annotation validation error: missing key "meta.helm.sh\/release-name"/);
  // kubectl annotate <kind> <name> meta.helm.sh/release-name=meltemi meta.helm.sh/release-namespace=meltemi-system
  // (the generated manifest already has the label app.kubernetes.io/managed-by=Helm that Helm checks too).
  const annotations = { 'meta.helm.sh/release-name': RELEASE, 'meta.helm.sh/release-namespace': NS };
  for (const o of manifest.filter((m) => m.kind !== 'Namespace')) {
    const path = `${pathOf(o.kind, o.metadata.namespace)}/${o.metadata.name}`;
    await env.admin.request('PATCH', path, { metadata: { annotations } }, 'application/merge-patch+json');
  }
  assert.match(helmIn('install', RELEASE, CHART, '--set', `module.sha256=${SHA}`), /STATUS: deployed/);
  const d = await env.getOpt('Deployment', NS, 'meltemi-controller');
  assert.ok(container(d).args.includes(`--module-sha256=${SHA}`), 'the release now owns the Deployment');
  assert.match(helmIn('uninstall', RELEASE), /release "meltemi" uninstalled/);
});
