// Upgrades in both directions with real builds of earlier commits (test/upgrade/build-old.sh):
//   a newer controller in front of an older filter: with --filter-wasm <the old module>, a MetaRouter
//   whose config the old filter lacks a field for is refused, naming the field; the others render, and
//   the old filter (in Node and in the real Envoy) takes what was rendered;
//   an older controller in front of today's filter: what it renders, today's filter takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { oldBuild, BEFORE_SCOPE, BEFORE_PER_REQUEST } from '../upgrade/old-build.mjs';
import { ROOT, FIXTURES } from './helpers.mjs';

const { FilterCheck } = await import(new URL('../../dist/controller/filter-check.mjs', import.meta.url).href);
const CLI = join(ROOT, 'controller/bin/meltemi.mjs');
const ENVOY = join(ROOT, '.venv/bin/envoy');
const NEW_WASM = join(ROOT, 'build/meltemi.wasm');
const meltemi = (args, input) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, input });
const PROTOCOLS = join(ROOT, 'examples/application-protocols.yaml');
const docs = (yaml) => parseAllDocuments(yaml).map((d) => d.toJS()).filter(Boolean);
const plugins = (yaml) => docs(yaml).filter((d) => d.kind === 'WasmPlugin');

/** examples/thrift.yaml as the cluster serves it: the Service with the ClusterIP Git leaves out. */
const thriftWithClusterIP = () => readFileSync(join(ROOT, 'examples/thrift.yaml'), 'utf8').replace('spec:\n  selector: { app: thrift-demo }', 'spec:\n  clusterIP: 10.96.0.30\n  selector: { app: thrift-demo }');

function envoyValidates(bootstrap) {
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-upgrade-'));
  try {
    writeFileSync(join(dir, 'envoy.yaml'), bootstrap);
    return spawnSync(ENVOY, ['--mode', 'validate', '-c', join(dir, 'envoy.yaml'), '--disable-hot-restart', '--log-level', 'warn', '--concurrency', '1'], { encoding: 'utf8' });
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('a newer controller rendering for an older filter (--filter-wasm) refuses what that filter lacks, naming the field, and renders the rest', () => {
  const old = oldBuild(BEFORE_SCOPE);
  const input = thriftWithClusterIP();
  assert.match(input, /clusterIP: 10\.96\.0\.30/);
  // Without the declaration: today's filter takes `scope`, and so does the controller.
  const today = meltemi(['render', '-f', PROTOCOLS, '-f', '-'], input);
  assert.equal(today.status, 0, today.stderr);
  assert.ok(plugins(today.stdout)[0].spec.pluginConfig.scope, 'the Service\'s ClusterIP scopes the WasmPlugin');
  // The old filter would refuse exactly that: the controller says so and renders nothing for it.
  const r = meltemi(['render', '-f', PROTOCOLS, '-f', '-', '--filter-wasm', old.wasm], input);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `meltemi: MetaRouter thrift/thrift-demo rejected (FilterRefuses): WasmPlugin thrift/meltemi-thrift-demo-9090: the filter the proxies run (${old.wasm}) refuses its config: invalid plugin configuration: <root>: unknown field "scope" (upgrade the filter before using what needs it: docs/upgrades.md)\n`);
  assert.deepEqual(plugins(r.stdout), []);
  // A Service without a ClusterIP (headless, or from Git) needs no scope: the old filter takes it,
  // in the Node validator and in the real Envoy.
  const plain = meltemi(['render', '-f', PROTOCOLS, '-f', join(ROOT, 'examples/thrift.yaml'), '--filter-wasm', `file://${old.wasm}`]);
  assert.equal(plain.status, 0, plain.stderr);
  const [p] = plugins(plain.stdout);
  assert.equal(FilterCheck.load(old.wasm).check(p.spec.pluginConfig), undefined);
  const boot = meltemi(['envoy', '-f', PROTOCOLS, '-f', join(ROOT, 'examples/thrift.yaml'), '--filter-wasm', old.wasm, '--module', old.wasm, '--admin-port', '0']);
  assert.equal(boot.status, 0, boot.stderr);
  const v = envoyValidates(boot.stdout);
  assert.equal(v.status, 0, v.stdout + v.stderr);
});

test('a per-request MetaRouter is refused for a filter from before per-request mode, naming `mode`; per-connection ones still render', () => {
  const old = oldBuild(BEFORE_PER_REQUEST);
  const perRequest = readFileSync(join(ROOT, 'examples/thrift.yaml'), 'utf8').replace('  hosts:\n', '  mode: perRequest\n  hosts:\n');
  assert.match(perRequest, /mode: perRequest/);
  const r = meltemi(['render', '-f', PROTOCOLS, '-f', '-', '--filter-wasm', old.wasm], perRequest);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^meltemi: MetaRouter thrift\/thrift-demo rejected \(FilterRefuses\): WasmPlugin thrift\/meltemi-thrift-demo-9090: .* refuses its config: invalid plugin configuration: <root>: unknown field "mode"/);
  assert.equal(docs(r.stdout).length, 0, 'nothing of it is rendered, server WasmPlugin included');
  const ok = meltemi(['render', '-f', PROTOCOLS, '-f', '-', '--filter-wasm', old.wasm], thriftWithClusterIP());
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(plugins(ok.stdout).length, 1);
});

test('an older controller\'s output (64ab57b render, the examples and the route policies) is taken by today\'s filter, in Node and in the real Envoy', async () => {
  const old = oldBuild(BEFORE_PER_REQUEST);
  assert.ok(old.controller, 'the old commit has a controller');
  const { render } = await import(join(old.controller, 'render.mjs'));
  const { readObjects, toRenderInput } = await import(join(old.controller, 'load.mjs'));
  const { DEFAULT_OPTIONS } = await import(join(old.controller, 'model.mjs'));
  const { envoyBootstrap, DEFAULT_ENVOY_OPTIONS } = await import(join(old.controller, 'envoy.mjs'));
  const files = [join(ROOT, 'examples'), join(FIXTURES, 'policies.yaml')];
  const out = render(toRenderInput(readObjects(files)), DEFAULT_OPTIONS);
  const configs = out.resources.filter((o) => o.kind === 'WasmPlugin').map((o) => o.spec.pluginConfig);
  assert.ok(configs.length >= 3, `old render produced ${configs.length} plugin configs`);
  assert.ok(configs.some((c) => c.routes.some((r) => r.fault || r.timeoutMs || r.authorization)), 'route policies included');
  const today = FilterCheck.load(NEW_WASM);
  for (const c of configs) assert.equal(today.check(c), undefined, JSON.stringify(c));
  // The old controller's standalone bootstrap, loaded by the real Envoy with today's module.
  const thrift = render(toRenderInput(readObjects([join(ROOT, 'examples')])), { ...DEFAULT_OPTIONS, moduleUrl: `file://${NEW_WASM}` });
  const boot = envoyBootstrap(thrift.compiled, { ...DEFAULT_OPTIONS, moduleUrl: `file://${NEW_WASM}` }, { ...DEFAULT_ENVOY_OPTIONS, adminPort: 0 });
  const { stringify } = await import('yaml');
  const yaml = stringify(boot, { lineWidth: 0 });
  assert.ok(yaml.includes(`filename: ${NEW_WASM}`), 'Envoy loads today\'s module');
  const v = envoyValidates(yaml);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  assert.ok(parse(yaml).static_resources.listeners.length >= 2);
});

test('render --canary-*: a canary WasmPlugin for the selected workloads and an EnvoyFilter that takes the stable filter off them; its config is checked with the canary filter', () => {
  const args = ['render', '-f', PROTOCOLS, '-f', '-', '--canary-module-url', 'oci://registry.example/meltemi:0.2.0', '--canary-selector', 'app=web,track=canary'];
  const r = meltemi(args, thriftWithClusterIP());
  assert.equal(r.status, 0, r.stderr);
  const out = docs(r.stdout);
  assert.deepEqual(out.map((o) => `${o.kind} ${o.metadata.name}`), [
    'WasmPlugin meltemi-thrift-demo-9090', 'WasmPlugin meltemi-thrift-demo-9090-canary', 'EnvoyFilter meltemi-thrift-demo-9090-canary', 'EnvoyFilter meltemi-thrift-demo-9090',
  ]);
  const [stable, canary, remove] = out;
  assert.equal(stable.spec.url, 'oci://ghcr.io/meltemi-dev/meltemi:0.1.0');
  assert.equal(stable.spec.selector, undefined, 'the stable plugin still applies to every client of the namespace');
  assert.equal(canary.spec.url, 'oci://registry.example/meltemi:0.2.0');
  assert.deepEqual(canary.spec.selector, { matchLabels: { app: 'web', track: 'canary' } });
  assert.deepEqual(canary.spec.pluginConfig, stable.spec.pluginConfig);
  assert.equal(canary.metadata.labels['meltemi.dev/canary'], 'true');
  assert.equal(canary.metadata.annotations['meltemi.dev/owner'], 'thrift/thrift-demo', 'owned like the stable one: pruned with it');
  assert.deepEqual(remove.spec, {
    workloadSelector: { labels: { app: 'web', track: 'canary' } },
    configPatches: ['extensions.istio.io/trafficextension/thrift.meltemi-thrift-demo-9090~istio-translated-wasmplugin', 'extensions.istio.io/wasmplugin/thrift.meltemi-thrift-demo-9090'].map((name) => ({
      applyTo: 'NETWORK_FILTER',
      match: { context: 'SIDECAR_OUTBOUND', listener: { portNumber: 9090, filterChain: { filter: { name } } } },
      patch: { operation: 'REMOVE' },
    })),
  });
  // The canary's own copy decides for the canary plugin: an old build as canary refuses `scope`.
  const old = oldBuild(BEFORE_SCOPE);
  const refused = meltemi([...args, '--canary-filter-wasm', old.wasm], thriftWithClusterIP());
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /rejected \(FilterRefuses\): WasmPlugin thrift\/meltemi-thrift-demo-9090-canary: the canary filter \(.*\) refuses its config: invalid plugin configuration: <root>: unknown field "scope"/);
  // Usage errors name the option.
  const noSelector = meltemi(['render', '-f', PROTOCOLS, '--canary-module-url', 'oci://x/y:1']);
  assert.equal(noSelector.status, 2);
  assert.match(noSelector.stderr, /^meltemi: --canary-module-url needs --canary-selector/);
  const badSelector = meltemi(['render', '-f', PROTOCOLS, '--canary-module-url', 'oci://x/y:1', '--canary-selector', 'track']);
  assert.match(badSelector.stderr, /^meltemi: --canary-selector track: expected <label>=<value>,\.\.\./);
});
