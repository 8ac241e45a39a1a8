// `meltemi envoy`: the standalone bootstrap, unit-checked and then loaded by the real Envoy
// (.venv/bin/envoy): `--mode validate` runs the filter's own config check (proxy_on_configure), and a
// real start shows the listeners and clusters with the endpoints the user gave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ROOT, FIXTURES, renderFiles, envoyBootstrap, DEFAULT_ENVOY_OPTIONS, DEFAULT_OPTIONS, assertPluginConfig } from './helpers.mjs';
import { freePort, until } from '../kube/cluster.mjs';
import { parsePrometheus } from '../harness/prometheus.mjs';

const ENVOY = join(ROOT, '.venv/bin/envoy');
const WASM = join(ROOT, 'build/meltemi.wasm');
const CLI = join(ROOT, 'controller/bin/meltemi.mjs');

const meltemi = (...args) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

/**
 * Fails, never skips, when an artifact that `make setup` or `make build` provides is missing: a test
 * that passes quietly on a machine without them would hide a lost codec or a broken setup.
 */
function needs(...artifacts) {
  const how = { [ENVOY]: 'make setup-envoy', [WASM]: 'make build' };
  for (const a of artifacts) assert.ok(existsSync(a), `${a} missing: run \`${how[a] ?? 'make setup'}\``);
}

function tmp() { return mkdtempSync(join(tmpdir(), 'meltemi-envoy-')); }

test('clusters carry the Istio names, endpoints from options beat annotations beat DNS', () => {
  const out = renderFiles([join(ROOT, 'examples')], { moduleUrl: 'file:///m.wasm' });
  const boot = envoyBootstrap(out.compiled, { ...DEFAULT_OPTIONS, moduleUrl: 'file:///m.wasm' }, {
    ...DEFAULT_ENVOY_OPTIONS, endpoints: { 'dubbo-demo.dubbo.svc.cluster.local|v2': ['10.0.0.2:30000', '10.0.0.3'] },
  });
  const byName = Object.fromEntries(boot.static_resources.clusters.map((c) => [c.name, c]));
  const eps = (name) => byName[name].load_assignment.endpoints[0].lb_endpoints.map((e) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`);
  assert.deepEqual(eps('outbound|20880|v1|dubbo-demo.dubbo.svc.cluster.local'), ['127.0.0.1:20881']);             // annotation
  assert.deepEqual(eps('outbound|20880|v2|dubbo-demo.dubbo.svc.cluster.local'), ['10.0.0.2:30000', '10.0.0.3:20880']); // option, default port
  assert.deepEqual(eps('outbound|20880||dubbo-demo.dubbo.svc.cluster.local'), ['dubbo-demo.dubbo.svc.cluster.local:20880']); // DNS
  assert.equal(byName['outbound|20880||dubbo-demo.dubbo.svc.cluster.local'].type, 'STRICT_DNS');
  assert.equal(byName['outbound|20880|v1|dubbo-demo.dubbo.svc.cluster.local'].type, 'STATIC');
  const [dubbo] = boot.static_resources.listeners;
  const [wasm, tcp] = dubbo.filter_chains[0].filters;
  assert.equal(wasm.name, 'envoy.filters.network.wasm');
  assert.equal(wasm.typed_config.config.vm_config.code.local.filename, '/m.wasm');
  assertPluginConfig(JSON.parse(wasm.typed_config.config.configuration.value));
  assert.equal(tcp.typed_config.cluster, 'outbound|20880||dubbo-demo.dubbo.svc.cluster.local');
  assert.equal(tcp.typed_config.max_early_data_bytes, 65536);
  assert.equal(tcp.typed_config.weighted_clusters, undefined);
});

test('meltemi envoy refuses a module Envoy cannot load by itself', () => {
  const r = meltemi('envoy', '-f', join(ROOT, 'examples/thrift.yaml'), '--module', 'oci://ghcr.io/x/y:1');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /a standalone Envoy loads local files only; pass --module file:\/\/<path>/);
});

test('meltemi render exits 1 and names the rejected MetaRouter, still printing the good ones', () => {
  const r = meltemi('render', '-f', join(ROOT, 'examples'), '-f', join(FIXTURES, 'conflict.yaml'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /MetaRouter dubbo\/zz-second rejected \(Conflict\)/);
  assert.equal(parseAllDocuments(r.stdout).length, 4);
});

function validate(config) {
  needs(ENVOY, WASM);
  const dir = tmp();
  try {
    const file = join(dir, 'envoy.yaml');
    writeFileSync(file, config);
    return spawnSync(ENVOY, ['--mode', 'validate', '-c', file, '--disable-hot-restart', '--log-level', 'warn', '--concurrency', '1'], { encoding: 'utf8' });
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('the real Envoy validates the Thrift bootstrap, filter config included', () => {
  needs(ENVOY, WASM);
  const r = meltemi('envoy', '-f', join(ROOT, 'examples/application-protocols.yaml'), '-f', join(ROOT, 'examples/thrift.yaml'), '--module', WASM, '--admin-port', '0');
  assert.equal(r.status, 0, r.stderr);
  const v = validate(r.stdout);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  assert.match(v.stdout + v.stderr, /configuration '.*' OK/);
});

test('the real Envoy rejects a bootstrap whose plugin config the filter refuses', () => {
  const r = meltemi('envoy', '-f', join(ROOT, 'examples/application-protocols.yaml'), '-f', join(ROOT, 'examples/thrift.yaml'), '--module', WASM, '--admin-port', '0');
  const boot = parse(r.stdout);
  const cfg = boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.config.configuration;
  cfg.value = JSON.stringify({ ...JSON.parse(cfg.value), codec: 'smtp' });
  const v = validate(stringify(boot));
  assert.notEqual(v.status, 0);
  assert.match(v.stdout + v.stderr, /Unable to create Wasm plugin meltemi/);
});

test('the real Envoy validates the Dubbo bootstrap', () => {
  const r = meltemi('envoy', '-f', join(ROOT, 'examples/application-protocols.yaml'), '-f', join(ROOT, 'examples/dubbo.yaml'), '--module', WASM, '--admin-port', '0');
  assert.equal(r.status, 0, r.stderr);
  const v = validate(r.stdout);
  // A build without the dubbo codec fails here (Envoy prints the filter's `unknown codec "dubbo"`).
  assert.equal(v.status, 0, v.stdout + v.stderr);
  assert.match(v.stdout + v.stderr, /configuration '.*' OK/);
});

function getJson(port, path) {
  return new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}${path}`, (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => resolve(JSON.parse(b))); }).on('error', reject);
  });
}

test('a real Envoy runs the bootstrap: listener on the annotated port, clusters with the given endpoints', async (t) => {
  needs(ENVOY, WASM);
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [listen, admin] = [await freePort(), await freePort()];
  const objs = parseAllDocuments(readFileSync(join(ROOT, 'examples/thrift.yaml'), 'utf8')).map((d) => d.toJS());
  objs.find((o) => o.kind === 'Service').metadata.annotations['meltemi.dev/listen-port'] = String(listen);
  const input = join(dir, 'thrift.yaml');
  writeFileSync(input, objs.map((o) => stringify(o)).join('---\n'));
  const r = meltemi('envoy', '-f', join(ROOT, 'examples/application-protocols.yaml'), '-f', input, '--module', `file://${WASM}`, '--admin-port', String(admin));
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(join(dir, 'envoy.yaml'), r.stdout);
  const envoy = spawn(ENVOY, ['-c', join(dir, 'envoy.yaml'), '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  envoy.stderr.on('data', (c) => (stderr += c));
  t.after(() => { if (envoy.exitCode === null) envoy.kill('SIGTERM'); });
  const listeners = await until('envoy listeners', async () => {
    if (envoy.exitCode !== null) throw new Error(`envoy exited: ${stderr}`);
    return (await getJson(admin, '/listeners?format=json')).listener_statuses;
  }, 20000);
  assert.equal(listeners[0].name, 'meltemi-thrift-demo-9090');
  assert.equal(listeners[0].local_address.socket_address.port_value, listen);
  const clusters = (await getJson(admin, '/clusters?format=json')).cluster_statuses;
  const hosts = Object.fromEntries(clusters.map((c) => [c.name, (c.host_statuses ?? []).map((h) => `${h.address.socket_address.address}:${h.address.socket_address.port_value}`)]));
  assert.deepEqual(hosts['outbound|9090|read|thrift-demo.thrift.svc.cluster.local'], ['127.0.0.1:9091']);
  assert.deepEqual(hosts['outbound|9090|primary|thrift-demo.thrift.svc.cluster.local'], ['127.0.0.1:9092']);
});

test('the bootstrap routes real Thrift calls by method, per connection, to the endpoints given', async (t) => {
  needs(ENVOY, WASM);
  const { startThriftServer, thriftClient } = await import('../peers/thrift/index.mjs');
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const read = await startThriftServer({ name: 'read' });
  const primary = await startThriftServer({ name: 'primary' });
  t.after(() => Promise.all([read.stop(), primary.stop()]));
  const [listen, admin] = [await freePort(), await freePort()];
  const host = 'greeter.demo.svc.cluster.local';
  writeFileSync(join(dir, 'in.yaml'), [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'greeter', namespace: 'demo', annotations: { 'meltemi.dev/listen-port': String(listen) } },
      spec: { ports: [{ name: 'tcp-metaprotocol-thrift-greeter', port: 9090 }] } },
    { apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', metadata: { name: 'greeter', namespace: 'demo' },
      spec: { hosts: ['greeter'], routes: [
        { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ destination: { host: 'greeter', subset: 'read' } }] },
        { name: 'rest', route: [{ destination: { host: 'greeter', subset: 'primary' } }] },
      ] } },
  ].map((o) => stringify(o)).join('---\n'));
  const r = meltemi('envoy', '-f', join(ROOT, 'examples/application-protocols.yaml'), '-f', join(dir, 'in.yaml'), '--module', WASM,
    '--admin-port', String(admin), '--endpoints', `${host}|read=127.0.0.1:${read.port}`, '--endpoints', `${host}|primary=127.0.0.1:${primary.port}`,
    '--endpoints', `${host}=127.0.0.1:${primary.port}`);
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(join(dir, 'envoy.yaml'), r.stdout);
  const envoy = spawn(ENVOY, ['-c', join(dir, 'envoy.yaml'), '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  envoy.stderr.on('data', (c) => (stderr += c));
  t.after(() => { if (envoy.exitCode === null) envoy.kill('SIGTERM'); });
  await until('envoy listener', async () => {
    if (envoy.exitCode !== null) throw new Error(`envoy exited: ${stderr}`);
    return (await getJson(admin, '/listeners?format=json')).listener_statuses?.length === 1;
  }, 20000);
  const hello = await thriftClient({ port: listen });
  t.after(() => hello.close());
  assert.equal(await hello.sayHello('meltemi'), 'read: hello meltemi');
  const other = await thriftClient({ port: listen });
  t.after(() => other.close());
  assert.equal(await other.add(2, 3), 5);
  assert.deepEqual(primary.calls.map((c) => c.method), ['add']);
  assert.deepEqual(read.calls.map((c) => c.method), ['sayHello']);
  // The render's stats_config makes Prometheus labels of the Service, route and Istio cluster.
  const m = parsePrometheus(await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text());
  assert.equal(m.get('meltemi_responses_total', { meltemi_service: host, meltemi_route: 'hello', meltemi_cluster: `outbound|9090|read|${host}`, meltemi_status: 'reply' }), 1);
  assert.equal(m.get('meltemi_responses_total', { meltemi_service: host, meltemi_route: 'rest', meltemi_cluster: `outbound|9090|primary|${host}`, meltemi_status: 'reply' }), 1);
});

test('the Dubbo bootstrap routes real Dubbo calls by interface and method and adds the attachment', async (t) => {
  const dubbo = await import('../peers/dubbo/index.mjs');
  needs(ENVOY, WASM);
  assert.ok(existsSync(dubbo.JAR), `${dubbo.JAR} missing: run \`make setup-dubbo\``);
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [v1, v2] = await Promise.all([dubbo.startProvider({ name: 'v1' }), dubbo.startProvider({ name: 'v2' })]);
  t.after(() => Promise.all([v1.stop(), v2.stop()]));
  const [listen, admin] = [await freePort(), await freePort()];
  const host = 'greet.demo.svc.cluster.local';
  writeFileSync(join(dir, 'in.yaml'), [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'greet', namespace: 'demo', annotations: {
      'meltemi.dev/listen-port': String(listen), 'meltemi.dev/endpoints.v1': `127.0.0.1:${v1.port}`, 'meltemi.dev/endpoints': `127.0.0.1:${v2.port}` } },
      spec: { ports: [{ name: 'tcp-metaprotocol-dubbo-greet', port: 20880 }] } },
    { apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', metadata: { name: 'greet', namespace: 'demo' },
      spec: { hosts: ['greet'], routes: [
        { name: 'hello', match: { attributes: { interface: { exact: 'dev.meltemi.demo.GreetService' }, method: { exact: 'sayHello' } } },
          route: [{ destination: { host: 'greet', subset: 'v1' } }], requestMutation: [{ key: 'x-meltemi-route', value: 'hello' }] },
        { name: 'rest', route: [{ destination: { host: 'greet', subset: 'v2' } }] },
      ] } },
  ].map((o) => stringify(o)).join('---\n'));
  const r = meltemi('envoy', '-f', join(ROOT, 'examples/application-protocols.yaml'), '-f', join(dir, 'in.yaml'), '--module', WASM, '--admin-port', String(admin));
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(join(dir, 'envoy.yaml'), r.stdout);
  const envoy = spawn(ENVOY, ['-c', join(dir, 'envoy.yaml'), '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  envoy.stderr.on('data', (c) => (stderr += c));
  t.after(() => { if (envoy.exitCode === null) envoy.kill('SIGTERM'); });
  await until('envoy listener', async () => {
    if (envoy.exitCode !== null) throw new Error(`envoy exited: ${stderr}`);
    return (await getJson(admin, '/listeners?format=json')).listener_statuses?.length === 1;
  }, 20000);
  const url = `dubbo://127.0.0.1:${listen}`;
  const [hello] = await dubbo.runConsumer({ url, interface: 'dev.meltemi.demo.GreetService', method: 'sayHello', arg: 'alice', calls: 1 });
  assert.equal(hello.ok, true, JSON.stringify(hello));
  assert.equal(hello.server, 'v1');
  assert.equal(hello.invocationAttachments['x-meltemi-route'], 'hello');
  const [order] = await dubbo.runConsumer({ url, interface: 'dev.meltemi.demo.OrderService', method: 'getOrder', arg: '7', calls: 1 });
  assert.equal(order.ok, true, JSON.stringify(order));
  assert.equal(order.server, 'v2');
  assert.equal(order.invocationAttachments['x-meltemi-route'], undefined);
});

test('the real Envoy accepts the route policies meltemi renders', () => {
  const r = meltemi('envoy', '-f', join(FIXTURES, 'policies.yaml'), '--module', WASM, '--admin-port', '0', '--endpoints', 'orders.shop.svc.cluster.local=127.0.0.1:1');
  assert.equal(r.status, 0, r.stderr);
  const v = validate(r.stdout);
  assert.equal(v.status, 0, v.stdout + v.stderr);
});
