// Per-request mode with real Apache Thrift peers: every call of ONE client connection is routed,
// balanced and answered on its own by Envoy's router (docs/per-request.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnvoy, perRequestBootstrap } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { answeredBy } from './lib/mesh.mjs';

async function servers(t, names, opts = {}) {
  const out = {};
  for (const name of names) {
    out[name] = await startThriftServer({ name, ...opts });
    t.after(() => out[name].stop());
  }
  return out;
}

async function perRequestMesh(t, { plugin, clusters, clusterOptions, concurrency = 1 }) {
  const envoy = await startEnvoy({
    t, concurrency, logLevel: 'warning', componentLogLevel: 'wasm:info',
    config: await perRequestBootstrap({ plugin, clusters, clusterOptions }),
  });
  return { envoy, port: await envoy.listenerPort('meltemi') };
}

test('per-request: the calls of one connection follow their own routes (sayHello to v2, echo to v1)', async (t) => {
  const s = await servers(t, ['v1', 'v2']);
  const plugin = {
    codec: 'thrift', mode: 'perRequest',
    routes: [
      { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }] },
      { name: 'rest', route: [{ cluster: 'v1' }] },
    ],
  };
  const { envoy, port } = await perRequestMesh(t, { plugin, clusters: { v1: [{ port: s.v1.port }], v2: [{ port: s.v2.port }] } });
  const c = await thriftClient({ port });
  t.after(() => c.close());
  const a = await c.sayHello('alice');
  const b = await c.echo('x');
  const d = await c.sayHello('bob');
  assert.equal(answeredBy(a), 'v2');
  assert.equal(answeredBy(d), 'v2');
  assert.match(String(b), /x/);
  t.diagnostic(`replies: ${a} | ${b} | ${d}`);
  const st = await envoy.stats();
  assert.equal(st.get('wasmcustom.meltemi.route.hello.request.call'), 2);
});
