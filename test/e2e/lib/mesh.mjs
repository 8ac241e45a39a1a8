// A small Thrift mesh for end-to-end tests: real Apache Thrift servers behind the real Envoy
// running build/meltemi.wasm. Everything started here is stopped when the test ends.
import { startEnvoy, meltemiBootstrap, perRequestBootstrap } from '../../harness/index.mjs';
import { startThriftServer, thriftClient } from '../../peers/thrift/index.mjs';

/**
 * @param {import('node:test').TestContext} t
 * @param {object} o
 * @param {object|string} o.plugin   plugin config; clusters are named after the servers
 * @param {Record<string, object>} [o.servers]  name → startThriftServer options (default v1, v2)
 * @param {number} [o.concurrency=1] Envoy worker threads
 * @param {object} [o.bootstrap]     extra top-level bootstrap fields (e.g. stats_flush_interval)
 * @returns {Promise<{envoy, port: number, servers: Record<string, object>, client: (opts?) => Promise<object>}>}
 */
export async function thriftMesh(t, { plugin, servers = { v1: {}, v2: {} }, concurrency = 1, logLevel = 'warning', componentLogLevel, bootstrap = {} } = {}) {
  const started = {};
  for (const [name, opts] of Object.entries(servers)) {
    started[name] = await startThriftServer({ name, ...opts });
    t.after(() => started[name].stop());
  }
  const clusters = Object.fromEntries(Object.entries(started).map(([n, s]) => [n, [{ port: s.port }]]));
  const envoy = await startEnvoy({
    t, concurrency, logLevel, componentLogLevel: componentLogLevel ?? 'wasm:info',
    config: { ...meltemiBootstrap({ plugin, clusters }), ...bootstrap },
  });
  const port = await envoy.listenerPort('meltemi');
  const clientOpts = Object.values(servers)[0] ?? {};
  return {
    envoy,
    port,
    servers: started,
    /** A real Thrift client connected through Envoy; closed when the test ends. */
    async client(opts = {}) {
      const c = await thriftClient({ port, transport: clientOpts.transport, protocol: clientOpts.protocol, ...opts });
      t.after(() => c.close());
      return c;
    },
  };
}

/**
 * One Envoy running `plugin` per connection, or per request, in front of started servers (name →
 * {port}; clusters are named after them), for meshes of any Thrift peer. Stopped with the test.
 * @returns {Promise<{envoy, port: number}>}
 */
export async function envoyInFront(t, plugin, servers, { perRequest = false } = {}) {
  const clusters = Object.fromEntries(Object.entries(servers).map(([n, s]) => [n, [{ port: s.port }]]));
  const config = perRequest
    ? await perRequestBootstrap({ plugin: { ...plugin, mode: 'perRequest' }, clusters })
    : meltemiBootstrap({ plugin, clusters });
  const envoy = await startEnvoy({ t, logLevel: 'warning', componentLogLevel: 'wasm:info', config });
  return { envoy, port: await envoy.listenerPort('meltemi') };
}

/** Which server answered a Greeter.sayHello: the servers prefix replies with their name. */
export function answeredBy(reply) {
  return String(reply).split(':')[0];
}
