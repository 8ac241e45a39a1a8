// `meltemi describe` as users run it (the real CLI in a child process, the real build/meltemi.wasm):
// which route a request takes and why, decided by the filter's own route table; and the warning
// `meltemi render` prints for a WasmPlugin without scope.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './helpers.mjs';

const CLI = join(ROOT, 'controller/bin/meltemi.mjs');
const meltemi = (args, input) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, input });
const EXAMPLES = join(ROOT, 'examples');
const DEMO = 'org.apache.dubbo.samples.basic.api.DemoService';
const json = (r) => { assert.equal(r.status, 0, r.stderr); return JSON.parse(r.stdout); };

/** A Thrift MetaRouter without a catch-all route, with policies on its one route. */
const POLICIES = `
apiVersion: v1
kind: Service
metadata: { name: orders, namespace: shop }
spec: { clusterIP: 10.96.0.9, ports: [ { name: tcp-metaprotocol-thrift-orders, port: 9090 } ] }
---
apiVersion: meltemi.dev/v1alpha1
kind: ApplicationProtocol
metadata: { name: thrift }
spec: { protocol: thrift, codec: thrift }
---
apiVersion: meltemi.dev/v1alpha1
kind: MetaRouter
metadata: { name: orders, namespace: shop }
spec:
  hosts: [orders]
  routes:
    - name: checkout
      match: { attributes: { method: { prefix: check } } }
      route: [ { destination: { host: orders, subset: v1 }, weight: 1 }, { destination: { host: orders, subset: v2 }, weight: 3 } ]
      timeout: 1.5s
      fault: { abort: { percentage: { value: 0.5 }, message: chaos } }
      localRateLimit:
        tokenBucket: { maxTokens: 100, tokensPerFill: 50, fillInterval: 1s }
        conditions: [ { match: { attributes: { method: { exact: checkoutFree } } }, tokenBucket: { maxTokens: 5, fillInterval: 1m } } ]
`;

test('describe names the first matching route, every condition tried, the weighted destinations and the mutations', () => {
  const e = json(meltemi(['describe', 'dubbo/dubbo-demo', '-f', EXAMPLES, '--attr', `interface=${DEMO}`, '--attr', 'method=sayHello', '--json']));
  assert.deepEqual(e.metadata, { interface: DEMO, method: 'sayHello' });
  assert.equal(e.route, 'say-hello');
  assert.equal(e.reason, 'first route whose conditions all hold (routes[0] of 2)');
  assert.deepEqual(e.evaluated.map((r) => [r.name, r.matched]), [['say-hello', true]], 'routes after the first match are not tried');
  assert.deepEqual(e.evaluated[0].conditions, [
    { key: 'interface', kind: 'exact', value: DEMO, actual: DEMO, holds: true },
    { key: 'method', kind: 'exact', value: 'sayHello', actual: 'sayHello', holds: true },
  ]);
  assert.deepEqual(e.destinations, [
    { cluster: 'outbound|20880|v1|dubbo-demo.dubbo.svc.cluster.local', weight: 80, share: 0.8 },
    { cluster: 'outbound|20880|v2|dubbo-demo.dubbo.svc.cluster.local', weight: 20, share: 0.2 },
  ]);
  assert.deepEqual(e.policies.requestMutation, [{ key: 'x-meltemi-route', value: 'say-hello' }]);

  // Another method fails the first route's method condition and falls to the catch-all.
  const other = json(meltemi(['describe', 'dubbo/dubbo-demo', '-f', EXAMPLES, '--attr', `interface=${DEMO}`, '--attr', 'method=bye', '--json']));
  assert.equal(other.route, 'default');
  assert.deepEqual(other.evaluated[0].conditions.map((c) => [c.key, c.holds, c.actual]), [['interface', true, DEMO], ['method', false, 'bye']]);
  assert.deepEqual(other.evaluated[1], { index: 1, name: 'default', matched: true, conditions: [] });
});

test('describe prints the decision for a terminal: failed conditions marked, absent attributes named', () => {
  const r = meltemi(['describe', 'thrift-demo', '-n', 'thrift', '-f', EXAMPLES, '--attr', 'service=Demo']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, [
    'WasmPlugin thrift/meltemi-thrift-demo-9090 (port 9090)',
    'request: service=Demo',
    '  routes[0] reads: no match',
    '    FAIL method regex "get[A-Z].*": absent',
    '  routes[1] writes: matches',
    '    (no conditions: matches every request)',
    'route: writes, because first route whose conditions all hold (routes[1] of 2)',
    '  -> outbound|9090|primary|thrift-demo.thrift.svc.cluster.local  weight 1 (100%)',
    '',
  ].join('\n'));
});

test('describe says, for a per-request MetaRouter, that Envoy\'s router decides each call from the same routes', () => {
  const perRequest = readFileSync(join(EXAMPLES, 'thrift.yaml'), 'utf8').replace('  hosts:\n', '  mode: perRequest\n  hosts:\n');
  const r = meltemi(['describe', 'thrift/thrift-demo', '-f', join(EXAMPLES, 'application-protocols.yaml'), '-f', '-', '--attr', 'method=getUser'], perRequest);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.split('\n')[1], 'mode perRequest: Envoy\'s router decides each call, from the route table (RDS) rendered from these same routes; weights are drawn per call');
  assert.match(r.stdout, /^route: reads, because/m);
});

test('describe shows the policies of the route and which rate-limit bucket governs the request; no match goes to defaultCluster', () => {
  const e = json(meltemi(['describe', 'shop/orders', '-f', '-', '--attr', 'method=checkoutFree', '--json'], POLICIES));
  assert.equal(e.route, 'checkout');
  assert.deepEqual(e.destinations.map((d) => [d.weight, d.share]), [[1, 0.25], [3, 0.75]]);
  assert.deepEqual(e.policies, {
    timeoutMs: 1500,
    fault: { abortPercent: 0.5, abortMessage: 'chaos' },
    rateLimit: { bucket: 'conditions[0]', maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 60000 },
  });
  const paid = json(meltemi(['describe', 'shop/orders', '-f', '-', '--attr', 'method=checkout', '--json'], POLICIES));
  assert.deepEqual(paid.policies.rateLimit, { bucket: 'tokenBucket', maxTokens: 100, tokensPerFill: 50, fillIntervalMs: 1000 });
  const none = json(meltemi(['describe', 'shop/orders', '-f', '-', '--attr', 'method=refund', '--json'], POLICIES));
  assert.equal(none.route, '_default');
  assert.equal(none.reason, 'no route matched; noRoute is default, so the request goes to defaultCluster');
  assert.deepEqual(none.destinations, [{ cluster: 'outbound|9090||orders.shop.svc.cluster.local', weight: 1, share: 1 }]);
});

test('describe decodes a captured frame with the config\'s codec, as a proxy does, and says why a bad one explains nothing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-describe-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const name = Buffer.from('getUser');
  const body = Buffer.concat([
    Buffer.from([0x80, 0x01, 0x00, 0x01]),            // binary protocol version 1, message type CALL
    Buffer.from([0, 0, 0, name.length]), name,         // method name
    Buffer.from([0, 0, 0, 7]),                         // seqid 7
    Buffer.from([0x00]),                               // T_STOP: no arguments
  ]);
  const frame = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]); // framed transport length
  writeFileSync(join(dir, 'call.bin'), frame);
  const e = json(meltemi(['describe', 'thrift/thrift-demo', '-f', EXAMPLES, '--frame', join(dir, 'call.bin'), '--json']));
  assert.deepEqual(e.metadata, { method: 'getUser' });
  assert.equal(e.route, 'reads');

  writeFileSync(join(dir, 'short.bin'), frame.subarray(0, 10));   // the length says 20 bytes follow
  const short = meltemi(['describe', 'thrift/thrift-demo', '-f', EXAMPLES, '--frame', join(dir, 'short.bin')]);
  assert.equal(short.status, 1);
  assert.match(short.stdout, /^error: thrift: truncated or invalid message header$/m, 'the codec\'s own words');
});

test('describe refuses bad usage with its own help, and meltemi help describe prints it', () => {
  const help = meltemi(['help', 'describe']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: meltemi describe <namespace\/name/);
  assert.match(help.stdout, /--attr <key=value>/);
  assert.equal(meltemi(['describe', '--help']).stdout, help.stdout);
  const noRequest = meltemi(['describe', 'dubbo/dubbo-demo', '-f', EXAMPLES]);
  assert.equal(noRequest.status, 2);
  assert.match(noRequest.stderr, /^meltemi: describe needs the request: --attr key=value/);
  assert.match(noRequest.stderr, /usage: meltemi describe/);
  const missing = meltemi(['describe', 'dubbo/nope', '-f', EXAMPLES, '--attr', 'method=x']);
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, 'meltemi: no WasmPlugin for MetaRouter dubbo/nope\n');
});

test('render warns on stderr and in the YAML when a WasmPlugin has no scope (a Service from Git has no clusterIP), and not when it has one', () => {
  const r = meltemi(['render', '-f', join(EXAMPLES, 'application-protocols.yaml'), '-f', join(EXAMPLES, 'thrift.yaml')]);
  assert.equal(r.status, 0, r.stderr);
  const warning = 'WasmPlugin thrift/meltemi-thrift-demo-9090 has no scope (the Service in the input has no spec.clusterIP), so every TCP service on port 9090 in its namespace gets this route table: add the Service\'s spec.clusterIP (kubectl get service -o yaml gives it), or let the controller render it from the cluster (meltemi run)';
  assert.equal(r.stderr, `meltemi: warning: ${warning}\n`);
  assert.ok(r.stdout.startsWith(`# meltemi: warning: ${warning}\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n`), r.stdout.slice(0, 300));
  assert.equal(parseAllDocuments(r.stdout).filter((d) => d.toJS()?.kind === 'WasmPlugin').length, 1, 'the comment leaves the YAML intact');
  assert.equal(meltemi(['render', '--strict', '-f', join(EXAMPLES, 'application-protocols.yaml'), '-f', join(EXAMPLES, 'thrift.yaml')]).status, 1);
  const scoped = meltemi(['render', '-f', '-'], POLICIES);
  assert.equal(scoped.status, 0, scoped.stderr);
  assert.equal(scoped.stderr, '');
  assert.doesNotMatch(scoped.stdout, /^#/m);
});
