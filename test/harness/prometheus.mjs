// Envoy's /stats/prometheus text, parsed: what a Prometheus server would scrape from the proxy.
// Envoy prints label values as they are (no escapes); the filter keeps its values free of '"'.

/** One sample: `name{labels} value`. */
export class Sample {
  constructor(name, labels, value) {
    this.name = name;
    this.labels = labels;
    this.value = value;
  }

  /** True when every label in `want` has that value here. */
  matches(want) {
    return Object.entries(want).every(([k, v]) => this.labels[k] === v);
  }
}

export class Metrics {
  /** @param {Sample[]} samples  @param {Map<string, string>} types  metric family → counter|gauge|histogram */
  constructor(samples, types = new Map()) {
    this.samples = samples;
    this.types = types;
  }

  /**
   * The sum of the samples named `name` whose labels include `labels`; undefined when none
   * matches (the series was never defined, as with a stat that never moved).
   */
  get(name, labels = {}) {
    let sum;
    for (const s of this.samples) {
      if (s.name === name && s.matches(labels)) sum = (sum ?? 0) + s.value;
    }
    return sum;
  }

  /**
   * get(), for a series that must exist: the sum of the samples named `name` whose labels include
   * `labels`, or an Error naming what was asked for and what the scrape has instead (the series of
   * `name` when only the labels differ, else the nearest names). For the metrics the filter
   * defines at configure time (its unlabelled ones: decode_error_total, active_requests, ...),
   * which /stats/prometheus always lists, so that a misspelt name, another prefix or a renamed
   * label fails instead of reading as 0 the way `get(...) ?? 0` would.
   */
  value(name, labels = {}) {
    const sum = this.get(name, labels);
    if (sum !== undefined) return sum;
    const want = `${name}${formatLabels(labels)}`;
    const same = this.series(name);
    if (same.length > 0) {
      const shown = same.slice(0, 5).map((s) => `${name}${formatLabels(s.labels)} ${s.value}`);
      throw new Error(`no series ${want} in the scrape; ${name} has ${same.length}: ${shown.join(', ')}${same.length > 5 ? ', ...' : ''}`);
    }
    const near = nearestNames(name, this.names());
    throw new Error(`no metric ${want} in the scrape (${this.samples.length} samples); nearest names: ${near.join(', ') || 'none'}`);
  }

  /** The samples named `name` whose labels include `labels`. */
  series(name, labels = {}) {
    return this.samples.filter((s) => s.name === name && s.matches(labels));
  }

  /** Every sample name (histograms give their _bucket, _sum and _count). */
  names() {
    return new Set(this.samples.map((s) => s.name));
  }

  /** What moved since `before` (a Metrics of the same Envoy): each sample minus its earlier value, zeros left out. */
  since(before) {
    const key = (s) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    const old = new Map(before.samples.map((s) => [key(s), s.value]));
    const moved = this.samples.map((s) => new Sample(s.name, s.labels, s.value - (old.get(key(s)) ?? 0))).filter((s) => s.value !== 0);
    return new Metrics(moved, this.types);
  }
}

/** `{k="v",...}`, or nothing for no labels. */
function formatLabels(labels) {
  const e = Object.entries(labels);
  return e.length === 0 ? '' : `{${e.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
}

/** The `n` names of `names` nearest to `name` (edit distance), nearest first: for error messages. */
export function nearestNames(name, names, n = 5) {
  return [...names].map((x) => [editDistance(name, x), x]).sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1)).slice(0, n).map(([, x]) => x);
}

function editDistance(a, b) {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g;

/** Parses Prometheus text exposition (what Envoy writes); throws on a line it cannot read. */
export function parsePrometheus(text) {
  const samples = [];
  const types = new Map();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const t = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (t) types.set(t[1], t[2]);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k] = v;
    samples.push(new Sample(m[1], labels, Number(m[3])));
  }
  return new Metrics(samples, types);
}
