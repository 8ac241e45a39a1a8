// `meltemi envoy --mode perRequest`: a MetaRouter rendered into a standalone per-request
// bootstrap, run in the real Envoy against real Thrift servers; the calls of one client
// connection follow their own routes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEnvoy, freePort } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { ROOT } from './helpers.mjs';

const CLI = join(ROOT, 'controller/bin/meltemi.mjs');
const meltemi = (...args) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });

const resources = `
apiVersion: meltemi.dev/v1alpha1
kind: ApplicationProtocol
metadata: { name: thrift }
spec: { protocol: thrift, codec: thrift }
---
apiVersion: v1
kind: Service
metadata: { name: greeter, namespace: demo, annotations: { meltemi.dev/listen-port: "0" } }
spec: { ports: [{ name: tcp-metaprotocol-thrift, port: 9090 }] }
---
apiVersion: meltemi.dev/v1alpha1
kind: MetaRouter
metadata: { name: greeter, namespace: demo }
spec:
  hosts: [greeter.demo.svc.cluster.local]
  routes:
    - name: hello
      match: { attributes: { method: { exact: sayHello } } }
      route: [{ destination: { host: greeter, subset: v2 } }]
    - name: rest
      route: [{ destination: { host: greeter, subset: v1 } }]
`;

test('meltemi envoy --mode perRequest renders a bootstrap whose router routes each call of one connection', async (t) => {
  const v1 = await startThriftServer({ name: 'v1' });
  const v2 = await startThriftServer({ name: 'v2' });
  t.after(() => Promise.all([v1.stop(), v2.stop()]));
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-pr-'));
  writeFileSync(join(dir, 'in.yaml'), resources);
  const host = 'greeter.demo.svc.cluster.local';
  const r = meltemi('envoy', '-f', join(dir, 'in.yaml'), '--mode', 'perRequest', '--admin-port', '0',
    '--endpoints', `${host}|v1=127.0.0.1:${v1.port}`, '--endpoints', `${host}|v2=127.0.0.1:${v2.port}`,
    '--endpoints', `${host}=127.0.0.1:${v1.port}`);
  assert.equal(r.status, 0, r.stderr);
  const envoy = await startEnvoy({ t, config: r.stdout, logLevel: 'warning', componentLogLevel: 'wasm:info' });
  const port = await envoy.listenerPort('meltemi-greeter-9090');
  const c = await thriftClient({ port });
  t.after(() => c.close());
  assert.equal(await c.sayHello('a'), 'v2: hello a');
  assert.equal(await c.echo('b'), 'b');
  assert.equal(await c.sayHello('c'), 'v2: hello c');
  assert.deepEqual(v1.calls.map((x) => x.method), ['echo']);
  assert.equal(await envoy.metric('meltemi_connections_total'), 1);
});

test('meltemi envoy --mode refuses an unknown mode, and per-request mode refuses DNS endpoints with a clear message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-pr-'));
  writeFileSync(join(dir, 'in.yaml'), resources);
  const bad = meltemi('envoy', '-f', join(dir, 'in.yaml'), '--mode', 'sometimes');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--mode must be perConnection or perRequest/);
  const dns = meltemi('envoy', '-f', join(dir, 'in.yaml'), '--mode', 'perRequest');
  assert.equal(dns.status, 2);
  assert.match(dns.stderr, /per-request mode: cluster "outbound\|9090\|v2\|greeter.demo.svc.cluster.local" endpoint greeter.demo.svc.cluster.local:9090 must be an IP address/);
});

test('meltemi envoy renders a per-request MetaRouter\'s retries: with one of two endpoints refusing, every call of one connection is answered', async (t) => {
  const v1 = await startThriftServer({ name: 'v1' });
  t.after(() => v1.stop());
  const refusing = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-pr-'));
  writeFileSync(join(dir, 'in.yaml'), resources.replace('  hosts: [greeter.demo.svc.cluster.local]\n', '  hosts: [greeter.demo.svc.cluster.local]\n  mode: perRequest\n')
    .replace('      route: [{ destination: { host: greeter, subset: v1 } }]\n', '      route: [{ destination: { host: greeter } }]\n      retries: { attempts: 3 }\n'));
  const host = 'greeter.demo.svc.cluster.local';
  const r = meltemi('envoy', '-f', join(dir, 'in.yaml'), '--mode', 'perRequest', '--admin-port', '0',
    '--endpoints', `${host}|v2=127.0.0.1:${v1.port}`, '--endpoints', `${host}=127.0.0.1:${v1.port},127.0.0.1:${refusing}`);
  assert.equal(r.status, 0, r.stderr);
  const envoy = await startEnvoy({ t, config: r.stdout, logLevel: 'warning' });
  const c = await thriftClient({ port: await envoy.listenerPort('meltemi-greeter-9090') });
  t.after(() => c.close());
  for (let i = 0; i < 20; i++) assert.equal(await c.echo(`e${i}`), `e${i}`);
  // Outlier detection ejects the refusing endpoint after 3 gateway failures: from then on no retry is needed.
  const retried = await envoy.stat(`cluster.outbound|9090||${host}.upstream_rq_retry_success`);
  assert.ok(retried >= 1, `retries that succeeded: ${retried}`);
});
