// The bootstraps in envoy/ are what users run with `envoy -c`: Envoy must accept them, and the
// generated one must be what its renderer prints today (so it cannot drift from the code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { envoyPath, repoPath, statsConfig } from '../harness/index.mjs';

const run = promisify(execFile);

for (const file of ['envoy/thrift-demo.yaml', 'envoy/thrift-per-request.yaml']) {
  test(`${file} is accepted by Envoy (--mode validate)`, async () => {
    const { stdout, stderr } = await run(envoyPath(), ['--mode', 'validate', '-c', file, '--disable-hot-restart', '--log-level', 'warning'],
      { cwd: repoPath('.'), timeout: 30_000 });
    assert.match(stdout + stderr, new RegExp(`configuration '${file}' OK`));
  });
}

for (const file of ['envoy/thrift-demo.yaml', 'envoy/thrift-per-request.yaml']) {
  test(`${file} carries the stats_tags that turn the filter's labels into Prometheus labels`, () => {
    const bootstrap = YAML.parse(readFileSync(repoPath(file), 'utf8'));
    for (const tag of statsConfig().stats_tags) assert.ok(bootstrap.stats_config.stats_tags.some((x) => x.tag_name === tag.tag_name && x.regex === tag.regex), `${file}: ${tag.tag_name}`);
  });
}

test('envoy/thrift-per-request.yaml is what scripts/render-envoy-examples.mjs renders', async () => {
  const { render } = await import('../../scripts/render-envoy-examples.mjs');
  assert.equal(readFileSync(repoPath('envoy/thrift-per-request.yaml'), 'utf8'), render(),
    'regenerate it: node scripts/render-envoy-examples.mjs > envoy/thrift-per-request.yaml');
});
