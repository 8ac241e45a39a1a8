// How istiod's /debug/syncz becomes a MetaRouter's Programmed condition (controller/src/status.mts),
// on syncz entries in the shape the real istiod serves (test/controller/istio-status.test.mjs runs
// the real one: the NACK text below is Envoy's, copied from that run).
import { test } from 'node:test';
import assert from 'node:assert/strict';

const { programmedCondition, proxyNamespace, ECDS_TYPE, LDS_TYPE } = await import(new URL('../../dist/controller/status.mjs', import.meta.url).href);

const plugins = [{ namespace: 'shop', name: 'meltemi-orders-9090' }];
const proxy = (id, ecds, lds = { sent: 'n1', acked: 'n1' }) => ({ proxy: id, resources: { [ECDS_TYPE]: ecds, [LDS_TYPE]: lds } });
const acked = { sent: 'e1', acked: 'e1' };
const nack = (name) => ({ sent: 'e2', acked: 'e1', lastError: `Unable to create Wasm plugin ${name}~istio-translated-wasmplugin` });

test('a proxy is named by istiod as <pod>.<namespace>, or by its full node id', () => {
  assert.equal(proxyNamespace('client.shop'), 'shop');
  assert.equal(proxyNamespace('web-7d4f.shop'), 'shop');
  assert.equal(proxyNamespace('sidecar~10.0.0.3~web-7d4f.shop~shop.svc.cluster.local'), 'shop');
});

test('Programmed is True when every proxy of the plugin\'s namespace ACKed ECDS; other namespaces do not count', () => {
  assert.deepEqual(programmedCondition(plugins, [proxy('a.shop', acked), proxy('b.shop', acked), proxy('c.other', nack('other.x'))]), {
    type: 'Programmed', status: 'True', reason: 'Programmed', message: 'WasmPlugin and EnvoyFilter are applied and acknowledged by 2 proxies',
  });
  assert.equal(programmedCondition(plugins, []).message, 'WasmPlugin and EnvoyFilter are applied; no proxy in their scope is connected to istiod');
});

test('a NACK that names the MetaRouter\'s WasmPlugin turns it False naming the proxy; a NACK of another plugin does not', () => {
  const c = programmedCondition(plugins, [proxy('a.shop', acked), proxy('b.shop', nack('shop.meltemi-orders-9090')), proxy('c.shop', nack('shop.meltemi-orders-9090'))]);
  assert.deepEqual(c, {
    type: 'Programmed', status: 'False', reason: 'Rejected',
    message: 'proxy b.shop rejected the config (and 1 more proxy): Unable to create Wasm plugin shop.meltemi-orders-9090~istio-translated-wasmplugin (the proxy\'s log has the reason)',
  });
  const prefix = programmedCondition([{ namespace: 'shop', name: 'meltemi-orders-90' }], [proxy('a.shop', nack('shop.meltemi-orders-9090'))]);
  assert.equal(prefix.reason, 'ProxyRejectedOther', 'a plugin whose name is a prefix of the refused one is not refused');
  const prefixed = programmedCondition(plugins, [proxy('a.shop', nack('extensions.istio.io/trafficextension/shop.meltemi-orders-9090'))]);
  assert.equal(prefixed.reason, 'Rejected', 'the listener filter\'s full name names it too');
  const others = programmedCondition(plugins, [proxy('a.shop', nack('shop.someone-else'))]);
  assert.deepEqual(others, {
    type: 'Programmed', status: 'Unknown', reason: 'ProxyRejectedOther',
    message: 'proxy a.shop refused another extension config (Unable to create Wasm plugin shop.someone-else~istio-translated-wasmplugin); whether it runs this one is not known',
  }, 'Envoy refuses an ECDS response as a whole');
});

test('an LDS NACK naming the plugin counts too; a push not yet ACKed is Pending; a root-namespace plugin covers every proxy', () => {
  const lds = { sent: 'n2', acked: 'n1', lastError: 'Error adding/updating listener(s) 127.0.0.1_9090: shop.meltemi-orders-9090 ...' };
  assert.equal(programmedCondition(plugins, [proxy('a.shop', acked, lds)]).reason, 'Rejected');
  assert.deepEqual(programmedCondition(plugins, [proxy('a.shop', { sent: 'e2', acked: 'e1' })]), {
    type: 'Programmed', status: 'Unknown', reason: 'Pending', message: 'waiting for 1 proxy to acknowledge the config: a.shop',
  });
  const mesh = [{ namespace: 'istio-system', name: 'meltemi-orders-9090' }];
  assert.equal(programmedCondition(mesh, [proxy('a.shop', acked), proxy('b.web', acked)]).message, 'WasmPlugin and EnvoyFilter are applied and acknowledged by 2 proxies');
});
