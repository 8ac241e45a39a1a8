// The plugin configuration (schema/plugin-config.schema.json), parsed and checked once at
// proxy_on_configure. Every error names the field it is about, so a rejected config says where.
import { ConfigReader, ConfigField } from "../util/json";
import { CodecFactory } from "../core/codec";
import { KeyValue } from "../core/metadata";
import { findCodec, codecNames } from "../codecs/registry";
import { Destination, Route, RouteTable } from "./match";
import { readMatchBlock } from "./attributes";
import { readPolicies, readCidrs, readRateLimit, POLICY_KEYS } from "../policy/parse";
import { RateLimitPolicy } from "../policy/ratelimit";
import { Scope } from "./scope";
import { PER_REQUEST_ROUTE_KEYS, readPerRequestRoute, checkGlobalRateLimit } from "./per-request";

export const enum NoRoutePolicy { Default = 0, Reject = 1 }
/**
 * What the filter does with a connection: route it whole by its first request (perConnection),
 * or, in per-request mode, speak HTTP/2 to Envoy's router per call (client role, in front of the
 * http_connection_manager) or turn the router's HTTP/1.1 requests back into the protocol (server
 * role, in front of the tcp_proxy that reaches the real server).
 */
export const enum Role { PerConnection = 0, RequestClient = 1, RequestServer = 2 }
export const enum MismatchPolicy { Keep = 0, Close = 1 }

/** Name of the pseudo-route that counts what goes to defaultCluster. */
export const DEFAULT_ROUTE_NAME = "_default";
export const DEFAULT_MAX_FRAME_BYTES: i32 = 4 << 20;
export const DEFAULT_FIRST_REQUEST_TIMEOUT_MS: u32 = 10000;
const MAX_ROUTES = 1024;

export class FilterConfig {
  codec: CodecFactory | null = null;
  codecOptions: Map<string, string> = new Map();
  statPrefix: string = "meltemi";
  /** The meltemi_service label of every metric; "": Envoy's plugin name stands in (root.ts). */
  service: string = "";
  maxFrameBytes: i32 = DEFAULT_MAX_FRAME_BYTES;
  /**
   * Per-connection mode: how long a connection may take to send its first complete request
   * (the one that picks its route) before it is closed; 0 waits for ever.
   */
  firstRequestTimeoutMs: u32 = DEFAULT_FIRST_REQUEST_TIMEOUT_MS;
  noRoute: NoRoutePolicy = NoRoutePolicy.Reject;
  defaultCluster: string = "";
  mismatch: MismatchPolicy = MismatchPolicy.Keep;
  role: Role = Role.PerConnection;
  /**
   * Service-wide local rate limit: every request of the listener, whatever its route, draws from
   * these buckets (shared by the Envoy process's workers). Where the server role enforces it, that
   * is once per server, as Aeraki enforces spec.localRateLimit; null when the config has none.
   */
  serviceRateLimit: RateLimitPolicy | null = null;
  accessLog: bool = false;
  scope: Scope = new Scope();
  table: RouteTable = new RouteTable();
}

const TOP_KEYS = ["codec", "codecOptions", "statPrefix", "service", "maxFrameBytes", "firstRequestTimeoutMs", "noRoute", "defaultCluster", "mismatchPolicy", "mode", "role", "localRateLimit", "globalRateLimit", "accessLog", "scope", "routes"];
const ROUTE_KEYS = ["name", "match", "route", "requestMutation", "responseMutation"].concat(POLICY_KEYS).concat(PER_REQUEST_ROUTE_KEYS);

/** Result of parseConfig: the config, or the first error as `<field path>: <message>`. */
export class ParsedConfig {
  constructor(public config: FilterConfig | null, public error: string) {}
}

export function parseConfig(bytes: Uint8Array): ParsedConfig {
  const reader = ConfigReader.parse(bytes);
  const root = reader.root();
  const cfg = new FilterConfig();
  if (root.object()) readTop(root, cfg);
  if (!reader.ok) return new ParsedConfig(null, reader.error);
  return new ParsedConfig(cfg, "");
}

function readTop(root: ConfigField, cfg: FilterConfig): void {
  root.onlyKeys(TOP_KEYS);
  const codecField = root.get("codec");
  const codecName = codecField.string();
  if (codecField.present && codecName.length > 0) {
    cfg.codec = findCodec(codecName);
    if (cfg.codec == null) codecField.fail("unknown codec \"" + codecName + "\" (known: " + codecNames() + ")");
  }
  const options = root.get("codecOptions").entries();
  for (let i = 0; i < options.length; i++) {
    const opt = options[i];
    const value = opt.string();
    const codec = cfg.codec;
    if (codec != null) {
      const problem = codec.checkOption(opt.key, value);
      if (problem != null) opt.fail(problem);
    }
    cfg.codecOptions.set(opt.key, value);
  }

  const prefix = root.get("statPrefix");
  cfg.statPrefix = prefix.stringOr("meltemi");
  if (!isStatName(cfg.statPrefix)) prefix.fail("expected letters, digits and _ only, got \"" + cfg.statPrefix + "\"");
  const service = root.get("service");
  cfg.service = service.stringOr("");
  if (service.present && !isRouteName(cfg.service)) service.fail("expected letters, digits, '_', '.' or '-', got \"" + cfg.service + "\"");
  cfg.maxFrameBytes = <i32>root.get("maxFrameBytes").integerIn(16, 64 << 20, DEFAULT_MAX_FRAME_BYTES);
  cfg.firstRequestTimeoutMs = <u32>root.get("firstRequestTimeoutMs").integerIn(0, 86400000, DEFAULT_FIRST_REQUEST_TIMEOUT_MS);
  cfg.accessLog = root.get("accessLog").boolOr(false);

  const dflt = root.get("defaultCluster");
  cfg.defaultCluster = dflt.stringOr("");
  if (dflt.present && cfg.defaultCluster.length == 0) dflt.fail("expected a cluster name, got \"\"");
  const noRoute = root.get("noRoute");
  const noRouteName = noRoute.oneOfOr(["default", "reject"], cfg.defaultCluster.length > 0 ? "default" : "reject");
  cfg.noRoute = noRouteName == "default" ? NoRoutePolicy.Default : NoRoutePolicy.Reject;
  if (cfg.noRoute == NoRoutePolicy.Default && cfg.defaultCluster.length == 0) {
    noRoute.fail("\"default\" needs defaultCluster to be set");
  }
  cfg.mismatch = root.get("mismatchPolicy").oneOfOr(["keep", "close"], "keep") == "close" ? MismatchPolicy.Close : MismatchPolicy.Keep;

  readMode(root, cfg);
  const serviceLimit = root.get("localRateLimit");
  if (serviceLimit.present) cfg.serviceRateLimit = readRateLimit(serviceLimit);
  checkGlobalRateLimit(root.get("globalRateLimit"), cfg.role != Role.PerConnection);
  readScope(root.get("scope"), cfg.scope);

  const routes = root.get("routes").array();
  if (routes.length > MAX_ROUTES) root.get("routes").fail("more than " + MAX_ROUTES.toString() + " routes");
  for (let i = 0; i < routes.length && i < MAX_ROUTES; i++) {
    const route = readRoute(routes[i], cfg);
    for (let j = 0; j < i; j++) {
      if (cfg.table.routes[j].name == route.name) routes[i].get("name").fail("duplicate route name \"" + route.name + "\"");
    }
    cfg.table.routes.push(route);
  }
}

function readRoute(f: ConfigField, cfg: FilterConfig): Route {
  f.object();
  f.onlyKeys(ROUTE_KEYS);
  const nameField = f.get("name");
  const route = new Route(nameField.string());
  if (nameField.present && !isRouteName(route.name)) {
    nameField.fail("expected letters, digits, '_', '.' or '-', got \"" + route.name + "\"");
  }

  route.matches = readMatchBlock(f.get("match"));

  const dests = f.get("route");
  const items = dests.array();
  if (dests.present && items.length == 0) dests.fail("expected at least one destination");
  for (let i = 0; i < items.length; i++) {
    const d = items[i];
    d.object();
    d.onlyKeys(["cluster", "weight"]);
    const cluster = d.get("cluster").string();
    if (d.get("cluster").present && cluster.length == 0) d.get("cluster").fail("expected a cluster name, got \"\"");
    const weightField = d.get("weight");
    if (items.length > 1 && !weightField.present) weightField.fail("required when a route has several destinations");
    const weight = <u32>weightField.integerIn(0, 1000000, 1);
    route.destinations.push(new Destination(cluster, weight));
    route.totalWeight += weight;
  }
  if (items.length > 1 && route.totalWeight == 0) dests.fail("weights add up to 0");

  route.requestMutation = readMutation(f.get("requestMutation"), cfg);
  route.responseMutation = readMutation(f.get("responseMutation"), cfg);
  readPolicies(f, route);
  route.perRequest = readPerRequestRoute(f, cfg.role != Role.PerConnection);
  return route;
}

function readMode(root: ConfigField, cfg: FilterConfig): void {
  const perRequest = root.get("mode").oneOfOr(["perConnection", "perRequest"], "perConnection") == "perRequest";
  const role = root.get("role");
  if (!perRequest) {
    if (role.present) role.fail("only with mode \"perRequest\"");
    return;
  }
  cfg.role = role.oneOf(["client", "server"]) == "server" ? Role.RequestServer : Role.RequestClient;
}

function readScope(f: ConfigField, into: Scope): void {
  if (!f.present) return;
  f.object();
  f.onlyKeys(["destinations", "filterChains"]);
  readCidrs(f.get("destinations"), into.destinations);
  const chains = f.get("filterChains").arrayOrEmpty();
  for (let i = 0; i < chains.length; i++) into.filterChains.push(chains[i].string());
  if (!into.isSet()) f.fail("expected destinations or filterChains");
}

function readMutation(f: ConfigField, cfg: FilterConfig): KeyValue[] {
  const out: KeyValue[] = [];
  const items = f.arrayOrEmpty();
  const codec = cfg.codec;
  if (items.length > 0 && codec != null && !codec.create(cfg.codecOptions).canMutate()) {
    f.fail("codec " + codec.name() + " cannot carry key/values" + codec.mutationHint());
    return out;
  }
  for (let i = 0; i < items.length; i++) {
    const kv = items[i];
    kv.object();
    kv.onlyKeys(["key", "value"]);
    const key = kv.get("key").string();
    if (kv.get("key").present && key.length == 0) kv.get("key").fail("expected a non-empty key");
    out.push(new KeyValue(key, kv.get("value").string()));
  }
  return out;
}

function isStatName(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isAlnum(c) && c != 0x5f) return false;
  }
  return true;
}

function isRouteName(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isAlnum(c) && c != 0x5f && c != 0x2e && c != 0x2d) return false;
  }
  return true;
}

function isAlnum(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
