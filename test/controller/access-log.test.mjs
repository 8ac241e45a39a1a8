// spec.accessLog (controller/src/access-log.mts): what it turns on in the rendered Istio objects
// and the standalone bootstrap, per connection and per request, and how a bad value is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, render, readObjects, toRenderInput, DEFAULT_OPTIONS, assertIstio, assertPluginConfig, envoyBootstrap, DEFAULT_ENVOY_OPTIONS } from './helpers.mjs';

const EXAMPLES = [join(ROOT, 'examples/application-protocols.yaml'), join(ROOT, 'examples/thrift.yaml')];
const KEY = 'thrift/thrift-demo';
const HCM = 'envoy.filters.network.http_connection_manager';

/** Renders the Thrift example with its MetaRouter's spec changed by `spec`. */
function renderWith(spec) {
  const objs = readObjects(EXAMPLES);
  const mr = objs.find((o) => o.kind === 'MetaRouter');
  Object.assign(mr.spec, spec);
  return render(toRenderInput(objs), DEFAULT_OPTIONS);
}

const condition = (out) => { const c = out.conditions.get(KEY); return `${c.status} ${c.reason}: ${c.message}`; };
const byKind = (out, kind, name = 'meltemi-thrift-demo-9090') => out.resources.find((r) => r.kind === kind && r.metadata.name === name);
const hcmOf = (ef) => ef.spec.configPatches[0].patch.value;

test('per connection: spec.accessLog turns the filter\'s JSON lines on, and nothing else changes', () => {
  const off = renderWith({});
  const on = renderWith({ accessLog: {} });
  assert.equal(condition(on).split(':')[0], 'True Accepted');
  assert.equal(byKind(off, 'WasmPlugin').spec.pluginConfig.accessLog, undefined);
  const wasm = byKind(on, 'WasmPlugin');
  assert.equal(wasm.spec.pluginConfig.accessLog, true);
  assertPluginConfig(wasm.spec.pluginConfig);
  assert.deepEqual(byKind(on, 'EnvoyFilter'), byKind(off, 'EnvoyFilter'), 'tcp_proxy logs per connection: its patch is not touched');
  assert.deepEqual(renderWith({ accessLog: { enabled: false } }).resources, off.resources, 'enabled: false is the same as no field');
});

test('per request: Envoy\'s connection manager writes one JSON line per call to /dev/stdout, or the path given, and both roles log', () => {
  for (const [accessLog, path] of [[{}, '/dev/stdout'], [{ enabled: true, path: '/var/log/meltemi/calls.log' }, '/var/log/meltemi/calls.log']]) {
    const out = renderWith({ mode: 'perRequest', accessLog });
    assert.equal(condition(out).split(':')[0], 'True Accepted', condition(out));
    const ef = byKind(out, 'EnvoyFilter');
    assertIstio(ef);
    const hcm = hcmOf(ef);
    assert.equal(hcm.name, HCM);
    const [log, ...more] = hcm.typed_config.access_log;
    assert.equal(more.length, 0);
    assert.equal(log.name, 'envoy.access_loggers.file');
    assert.equal(log.typed_config['@type'], 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog');
    assert.equal(log.typed_config.path, path);
    const format = log.typed_config.log_format.json_format;
    assert.equal(format.route, '%ROUTE_NAME%');
    assert.equal(format.cluster, '%UPSTREAM_CLUSTER_RAW%');
    assert.equal(format.peer, '%DOWNSTREAM_REMOTE_ADDRESS%');
    assert.equal(format.response_code, '%RESPONSE_CODE%');
    assert.equal(format.status, '%RESP(X-MELTEMI-STATUS)%');
    assert.equal(format.duration_ms, '%DURATION%');
    for (const name of ['meltemi-thrift-demo-9090', 'meltemi-thrift-demo-9090-server']) {
      const wasm = byKind(out, 'WasmPlugin', name);
      assertIstio(wasm);
      assert.equal(wasm.spec.pluginConfig.accessLog, true, `${name}: the role logs (the server role also tells Envoy the protocol status)`);
    }
  }
  const off = hcmOf(byKind(renderWith({ mode: 'perRequest' }), 'EnvoyFilter'));
  assert.equal(off.typed_config.access_log, undefined, 'off: no access log, no cost');
});

test('the standalone per-request bootstrap (meltemi envoy --mode perRequest) carries the same access log', () => {
  const out = renderWith({ mode: 'perRequest', accessLog: { path: '/tmp/calls.log' } });
  const boot = envoyBootstrap(out.compiled, { ...DEFAULT_OPTIONS, moduleUrl: 'file:///m.wasm' }, { ...DEFAULT_ENVOY_OPTIONS, mode: 'perRequest', endpoints: { 'thrift-demo.thrift.svc.cluster.local': ['127.0.0.1:9093'] } });
  const listener = boot.static_resources.listeners.find((l) => l.name === 'meltemi-thrift-demo-9090');
  const hcm = listener.filter_chains[0].filters.find((f) => f.name === HCM);
  assert.equal(hcm.typed_config.access_log[0].typed_config.path, '/tmp/calls.log');
  assert.deepEqual(hcm.typed_config.access_log, hcmOf(byKind(out, 'EnvoyFilter')).typed_config.access_log, 'the same entry as in Istio');
});

test('a bad spec.accessLog is refused naming the field, and renders nothing', () => {
  const cases = [
    [{ accessLog: true }, 'False InvalidMetaRouter: spec.accessLog: expected an object such as {} or { path: /dev/stdout }, got true'],
    [{ accessLog: { enabled: 'yes' } }, 'False InvalidMetaRouter: spec.accessLog.enabled: expected true or false, got "yes"'],
    [{ mode: 'perRequest', accessLog: { path: 'calls.log' } }, 'False InvalidMetaRouter: spec.accessLog.path: expected an absolute file path such as /dev/stdout, got "calls.log"'],
    [{ accessLog: { pth: '/dev/stdout' } }, 'False InvalidMetaRouter: spec.accessLog.pth: unknown field (did you mean path?)'],
  ];
  for (const [spec, want] of cases) {
    const out = renderWith(spec);
    assert.equal(condition(out), want);
    assert.equal(out.resources.length, 0);
  }
});

test('per connection, a path is accepted with a warning: the filter\'s lines go to Envoy\'s application log', () => {
  const out = renderWith({ accessLog: { path: '/var/log/calls.log' } });
  assert.equal(byKind(out, 'WasmPlugin').spec.pluginConfig.accessLog, true);
  assert.deepEqual(out.warnings.get(KEY), ['spec.accessLog.path: not used per connection (the filter\'s lines go to Envoy\'s application log, wasm logger, "meltemi access {...}"); it is where Envoy\'s own access log writes in per-request mode']);
  assert.match(condition(out), /^True Accepted: .*spec\.accessLog\.path: not used per connection/);
});
