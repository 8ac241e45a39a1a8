// A MetaRouter route's `retries` (Istio VirtualService's HTTPRetry names, plus idempotent) in the pure
// render: per request it becomes the plugin config's retry and Envoy's retry_policy in the RDS route
// table; bad values and per-connection use are refused by field path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { render, toRenderInput, DEFAULT_OPTIONS, assertPluginConfig } from './helpers.mjs';

const input = (route, mode = 'perRequest') => toRenderInput([
  { apiVersion: 'meltemi.dev/v1alpha1', kind: 'ApplicationProtocol', metadata: { name: 'thrift' }, spec: { protocol: 'thrift', codec: 'thrift' } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'greeter', namespace: 'demo' },
    spec: { selector: { app: 'greeter' }, ports: [{ name: 'tcp-metaprotocol-thrift', port: 9090 }] } },
  { apiVersion: 'meltemi.dev/v1alpha1', kind: 'MetaRouter', metadata: { name: 'greeter', namespace: 'demo' },
    spec: { hosts: ['greeter'], ...(mode ? { mode } : {}), routes: [{ name: 'all', route: [{ destination: { host: 'greeter' } }], ...route }] } },
]);
const renderRoute = (route, mode) => render(input(route, mode), DEFAULT_OPTIONS);
const message = (out) => out.conditions.get('demo/greeter').message;

test('retries reach the plugin config and the RDS route table as Envoy\'s retry policy', () => {
  const out = renderRoute({ retries: { attempts: 3, perTryTimeout: '1.5s' } });
  assert.equal(out.conditions.get('demo/greeter').status, 'True', message(out));
  assert.equal(out.warnings.size, 0);
  const client = out.resources.find((r) => r.kind === 'WasmPlugin' && r.spec.pluginConfig.role === 'client');
  assert.deepEqual(client.spec.pluginConfig.routes[0].retry, { attempts: 3, perTryTimeoutMs: 1500 });
  assertPluginConfig(client.spec.pluginConfig);
  const [table] = out.routes.values();
  const policy = table.virtual_hosts[0].routes[0].route.retry_policy;
  assert.equal(policy.retry_on, 'connect-failure,refused-stream,reset-before-request', 'not idempotent: only calls the server never got');
  assert.equal(policy.num_retries, 3);
  assert.equal(policy.per_try_timeout, '1.5s');
  assert.equal(policy.retry_host_predicate[0].name, 'envoy.retry_host_predicates.previous_hosts', 'a retry goes to another endpoint');
});

test('retryOn may name resets and gateway errors only on an idempotent route', () => {
  const refused = renderRoute({ retries: { retryOn: 'connect-failure,reset' } });
  assert.equal(message(refused), 'routes[0] (all).retries.retryOn: reset may run a call the server already got a second time; set retries.idempotent: true if this route\'s calls are safe to repeat');
  const ok = renderRoute({ retries: { attempts: 2, retryOn: 'reset,gateway-error', idempotent: true } });
  assert.equal(ok.conditions.get('demo/greeter').status, 'True', message(ok));
  const [table] = ok.routes.values();
  assert.equal(table.virtual_hosts[0].routes[0].route.retry_policy.retry_on, 'connect-failure,refused-stream,reset,gateway-error,unavailable');
  // retryOn cannot narrow the route's set: the conditions it leaves out are said, not dropped.
  assert.deepEqual(ok.warnings.get('demo/greeter'), [
    'routes[0] (all).retries.retryOn: the route also retries on connect-failure, refused-stream, unavailable (an idempotent route retries on all of connect-failure,refused-stream,reset,gateway-error,unavailable)',
  ]);
  assert.equal(renderRoute({ retries: { retryOn: 'connect-failure,refused-stream,reset-before-request' } }).warnings.size, 0);
});

test('bad retries are refused by field path, and per-connection routers refuse retries', () => {
  assert.equal(message(renderRoute({ retries: { attempts: 0, perTryTimeout: 'soon', retryOn: '5xx,connect-failure', idempotent: 'yes' } })), [
    'routes[0] (all).retries.attempts: expected an integer in [1, 10], got 0',
    'routes[0] (all).retries.perTryTimeout: expected a duration such as "500ms", got "soon"',
    'routes[0] (all).retries.idempotent: expected true or false, got "yes"',
    'routes[0] (all).retries.retryOn: expected a comma-separated list of connect-failure, refused-stream, reset-before-request, reset, gateway-error, unavailable, got "5xx,connect-failure"',
  ].join('; '));
  assert.equal(message(renderRoute({ retries: { attemps: 2 } })), 'spec.routes[0].retries.attemps: unknown field (did you mean attempts?)');
  const perConnection = renderRoute({ retries: { attempts: 2 } }, 'perConnection');
  assert.equal(perConnection.conditions.get('demo/greeter').reason, 'InvalidRoute');
  assert.equal(message(perConnection), 'routes[0] (all).retries: needs spec.mode perRequest (per connection, a whole connection goes to one cluster: there is no call to retry)');
});
