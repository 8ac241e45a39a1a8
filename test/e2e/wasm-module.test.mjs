// The built module is something a stock Envoy can load: it imports only proxy-wasm host functions
// (and WASI), exports the network callbacks, and really loads in the pinned Envoy's V8 runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { repoPath, envoyPath, startEnvoy, meltemiBootstrap } from '../harness/index.mjs';

const wasm = readFileSync(repoPath('build/meltemi.wasm'));
const module = new WebAssembly.Module(wasm);

test('imports only proxy-wasm host functions and WASI', () => {
  const imports = WebAssembly.Module.imports(module);
  assert.ok(imports.length > 0);
  for (const i of imports) {
    const ok = (i.module === 'env' && i.name.startsWith('proxy_')) || i.module === 'wasi_snapshot_preview1';
    assert.ok(ok, `unexpected import ${i.module}.${i.name}`);
  }
});

test('exports the proxy-wasm network filter callbacks', () => {
  const names = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  for (const name of ['proxy_abi_version_0_2_0', 'malloc', 'proxy_on_context_create', 'proxy_on_configure',
    'proxy_on_new_connection', 'proxy_on_downstream_data', 'proxy_on_upstream_data', 'proxy_on_delete', 'proxy_on_tick']) {
    assert.ok(names.has(name), `missing export ${name}`);
  }
});

test('the pinned Envoy is the one the Makefile names, and loads the module in V8', async (t) => {
  const pinned = readFileSync(repoPath('Makefile'), 'utf8').match(/^ENVOY_VERSION\s*:=\s*(\S+)/m)[1];
  const version = execFileSync(envoyPath(), ['--version'], { encoding: 'utf8' });
  assert.match(version, new RegExp(`/${pinned.replaceAll('.', '\\.')}/`));
  const envoy = await startEnvoy({
    t,
    componentLogLevel: 'wasm:info',
    config: meltemiBootstrap({ plugin: { codec: 'thrift', routes: [] }, clusters: { c: [{ port: 1 }] } }),
  });
  await envoy.waitForLog(/meltemi: configured codec thrift with 0 routes/);
  // One VM per worker plus the main thread's, all in V8.
  assert.ok((await envoy.stat('wasm.envoy.wasm.runtime.v8.active')) >= 2);
});
