// Which metadata keys a config ever reads, so that codecs may decode less (Codec.readsOnly): the
// keys of every route's match, authorization rule and rate-limit condition, the service-wide
// limit's, and the per-request hash keys. null means "everything": the access log writes every
// key of a request, so nothing may be left out while it is on.
import { FilterConfig } from "./config";
import { AttributeMatch } from "./condition";

export function keysRead(cfg: FilterConfig): string[] | null {
  if (cfg.accessLog) return null;
  const keys: string[] = [];
  const routes = cfg.table.routes;
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i];
    addAll(keys, r.matches);
    const authz = r.authz;
    if (authz != null) {
      for (let j = 0; j < authz.rules.length; j++) addAll(keys, authz.rules[j].matches);
    }
    const rl = r.rateLimit;
    if (rl != null) {
      for (let j = 0; j < rl.conditions.length; j++) addAll(keys, rl.conditions[j].matches);
    }
    const pr = r.perRequest;
    if (pr != null && pr.hashKey.length > 0) add(keys, pr.hashKey);
  }
  const service = cfg.serviceRateLimit;
  if (service != null) {
    for (let j = 0; j < service.conditions.length; j++) addAll(keys, service.conditions[j].matches);
  }
  return keys;
}

function addAll(keys: string[], matches: AttributeMatch[]): void {
  for (let i = 0; i < matches.length; i++) add(keys, matches[i].key);
}

function add(keys: string[], key: string): void {
  if (!keys.includes(key)) keys.push(key);
}
