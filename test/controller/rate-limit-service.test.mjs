// How a per-request MetaRouter names its global rate limit service, in the pure render: Istio's
// cluster name (Aeraki's form) or <host>:<port>, both checked against the Service's ports; a port
// that would not make Istio's cluster speak HTTP/2 (gRPC) is refused by field name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { render, toRenderInput, DEFAULT_OPTIONS } from './helpers.mjs';

const limit = (rateLimitService) => ({ domain: 'd', rateLimitService, descriptors: [{ property: 'method', descriptorKey: 'method' }] });
function renderWith(rateLimitService, rlsPort = { name: 'grpc', port: 8081 }, entryPort) {
  const out = render(toRenderInput([
    { apiVersion: 'meltemi.dev/v1alpha1', kind: 'ApplicationProtocol', metadata: { name: 'thrift' }, spec: { protocol: 'thrift', codec: 'thrift' } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'greeter', namespace: 'demo' }, spec: { selector: { app: 'g' }, ports: [{ name: 'tcp-metaprotocol-thrift', port: 9090 }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ratelimit', namespace: 'infra' }, spec: { selector: { app: 'rls' }, ports: [rlsPort] } },
    ...(entryPort ? [{ apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'rls', namespace: 'infra' },
      spec: { hosts: ['rls.example'], ports: [entryPort], resolution: 'DNS' } }] : []),
    { apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', metadata: { name: 'greeter', namespace: 'demo' },
      spec: { hosts: ['greeter'], mode: 'perRequest', globalRateLimit: limit(rateLimitService), routes: [{ name: 'all', route: [{ destination: { host: 'greeter' } }] }] } },
  ]), DEFAULT_OPTIONS);
  const c = out.conditions.get('demo/greeter');
  const filter = out.resources.find((r) => r.kind === 'EnvoyFilter');
  const cluster = filter?.spec.configPatches[0].patch.value.typed_config.http_filters[0].typed_config.rate_limit_service.grpc_service.envoy_grpc.cluster_name;
  return { ok: c.status === 'True', message: c.message, cluster };
}

test('the rate limit service by <host>:<port> or by Istio\'s cluster name reaches the connection manager\'s rate limit filter', () => {
  const cluster = 'outbound|8081||ratelimit.infra.svc.cluster.local';
  assert.equal(renderWith('ratelimit.infra:8081').cluster, cluster);
  assert.equal(renderWith('ratelimit.infra.svc.cluster.local:8081').cluster, cluster);
  assert.equal(renderWith(cluster).cluster, cluster, 'Aeraki\'s form, as given');
  assert.equal(renderWith('my-bootstrap-rls').cluster, 'my-bootstrap-rls', 'a cluster of the sidecar\'s bootstrap, as given');
  assert.equal(renderWith('ratelimit.infra:8081', { name: 'rls', port: 8081, appProtocol: 'grpc' }).cluster, cluster, 'appProtocol selects gRPC too');
  assert.equal(renderWith('rls.example:8081', undefined, { number: 8081, name: 'rls', protocol: 'GRPC' }).cluster, 'outbound|8081||rls.example', 'a ServiceEntry port by its protocol');
});

test('a rate limit service Istio would not reach over HTTP/2 is refused, naming the field', () => {
  assert.equal(renderWith('ratelimit.infra:8081', { name: 'tcp-rls', port: 8081 }).message,
    'spec.globalRateLimit.rateLimitService: Service infra/ratelimit port 8081 (tcp-rls) does not select gRPC: name it grpc or grpc-<anything>, or set appProtocol: grpc, so that Istio\'s cluster speaks HTTP/2 to the rate limit service');
  assert.match(renderWith('rls.example:8081', undefined, { number: 8081, name: 'grpc', protocol: 'TCP' }).message,
    /^spec\.globalRateLimit\.rateLimitService: ServiceEntry infra\/rls port 8081 \(grpc\) does not select gRPC: set its protocol: GRPC,/, 'a ServiceEntry\'s protocol decides, not its name');
  assert.equal(renderWith('ratelimit.infra:9000').message, 'spec.globalRateLimit.rateLimitService: Service infra/ratelimit has no port 9000 (ports: 8081)');
  assert.equal(renderWith('outbound|8081||nowhere.infra.svc.cluster.local').message,
    'spec.globalRateLimit.rateLimitService: no Service or ServiceEntry has the host nowhere.infra.svc.cluster.local (give <host>:<port> or Istio\'s cluster outbound|<port>||<host>)');
});
