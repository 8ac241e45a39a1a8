// Metric labels as the filter writes them into stat names: `<label>=.=<value>;.;`, Istio's
// convention for tags of Wasm stats (see stats.ts). Pure: no host calls, unit-tested.

/**
 * Label names, each prefixed so that it cannot clash with the labels Prometheus adds to a target
 * (`service`, `namespace`, `pod`) or with other extraStatTags; Envoy's own are `envoy_*`.
 */
export const METRIC_LABELS: string[] = ["meltemi_service", "meltemi_route", "meltemi_cluster", "meltemi_operation", "meltemi_kind", "meltemi_status"];
export const SERVICE = 0;
export const ROUTE = 1;
export const CLUSTER = 2;
export const OPERATION = 3;
export const KIND = 4;
export const STATUS = 5;

/** The cluster label of a call whose cluster is none of its route's destinations. */
export const OTHER = "_other";

/** `<label>=.=<value>;.;`: one label as Istio's tag regexes find it in a stat name. */
export function label(which: i32, value: string): string {
  return METRIC_LABELS[which] + "=.=" + labelValue(value) + ";.;";
}

/**
 * A label value that cannot end its tag early or break the Prometheus text Envoy writes (it
 * prints values as they are): letters, digits and `_ - . : / |` stay (Istio cluster names are
 * `outbound|9090|v2|greeter.ns.svc.cluster.local`), anything else and a second dot in a row
 * (an empty stat-name token) become '_'. Empty becomes "-".
 */
export function labelValue(s: string): string {
  if (s.length == 0) return "-";
  let first = 0;
  while (first < s.length && labelChar(s, first)) first++;
  if (first == s.length) return s;
  // One pass into a fresh string: replacing in place would copy the whole value per bad character
  // (a hostile 32 KiB method name took gigabytes inside one callback).
  const out = new StaticArray<u16>(s.length);
  for (let i = 0; i < s.length; i++) out[i] = i < first || labelChar(s, i) ? <u16>s.charCodeAt(i) : 0x5f;
  return String.UTF16.decodeUnsafe(changetype<usize>(out), <usize>s.length << 1);
}

/** Whether the character at `i` of `s` may stay in a label value. */
function labelChar(s: string, i: i32): bool {
  const c = s.charCodeAt(i);
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
    c == 0x5f || c == 0x2d || c == 0x3a || c == 0x2f || c == 0x7c || (c == 0x2e && (i == 0 || s.charCodeAt(i - 1) != 0x2e));
}
