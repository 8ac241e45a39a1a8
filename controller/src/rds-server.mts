/**
 * A route discovery service over REST (Envoy's `api_type: REST`): Envoy polls
 * `POST /v3/discovery:routes` with a JSON DiscoveryRequest and gets the named RouteConfigurations,
 * or 304 when its version is current. Route changes then reach calls on connections that are
 * already open, which a new Wasm plugin config cannot (open connections keep their filter).
 * The table of route configurations is set by the caller (set()); versions count up per change.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';

export interface RdsServer {
  readonly port: number;
  /** Replaces the route configuration served under `name` (its `name` field is set to it). */
  set(name: string, routeConfiguration: object): void;
  /** Serves exactly `tables` from now on (a new version only when something changed). */
  replace(tables: ReadonlyMap<string, object>): void;
  /** How many times Envoy fetched a changed table. */
  readonly served: number;
  close(): Promise<void>;
}

export async function startRdsServer({ host = '127.0.0.1', port = 0 } = {}): Promise<RdsServer> {
  const tables = new Map<string, object>();
  let version = 0;
  let served = 0;
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v3/discovery:routes') {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      let request: { version_info?: string; resource_names?: string[] };
      try {
        request = JSON.parse(body || '{}');
      } catch {
        res.writeHead(400).end('bad DiscoveryRequest');
        return;
      }
      const current = String(version);
      if (request.version_info === current) {
        res.writeHead(304).end();
        return;
      }
      const names = request.resource_names?.length ? request.resource_names : [...tables.keys()];
      const resources = names.filter((n) => tables.has(n)).map((n) => ({ '@type': ROUTE_TYPE, ...tables.get(n), name: n }));
      served++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version_info: current, resources, type_url: ROUTE_TYPE }));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    set(name, routeConfiguration) {
      tables.set(name, routeConfiguration);
      version++;
    },
    replace(next) {
      const same = next.size === tables.size && [...next].every(([n, t]) => JSON.stringify(tables.get(n)) === JSON.stringify(t));
      if (same) return;
      tables.clear();
      for (const [n, t] of next) tables.set(n, t);
      version++;
    },
    get served() { return served; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
