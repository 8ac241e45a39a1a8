// The benchmark script itself works: a --tiny Thrift run produces its JSON, table and charts.
// No timing thresholds: the numbers of a tiny run on a shared machine mean nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoPath } from '../harness/index.mjs';

test('bench/run.mjs --tiny writes results.json, a Markdown table and SVG charts', { timeout: 120_000 }, async () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'meltemi-bench-'));
  try {
    await new Promise((resolve, reject) => {
      execFile(process.execPath, [repoPath('bench/run.mjs'), '--tiny', '--workloads', 'thrift', '--out', out],
        { cwd: repoPath('.'), timeout: 110_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    const thrift = results.workloads.find((w) => w.name === 'thrift');
    assert.ok(thrift.points.length > 0);
    for (const id of ['direct', 'tcp_proxy', 'native', 'meltemi', 'meltemi_policies']) {
      assert.ok(thrift.points[0].median[id]?.throughput > 0, `${id} served requests`);
    }
    assert.ok(thrift.memory.meltemi.after.wasmMemoryBytes > 0, 'the filter reports wasm_memory_bytes');
    const md = readFileSync(path.join(out, 'results.md'), 'utf8');
    assert.match(md, /\| Meltemi \|/);
    assert.match(md, /Envoy tcp_proxy/);
    for (const f of ['thrift-throughput.svg', 'thrift-p50.svg', 'thrift-p99.svg']) {
      assert.match(readFileSync(path.join(out, f), 'utf8'), /^<svg /, f);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
