// Thrift's THeader transport (fbthrift's default, Apache Thrift's THeaderTransport; Envoy's
// thrift_proxy transport "header") through the real Envoy and the real Meltemi filter: the npm
// thrift library's THeader client against Apache Thrift's Go THeader server. The header's
// key/values are metadata that routes match on, both protocols inside it work, and Meltemi's own
// answers come back in THeader with the call's seqid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answeredBy, envoyInFront } from './lib/mesh.mjs';
import { tcpExchange } from '../harness/index.mjs';
import { thriftClient } from '../peers/thrift/index.mjs';
import { startGoThriftServer } from '../peers/thrift/go.mjs';

const byTenant = (extra = {}) => ({
  codec: 'thrift',
  routes: [
    { name: 'blue', match: { attributes: { tenant: { exact: 'blue' } } }, route: [{ cluster: 'v2' }], ...extra },
    { name: 'rest', route: [{ cluster: 'v1' }], ...extra },
  ],
});

/** Two Go THeader servers (v1, v2) behind one Envoy running the filter per connection or per request. */
async function headerMesh(t, plugin, { perRequest = false } = {}) {
  const servers = {};
  for (const name of ['v1', 'v2']) {
    servers[name] = await startGoThriftServer({ name, transport: 'header' });
    t.after(() => servers[name].stop());
  }
  const { envoy, port } = await envoyInFront(t, plugin, servers, { perRequest });
  return {
    envoy,
    port,
    async client(opts) {
      const c = await thriftClient({ port, transport: 'header', ...opts });
      t.after(() => c.close());
      return c;
    },
  };
}

for (const protocol of ['binary', 'compact']) {
  test(`routes THeader ${protocol} connections by a header key/value the client writes`, async (t) => {
    const mesh = await headerMesh(t, byTenant());
    const blue = await mesh.client({ protocol, headers: { tenant: 'blue' } });
    for (let i = 0; i < 3; i++) assert.equal(await blue.sayHello(`b${i}`), `v2: hello b${i}`);
    const green = await mesh.client({ protocol, headers: { tenant: 'green' } });
    assert.equal(answeredBy(await green.sayHello('g')), 'v1');
    assert.equal(await green.add(2, 3), 5);
    const s = await mesh.envoy.metrics();
    assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'blue', meltemi_status: 'reply' }), 3);
    assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'rest', meltemi_status: 'reply' }), 2);
    assert.equal(s.get('meltemi_operation_requests_total', { meltemi_operation: 'sayHello', meltemi_kind: 'call' }), 4);
    assert.equal(s.value('meltemi_decode_error_total'), 0);
  });
}

for (const perRequest of [false, true]) {
  test(`${perRequest ? 'per-request' : 'per-connection'} mode: requestMutation writes THeader key/values the server reads`, async (t) => {
    const plugin = {
      codec: 'thrift', codecOptions: { transport: 'header' },
      routes: [{ name: 'tagged', route: [{ cluster: 'v1' }], requestMutation: [{ key: 'tenant', value: 'rewritten' }, { key: 'x-via', value: 'meltemi' }] }],
    };
    const mesh = await headerMesh(t, plugin, { perRequest });
    for (const protocol of ['binary', 'compact']) {
      const c = await mesh.client({ protocol, headers: { tenant: 'blue', keep: 'me' } });
      assert.equal(await c.echo('header:tenant'), 'rewritten', 'an existing key/value overwritten');
      assert.equal(await c.echo('header:x-via'), 'meltemi', 'a new one added');
      assert.equal(await c.echo('header:keep'), 'me', 'the others untouched');
      assert.equal(await c.sayHello('z'), 'v1: hello z');
    }
    assert.equal(await mesh.envoy.metric('meltemi_mutation_failed_total'), 0);
  });
}

test('a call the filter refuses is answered in THeader with its seqid, and the connection goes on', async (t) => {
  const deny = { authorization: { defaultAction: 'ALLOW', rules: [{ name: 'no-add', action: 'DENY', match: { attributes: { method: { exact: 'add' } } } }] } };
  const mesh = await headerMesh(t, byTenant(deny));
  for (const protocol of ['binary', 'compact']) {
    const c = await mesh.client({ protocol, headers: { tenant: 'blue' } });
    assert.equal(await c.sayHello('before'), 'v2: hello before');
    await assert.rejects(c.add(1, 2), (e) => e.name === 'TApplicationException' && /denied by authorization rule no-add/.test(e.message), 'the refusal, as the library reads it');
    assert.equal(await c.sayHello('after'), 'v2: hello after');
  }
  assert.equal(await mesh.envoy.metric('meltemi_authz_denied_total'), 2);
});

test('a THeader frame with a transform is refused and closes only its own connection', async (t) => {
  const mesh = await headerMesh(t, byTenant());
  const good = await mesh.client({ protocol: 'binary', headers: { tenant: 'blue' } });
  assert.equal(await good.sayHello('before'), 'v2: hello before');
  // Magic, flags, sequence number 1, one header word: binary, one transform (zlib), padding.
  const zlib = Buffer.from('000000000fff0000000000010001' + '00010100' + 'deadbeef', 'hex');
  zlib.writeUInt32BE(zlib.length - 4, 0);
  const bad = await tcpExchange({ port: mesh.port, data: [zlib], timeout: 5000 });
  assert.equal(bad.timedOut, false, 'closed, not left hanging');
  assert.equal(bad.data.length, 0, 'nothing answered: the frame could not be read');
  assert.equal(await mesh.envoy.metric('meltemi_decode_error_total'), 1);
  assert.equal(await good.sayHello('after'), 'v2: hello after', 'the good connection never noticed');
});

test('per-request mode: each THeader call of one connection routed by its own header, both protocols', async (t) => {
  const mesh = await headerMesh(t, byTenant(), { perRequest: true });
  for (const protocol of ['binary', 'compact']) {
    const blue = await mesh.client({ protocol, headers: { tenant: 'blue' } });
    const plain = await mesh.client({ protocol });
    const answers = await Promise.all([blue.sayHello('a'), plain.sayHello('b'), blue.sayHello('c'), plain.add(4, 5), blue.echo('e')]);
    assert.deepEqual(answers, ['v2: hello a', 'v1: hello b', 'v2: hello c', 9, 'e']);
  }
  const s = await mesh.envoy.metrics();
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'blue', meltemi_status: 'reply' }), 6);
  assert.equal(s.get('meltemi_responses_total', { meltemi_route: 'rest', meltemi_status: 'reply' }), 4);
});
