// Shared by both parts of the demo: a plain-text table, the routes whose counters moved, and one
// observed call (which server answered it, and which route counted it).
import { waitFor } from '../harness/index.mjs';

export function table(rows, headers) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(w[i])).join('  ').trimEnd();
  return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** Route names whose request counters moved, from what moved in a scrape (Metrics.since). */
export function routesIn(moved) {
  return [...new Set(moved.series('meltemi_requests_total').map((s) => s.labels.meltemi_route))];
}


/**
 * Makes one call of the demo's plan through `client` and observes it: the server that recorded
 * it and the route whose counters moved (both land slightly after the reply, and a oneway call
 * has none: polled for). Returns the table row, whether it went where the routes say, and the
 * server and route.
 */
export async function observeCall(envoy, servers, client, [label, method, args, wantRoute, wantServer]) {
  const before = await envoy.metrics();
  const seen = Object.fromEntries(Object.entries(servers).map(([n, s]) => [n, s.calls.length]));
  let result;
  try {
    const r = await client.call(method, ...args);
    result = r === undefined ? '(oneway, no reply)' : JSON.stringify(r);
  } catch (err) {
    result = `${err.name ?? 'Error'}: ${err.message ?? JSON.stringify(err)}`;
  }
  const server = await waitFor(() => {
    const w = Object.keys(servers).filter((n) => servers[n].calls.length > seen[n]);
    return w.length ? w.join(',') : null;
  }, { timeout: 5000, message: `a server to record ${method}` }).catch(() => '(none)');
  const route = await waitFor(async () => routesIn((await envoy.metrics()).since(before)).join(',') || null,
    { timeout: 5000, message: `meltemi_requests_total to move for ${method}` }).catch(() => '(no route stat)');
  const ok = route === wantRoute && (wantServer === null ? Object.keys(servers).includes(server) : server === wantServer);
  return { row: [label, method, server, route, result, ok ? 'ok' : `UNEXPECTED (want ${wantRoute}${wantServer ? ` on ${wantServer}` : ''})`], ok, server, route };
}
