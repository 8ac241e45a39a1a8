// Shared by both parts of the demo: a plain-text table, and the routes whose counters moved.

export function table(rows, headers) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(w[i])).join('  ').trimEnd();
  return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** Route names whose request counters moved, from a stats delta. */
export function routesIn(delta) {
  const names = new Set();
  for (const k of delta.keys()) {
    const m = /^(?:wasmcustom\.)?meltemi\.route\.(.+)\.request\.[a-z]+$/.exec(k);
    if (m) names.add(m[1]);
  }
  return [...names];
}

