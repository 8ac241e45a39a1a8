// The chart's proxyStatus values (docs/controller.md, "What Programmed means") with the real Helm
// (test/helm/fetch-helm.sh): the controller's --istiod-* flags, the projected token istiod
// authenticates, nothing of it by default, and the schema refusing bad values by path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers.mjs';
import { docs } from './kube-env.mjs';

const CHART = join(ROOT, 'deploy/helm/meltemi');
const HELM = join(execFileSync('bash', [join(ROOT, 'test/helm/fetch-helm.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop(), 'helm');
const helm = (...set) => spawnSync(HELM, ['template', 'meltemi', CHART, '--namespace', 'meltemi-system', ...set.flatMap((s) => ['--set', s])], { encoding: 'utf8' });
const deployment = (r) => { assert.equal(r.status, 0, r.stderr); return docs(r.stdout).find((o) => o.kind === 'Deployment'); };
const CLI_HELP = spawnSync(process.execPath, [join(ROOT, 'controller/bin/meltemi.mjs'), 'help', 'run'], { encoding: 'utf8' }).stdout;

test('by default the chart asks istiod nothing: no --istiod flags, no token volume', () => {
  const d = deployment(helm());
  assert.ok(!d.spec.template.spec.containers[0].args.some((a) => a.startsWith('--istiod')));
  assert.equal(d.spec.template.spec.volumes, undefined);
});

test('proxyStatus.istiodUrl runs the controller with --istiod-url, --istiod-poll and a projected token for istiod\'s audience', () => {
  const d = deployment(helm('proxyStatus.istiodUrl=http://istiod.istio-system.svc:15014', 'proxyStatus.pollSeconds=10'));
  const c = d.spec.template.spec.containers[0];
  const flags = c.args.filter((a) => a.startsWith('--istiod'));
  assert.deepEqual(flags, ['--istiod-url=http://istiod.istio-system.svc:15014', '--istiod-poll=10', '--istiod-token=/var/run/secrets/meltemi/istiod/token']);
  for (const f of flags) assert.ok(CLI_HELP.includes(f.split('=')[0] + ' '), `${f} is a flag of meltemi run`);
  assert.deepEqual(c.volumeMounts, [{ name: 'istiod-token', mountPath: '/var/run/secrets/meltemi/istiod', readOnly: true }]);
  assert.deepEqual(d.spec.template.spec.volumes, [{ name: 'istiod-token', projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'istio-ca', expirationSeconds: 3600 } }] } }]);
  const plain = deployment(helm('proxyStatus.istiodUrl=http://127.0.0.1:15014', 'proxyStatus.token.enabled=false'));
  assert.ok(!plain.spec.template.spec.containers[0].args.includes('--istiod-token=/var/run/secrets/meltemi/istiod/token'));
  assert.equal(plain.spec.template.spec.volumes, undefined);
});

test('the schema refuses a bad proxyStatus value by its path', () => {
  const url = helm('proxyStatus.istiodUrl=istiod:15014');
  assert.notEqual(url.status, 0);
  assert.match(url.stderr, /at '\/proxyStatus\/istiodUrl': 'istiod:15014' does not match pattern/);
  const poll = helm('proxyStatus.pollSeconds=0');
  assert.match(poll.stderr, /at '\/proxyStatus\/pollSeconds': exclusiveMinimum/);
});
