// `meltemi render` and `meltemi envoy` as users run them (the real CLI in a child process): every
// ignored or unsupported field is a warning on stderr with the status condition's text, --strict
// turns warnings into exit 1, and unknown fields are errors that name their path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ROOT, FIXTURES, renderFiles } from './helpers.mjs';

const CLI = join(ROOT, 'controller/bin/meltemi.mjs');
const meltemi = (args, input) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, input });
const AERAKI = join(FIXTURES, 'aeraki-thrift.yaml');
const ENTRY = join(FIXTURES, 'aeraki-dubbo-serviceentry.yaml');
const lines = (s) => s.split('\n').filter(Boolean);
const kinds = (yaml) => parseAllDocuments(yaml).map((d) => d.toJS()?.kind).filter(Boolean);

const AERAKI_WARNINGS = [
  'meltemi: warning: MetaRouter meta-thrift/test-metaprotocol-thrift-route: spec.localRateLimit: ignored, not implemented yet (Aeraki limits the whole service; Meltemi limits per route: routes[].localRateLimit)',
  'meltemi: warning: MetaRouter meta-thrift/test-metaprotocol-thrift-route: spec.routes[0].mirror: ignored, not implemented yet',
];
// render only (the envoy command's listeners are the routed Service's own): the fixture's Service has no clusterIP.
const AERAKI_UNSCOPED = 'meltemi: warning: WasmPlugin meta-thrift/meltemi-thrift-sample-server-9090 has no scope (the Service in the input has no spec.clusterIP), so every TCP service on port 9090 in its namespace gets this route table: add the Service\'s spec.clusterIP (kubectl get service -o yaml gives it), or let the controller render it from the cluster (meltemi run)';

test('render prints one warning per ignored field on stderr, with the status condition\'s text, and exits 0', () => {
  const r = meltemi(['render', '-f', AERAKI]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(r.stderr), [...AERAKI_WARNINGS, AERAKI_UNSCOPED]);
  assert.deepEqual(kinds(r.stdout), ['WasmPlugin', 'EnvoyFilter']);
  // The same words as the Accepted condition the controller writes.
  const message = renderFiles([AERAKI]).conditions.get('meta-thrift/test-metaprotocol-thrift-route').message;
  for (const w of AERAKI_WARNINGS) assert.ok(message.includes(w.replace(/^meltemi: warning: MetaRouter \S+: /, '')), `${w} in "${message}"`);
});

test('--strict turns warnings into exit 1 for render and envoy (both modes); the output is still printed', () => {
  const r = meltemi(['render', '--strict', '-f', AERAKI]);
  assert.equal(r.status, 1);
  assert.deepEqual(lines(r.stderr), [...AERAKI_WARNINGS, AERAKI_UNSCOPED, 'meltemi: --strict: 3 warnings']);
  assert.deepEqual(kinds(r.stdout), ['WasmPlugin', 'EnvoyFilter']);
  // (per-request mode needs IP endpoints)
  const eps = ['--endpoints', 'thrift-sample-server.meta-thrift.svc.cluster.local=127.0.0.1:9090'];
  for (const mode of [[], ['--mode', 'perConnection'], ['--mode', 'perRequest', ...eps]]) {
    const plain = meltemi(['envoy', '-f', AERAKI, ...mode]);
    assert.equal(plain.status, 0, `${mode}: ${plain.stderr}`);
    assert.deepEqual(lines(plain.stderr), AERAKI_WARNINGS);
    assert.ok(parseAllDocuments(plain.stdout)[0].toJS().static_resources.listeners.length >= 1);
    const strict = meltemi(['envoy', '--strict', '-f', AERAKI, ...mode]);
    assert.equal(strict.status, 1, `${mode}: --strict with warnings`);
    assert.deepEqual(lines(strict.stderr), [...AERAKI_WARNINGS, 'meltemi: --strict: 2 warnings']);
  }
});

test('--strict without warnings exits 0 with nothing on stderr', () => {
  // examples/ as a cluster would serve them: with the ClusterIPs Git leaves out (else render warns, below).
  const scoped = readFileSync(join(ROOT, 'examples/dubbo.yaml'), 'utf8').replace(/^spec:\n/m, 'spec:\n  clusterIP: 10.96.0.20\n');
  assert.match(scoped, /clusterIP/);
  for (const cmd of ['render', 'envoy']) {
    const r = meltemi([cmd, '--strict', '-f', join(ROOT, 'examples/application-protocols.yaml'), '-f', '-'], scoped);
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    assert.equal(r.stderr, '');
  }
});

test('an unknown field (a typo) is an error naming its path: exit 1, with or without --strict', () => {
  const objs = parseAllDocuments(readFileSync(AERAKI, 'utf8')).map((d) => d.toJS());
  const mr = objs.find((o) => o.kind === 'MetaRouter');
  mr.spec.routes[0].requestMutations = [{ key: 'x-route', value: 'v1' }];
  delete mr.spec.localRateLimit;
  delete mr.spec.routes[0].mirror;
  const input = objs.map((o) => stringify(o)).join('---\n');
  for (const cmd of ['render', 'envoy']) {
    const r = meltemi([cmd, '-f', '-'], input);
    assert.equal(r.status, 1, cmd);
    assert.deepEqual(lines(r.stderr), ['meltemi: MetaRouter meta-thrift/test-metaprotocol-thrift-route rejected (InvalidRoute): spec.routes[0].requestMutations: unknown field (did you mean requestMutation?)']);
  }
  assert.deepEqual(kinds(meltemi(['render', '-f', '-'], input).stdout), [], 'a rejected router renders nothing');
});

test('a ServiceEntry host without spec.addresses renders unscoped, with a warning; --strict refuses it', () => {
  const r = meltemi(['render', '-f', ENTRY]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(r.stderr), ['meltemi: warning: MetaRouter meta-dubbo/test-metaprotocol-dubbo-route: host org.apache.dubbo.samples.basic.api.demoservice: ServiceEntry meta-dubbo/dubbo-demoservice has no spec.addresses, so the WasmPlugin for port 20880 is not scoped: every TCP service on port 20880 in its namespace gets this route table']);
  const wasm = parseAllDocuments(r.stdout).map((d) => d.toJS()).filter((o) => o.kind === 'WasmPlugin');
  assert.deepEqual(wasm.map((w) => [w.metadata.name, w.spec.pluginConfig.scope?.destinations?.[0]]),
    [['meltemi-dubbo-greeter-20890', '240.240.0.7'], ['meltemi-dubbo-demoservice-20880', undefined]]);
  assert.equal(meltemi(['render', '--strict', '-f', ENTRY]).status, 1);
});

test('meltemi --version prints package.json\'s version; help <command> and <command> --help print that command\'s options', () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const v = meltemi(['--version']);
  assert.equal(v.status, 0);
  assert.equal(v.stdout, `meltemi ${version}\n`);
  const help = meltemi(['help', 'envoy']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: meltemi envoy -f/);
  assert.match(help.stdout, /--mode <m>/);
  assert.doesNotMatch(help.stdout, /--resync/, 'only the envoy command\'s options');
  assert.equal(meltemi(['run', '--help']).stdout, meltemi(['help', 'run']).stdout);
  const unknown = meltemi(['help', 'deploy']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^meltemi: no command deploy/);
  const bogus = meltemi(['bogus']);
  assert.equal(bogus.status, 2);
  assert.match(bogus.stderr, /^meltemi: unknown command bogus/);
});
