// The route fields only per-request mode can honour, because Envoy's router acts on each call:
// a consistent-hash key, retries, mirroring. Per-connection routing picks one cluster per
// connection, so the config refuses them there. The filter only checks them; the Envoy route
// table that acts on them is rendered from the same config (controller/src/per-request.mts).
import { ConfigField } from "../util/json";

export const PER_REQUEST_ROUTE_KEYS = ["hashKey", "retry", "mirror"];
const MAX_RETRIES: i64 = 10;
const DAY_MS: i64 = 86400000;

export class RetryPolicy {
  attempts: u32 = 1;
  /**
   * The route's calls may run twice: then a reset after the call was sent is retried too.
   * Otherwise only failures that prove the server never got the call are.
   */
  idempotent: bool = false;
  perTryTimeoutMs: u32 = 0;
}

export class MirrorPolicy {
  constructor(public cluster: string, public percent: u32) {}
}

export class PerRequestRoute {
  /** Metadata key whose value picks the endpoint by consistent hash ("" for none). */
  hashKey: string = "";
  retry: RetryPolicy | null = null;
  mirror: MirrorPolicy | null = null;
}

/** Reads hashKey, retry and mirror of a route; null when it has none. */
export function readPerRequestRoute(f: ConfigField, perRequest: bool): PerRequestRoute | null {
  const hash = f.get("hashKey");
  const retry = f.get("retry");
  const mirror = f.get("mirror");
  if (!hash.present && !retry.present && !mirror.present) return null;
  const why = "needs mode \"perRequest\" (per-connection routing sends a whole connection to one cluster)";
  if (!perRequest) {
    (hash.present ? hash : retry.present ? retry : mirror).fail(why);
    return null;
  }
  const out = new PerRequestRoute();
  if (hash.present) {
    out.hashKey = hash.string();
    if (out.hashKey.length == 0) hash.fail("expected a metadata key, got \"\"");
  }
  if (retry.present) {
    retry.object();
    retry.onlyKeys(["attempts", "idempotent", "perTryTimeoutMs"]);
    const r = new RetryPolicy();
    r.attempts = <u32>retry.get("attempts").integerIn(1, MAX_RETRIES, 1);
    r.idempotent = retry.get("idempotent").boolOr(false);
    r.perTryTimeoutMs = <u32>retry.get("perTryTimeoutMs").integerIn(1, DAY_MS, 0);
    out.retry = r;
  }
  if (mirror.present) {
    mirror.object();
    mirror.onlyKeys(["cluster", "percent"]);
    const cluster = mirror.get("cluster").string();
    if (mirror.get("cluster").present && cluster.length == 0) mirror.get("cluster").fail("expected a cluster name, got \"\"");
    out.mirror = new MirrorPolicy(cluster, <u32>mirror.get("percent").integerIn(0, 100, 100));
  }
  return out;
}

/**
 * The listener's global rate limit through Envoy's rate limit service (per-request mode): the
 * renderer puts Envoy's `envoy.filters.http.ratelimit` before the router and one descriptor per
 * call on every route; the filter only checks the block (Aeraki's spec.globalRateLimit, in ms).
 */
export function checkGlobalRateLimit(f: ConfigField, perRequest: bool): void {
  if (!f.present) return;
  if (!perRequest) {
    f.fail("needs mode \"perRequest\" (Envoy's rate limit filter acts on each call's HTTP request)");
    return;
  }
  f.object();
  f.onlyKeys(["domain", "rateLimitService", "requestTimeoutMs", "denyOnFail", "descriptors"]);
  if (f.get("domain").string().length == 0 && f.get("domain").present) f.get("domain").fail("expected a domain, got \"\"");
  if (f.get("rateLimitService").string().length == 0 && f.get("rateLimitService").present) f.get("rateLimitService").fail("expected a cluster name, got \"\"");
  f.get("requestTimeoutMs").integerIn(1, DAY_MS, 1000);
  f.get("denyOnFail").boolOr(false);
  const ds = f.get("descriptors").array();
  if (f.get("descriptors").present && ds.length == 0) f.get("descriptors").fail("expected at least one descriptor");
  for (let i = 0; i < ds.length; i++) {
    ds[i].object();
    ds[i].onlyKeys(["property", "descriptorKey"]);
    if (ds[i].get("property").string().length == 0 && ds[i].get("property").present) ds[i].get("property").fail("expected a metadata key, got \"\"");
    if (ds[i].get("descriptorKey").string().length == 0 && ds[i].get("descriptorKey").present) ds[i].get("descriptorKey").fail("expected a descriptor key, got \"\"");
  }
}
