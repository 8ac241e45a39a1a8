// The pure render function, from YAML fixtures: snapshots of the examples, targeted assertions, and
// validation of every rendered object against Istio's schemas and the filter's plugin-config schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROOT, FIXTURES, render, readObjects, toRenderInput, DEFAULT_OPTIONS, renderFiles, assertIstio, assertPluginConfig, envoyBootstrap, DEFAULT_ENVOY_OPTIONS } from './helpers.mjs';

const SHA = 'c0ffee'.padEnd(64, '0');
const examples = [join(ROOT, 'examples')];

function snapshot(name, resources) {
  const file = join(FIXTURES, `${name}.expected.yaml`);
  const text = resources.map((r) => stringify(r, { lineWidth: 0 })).join('---\n');
  if (process.env.UPDATE_SNAPSHOTS) writeFileSync(file, text);
  assert.equal(text, readFileSync(file, 'utf8'), `${name}: rendered output differs from ${file} (UPDATE_SNAPSHOTS=1 rewrites it)`);
}

test('renders the examples to the expected WasmPlugins and EnvoyFilters', () => {
  const out = renderFiles(examples, { moduleSha256: SHA });
  snapshot('examples', out.resources);
  assert.deepEqual(out.resources.map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`), [
    'WasmPlugin dubbo/meltemi-dubbo-demo-20880', 'EnvoyFilter dubbo/meltemi-dubbo-demo-20880',
    'WasmPlugin thrift/meltemi-thrift-demo-9090', 'EnvoyFilter thrift/meltemi-thrift-demo-9090',
  ]);
  for (const [router, c] of out.conditions) assert.equal(c.status, 'True', `${router}: ${c.message}`);
});

test('every rendered object passes Istio schema validation and every plugin config the shared schema', () => {
  const outs = [
    renderFiles(examples, { moduleSha256: SHA }),
    renderFiles(examples, { moduleUrl: 'file:///var/lib/meltemi/meltemi.wasm', failStrategy: 'FAIL_OPEN', configNamespace: 'istio-system', statPrefix: 'dubbo_edge' }),
    renderFiles([join(FIXTURES, 'aeraki-thrift.yaml')]),
  ];
  let n = 0;
  for (const out of outs) {
    for (const r of out.resources) {
      assertIstio(r);
      if (r.kind === 'WasmPlugin') assertPluginConfig(r.spec.pluginConfig);
      n++;
    }
  }
  assert.equal(n, 10);
});

test('the Istio schema check catches what Istio would refuse', () => {
  const [wasm, ef] = renderFiles(examples).resources;
  // Envoy spells the fail-closed policy FAIL_CLOSED, Istio FAIL_CLOSE: easy to mix up, caught here.
  assert.throws(() => assertIstio({ ...wasm, spec: { ...wasm.spec, failStrategy: 'FAIL_CLOSED' } }), /failStrategy must be equal to one of the allowed values/);
  assert.throws(() => assertIstio({ ...wasm, spec: { ...wasm.spec, sha256: 'ABC' } }), /sha256 must match pattern/);
  assert.throws(() => assertIstio({ ...wasm, spec: { ...wasm.spec, pluginConfig: JSON.stringify(wasm.spec.pluginConfig) } }), /pluginConfig must be object/);
  const patch = structuredClone(ef);
  patch.spec.configPatches[0].patch.operation = 'MERGE_INTO';
  assert.throws(() => assertIstio(patch), /operation must be equal to one of the allowed values/);
});

test('the WasmPlugin is a NETWORK plugin on the Service port with Istio cluster names', () => {
  const [wasm, ef] = renderFiles(examples, { moduleSha256: SHA }).resources;
  assert.equal(wasm.spec.type, 'NETWORK');
  assert.equal(wasm.spec.url, 'oci://ghcr.io/meltemi-dev/meltemi:0.1.0');
  assert.equal(wasm.spec.sha256, SHA);
  assert.equal(wasm.spec.failStrategy, 'FAIL_CLOSE');
  assert.deepEqual(wasm.spec.match, [{ mode: 'CLIENT', ports: [{ number: 20880 }] }]);
  const cfg = wasm.spec.pluginConfig;
  assert.equal(cfg.codec, 'dubbo');
  assert.equal(cfg.defaultCluster, 'outbound|20880||dubbo-demo.dubbo.svc.cluster.local');
  assert.deepEqual(cfg.routes[0].route, [
    { cluster: 'outbound|20880|v1|dubbo-demo.dubbo.svc.cluster.local', weight: 80 },
    { cluster: 'outbound|20880|v2|dubbo-demo.dubbo.svc.cluster.local', weight: 20 },
  ]);
  assert.deepEqual(cfg.routes[0].requestMutation, [{ key: 'x-meltemi-route', value: 'say-hello' }]);
  assert.deepEqual(cfg.routes[1], { name: 'default', route: [{ cluster: 'outbound|20880|v2|dubbo-demo.dubbo.svc.cluster.local' }] });
  const p = ef.spec.configPatches[0];
  assert.deepEqual(p.match, { context: 'SIDECAR_OUTBOUND', listener: { portNumber: 20880, filterChain: { filter: { name: 'envoy.filters.network.tcp_proxy' } } } });
  assert.equal(p.patch.operation, 'MERGE');
  assert.equal(p.patch.value.typed_config.max_early_data_bytes, 65536);
});

test('the WasmPlugin scopes the filter to the Service\'s ClusterIPs (and loopback); the standalone config is unscoped', () => {
  const input = toRenderInput(readObjects(examples));
  const services = input.services.map((svc) => svc.metadata.name === 'dubbo-demo'
    ? { ...svc, spec: { ...svc.spec, clusterIP: '10.96.0.12', clusterIPs: ['10.96.0.12', 'fd00::12'] } }
    : { ...svc, spec: { ...svc.spec, clusterIP: 'None' } });
  const out = render({ ...input, services }, { ...DEFAULT_OPTIONS, moduleSha256: SHA });
  const wasm = out.resources.filter((r) => r.kind === 'WasmPlugin');
  const dubbo = wasm.find((r) => r.metadata.name === 'meltemi-dubbo-demo-20880');
  assert.deepEqual(dubbo.spec.pluginConfig.scope, { destinations: ['10.96.0.12', 'fd00::12', '127.0.0.0/8', '::1/128'] });
  assertPluginConfig(dubbo.spec.pluginConfig);
  const headless = wasm.find((r) => r.metadata.name === 'meltemi-thrift-demo-9090');
  assert.equal(headless.spec.pluginConfig.scope, undefined, 'a headless Service has no address to scope by');
});

test('an Aeraki MetaRouter renders after changing apiVersion only; later policies are reported as ignored', () => {
  const out = renderFiles([join(FIXTURES, 'aeraki-thrift.yaml')]);
  snapshot('aeraki-thrift', out.resources);
  const c = out.conditions.get('meta-thrift/test-metaprotocol-thrift-route');
  assert.equal(c.status, 'True');
  assert.equal(c.observedGeneration, 3);
  const warnings = [
    'spec.localRateLimit: ignored, not implemented yet (Aeraki limits the whole service; Meltemi limits per route: routes[].localRateLimit)',
    'spec.routes[0].mirror: ignored, not implemented yet',
  ];
  assert.deepEqual(out.warnings.get('meta-thrift/test-metaprotocol-thrift-route'), warnings);
  // The status carries the very texts the CLI prints.
  assert.equal(c.message, ['routes thrift-sample-server.meta-thrift.svc.cluster.local:9090', ...warnings].join('; '));
  const [wasm] = out.resources;
  assert.deepEqual(wasm.metadata.ownerReferences, [{ apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', name: 'test-metaprotocol-thrift-route', uid: '6b9d1c1e-0000-4000-8000-000000000001', controller: true, blockOwnerDeletion: true }]);
  assert.deepEqual(wasm.spec.pluginConfig.routes[0].match.attributes, { method: { exact: 'sayHello' }, caller: {} });
  assert.equal(wasm.spec.pluginConfig.routes[0].route[1].cluster, 'outbound|9091|v2|thrift-sample-server.meta-thrift.svc.cluster.local');
});

test('a config namespace takes the output mesh-wide, without owner references', () => {
  const out = renderFiles([join(FIXTURES, 'aeraki-thrift.yaml')], { configNamespace: 'istio-system' });
  for (const r of out.resources) {
    assert.equal(r.metadata.namespace, 'istio-system');
    assert.equal(r.metadata.name, 'meltemi-thrift-sample-server-meta-thrift-9090');
    assert.equal(r.metadata.ownerReferences, undefined);
    assert.equal(r.metadata.annotations['meltemi.dev/owner'], 'meta-thrift/test-metaprotocol-thrift-route');
  }
});

test('invalid MetaRouters are rejected with every problem named, and render nothing', () => {
  const out = renderFiles([join(FIXTURES, 'invalid.yaml')]);
  assert.equal(out.resources.length, 0);
  const got = Object.fromEntries([...out.conditions].map(([k, c]) => [k, `${c.status} ${c.reason}: ${c.message}`]));
  assert.deepEqual(got, {
    'bad/weights': 'False InvalidRoute: routes[0] (split).route: weights add up to 0',
    'bad/protocol': 'False UnknownProtocol: host redis.bad.svc.cluster.local port 6379: unknown protocol "redis" (no ApplicationProtocol with spec.protocol redis)',
    'bad/regex': 'False InvalidRoute: routes[0] (look).match.attributes.method: bad regex "say(?=Hello)": lookarounds are not supported at offset 3; routes[1] (broken).match.attributes.method: bad regex "say[": missing \']\' at offset 3',
    'bad/noport': 'False NoMatchingServicePort: host plain: Service bad/plain has no port named tcp-metaprotocol-<protocol>-<anything> (ports: tcp-plain)',
    'bad/noservice': 'False NoMatchingService: host ghost.bad.svc.cluster.local: no Service bad/ghost',
    'bad/mutation': 'False InvalidRoute: routes[0] (tagged).requestMutation: the thrift codec cannot carry key/values unless codecOptions.transport is header',
    'bad/names': 'False InvalidRoute: routes[0] (a b): name must match ^[a-zA-Z0-9_.-]+$ (it names metrics); routes[1] (twice).match.attributes.m: give one of exact, prefix, regex (got exact, prefix); routes: duplicate route name twice',
  });
});

test('a Thrift route may mutate when its ApplicationProtocol pins THeader, as the filter allows', () => {
  const input = toRenderInput(readObjects([join(FIXTURES, 'invalid.yaml')]));
  const protocols = input.protocols.map((p) => p.metadata.name !== 'thrift' ? p : { ...p, spec: { ...p.spec, codecOptions: { transport: 'header' } } });
  const out = render({ ...input, protocols }, DEFAULT_OPTIONS);
  const c = out.conditions.get('bad/mutation');
  assert.match(`${c.status} ${c.reason}: ${c.message}`, /^True Accepted: /);
  const wasm = out.resources.find((r) => r.kind === 'WasmPlugin' && JSON.stringify(r.spec.pluginConfig).includes('"tagged"'));
  assert.deepEqual(wasm.spec.pluginConfig.codecOptions, { transport: 'header' });
  assert.deepEqual(wasm.spec.pluginConfig.routes.find((r) => r.name === 'tagged').requestMutation, [{ key: 'tenant', value: 'blue' }]);
  assertPluginConfig(wasm.spec.pluginConfig); // and the schema does
});

test('weights are relative, as in the filter: any sum but 0 renders as given, with the filter\'s bounds and words', () => {
  /** The examples with the dubbo-demo say-hello route's two weights replaced. */
  const withWeights = (...weights) => {
    const input = toRenderInput(readObjects(examples));
    const routers = input.routers.map((r) => r.metadata.name !== 'dubbo-demo' ? r : {
      ...r, spec: { ...r.spec, routes: r.spec.routes.map((route, i) => i !== 0 ? route : {
        ...route, route: route.route.map((d, j) => ({ ...d, weight: weights[j] })),
      }) },
    });
    const out = render({ ...input, routers }, DEFAULT_OPTIONS);
    const c = out.conditions.get('dubbo/dubbo-demo');
    const wasm = out.resources.find((r) => r.kind === 'WasmPlugin' && r.metadata.namespace === 'dubbo');
    return { condition: `${c.status} ${c.reason}: ${c.message}`, config: wasm?.spec.pluginConfig, route: wasm?.spec.pluginConfig.routes[0].route.map((d) => d.weight) };
  };
  // Aeraki sums whatever it is given; so do the controller and the filter (pick.ts draws in [0, sum)).
  for (const weights of [[50, 40], [1, 3], [0, 7], [1000000, 1000000]]) {
    const got = withWeights(...weights);
    assert.match(got.condition, /^True Accepted: /, `${weights}: ${got.condition}`);
    assert.deepEqual(got.route, weights);
    assertPluginConfig(got.config);
  }
  // A sum of 0 and an out-of-range weight: the filter's own texts (assembly/route/config.ts).
  assert.equal(withWeights(0, 0).condition, 'False InvalidRoute: routes[0] (say-hello).route: weights add up to 0');
  assert.equal(withWeights(80, 1000001).condition, 'False InvalidRoute: routes[0] (say-hello).route[1].weight: expected an integer in [0, 1000000], got 1000001');
  assert.equal(withWeights(-1, 5).condition, 'False InvalidRoute: routes[0] (say-hello).route[0].weight: expected an integer in [0, 1000000], got -1');
  assert.equal(withWeights(2.5, 5).condition, 'False InvalidRoute: routes[0] (say-hello).route[0].weight: expected an integer in [0, 1000000], got 2.5');
});

test('a second MetaRouter on a port already routed is rejected as a conflict, the older one wins', () => {
  const out = renderFiles([join(ROOT, 'examples/application-protocols.yaml'), join(ROOT, 'examples/dubbo.yaml'), join(FIXTURES, 'conflict.yaml')]);
  assert.equal(out.conditions.get('dubbo/dubbo-demo').status, 'True');
  const c = out.conditions.get('dubbo/zz-second');
  assert.equal(`${c.status} ${c.reason}: ${c.message}`, 'False Conflict: port 20880 in namespace dubbo is already routed by MetaRouter dubbo/dubbo-demo');
  assert.equal(out.resources.length, 2);
});

test('render is pure: same input, same output, inputs untouched', () => {
  const freeze = (o) => { if (o && typeof o === 'object') { Object.values(o).forEach(freeze); Object.freeze(o); } return o; };
  const input = freeze(toRenderInput(readObjects([join(ROOT, 'examples'), join(FIXTURES, 'invalid.yaml')])));
  const a = render(input, DEFAULT_OPTIONS);   // a write to a frozen input throws in strict mode
  const b = render(input, DEFAULT_OPTIONS);
  assert.deepEqual(a.resources, b.resources);
  assert.deepEqual([...a.conditions], [...b.conditions]);
});

test('an ApplicationProtocol whose codec the filter does not register is refused with the known list', () => {
  const out = render({
    services: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'mail', namespace: 'm' }, spec: { ports: [{ name: 'tcp-metaprotocol-smtp-mail', port: 25 }] } }],
    protocols: [{ apiVersion: 'meltemi.dev/v1alpha1', kind: 'ApplicationProtocol', metadata: { name: 'smtp' }, spec: { protocol: 'smtp', codec: 'aeraki.meta_protocol.codec.smtp' } }],
    routers: [{ apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', metadata: { name: 'mail', namespace: 'm' }, spec: { hosts: ['mail'], routes: [] } }],
  }, DEFAULT_OPTIONS);
  const c = out.conditions.get('m/mail');
  assert.equal(c.reason, 'UnknownProtocol');
  // The list is the schema's codec enum, which grows with the filter's codecs.
  assert.match(c.message, /^ApplicationProtocol smtp: codec "aeraki\.meta_protocol\.codec\.smtp" is not one of [a-z]+(, [a-z]+)* \(schema\/plugin-config\.schema\.json\)$/);
  assert.match(c.message, /\bthrift\b/);
  assert.match(c.message, /\bdubbo\b/);
});

test('route policies are converted to the filter fields: durations to ms, Istio percents to numbers', () => {
  const out = renderFiles([join(FIXTURES, 'policies.yaml')]);
  assert.equal(out.conditions.get('shop/orders').status, 'True', out.conditions.get('shop/orders').message);
  snapshot('policies', out.resources);
  const [wasm] = out.resources;
  assertIstio(wasm);
  assertPluginConfig(wasm.spec.pluginConfig);
  const [checkout, rest] = wasm.spec.pluginConfig.routes;
  assert.equal(checkout.timeoutMs, 1500);
  assert.deepEqual(checkout.fault, { abort: { percentage: 0.5, message: 'chaos drill' }, delay: { percentage: 10, fixedDelayMs: 200 } });
  assert.deepEqual(checkout.localRateLimit, {
    tokenBucket: { maxTokens: 100, tokensPerFill: 50, fillIntervalMs: 1000 },
    conditions: [{ match: { attributes: { tenant: { exact: 'free' } } }, tokenBucket: { maxTokens: 5, fillIntervalMs: 60000 } }],
  });
  assert.deepEqual(checkout.authorization.rules[0].sources, ['10.0.0.0/8']);
  assert.deepEqual(Object.keys(rest), ['name', 'route']);
});

test('bad policies are refused with the MetaRouter field or the plugin-config field named', () => {
  const base = readObjects([join(FIXTURES, 'policies.yaml')]);
  const withRoute = (patch) => {
    const objs = structuredClone(base);
    const mr = objs.find((o) => o.kind === 'MetaRouter');
    Object.assign(mr.spec.routes[0], patch);
    return render(toRenderInput(objs), DEFAULT_OPTIONS).conditions.get('shop/orders');
  };
  assert.equal(withRoute({ timeout: 'soon' }).message, 'routes[0] (checkout).timeout: expected a duration such as "3s", got "soon"');
  assert.equal(withRoute({ fault: { delay: { fixedDelay: '0s' } } }).message, 'routes[0] (checkout).fault.delay.fixedDelay: expected a duration such as "100ms", got "0s"');
  assert.equal(withRoute({ localRateLimit: { tokenBucket: { maxTokens: 1, fillInterval: 5 } } }).message,
    'routes[0] (checkout).localRateLimit.tokenBucket.fillInterval: expected a duration such as "1s" or "500ms", got 5');
  const c = withRoute({ fault: { abort: { percentage: { value: 150 } } } });
  assert.equal(c.reason, 'InvalidRoute');
  assert.equal(c.message, 'plugin config /routes/0/fault/abort/percentage must be <= 100');
  assert.match(withRoute({ authorization: { rules: [{ action: 'MAYBE' }] } }).message, /^plugin config \/routes\/0\/authorization\/rules\/0\/action must be equal to one of the allowed values$/);
});

test('ServiceEntry hosts (Aeraki\'s interface-level Dubbo demo) render like Services, scoped by spec.addresses when set', () => {
  const out = renderFiles([join(FIXTURES, 'aeraki-dubbo-serviceentry.yaml')]);
  const demo = 'org.apache.dubbo.samples.basic.api.demoservice';
  const c = out.conditions.get('meta-dubbo/test-metaprotocol-dubbo-route');
  assert.equal(c.status, 'True', c.message);
  const unscoped = `host ${demo}: ServiceEntry meta-dubbo/dubbo-demoservice has no spec.addresses, so the WasmPlugin for port 20880 is not scoped: every TCP service on port 20880 in its namespace gets this route table`;
  assert.deepEqual(out.warnings.get('meta-dubbo/test-metaprotocol-dubbo-route'), [unscoped]);
  assert.equal(c.message, `routes ${demo}:20880; ${unscoped}`);
  assert.equal(out.conditions.get('meta-dubbo/greeter').message, 'routes org.apache.dubbo.samples.basic.api.greeter:20890');
  assert.equal(out.warnings.get('meta-dubbo/greeter'), undefined, 'an entry with addresses is scoped: no warning');
  const wasm = Object.fromEntries(out.resources.filter((r) => r.kind === 'WasmPlugin').map((r) => [r.metadata.name, r]));
  assert.deepEqual(Object.keys(wasm).sort(), ['meltemi-dubbo-demoservice-20880', 'meltemi-dubbo-greeter-20890']);
  for (const r of out.resources) { assertIstio(r); if (r.kind === 'WasmPlugin') assertPluginConfig(r.spec.pluginConfig); }
  const cfg = wasm['meltemi-dubbo-demoservice-20880'].spec.pluginConfig;
  assert.equal(cfg.defaultCluster, `outbound|20880||${demo}`);
  assert.deepEqual(cfg.routes[0].route, [{ cluster: `outbound|20880|v1|${demo}`, weight: 20 }, { cluster: `outbound|20880|v2|${demo}`, weight: 80 }]);
  assert.equal(cfg.scope, undefined);
  assert.deepEqual(wasm['meltemi-dubbo-demoservice-20880'].spec.match, [{ mode: 'CLIENT', ports: [{ number: 20880 }] }]);
  assert.deepEqual(wasm['meltemi-dubbo-greeter-20890'].spec.pluginConfig.scope, { destinations: ['240.240.0.7', '127.0.0.0/8', '::1/128'] });
  // meltemi envoy sends the entry's clusters to its endpoints (the entry's port, or the endpoint's own).
  const boot = envoyBootstrap(out.compiled, { ...DEFAULT_OPTIONS, moduleUrl: 'file:///m.wasm' }, DEFAULT_ENVOY_OPTIONS);
  const cluster = boot.static_resources.clusters.find((x) => x.name === `outbound|20880|v1|${demo}`);
  assert.equal(cluster.type, 'STATIC');
  assert.deepEqual(cluster.load_assignment.endpoints[0].lb_endpoints.map((e) => e.endpoint.address.socket_address),
    [{ address: '10.244.0.21', port_value: 20880 }, { address: '10.244.0.22', port_value: 20881 }]);
});

test('a ServiceEntry counts only where it is exported, and a Service wins over an entry of the same name', () => {
  const objs = readObjects([join(FIXTURES, 'aeraki-dubbo-serviceentry.yaml')]);
  const se = objs.find((o) => o.metadata.name === 'dubbo-demoservice');
  se.metadata.namespace = 'elsewhere';
  se.spec.exportTo = ['.'];
  const hidden = render(toRenderInput(objs), DEFAULT_OPTIONS).conditions.get('meta-dubbo/test-metaprotocol-dubbo-route');
  assert.equal(`${hidden.status} ${hidden.reason}: ${hidden.message}`,
    'False NoMatchingService: host org.apache.dubbo.samples.basic.api.demoservice: no ServiceEntry with this host, and not a Kubernetes Service host (<name>.<namespace>.svc.cluster.local)');
  se.spec.exportTo = ['meta-dubbo'];
  assert.equal(render(toRenderInput(objs), DEFAULT_OPTIONS).conditions.get('meta-dubbo/test-metaprotocol-dubbo-route').status, 'True');
  // A ServiceEntry host without a tcp-metaprotocol-* port is refused with the entry named.
  se.spec.ports = [{ number: 20880, name: 'tcp', protocol: 'TCP' }];
  assert.equal(render(toRenderInput(objs), DEFAULT_OPTIONS).conditions.get('meta-dubbo/test-metaprotocol-dubbo-route').message,
    'host org.apache.dubbo.samples.basic.api.demoservice: ServiceEntry elsewhere/dubbo-demoservice has no port named tcp-metaprotocol-<protocol>-<anything> (ports: tcp)');
});

test('unknown fields are errors naming their path (typos never pass as ignored), in MetaRouters and ApplicationProtocols', () => {
  const base = readObjects([join(FIXTURES, 'policies.yaml')]);
  const mutate = (f) => { const objs = structuredClone(base); f(objs.find((o) => o.kind === 'MetaRouter'), objs); return render(toRenderInput(objs), DEFAULT_OPTIONS); };
  const cond = (out) => { const c = out.conditions.get('shop/orders'); return `${c.status} ${c.reason}: ${c.message}`; };
  assert.equal(cond(mutate((mr) => { mr.spec.routes[0].requestMutations = [{ key: 'a', value: 'b' }]; })),
    'False InvalidRoute: spec.routes[0].requestMutations: unknown field (did you mean requestMutation?)');
  assert.equal(cond(mutate((mr) => { mr.spec.routes[0].route[0].destination.prot = { number: 1 }; mr.spec.routes[0].fault.abort.percent = 5; })),
    'False InvalidRoute: spec.routes[0].fault.abort.percent: unknown field; spec.routes[0].route[0].destination.prot: unknown field (did you mean port?)');
  assert.equal(cond(mutate((mr) => { mr.spec.host = ['x']; })), 'False InvalidMetaRouter: spec.host: unknown field (did you mean hosts?)');
  const rejected = mutate((mr) => { mr.spec.routes[0].requestMutations = []; mr.spec.globalRateLimit = { domain: 'x' }; });
  assert.equal(rejected.resources.length, 0, 'a router with an unknown field renders nothing');
  assert.equal(rejected.warnings.size, 0);
  const ap = mutate((mr, objs) => { objs.find((o) => o.kind === 'ApplicationProtocol').spec.codecOption = {}; });
  assert.match(cond(ap), /^False InvalidApplicationProtocol: ApplicationProtocol \S+: spec\.codecOption: unknown field \(did you mean codecOptions\?\)$/);
  // Known but unprogrammed fields are accepted with a warning each, nested ones included.
  const ok = mutate((mr) => { mr.spec.routes[0].mirrorPercentage = { value: 5 }; mr.spec.globalRateLimit = { domain: 'x' }; });
  assert.deepEqual(ok.warnings.get('shop/orders'), ['spec.globalRateLimit: ignored, not implemented yet', 'spec.routes[0].mirrorPercentage: ignored, not implemented yet']);
});

const PRINCIPALS_PROBLEM = 'spec.routes[0].authorization.rules[0].principals: never matches per connection: the filter runs in the client\'s sidecar, ' +
  'where connections come from the local application without a client certificate (spec.mode: perRequest enforces route policies on the server\'s sidecar, behind mTLS)';

test('a per-connection authorization rule on principals is refused naming it (it never matches where the filter runs); per request it is accepted', () => {
  const base = readObjects([join(FIXTURES, 'policies.yaml')]);
  base.find((o) => o.kind === 'MetaRouter').spec.routes[0].authorization.rules[0].principals = ['spiffe://cluster.local/ns/shop/sa/web'];
  const out = render(toRenderInput(base), DEFAULT_OPTIONS);
  const c = out.conditions.get('shop/orders');
  assert.equal(c.status, 'False');
  assert.ok(c.message.includes(PRINCIPALS_PROBLEM), c.message);
  assert.equal(out.resources.filter((r) => r.metadata.annotations?.['meltemi.dev/owner'] === 'shop/orders' || r.metadata.name.includes('orders')).length, 0, 'nothing rendered for it');
  const perRequest = structuredClone(base);
  perRequest.find((o) => o.kind === 'MetaRouter').spec.mode = 'perRequest';
  const pr = render(toRenderInput(perRequest), DEFAULT_OPTIONS);
  assert.equal(pr.conditions.get('shop/orders').status, 'True', pr.conditions.get('shop/orders').message);
  assert.ok(!(pr.warnings.get('shop/orders') ?? []).some((w) => w.includes('.principals:')), JSON.stringify(pr.warnings.get('shop/orders')));
});
