// Why a request takes the route it takes: the route table's own decision (RouteTable.find, the
// noRoute policy, the destinations' weights and the route's policies), written out as JSON for
// `meltemi describe`. Pure: the same FilterConfig and Metadata the proxies use, no host calls, so
// one engine decides in the proxies and in describe.
import { Metadata, KeyValue } from "../core/metadata";
import { quote } from "../util/json";
import { FilterConfig, NoRoutePolicy, DEFAULT_ROUTE_NAME } from "./config";
import { AttributeMatch, MatchKind } from "./condition";
import { Route } from "./match";
import { AuthzAction, Peer } from "../policy/authz";
import { RateLimitPolicy } from "../policy/ratelimit";
import { PERCENT_SCALE } from "../policy/fault";

const KIND_NAMES = ["present", "exact", "prefix", "regex"];

/**
 * The decision for `meta` under `cfg`, as one JSON object:
 *   metadata     the request's routable attributes
 *   evaluated    the routes tried in order, up to the first that matches, each with its conditions
 *                (key, kind, value, actual: the request's value or null, holds)
 *   route        the route taken ("_default" for defaultCluster), or null when the request is refused
 *   reason       one sentence: why that route
 *   destinations the route's clusters with weight and share (the filter draws one by weight)
 *   policies     what applies on that route: timeoutMs, fault, rateLimit (the bucket that governs the
 *                request), authorization (the deciding rule from the metadata alone: describe knows
 *                no peer address or identity), request/response mutations
 */
export function explainRoute(cfg: FilterConfig, meta: Metadata): string {
  const out = new Array<string>();
  out.push("{\"metadata\":" + metadataJson(meta));
  const routes = cfg.table.routes;
  const tried = new Array<string>();
  let chosen = -1;
  for (let i = 0; i < routes.length && chosen < 0; i++) {
    const r = routes[i];
    const holds = r.matchesAll(meta);
    tried.push("{\"index\":" + i.toString() + ",\"name\":" + quote(r.name) + ",\"matched\":" + flag(holds) +
      ",\"conditions\":" + conditionsJson(r.matches, meta) + "}");
    if (holds) chosen = i;
  }
  out.push("\"evaluated\":[" + tried.join(",") + "]");
  if (chosen >= 0) {
    const r = routes[chosen];
    out.push("\"route\":" + quote(r.name));
    out.push("\"reason\":" + quote("first route whose conditions all hold (routes[" + chosen.toString() + "] of " + routes.length.toString() + ")"));
    out.push("\"destinations\":" + destinationsJson(r));
    out.push("\"policies\":" + policiesJson(r, meta));
  } else if (cfg.noRoute == NoRoutePolicy.Default) {
    out.push("\"route\":" + quote(DEFAULT_ROUTE_NAME));
    out.push("\"reason\":" + quote("no route matched; noRoute is default, so the request goes to defaultCluster"));
    out.push("\"destinations\":[{\"cluster\":" + quote(cfg.defaultCluster) + ",\"weight\":1,\"share\":1}]");
    out.push("\"policies\":{}");
  } else {
    out.push("\"route\":null");
    out.push("\"reason\":" + quote("no route matched; noRoute is reject, so the connection is closed (per request: the protocol's error)"));
    out.push("\"destinations\":[]");
    out.push("\"policies\":{}");
  }
  if (cfg.serviceRateLimit != null) out.push("\"serviceRateLimit\":" + rateLimitJson(cfg.serviceRateLimit!, meta));
  return out.join(",") + "}";
}

function flag(b: bool): string {
  return b ? "true" : "false";
}

function metadataJson(meta: Metadata): string {
  const parts = new Array<string>();
  for (let i = 0; i < meta.keys.length; i++) parts.push(quote(meta.keys[i]) + ":" + quote(meta.values[i]));
  return "{" + parts.join(",") + "}";
}

function conditionsJson(conditions: AttributeMatch[], meta: Metadata): string {
  const parts = new Array<string>();
  for (let i = 0; i < conditions.length; i++) {
    const c = conditions[i];
    const actual = meta.get(c.key);
    let s = "{\"key\":" + quote(c.key) + ",\"kind\":" + quote(KIND_NAMES[<i32>c.kind]);
    if (c.kind != MatchKind.Present) s += ",\"value\":" + quote(c.value);
    s += ",\"actual\":" + (actual == null ? "null" : quote(actual)) + ",\"holds\":" + flag(c.matches(meta)) + "}";
    parts.push(s);
  }
  return "[" + parts.join(",") + "]";
}

function destinationsJson(r: Route): string {
  const parts = new Array<string>();
  const ds = r.destinations;
  for (let i = 0; i < ds.length; i++) {
    const w = ds.length == 1 ? 1 : ds[i].weight;
    const total = ds.length == 1 ? 1 : r.totalWeight;
    const share = total == 0 ? 0.0 : <f64>w / <f64>total;
    parts.push("{\"cluster\":" + quote(ds[i].cluster) + ",\"weight\":" + w.toString() + ",\"share\":" + share.toString() + "}");
  }
  return "[" + parts.join(",") + "]";
}

function percent(perMillion: u32): string {
  return (<f64>perMillion * 100.0 / <f64>PERCENT_SCALE).toString();
}

function policiesJson(r: Route, meta: Metadata): string {
  const parts = new Array<string>();
  if (r.timeoutMs > 0) parts.push("\"timeoutMs\":" + r.timeoutMs.toString());
  const fault = r.fault;
  if (fault != null) {
    let f = "{";
    if (fault.hasAbort()) f += "\"abortPercent\":" + percent(fault.abortPerMillion) + ",\"abortMessage\":" + quote(fault.abortMessage);
    if (fault.hasDelay()) f += (f.length > 1 ? "," : "") + "\"delayPercent\":" + percent(fault.delayPerMillion) + ",\"delayMs\":" + fault.delayMs.toString();
    parts.push("\"fault\":" + f + "}");
  }
  if (r.rateLimit != null) parts.push("\"rateLimit\":" + rateLimitJson(r.rateLimit!, meta));
  const authz = r.authz;
  if (authz != null) {
    // No peer: rules that name sources or principals cannot hold here, as for a connection
    // without a known address or certificate.
    const rule = authz.decidingRule(meta, new Peer());
    const action = (rule >= 0 ? authz.rules[rule].action : authz.defaultAction) == AuthzAction.Allow ? "ALLOW" : "DENY";
    parts.push("\"authorization\":{\"rule\":" + quote(authz.ruleName(rule)) + ",\"action\":" + quote(action) +
      ",\"peerDependent\":" + flag(authz.needsPeer()) + "}");
  }
  if (r.requestMutation.length > 0) parts.push("\"requestMutation\":" + pairsJson(r.requestMutation));
  if (r.responseMutation.length > 0) parts.push("\"responseMutation\":" + pairsJson(r.responseMutation));
  return "{" + parts.join(",") + "}";
}

function rateLimitJson(p: RateLimitPolicy, meta: Metadata): string {
  const b = p.bucketFor(meta);
  if (b < 0) return "{\"bucket\":null}";
  const spec = p.spec(b);
  const name = b < p.conditions.length ? "conditions[" + b.toString() + "]" : "tokenBucket";
  return "{\"bucket\":" + quote(name) + ",\"maxTokens\":" + spec.maxTokens.toString() + ",\"tokensPerFill\":" +
    spec.tokensPerFill.toString() + ",\"fillIntervalMs\":" + spec.fillIntervalMs.toString() + "}";
}

function pairsJson(kvs: KeyValue[]): string {
  const parts = new Array<string>();
  for (let i = 0; i < kvs.length; i++) parts.push("{\"key\":" + quote(kvs[i].key) + ",\"value\":" + quote(kvs[i].value) + "}");
  return "[" + parts.join(",") + "]";
}

