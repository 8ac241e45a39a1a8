#!/usr/bin/env node
// Meltemi Thrift demo (`make demo`): two real Apache Thrift servers (v1, v2), the real Envoy
// with build/meltemi.wasm in front, and the real Thrift client sending calls through it.
// Part 1, per connection (the first request picks the cluster): every call opens its own
// connection. Part 2, per request (test/demo/per-request.mjs): the same calls on ONE connection,
// each routed on its own by Envoy's router. The route that served each call is read from the filter's
// metrics (meltemi_requests_total{meltemi_route}, /stats/prometheus); the answering server from the servers'
// own call records. Exit code 0 only if every call went where the routes say.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { startEnvoy, meltemiBootstrap, repoPath, EnvoyStartError } from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { table, observeCall } from './lib.mjs';
import { perRequestDemo } from './per-request.mjs';

const WASM = process.env.MELTEMI_WASM || 'build/meltemi.wasm'; // override to try another build
const WIRE = { transport: 'framed', protocol: 'binary' };

const plugin = {
  codec: 'thrift',
  statPrefix: 'meltemi',
  defaultCluster: 'thrift_v1',
  accessLog: true,
  routes: [
    { name: 'hello-to-v2', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'thrift_v2' }] },
    {
      name: 'echo-canary',
      match: { attributes: { method: { exact: 'echo' } } },
      route: [{ cluster: 'thrift_v1', weight: 70 }, { cluster: 'thrift_v2', weight: 30 }],
    },
    { name: 'default-v1', route: [{ cluster: 'thrift_v1' }] },
  ],
};

// [call as shown, method, args, expected route, expected server (null: weighted, either)]
const plan = [
  ['sayHello("alice")', 'sayHello', ['alice'], 'hello-to-v2', 'v2'],
  ['sayHello("bob")', 'sayHello', ['bob'], 'hello-to-v2', 'v2'],
  ['add(2, 3)', 'add', [2, 3], 'default-v1', 'v1'],
  ['add(-1, 3)', 'add', [-1, 3], 'default-v1', 'v1'],
  ['ping("hi")  [oneway]', 'ping', ['hi'], 'default-v1', 'v1'],
  ...Array.from({ length: 8 }, (_, i) => [`echo("e${i}")`, 'echo', [`e${i}`], 'echo-canary', null]),
];

/** One call on a connection of its own (per connection, the first request routes it). */
async function oneCall(envoy, port, servers, step) {
  const client = await thriftClient({ port, ...WIRE });
  try {
    return await observeCall(envoy, servers, client, step);
  } finally {
    await client.close();
  }
}

async function main() {
  if (!existsSync(repoPath(WASM))) {
    console.error(`Meltemi demo: ${WASM} is missing. Build the filter first with \`make build\` (\`make demo\` runs it).`);
    return 2;
  }
  const started = [];
  const stopAll = () => Promise.allSettled(started.splice(0).reverse().map((s) => s.stop()));
  process.once('SIGINT', () => { stopAll().then(() => process.exit(130)); });
  try {
    const v1 = await startThriftServer({ name: 'v1', ...WIRE });
    started.push(v1);
    const v2 = await startThriftServer({ name: 'v2', ...WIRE });
    started.push(v2);
    console.log(`Thrift servers (${WIRE.transport}/${WIRE.protocol}): v1 on 127.0.0.1:${v1.port}, v2 on 127.0.0.1:${v2.port}`);

    let envoy;
    try {
      envoy = await startEnvoy({
        config: meltemiBootstrap({
          plugin,
          clusters: { thrift_v1: [{ port: v1.port }], thrift_v2: [{ port: v2.port }] },
          wasmPath: WASM,
        }),
        logLevel: 'warning',
        componentLogLevel: { wasm: 'info' },
      });
    } catch (err) {
      if (err instanceof EnvoyStartError) {
        console.error(`Envoy refused the Meltemi config:\n${err.message}`);
        return 1;
      }
      throw err;
    }
    started.push(envoy);
    const port = await envoy.listenerPort();
    console.log(`Envoy ${repoPath('.venv/bin/envoy')} with ${WASM}: listener 127.0.0.1:${port}, admin ${envoy.adminUrl}`);
    console.log('Routes (first match wins, per connection):');
    for (const r of plugin.routes) {
      const m = r.match ? Object.entries(r.match.attributes).map(([k, v]) => `${k} ${Object.keys(v)[0]} ${JSON.stringify(Object.values(v)[0])}`).join(' and ') : 'anything';
      const to = r.route.map((d) => (d.weight !== undefined ? `${d.cluster} (weight ${d.weight})` : d.cluster)).join(', ');
      console.log(`  ${r.name.padEnd(12)} ${m.padEnd(26)} -> ${to}`);
    }
    console.log('');

    const results = [];
    for (const step of plan) results.push(await oneCall(envoy, port, { v1, v2 }, step));
    console.log(table(results.map((r, i) => [i + 1, ...r.row]), ['#', 'call', 'method', 'answered by', 'route', 'result', 'check']));

    const canary = results.filter((r) => r.route === 'echo-canary');
    const split = ['v1', 'v2'].map((s) => `${s}: ${canary.filter((r) => r.server === s).length}`).join(', ');
    console.log(`\nWeighted route echo-canary (70/30, drawn per connection): ${split} of ${canary.length}`);
    const scrape = await envoy.metrics();
    const show = scrape.samples.filter((x) => x.name.startsWith('meltemi_') && x.value !== 0);
    console.log('\nFilter metrics (non-zero, from /stats/prometheus):');
    for (const x of show) console.log(`  ${x.name}{${Object.entries(x.labels).map(([k, v]) => `${k}="${v}"`).join(',')}} ${x.value}`);
    const access = envoy.logs().split('\n').filter((l) => /\[wasm\]/.test(l) && /meltemi/.test(l)).slice(-3);
    if (access.length) console.log(`\nLast filter log lines:\n${access.map((l) => `  ${l}`).join('\n')}`);

    const bad = results.filter((r) => !r.ok).length;
    console.log(bad ? `\n${bad} call(s) did not go where the routes say.` : '\nEvery call went where the routes say.');
    await envoy.stop();
    const badPerRequest = await perRequestDemo({ v1, v2, plugin, plan, wasmPath: WASM, wire: WIRE });
    return bad || badPerRequest ? 1 : 0;
  } finally {
    await stopAll();
  }
}

process.exitCode = await main();
