// One validator: the controller runs the filter's own config check (build/meltemi.wasm loaded in
// Node, controller/src/filter-check.mts), so its verdict is the real Envoy's, and a MetaRouter the
// filter would refuse is rejected with the filter's reason and renders nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.mjs';
import { meltemiBootstrap } from '../harness/index.mjs';

const { FilterCheck } = await import(join(ROOT, 'dist/controller/filter-check.mjs'));
const { render } = await import(join(ROOT, 'dist/controller/render.mjs'));
const ENVOY = join(ROOT, '.venv/bin/envoy');

const route = (extra) => ({ name: 'r', route: [{ cluster: 'c' }], ...extra });
const CASES = {
  valid: { codec: 'thrift', routes: [route({ match: { attributes: { method: { regex: 'get[A-Z].*' } } } })] },
  'POSIX class': { codec: 'thrift', routes: [route({ match: { attributes: { method: { regex: '[[:alpha:]]+' } } } })] },
  'unicode class': { codec: 'thrift', routes: [route({ match: { attributes: { method: { regex: '\\p{Lu}' } } } })] },
  'repeat over 1000': { codec: 'thrift', routes: [route({ match: { attributes: { method: { regex: 'a{1001}' } } } })] },
  '20,000 routes': { codec: 'thrift', routes: Array.from({ length: 20000 }, (_, i) => ({ name: `r${i}`, route: [{ cluster: 'outbound|9090|v1|thrift-demo.thrift.svc.cluster.local' }] })) },
  'bad weight': { codec: 'thrift', routes: [{ name: 'r', route: [{ cluster: 'a', weight: 'heavy' }, { cluster: 'b', weight: 1 }] }] },
};

/** What the real Envoy says of a plugin config: undefined when it loads it, else its log line. */
function envoyVerdict(plugin) {
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-check-'));
  const file = join(dir, 'envoy.json');
  writeFileSync(file, JSON.stringify(meltemiBootstrap({ plugin, clusters: { c: [{ port: 1 }] } })));
  const r = spawnSync(ENVOY, ['--mode', 'validate', '-c', file, '--disable-hot-restart', '--log-level', 'error', '--component-log-level', 'wasm:info'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return undefined;
  return /meltemi: (invalid plugin configuration: [^\n]*)/.exec(r.stdout + r.stderr)?.[1] ?? `envoy exited ${r.status}`;
}

test('the controller\'s check and the real Envoy give the same verdict, in the same words', () => {
  const check = FilterCheck.load(join(ROOT, 'build/meltemi.wasm'));
  for (const [what, plugin] of Object.entries(CASES)) {
    assert.equal(check.check(plugin), envoyVerdict(plugin), what);
  }
  assert.equal(check.check(CASES.valid), undefined);
  assert.match(check.check(CASES['POSIX class']), /POSIX classes are not supported at offset 1/);
  assert.match(check.check(CASES['20,000 routes']), /input exceeds 1048576 bytes/);
});

test('a MetaRouter whose config the filter would refuse is rejected with the filter\'s reason and renders nothing', () => {
  const ns = 'demo';
  const input = {
    services: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'greeter', namespace: ns }, spec: { ports: [{ name: 'tcp-metaprotocol-thrift', port: 9090 }] } }],
    protocols: [{ apiVersion: 'meltemi.dev/v1alpha1', kind: 'ApplicationProtocol', metadata: { name: 'thrift' }, spec: { protocol: 'thrift', codec: 'thrift' } }],
    routers: [{
      apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', metadata: { name: 'greeter', namespace: ns },
      spec: { hosts: ['greeter'], routes: [{ name: 'posix', match: { attributes: { method: { regex: '[[:alpha:]]+' } } }, route: [{ destination: { host: 'greeter' } }] }] },
    }],
  };
  const out = render(input, { moduleUrl: 'file:///m.wasm', failStrategy: 'FAIL_CLOSE', clusterDomain: 'cluster.local', maxEarlyDataBytes: 65536 });
  assert.equal(out.resources.length, 0, 'nothing rendered');
  const [[, condition]] = [...out.conditions];
  assert.equal(condition.status, 'False');
  assert.match(condition.message, /routes\[0\] \(posix\)\.match\.attributes\.method: bad regex "\[\[:alpha:\]\]\+": POSIX classes are not supported at offset 1/);
});
