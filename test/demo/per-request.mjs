// Part 2 of `make demo`: the same routes in per-request mode. ONE client connection carries every
// call; Envoy's HTTP router picks each call's route and server (docs/per-request.md), so the
// 70/30 canary splits the calls of that one connection, which per-connection routing cannot do.
import { startEnvoy, perRequestBootstrap } from '../harness/index.mjs';
import { thriftClient } from '../peers/thrift/index.mjs';
import { table, observeCall } from './lib.mjs';

const SPLIT_CALLS = 200;

/** Runs the demo's plan on one connection; returns how many calls went elsewhere than the routes say. */
export async function perRequestDemo({ v1, v2, plugin, plan, wasmPath, wire }) {
  const servers = { v1, v2 };
  const perRequest = { ...plugin, mode: 'perRequest' };
  const envoy = await startEnvoy({
    config: await perRequestBootstrap({
      plugin: perRequest, clusters: { thrift_v1: [{ port: v1.port }], thrift_v2: [{ port: v2.port }] }, wasmPath,
    }),
    logLevel: 'warning',
    componentLogLevel: { wasm: 'warning' },
  });
  try {
    const port = await envoy.listenerPort('meltemi');
    console.log(`\n=== Per request: the same routes, every call on ONE connection (listener 127.0.0.1:${port}) ===`);
    console.log('client --thrift--> [meltemi client role] -> HTTP/2 -> Envoy router (routes, weights) -> [meltemi server role] -> server\n');
    const client = await thriftClient({ port, ...wire });
    try {
      const rows = [];
      let bad = 0;
      for (const step of plan) {
        const r = await observeCall(envoy, servers, client, step);
        if (!r.ok) bad++;
        rows.push([rows.length + 1, ...r.row]);
      }
      console.log(table(rows, ['#', 'call', 'method', 'answered by', 'route', 'result', 'check']));

      // The weighted route, drawn per call: many echo calls on the same connection.
      const before = { v1: v1.calls.length, v2: v2.calls.length };
      for (let i = 0; i < SPLIT_CALLS; i++) await client.echo(`split-${i}`);
      const got = { v1: v1.calls.length - before.v1, v2: v2.calls.length - before.v2 };
      console.log(`\nWeighted route echo-canary (70/30, drawn per call) on one connection: v1 ${got.v1}, v2 ${got.v2} of ${SPLIT_CALLS} (${Math.round((100 * got.v1) / SPLIT_CALLS)}% / ${Math.round((100 * got.v2) / SPLIT_CALLS)}%)`);
      const s = await envoy.stats();
      console.log(`Client connections the filter saw: ${await envoy.metric('meltemi_connections_total')}; upstream connections Envoy opened: v1 ${s.get('cluster.thrift_v1.upstream_cx_total')}, v2 ${s.get('cluster.thrift_v2.upstream_cx_total')}`);
      // 4 standard deviations of Binomial(200, 0.3) around 60: a real split, not a fixed one.
      if (Math.abs(got.v2 - SPLIT_CALLS * 0.3) > 26) bad++;
      console.log(bad ? `\n${bad} per-request check(s) failed.` : '\nEvery call went where the routes say, each drawn on its own.');
      return bad;
    } finally {
      await client.close();
    }
  } finally {
    await envoy.stop();
  }
}
