// Prometheus-native metrics through the real Envoy, the real Meltemi filter and real Apache Thrift
// servers, scraped from /stats/prometheus as Prometheus would: two Services whose routes are both
// named "default" count apart, every series labelled by service, route, cluster, operation and
// status. Once with Meltemi's own stats_tags (controller/src/stats-tags.mts), once with the
// stats_config Istio's own bootstrap code writes for meshConfig extraStatTags; and the alert rules
// and the dashboard of the Helm chart name only series the scrape has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import {
  startEnvoy, meltemiFilterConfig, tcpProxyFilter, staticClusters, socketAddress, statsConfig, perRequestBootstrap,
  tcpExchange, waitFor, repoPath,
} from '../harness/index.mjs';
import { startThriftServer, thriftClient } from '../peers/thrift/index.mjs';
import { istioSidecarBootstrap } from '../istio/istiod.mjs';
import { istioMeshConfig, METRIC_LABELS } from '../../dist/controller/stats-tags.mjs';
import { thriftMesh } from './lib/mesh.mjs';

const GREETER = 'greeter.shop.svc.cluster.local';
const ECHO = 'echo.shop.svc.cluster.local';

/** Two routed Services, each with a route named "default", on two listeners of one Envoy. */
const plugins = {
  greeter: {
    codec: 'thrift', service: GREETER,
    routes: [
      { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }],
        localRateLimit: { tokenBucket: { maxTokens: 2, fillIntervalMs: 600000 } } },
      { name: 'default', route: [{ cluster: 'v1' }] },
    ],
  },
  echo: { codec: 'thrift', service: ECHO, routes: [{ name: 'default', route: [{ cluster: 'v2' }] }] },
};

async function twoServices(t, stats) {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }) };
  for (const s of Object.values(servers)) t.after(() => s.stop());
  const listeners = Object.entries(plugins).map(([name, plugin]) => ({
    name, address: socketAddress(0),
    filter_chains: [{ filters: [
      meltemiFilterConfig(plugin),
      tcpProxyFilter({ cluster: plugin.routes.at(-1).route[0].cluster, statPrefix: name, maxEarlyDataBytes: 65536 }),
    ] }],
  }));
  const envoy = await startEnvoy({
    t, logLevel: 'warning',
    config: {
      admin: { address: socketAddress(0) },
      stats_config: stats,
      // Histograms reach /stats/prometheus on the stats flush.
      stats_flush_interval: '0.2s',
      static_resources: { listeners, clusters: staticClusters({ v1: [{ port: servers.v1.port }], v2: [{ port: servers.v2.port }] }) },
    },
  });
  const client = async (listener) => {
    const c = await thriftClient({ port: await envoy.listenerPort(listener) });
    t.after(() => c.close());
    return c;
  };
  return { envoy, servers, client };
}

/**
 * The traffic whose counts the labels must show: on greeter, 3 sayHello (route hello, v2; the
 * third over the rate limit gets a local reply) and, on a second connection, echo x2, add and a
 * failing add (route default, v1; one exception); on echo, echo x4 (route default, v2) and one
 * connection of garbage (decode_error).
 */
async function traffic({ envoy, client }) {
  const hello = await client('greeter');
  assert.equal(await hello.sayHello('a'), 'v2: hello a');
  assert.equal(await hello.sayHello('b'), 'v2: hello b');
  await assert.rejects(hello.sayHello('c'), /rate limit exceeded/);
  const rest = await client('greeter');
  assert.equal(await rest.echo('x'), 'x');
  assert.equal(await rest.echo('y'), 'y');
  assert.equal(await rest.add(2, 3), 5);
  await assert.rejects(rest.add(-1, 1), (e) => e.code === 1);
  const echo = await client('echo');
  for (let i = 0; i < 4; i++) assert.equal(await echo.echo(`e${i}`), `e${i}`);
  const garbage = await tcpExchange({ port: await envoy.listenerPort('echo'), data: Buffer.from('GET / HTTP/1.1\r\n\r\n'), timeout: 5000 });
  assert.equal(garbage.closedByPeer, true);
  // The duration histogram moves on the next stats flush.
  return waitFor(async () => {
    const m = await envoy.metrics();
    return m.get('meltemi_request_duration_ms_count', { meltemi_service: ECHO }) === 4 ? m : null;
  }, { message: 'meltemi_request_duration_ms_count of echo reaches 4' });
}

function assertLabelled(m) {
  const greeter = { meltemi_service: GREETER };
  const echo = { meltemi_service: ECHO };
  // Two Services, two "default" routes: two series, not one sum.
  const defaults = m.series('meltemi_requests_total', { meltemi_route: 'default', meltemi_kind: 'call' });
  assert.deepEqual(defaults.map((s) => [s.labels.meltemi_service, s.labels.meltemi_cluster, s.value]).sort(),
    [[ECHO, 'v2', 4], [GREETER, 'v1', 4]]);
  assert.deepEqual(m.series('meltemi_responses_total', { ...greeter, meltemi_route: 'default' }).map((s) => [s.labels.meltemi_status, s.value]).sort(),
    [['exception', 1], ['reply', 3]]);
  assert.equal(m.get('meltemi_responses_total', { ...echo, meltemi_route: 'default', meltemi_cluster: 'v2', meltemi_status: 'reply' }), 4);
  // The rate-limited call was counted as a request, answered locally, not as a server's reply.
  assert.equal(m.get('meltemi_requests_total', { ...greeter, meltemi_route: 'hello', meltemi_cluster: 'v2', meltemi_kind: 'call' }), 3);
  assert.equal(m.get('meltemi_responses_total', { ...greeter, meltemi_route: 'hello', meltemi_cluster: 'v2', meltemi_status: 'reply' }), 2);
  assert.equal(m.get('meltemi_local_reply_total', greeter), 1);
  assert.equal(m.get('meltemi_ratelimited_total', greeter), 1);
  assert.equal(m.value('meltemi_local_reply_total', echo), 0);
  // Operations: the method alone (the Thrift calls are not multiplexed).
  assert.equal(m.get('meltemi_operation_requests_total', { ...greeter, meltemi_operation: 'sayHello', meltemi_kind: 'call' }), 3);
  assert.equal(m.get('meltemi_operation_responses_total', { ...greeter, meltemi_operation: 'add', meltemi_status: 'exception' }), 1);
  assert.equal(m.get('meltemi_operation_requests_total', { ...echo, meltemi_operation: 'echo', meltemi_kind: 'call' }), 4);
  assert.equal(m.get('meltemi_route_connections_total', { ...greeter, meltemi_route: 'hello', meltemi_cluster: 'v2' }), 1);
  assert.equal(m.get('meltemi_route_connections_total', { ...greeter, meltemi_route: 'default', meltemi_cluster: 'v1' }), 1);
  assert.equal(m.get('meltemi_connections_total', greeter), 2);
  assert.equal(m.get('meltemi_connections_total', echo), 2, 'the garbage connection too');
  assert.equal(m.get('meltemi_decode_error_total', echo), 1);
  assert.equal(m.value('meltemi_decode_error_total', greeter), 0);
  assert.equal(m.value('meltemi_active_requests'), 0);
  assert.ok(m.get('meltemi_wasm_memory_bytes', greeter) >= 65536);
  assert.equal(m.get('meltemi_request_duration_ms_count', { ...greeter, meltemi_route: 'default', meltemi_cluster: 'v1' }), 4);
  assert.equal(m.types.get('meltemi_request_duration_ms'), 'histogram');
  assert.equal(m.types.get('meltemi_requests_total'), 'counter');
  // Nothing of the filter is left unlabelled, or with a label left in its name ("=.=" reads "___").
  for (const s of m.samples.filter((x) => x.name.startsWith('meltemi'))) {
    assert.equal(s.labels.meltemi_service !== undefined, true, `${s.name} has meltemi_service`);
    assert.doesNotMatch(s.name, /___/, s.name);
  }
}

test('two Services with a route named default: two labelled series, with route, cluster, operation and status', async (t) => {
  const mesh = await twoServices(t, statsConfig());
  assertLabelled(await traffic(mesh));
  // The excerpt quoted in docs/metrics.md.
  const { body } = await mesh.envoy.admin('/stats/prometheus');
  const lines = body.split('\n').filter((l) => /^# TYPE meltemi_(requests|responses)_total|^meltemi_(requests|responses)_total|^meltemi_operation_responses_total\{.*greeter|^meltemi_(local_reply|ratelimited)_total\{.*greeter|^meltemi_decode_error_total\{.*echo|^meltemi_request_duration_ms_(count|bucket)\{.*greeter.*hello/.test(l));
  process.stdout.write(lines.map((l) => `# ${l}\n`).join(''));
});

// The filter holds its request and reply counts in the VM while requests are in flight (one
// host call per metric for many reads) and sends them at once when none is (assembly/stats.ts
// settle). A request that stays in flight must not hold other connections' counts back: the
// root's tick sends them.
test('counts reach Envoy while another connection\'s request is still in flight', async (t) => {
  const mesh = await thriftMesh(t, { plugin: { codec: 'thrift', routes: [{ name: 'default', route: [{ cluster: 'v1' }] }] }, servers: { v1: {} } });
  const slow = await mesh.client({ timeout: 20000 });
  let slowDone = false;
  const pending = slow.echo('delay:4000:slow').then((v) => { slowDone = true; return v; });
  const fast = await mesh.client();
  for (let i = 0; i < 3; i++) assert.equal(await fast.sayHello(`f${i}`), `v1: hello f${i}`);
  const replies = () => mesh.envoy.metric('meltemi_responses_total', { meltemi_route: 'default', meltemi_status: 'reply' });
  await waitFor(async () => (await replies()) === 3, { timeout: 3000, message: 'the fast calls\' replies counted' });
  assert.equal(slowDone, false, 'counted only once the slow call ended: held counts waited for it');
  assert.equal(await mesh.envoy.metric('meltemi_active_requests'), 1, 'the slow call is in flight');
  assert.equal(await pending, 'delay:4000:slow');
  assert.equal(await replies(), 4);
  assert.equal(await mesh.envoy.metric('meltemi_active_requests'), 0);
});

test('Istio\'s own bootstrap with meshConfig extraStatTags gives the same labels, and its stats matcher keeps them', async (t) => {
  const bootstrap = istioSidecarBootstrap(istioMeshConfig().defaultConfig);
  const stats = bootstrap.stats_config;
  assert.equal(stats.use_all_default_tags, false);
  assert.ok(stats.stats_matcher.inclusion_list.patterns.some((p) => p.prefix === 'wasm'), 'Istio keeps stats starting with "wasm" (wasmcustom.)');
  const mesh = await twoServices(t, stats);
  assertLabelled(await traffic(mesh));
});

test('per-request mode: the server role labels route and cluster (the one Envoy\'s router picked), the client role the operation', async (t) => {
  const servers = { v1: await startThriftServer({ name: 'v1' }), v2: await startThriftServer({ name: 'v2' }) };
  for (const s of Object.values(servers)) t.after(() => s.stop());
  const plugin = {
    codec: 'thrift', mode: 'perRequest', service: GREETER,
    routes: [
      { name: 'hello', match: { attributes: { method: { exact: 'sayHello' } } }, route: [{ cluster: 'v2' }] },
      { name: 'default', route: [{ cluster: 'v1', weight: 1 }, { cluster: 'v2', weight: 1 }] },
    ],
  };
  const config = await perRequestBootstrap({ plugin, clusters: { v1: [{ port: servers.v1.port }], v2: [{ port: servers.v2.port }] } });
  const envoy = await startEnvoy({ t, logLevel: 'warning', config });
  const c = await thriftClient({ port: await envoy.listenerPort('meltemi') });
  t.after(() => c.close());
  assert.equal(await c.sayHello('a'), 'v2: hello a');
  const n = 40;
  for (let i = 0; i < n; i++) assert.equal(await c.echo(`e${i}`), `e${i}`);
  const by = { v1: servers.v1.calls.filter((x) => x.method === 'echo').length, v2: servers.v2.calls.filter((x) => x.method === 'echo').length };
  const m = await envoy.metrics();
  const greeter = { meltemi_service: GREETER };
  assert.equal(m.get('meltemi_responses_total', { ...greeter, meltemi_route: 'hello', meltemi_cluster: 'v2', meltemi_status: 'reply' }), 1);
  // ?? 0: a cluster the 1:1 split never drew would have no series (odds 2^-39); the family is the hello series above.
  for (const v of ['v1', 'v2']) {
    assert.equal(m.get('meltemi_responses_total', { ...greeter, meltemi_route: 'default', meltemi_cluster: v, meltemi_status: 'reply' }) ?? 0, by[v], `default on ${v}`);
  }
  assert.equal(m.get('meltemi_responses_total', { meltemi_cluster: '_other' }), undefined, 'every call named a cluster of its route');
  // Both roles run in this one Envoy and count operations alike (in a mesh they are two proxies).
  assert.equal(m.get('meltemi_operation_requests_total', { ...greeter, meltemi_operation: 'echo', meltemi_kind: 'call' }), 2 * n);
  assert.equal(m.get('meltemi_connections_total', greeter), 1);
});

/**
 * Each expression as Prometheus's own parser reads it (test/prometheus/promql-names, built by
 * fetch-promql-names.sh; a no-op when cached): { names } of its series, or { error }.
 */
function parsePromql(exprs) {
  const out = execFileSync('bash', [repoPath('test/prometheus/fetch-promql-names.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const bin = join(out.trim().split('\n').pop(), 'promql-names');
  const lines = execFileSync(bin, { input: exprs.map((e) => JSON.stringify(e)).join('\n') + '\n', encoding: 'utf8' }).trim().split('\n');
  return lines.map((l) => JSON.parse(l));
}

/** A Grafana query as PromQL: its variables replaced by what Grafana would put there. */
const grafanaToPromql = (q) => q.replaceAll('$__rate_interval', '5m').replaceAll('$service', '.*');

/** Every family name and sample name of a scrape (a histogram's _bucket, _sum and _count too). */
function scrapedNames(m) {
  const names = new Set(m.names());
  for (const [name, type] of m.types) {
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
  }
  return names;
}

test('the chart\'s alert rules and dashboard parse as PromQL and name only series the filter exports', async (t) => {
  // The same Envoy and traffic as the first test, scraped here: every family the rules may name has moved.
  const have = scrapedNames(await traffic(await twoServices(t, statsConfig())));
  // The template is YAML once its Helm lines ({{- if ... }}, {{- end }}) are left out and its
  // inline actions ({{ .Release.Namespace }}) are text.
  const template = readFileSync(repoPath('deploy/helm/meltemi/templates/monitoring-prometheusrule.yaml'), 'utf8');
  const yaml = template.split('\n').filter((l) => !/^\s*\{\{-?.*-?\}\}\s*$/.test(l)).join('\n').replace(/\{\{[^`]*?\}\}/g, 'helm');
  const rules = YAML.parse(yaml).spec.groups.flatMap((g) => g.rules);
  assert.ok(rules.length >= 5, `${rules.length} alerts`);
  const dashboard = JSON.parse(readFileSync(repoPath('deploy/helm/meltemi/dashboards/meltemi.json'), 'utf8'));
  const queries = [
    ...rules.map((r) => [`alert ${r.alert}`, r.expr]),
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => [`panel "${p.title}"`, grafanaToPromql(x.expr)])),
    ...dashboard.templating.list.filter((v) => v.type === 'query').map((v) => [`variable ${v.name}`, v.query.query]),
  ];
  assert.ok(queries.length >= 25, `${queries.length} queries`);
  // label_values() is Grafana's, not PromQL: its metric is checked by name.
  const promql = queries.map(([what, q]) => [what, q.replace(/^label_values\((\w+), \w+\)$/, '$1')]);
  const parsed = parsePromql(promql.map(([, q]) => q));
  for (const [i, [what, q]] of promql.entries()) {
    const { names, error } = parsed[i];
    assert.equal(error, undefined, `${what}: ${q}`);
    assert.ok(names.length > 0, `${what} names a series`);
    for (const n of names) assert.ok(have.has(n), `${what}: ${n} is not in the scrape`);
  }
});

test('docs/metrics.md shows the stats_tags and extraStatTags the code renders', () => {
  const doc = readFileSync(repoPath('docs/metrics.md'), 'utf8');
  const block = (start) => YAML.parse(doc.slice(doc.indexOf(start)).split('```')[0]);
  assert.deepEqual(block('stats_config:\n').stats_config, statsConfig());
  assert.deepEqual(block('meshConfig:\n').meshConfig, istioMeshConfig());
  assert.deepEqual(istioMeshConfig().defaultConfig.extraStatTags, [...METRIC_LABELS]);
});
