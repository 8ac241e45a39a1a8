/**
 * render: the pure function from Services, ApplicationProtocols and MetaRouters to Istio resources
 * (one WasmPlugin and one EnvoyFilter per routed host and port) plus each MetaRouter's Accepted
 * condition. No clock, and no I/O but one read of the filter's schema (schema/plugin-config.schema.json,
 * on first use, plugin-config.mts): the controller and `meltemi render` call the same function, and
 * unit tests pin its output.
 *
 * A MetaRouter is accepted or rejected as a whole: a router with any error renders nothing, and its
 * condition lists every error found (not just the first), so one status read tells the user all.
 * Nothing is dropped silently: a field of no known name is an error naming its path; a known field
 * this version does not program (mirror, globalRateLimit, ...) is accepted with a warning, and the
 * warnings are both in the Accepted condition and in `warnings` (the CLI prints them on stderr).
 *
 * Hosts are Kubernetes Services or Istio ServiceEntry hosts (Aeraki's interface-level Dubbo demos);
 * both give Istio's cluster names outbound|<port>|<subset>|<host>.
 */
import {
  type ApplicationProtocol, type Condition, type KubeObject, type MetaRoute, type MetaRouter, type RenderInput,
  type RenderOptions, type Service, type ServiceEntry, type StringMatch,
} from './model.mjs';
import { compilePolicies, durationMs } from './policies.mjs';
import { checkFields, PER_REQUEST_SPEC_FIELDS, SPEC_FIELDS, APPLICATION_PROTOCOL_FIELDS } from './fields.mjs';
import { envoyFilter, perRequestEnvoyFilter, rdsName, serverWasmPlugin, wasmPlugin } from './istio-objects.mjs';
import { filterProblems } from './filter-check.mjs';
import { againstDeclaredFilters, BUNDLED_FILTER } from './declared-filter.mjs';
import { isCanary, withCanary } from './canary.mjs';
import { routeConfiguration } from './per-request.mjs';
import { compileRetries } from './retries.mjs';
import { rateLimitCluster, type PortLookup } from './rate-limit-service.mjs';
import { onSharedPort } from './shared-port.mjs';
import { unmatchablePrincipals } from './principals.mjs';
import { compileAccessLog, type AccessLogSpec } from './access-log.mjs';
import type { DestinationRule } from './model.mjs';
import { canMutate, mutationHint, pluginConfigProblems, registeredCodecs, type CodecName, type PluginConfig, type RouteConfig } from './plugin-config.mjs';

/** One compiled listener: what both the Istio output and the standalone Envoy bootstrap are built from. */
export interface CompiledPort {
  readonly router: string;            // "<namespace>/<name>" of the MetaRouter
  readonly host: string;              // FQDN of the routed Service
  readonly service: Service;
  readonly port: number;              // Service port (Istio matches WasmPlugin and EnvoyFilter on it)
  readonly protocol: string;
  readonly pluginConfig: PluginConfig;
  readonly namespace: string;         // where the WasmPlugin and EnvoyFilter go
  readonly name: string;              // their name
  /** Every cluster the config names, default cluster first: "outbound|<port>|<subset>|<host>". */
  readonly clusters: readonly string[];
  /**
   * Per request on a port other services share: the sidecar listeners (`<address>_<port>`) its
   * EnvoyFilter is restricted to (shared-port.mts); absent: every outbound listener of the port.
   */
  readonly listeners?: readonly string[];
  /** spec.accessLog when on: per request, where Envoy's own access log of the calls writes. */
  readonly accessLog?: AccessLogSpec;
}

export interface RenderOutput {
  /** WasmPlugin and EnvoyFilter objects, in a stable order. */
  readonly resources: readonly KubeObject[];
  readonly compiled: readonly CompiledPort[];
  /** Accepted condition per MetaRouter, keyed "<namespace>/<name>". */
  readonly conditions: ReadonlyMap<string, Condition>;
  /**
   * Per accepted MetaRouter, what it asks for that is not programmed (ignored fields, an unscoped
   * ServiceEntry port): the same texts as in its Accepted condition's message.
   */
  readonly warnings: ReadonlyMap<string, readonly string[]>;
  /** Per-request MetaRouters: Envoy RouteConfigurations by name, for the controller's RDS server. */
  readonly routes: ReadonlyMap<string, object>;
}

const PORT_NAME = /^tcp-metaprotocol-([a-z0-9]+)(?:-.*)?$/i;
const ROUTE_NAME = /^[a-zA-Z0-9_.-]+$/;
/** The largest destination weight the filter accepts (schema/plugin-config.schema.json). */
const MAX_WEIGHT = 1000000;

export const routerKey = (r: KubeObject): string => `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;

/** Istio's cluster name for a Service port and subset. */
export const clusterName = (port: number, subset: string | undefined, host: string): string =>
  `outbound|${port}|${subset ?? ''}|${host}`;

/** The protocol named by a Service port (Istio/Aeraki convention), or undefined. */
export function portProtocol(portName: string | undefined): string | undefined {
  const m = portName ? PORT_NAME.exec(portName) : null;
  return m ? m[1]!.toLowerCase() : undefined;
}

/**
 * Resolves a host as Kubernetes DNS does for a client in `namespace`: "svc", "svc.ns", "svc.ns.svc" and
 * "svc.ns.svc.<domain>" all name a Service. Other names (external hosts) come back unchanged with no
 * Service coordinates.
 */
export function resolveHost(host: string, namespace: string, domain: string):
  { readonly fqdn: string; readonly name?: string; readonly namespace?: string } {
  const parts = host.split('.');
  const suffix = `svc.${domain}`;
  if (parts.length === 1) return { fqdn: `${host}.${namespace}.${suffix}`, name: host, namespace };
  if (parts.length === 2 || (parts.length === 3 && parts[2] === 'svc')) {
    return { fqdn: `${parts[0]}.${parts[1]}.${suffix}`, name: parts[0]!, namespace: parts[1]! };
  }
  if (host.endsWith(`.${suffix}`) && parts.length === 3 + domain.split('.').length) {
    return { fqdn: host, name: parts[0]!, namespace: parts[1]! };
  }
  return { fqdn: host };
}

/**
 * Why the filter's regex engine (linear time, RE2 syntax without backreferences or lookaround)
 * refuses `re`, in its own words, or undefined when it takes it: the filter itself is asked.
 */
export function regexProblem(re: string): string | undefined {
  const probe = { codec: 'thrift', routes: [{ name: 'r', match: { attributes: { k: { regex: re } } }, route: [{ cluster: 'c' }] }] };
  const [problem] = filterProblems(probe);
  return problem?.replace(/^.*routes\[0\]\.match\.attributes\.k\.regex: (regex: )?/, '');
}

function codecOf(p: ApplicationProtocol): string | undefined {
  const c = p.spec?.codec;
  return c?.startsWith('aeraki.meta_protocol.codec.') ? c.slice('aeraki.meta_protocol.codec.'.length) : c;
}

const isCodec = (c: string | undefined): c is CodecName => c !== undefined && registeredCodecs().includes(c);

/** Routers in a stable priority order: oldest first (like Istio), then by namespace/name. */
function byAge(a: MetaRouter, b: MetaRouter): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return routerKey(a) < routerKey(b) ? -1 : routerKey(a) > routerKey(b) ? 1 : 0;
}

function matchConfig(attrs: Readonly<Record<string, StringMatch>>, where: string, errors: string[]):
  Record<string, StringMatch> {
  const out: Record<string, StringMatch> = {};
  for (const [key, m] of Object.entries(attrs)) {
    const kinds = Object.keys(m ?? {});
    if (kinds.length > 1) { errors.push(`${where}.match.attributes.${key}: give one of exact, prefix, regex (got ${kinds.join(', ')})`); continue; }
    if (kinds.length === 1 && !['exact', 'prefix', 'regex'].includes(kinds[0]!)) { errors.push(`${where}.match.attributes.${key}: unknown match "${kinds[0]}" (exact, prefix or regex)`); continue; }
    if (m?.regex !== undefined) {
      const problem = regexProblem(m.regex);
      if (problem) { errors.push(`${where}.match.attributes.${key}: bad regex ${JSON.stringify(m.regex)}: ${problem}`); continue; }
    }
    out[key] = m?.exact !== undefined ? { exact: m.exact } : m?.prefix !== undefined ? { prefix: m.prefix } : m?.regex !== undefined ? { regex: m.regex } : {};
  }
  return out;
}

/** Compiles one route for the listener on `port`; pushes every problem onto `errors`. */
function compileRoute(r: MetaRoute, i: number, ctx: {
  readonly namespace: string; readonly domain: string; readonly port: number; readonly codec: CodecName;
  readonly codecOptions?: Readonly<Record<string, string>>; readonly resolve: (host: string) => string; readonly perRequest: boolean; readonly warnings: string[];
}, errors: string[]): RouteConfig {
  const name = r.name ?? `route${i}`;
  const where = `routes[${i}] (${name})`;
  if (!ROUTE_NAME.test(name)) errors.push(`${where}: name must match ${ROUTE_NAME.source} (it names metrics)`);
  const dests = r.route ?? [];
  if (dests.length === 0) errors.push(`${where}: route needs at least one destination`);
  const route = dests.map((d, j) => {
    const host = d.destination?.host;
    if (!host) errors.push(`${where}.route[${j}]: destination.host is required`);
    const port = d.destination?.port?.number ?? ctx.port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) errors.push(`${where}.route[${j}]: destination.port.number ${port} is not a port`);
    const fqdn = host ? ctx.resolve(host) : '';
    const cluster = clusterName(port, d.destination?.subset || undefined, fqdn);
    return dests.length > 1 ? { cluster, weight: d.weight ?? 0 } : { cluster };
  });
  if (dests.length > 1) {
    // Weights are relative, as in the filter (route/config.ts readRoute) and Aeraki: any sum but 0
    // works, with the filter's bounds and its words for a sum of 0.
    const missing = dests.findIndex((d) => d.weight === undefined);
    const bad = dests.findIndex((d) => !Number.isInteger(d.weight) || d.weight! < 0 || d.weight! > MAX_WEIGHT);
    const sum = dests.reduce((s, d) => s + (d.weight ?? 0), 0);
    if (missing >= 0) errors.push(`${where}.route[${missing}]: weight is required when a route has several destinations`);
    else if (bad >= 0) errors.push(`${where}.route[${bad}].weight: expected an integer in [0, ${MAX_WEIGHT}], got ${JSON.stringify(dests[bad]!.weight)}`);
    else if (sum === 0) errors.push(`${where}.route: weights add up to 0`);
  }
  const mutations = (list: MetaRoute['requestMutation'], field: string) => {
    if (!list || list.length === 0) return undefined;
    if (!canMutate(ctx.codec, ctx.codecOptions)) errors.push(`${where}.${field}: the ${ctx.codec} codec cannot carry key/values${mutationHint(ctx.codec)}`);
    list.forEach((kv, k) => { if (!kv.key) errors.push(`${where}.${field}[${k}]: key is required`); });
    return list.map((kv) => ({ key: kv.key ?? '', value: kv.value ?? '' }));
  };
  const attrs = r.match?.attributes;
  const requestMutation = mutations(r.requestMutation, 'requestMutation');
  const responseMutation = mutations(r.responseMutation, 'responseMutation');
  const mirror = ctx.perRequest ? compileMirror(r, where, ctx, errors) : undefined;
  const retry = compileRetries(r.retries, where, ctx.perRequest, errors, ctx.warnings);
  return {
    name,
    ...(attrs && Object.keys(attrs).length > 0 ? { match: { attributes: matchConfig(attrs, where, errors) } } : {}),
    route,
    ...(requestMutation ? { requestMutation } : {}),
    ...(responseMutation ? { responseMutation } : {}),
    ...(mirror ? { mirror } : {}),
    ...(retry ? { retry } : {}),
    ...compilePolicies(r, where, errors),
  };
}

/**
 * Aeraki's spec.globalRateLimit as the plugin config's globalRateLimit (per request): Envoy's rate
 * limit filter asks `rateLimitService` (Istio's cluster outbound|8081||ratelimit.<ns>.svc.cluster.local,
 * or <host>:<port>: rate-limit-service.mts) about one descriptor per call, built from the call's
 * metadata keys.
 */
function compileGlobalRateLimit(g: unknown, lookup: PortLookup, errors: string[]): object | undefined {
  if (g === undefined) return undefined;
  const o = g as { domain?: string; rateLimitService?: string; requestTimeout?: unknown; denyOnFail?: boolean; descriptors?: { property?: string; descriptorKey?: string }[] };
  if (!o.domain) errors.push('spec.globalRateLimit.domain: required');
  if (!o.rateLimitService) errors.push('spec.globalRateLimit.rateLimitService: required (the rate limit service\'s Envoy cluster)');
  if (!o.descriptors?.length) errors.push('spec.globalRateLimit.descriptors: at least one descriptor is required');
  const timeout = o.requestTimeout !== undefined ? durationMs(o.requestTimeout) : undefined;
  if (o.requestTimeout !== undefined && timeout === undefined) errors.push(`spec.globalRateLimit.requestTimeout: expected a duration such as "200ms", got ${JSON.stringify(o.requestTimeout)}`);
  return {
    domain: o.domain ?? '', rateLimitService: o.rateLimitService ? rateLimitCluster(o.rateLimitService, lookup, errors) : '',
    ...(timeout !== undefined ? { requestTimeoutMs: timeout } : {}),
    ...(o.denyOnFail !== undefined ? { denyOnFail: o.denyOnFail } : {}),
    descriptors: (o.descriptors ?? []).map((d) => ({ property: d.property ?? '', descriptorKey: d.descriptorKey ?? '' })),
  };
}

/**
 * Aeraki's `mirror` (a destination) and `mirrorPercentage.value` (0 to 100, default 100) as the
 * per-request route's mirror: Envoy's router sends that share of the route's calls to the shadow
 * cluster too and drops its replies. Per connection there is no second connection to send them on.
 */
function compileMirror(r: MetaRoute, where: string, ctx: { readonly port: number; readonly resolve: (host: string) => string }, errors: string[]):
  { cluster: string; percent: number } | undefined {
  const m = r.mirror as { host?: string; subset?: string; port?: { number?: number } } | undefined;
  if (!m) return undefined;
  if (!m.host) { errors.push(`${where}.mirror: host is required`); return undefined; }
  const pct = (r.mirrorPercentage as { value?: number } | undefined)?.value ?? 100;
  if (typeof pct !== 'number' || pct < 0 || pct > 100) errors.push(`${where}.mirrorPercentage.value: expected a number in [0, 100], got ${JSON.stringify(pct)}`);
  return { cluster: clusterName(m.port?.number ?? ctx.port, m.subset || undefined, ctx.resolve(m.host)), percent: Math.round(pct) };
}

/** DNS-1123 object name for the pair of resources of one Service port. */
function objectName(svcName: string, svcNs: string, port: number, outNs: string): string {
  return outNs === svcNs ? `meltemi-${svcName}-${port}` : `meltemi-${svcName}-${svcNs}-${port}`;
}

/**
 * Per request, a DestinationRule's `trafficPolicy.loadBalancer.consistentHash.httpHeaderName` for
 * the routed host (as Aeraki maps it) becomes the hash key of every route without one: the call's
 * metadata key of that name picks the endpoint; istiod gives the clusters the consistent-hash
 * load balancer.
 */
function withHashKey(c: CompiledPort, rules: readonly DestinationRule[], domain: string): CompiledPort {
  if (c.pluginConfig.mode !== 'perRequest') return c;
  const ns = c.router.split('/')[0]!;
  const rule = rules.find((r) => r.spec?.host && resolveHost(r.spec.host, r.metadata.namespace ?? ns, domain).fqdn === c.host);
  const header = rule?.spec?.trafficPolicy?.loadBalancer?.consistentHash?.httpHeaderName?.toLowerCase();
  if (!header) return c;
  const routes = c.pluginConfig.routes.map((r) => ((r as { hashKey?: string }).hashKey ? r : { ...r, hashKey: header }));
  return { ...c, pluginConfig: { ...c.pluginConfig, routes } };
}

const accepted = (router: MetaRouter, status: 'True' | 'False', reason: string, message: string): Condition => ({
  type: 'Accepted', status, reason, message,
  ...(router.metadata.generation !== undefined ? { observedGeneration: router.metadata.generation } : {}),
});

/** The ServiceEntries a client in `namespace` sees (exportTo: absent or "*", ".", or namespace names). */
const visibleTo = (se: ServiceEntry, namespace: string): boolean => {
  const to = se.spec?.exportTo;
  if (!to || to.length === 0 || to.includes('*')) return true;
  return to.includes(namespace) || (to.includes('.') && se.metadata.namespace === namespace);
};

/** ServiceEntries by host (lower-cased), those of `namespace` first, then oldest first. */
function entryFor(host: string, namespace: string, entries: readonly ServiceEntry[]): ServiceEntry | undefined {
  const h = host.toLowerCase();
  const found = entries.filter((se) => visibleTo(se, namespace) && (se.spec?.hosts ?? []).some((x) => x.toLowerCase() === h));
  found.sort((a, b) => Number(b.metadata.namespace === namespace) - Number(a.metadata.namespace === namespace)
    || (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '')
    || routerKey(a).localeCompare(routerKey(b)));
  return found[0];
}

/** The host as the ServiceEntry spells it (Istio names clusters after the entry's spelling). */
const entryHost = (se: ServiceEntry, host: string): string =>
  (se.spec?.hosts ?? []).find((x) => x.toLowerCase() === host.toLowerCase()) ?? host;

/**
 * A ServiceEntry seen as the Service-shaped target the rest of render (and `meltemi envoy`) works
 * on: its ports, spec.addresses as the addresses to scope by, and its endpoints as the
 * meltemi.dev/endpoints annotation (unless the ServiceEntry carries one itself).
 */
function entryAsService(se: ServiceEntry, metaPorts: number): Service {
  const portOf = (ep: NonNullable<NonNullable<ServiceEntry['spec']>['endpoints']>[number]) => {
    const only = metaPorts === 1 ? (se.spec?.ports ?? []).find((p) => portProtocol(p.name)) : undefined;
    const n = only ? ep.ports?.[only.name ?? ''] : undefined;
    return n !== undefined ? `${ep.address}:${n}` : ep.address!;
  };
  const eps = (se.spec?.endpoints ?? []).filter((ep) => ep.address && !ep.address.startsWith('unix://')).map(portOf);
  const addresses = se.spec?.addresses ?? [];
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: {
      name: se.metadata.name, namespace: se.metadata.namespace ?? 'default',
      annotations: { ...(eps.length > 0 ? { 'meltemi.dev/endpoints': eps.join(',') } : {}), ...se.metadata.annotations },
    },
    spec: {
      ports: (se.spec?.ports ?? []).map((p) => ({ port: p.number, ...(p.name ? { name: p.name } : {}), ...(p.targetPort ? { targetPort: p.targetPort } : {}) })),
      ...(addresses.length > 0 ? { clusterIPs: addresses } : { clusterIP: 'None' }),
    },
  };
}

interface Target {
  readonly fqdn: string;
  readonly service: Service;
  /** How messages name it: "Service ns/name" or "ServiceEntry ns/name". */
  readonly what: string;
  readonly objectBase: string;   // first part of the object names
  readonly namespace: string;
  readonly entry?: ServiceEntry;
}

/** Compiles one router's listeners, or returns its errors (and reason) when it cannot be programmed. */
function compileRouter(router: MetaRouter, services: ReadonlyMap<string, Service>, entries: readonly ServiceEntry[],
  protocols: ReadonlyMap<string, ApplicationProtocol>, o: RenderOptions):
  { readonly ports: CompiledPort[]; readonly errors: string[]; readonly warnings: string[]; readonly reason: string } {
  const ns = router.metadata.namespace ?? 'default';
  const errors: string[] = [];
  const warnings: string[] = [];
  let reason = 'InvalidMetaRouter';
  const mode = router.spec?.mode ?? 'perConnection';
  if (mode !== 'perConnection' && mode !== 'perRequest') errors.push(`spec.mode: expected perConnection or perRequest, got ${JSON.stringify(mode)}`);
  const perRequest = mode === 'perRequest';
  // Per request, Envoy's router mirrors: the fields a per-connection router ignores are programmed.
  checkFields(router.spec ?? {}, perRequest ? PER_REQUEST_SPEC_FIELDS : SPEC_FIELDS, 'spec', errors, warnings);
  // Refused, not warned of: a DENY on principals that never holds would let through what it names.
  if (!perRequest) errors.push(...unmatchablePrincipals(router.spec));
  const serviceLimit = perRequest && router.spec?.localRateLimit !== undefined
    ? compilePolicies({ localRateLimit: router.spec.localRateLimit }, 'spec', errors).localRateLimit
    : undefined;
  /** A host's ports, for the rate limit service: a Service by Kubernetes DNS, else a visible ServiceEntry host. */
  const portsOf: PortLookup = (host) => {
    const r = resolveHost(host, ns, o.clusterDomain);
    const svc = r.name ? services.get(`${r.namespace}/${r.name}`) : undefined;
    if (svc) return { what: `Service ${r.namespace}/${r.name}`, fqdn: r.fqdn, ports: (svc.spec?.ports ?? []).map((p) => ({ port: p.port, name: p.name, appProtocol: p.appProtocol })) };
    const se = entryFor(host, ns, entries);
    return se && { what: `ServiceEntry ${se.metadata.namespace ?? 'default'}/${se.metadata.name}`, fqdn: entryHost(se, host),
      ports: (se.spec?.ports ?? []).map((p) => ({ port: p.number, name: p.name, protocol: p.protocol })) };
  };
  const globalLimit = perRequest ? compileGlobalRateLimit(router.spec?.globalRateLimit, portsOf, errors) : undefined;
  const accessLog = compileAccessLog(router.spec?.accessLog, perRequest, errors, warnings);
  const unknownFields = errors.length > 0;   // then the plugin-config check would only repeat them
  const ports: CompiledPort[] = [];
  const hosts = router.spec?.hosts ?? [];
  if (hosts.length === 0) errors.push('spec.hosts: at least one host is required');
  /** A destination host: a Service by Kubernetes DNS, else a visible ServiceEntry host (as the entry spells it). */
  const resolveDest = (host: string): string => {
    const r = resolveHost(host, ns, o.clusterDomain);
    if (r.name && services.has(`${r.namespace}/${r.name}`)) return r.fqdn;
    const se = entryFor(host, ns, entries);
    return se ? entryHost(se, host) : r.fqdn;
  };
  for (const host of hosts) {
    const h = resolveHost(host, ns, o.clusterDomain);
    const svc = h.name ? services.get(`${h.namespace}/${h.name}`) : undefined;
    const se = svc ? undefined : entryFor(host, ns, entries);
    let target: Target;
    if (svc) target = { fqdn: h.fqdn, service: svc, what: `Service ${h.namespace}/${h.name}`, objectBase: svc.metadata.name, namespace: h.namespace! };
    else if (se) {
      const seNs = se.metadata.namespace ?? 'default';
      const seHosts = se.spec?.hosts ?? [];
      const metaCount = (se.spec?.ports ?? []).filter((p) => portProtocol(p.name)).length;
      target = {
        fqdn: entryHost(se, host), service: entryAsService(se, metaCount), what: `ServiceEntry ${seNs}/${se.metadata.name}`, namespace: seNs, entry: se,
        objectBase: seHosts.length > 1 ? `${se.metadata.name}-${host.toLowerCase().replace(/[^a-z0-9.-]/g, '-')}` : se.metadata.name,
      };
    } else {
      errors.push(h.name ? `host ${host}: no Service ${h.namespace}/${h.name}` : `host ${host}: no ServiceEntry with this host, and not a Kubernetes Service host (<name>.<namespace>.svc.${o.clusterDomain})`);
      reason = 'NoMatchingService';
      continue;
    }
    const allPorts = target.service.spec?.ports ?? [];
    const metaPorts = allPorts.filter((p) => portProtocol(p.name));
    if (metaPorts.length === 0) {
      const names = allPorts.map((p) => p.name ?? String(p.port)).join(', ') || 'none';
      errors.push(`host ${host}: ${target.what} has no port named tcp-metaprotocol-<protocol>-<anything> (ports: ${names})`);
      reason = 'NoMatchingServicePort';
      continue;
    }
    for (const sp of metaPorts) {
      const protocol = portProtocol(sp.name)!;
      const ap = protocols.get(protocol);
      const codec = ap ? codecOf(ap) : undefined;
      if (!ap) { errors.push(`host ${host} port ${sp.port}: unknown protocol "${protocol}" (no ApplicationProtocol with spec.protocol ${protocol})`); reason = 'UnknownProtocol'; continue; }
      const apErrors: string[] = [];
      checkFields(ap.spec ?? {}, APPLICATION_PROTOCOL_FIELDS, 'spec', apErrors, []);
      if (apErrors.length > 0) {
        for (const e of apErrors.map((x) => `ApplicationProtocol ${ap.metadata.name}: ${x}`)) if (!errors.includes(e)) errors.push(e);
        reason = 'InvalidApplicationProtocol';
        continue;
      }
      if (!isCodec(codec)) { errors.push(`ApplicationProtocol ${ap.metadata.name}: codec "${ap.spec?.codec}" is not one of ${registeredCodecs().join(', ')} (schema/plugin-config.schema.json)`); reason = 'UnknownProtocol'; continue; }
      if (target.entry && !(target.entry.spec?.addresses?.length)) {
        warnings.push(`host ${host}: ${target.what} has no spec.addresses, so the WasmPlugin for port ${sp.port} is not scoped: every TCP service on port ${sp.port} in its namespace gets this route table`);
      }
      const routeErrors: string[] = [];
      const routeWarnings: string[] = [];
      const routes = (router.spec?.routes ?? []).map((r, i) => compileRoute(r, i, { namespace: ns, domain: o.clusterDomain, port: sp.port, codec, codecOptions: ap.spec?.codecOptions, resolve: resolveDest, perRequest, warnings: routeWarnings }, routeErrors));
      const seen = new Set<string>();
      for (const r of routes) { if (seen.has(r.name)) routeErrors.push(`routes: duplicate route name ${r.name}`); seen.add(r.name); }
      const defaultCluster = clusterName(sp.port, undefined, target.fqdn);
      const pluginConfig: PluginConfig = {
        codec,
        ...(ap.spec?.codecOptions ? { codecOptions: { ...ap.spec.codecOptions } } : {}),
        ...(o.statPrefix ? { statPrefix: o.statPrefix } : {}),
        // Labels every metric: routes of two Services may share a name ("default"). A ServiceEntry
        // host may be a wildcard, which the label's pattern has no room for.
        service: target.fqdn.replace(/[^a-zA-Z0-9_.-]/g, '_'),
        noRoute: 'default',
        defaultCluster,
        routes,
        ...(perRequest ? { mode: 'perRequest' as const } : {}),
        ...(serviceLimit ? { localRateLimit: serviceLimit } : {}),
        ...(globalLimit ? { globalRateLimit: globalLimit } : {}),
        ...(accessLog ? { accessLog: true } : {}),
      };
      // Per request, both roles get this config with their role named; they read it alike.
      const checked = perRequest ? { ...pluginConfig, role: 'client' as const } : pluginConfig;
      if (routeErrors.length === 0 && !unknownFields) routeErrors.push(...pluginConfigProblems(checked).map((p) => `plugin config ${p}`));
      // Last, the filter's own verdict on the whole config (sizes, counts, every rule it has).
      if (routeErrors.length === 0 && !unknownFields) routeErrors.push(...filterProblems(checked).map((p) => `plugin config: ${p}`));
      for (const e of routeErrors) if (!errors.includes(e)) errors.push(e);
      // Routes compile once per port: the same warning for several ports is said once.
      for (const w of routeWarnings) if (!warnings.includes(w)) warnings.push(w);
      const outNs = o.configNamespace || ns;
      ports.push({
        router: routerKey(router), host: target.fqdn, service: target.service, port: sp.port, protocol, pluginConfig,
        namespace: outNs, name: objectName(target.objectBase, target.namespace, sp.port, outNs),
        clusters: [...new Set([defaultCluster, ...routes.flatMap((r) => r.route.map((d) => d.cluster))])],
        ...(accessLog ? { accessLog } : {}),
      });
    }
  }
  if (errors.length > 0 && reason === 'InvalidMetaRouter' && errors.every((e) => e.includes('routes'))) reason = 'InvalidRoute';
  return { ports: errors.length > 0 ? [] : ports, errors, warnings, reason };
}

/**
 * Renders every MetaRouter. Routers that claim a (namespace, port) pair already claimed by an older
 * router are rejected with reason Conflict: Istio matches WasmPlugins and EnvoyFilters by port, so two
 * configs on one port would both apply to the same listeners.
 */
export function render(input: RenderInput, o: RenderOptions): RenderOutput {
  const services = new Map(input.services.map((s) => [`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, s]));
  const protocols = new Map<string, ApplicationProtocol>();
  for (const p of input.protocols) protocols.set((p.spec?.protocol ?? p.metadata.name).toLowerCase(), p);
  const conditions = new Map<string, Condition>();
  const warnings = new Map<string, readonly string[]>();
  // "<outNs>/<port>" and "<outNs>/<port>/<host>" -> the router, and whether it patches its own listeners only
  const claimed = new Map<string, { router: string; listeners: boolean }>();
  const compiled: CompiledPort[] = [];
  const resources: KubeObject[] = [];
  const routes = new Map<string, object>();
  for (const router of [...input.routers].sort(byAge)) {
    const key = routerKey(router);
    const compiledRouter = compileRouter(router, services, input.serviceEntries ?? [], protocols, o);
    const { errors, warnings: compiledWarnings, reason } = compiledRouter;
    if (errors.length > 0) { conditions.set(key, accepted(router, 'False', reason, errors.join('; '))); continue; }
    const shared = compiledRouter.ports.map((p) => (p.pluginConfig.mode === 'perRequest' ? onSharedPort(p, input.services, input.serviceEntries ?? [], o.clusterDomain) : { port: p }));
    const unshareable = shared.flatMap((x) => ('error' in x ? [x.error] : []));
    if (unshareable.length > 0) { conditions.set(key, accepted(router, 'False', 'SharedPort', unshareable.join('; '))); continue; }
    const ports = shared.flatMap((x) => ('port' in x ? [x.port] : [])).map((p) => withHashKey(p, input.destinationRules ?? [], o.clusterDomain));
    const warned = [...compiledWarnings];
    // Routers whose EnvoyFilters each patch only their own host's listeners (per request, shared
    // port) can share the port, but never a host.
    const conflictOf = (p: CompiledPort) => {
      const other = claimed.get(`${p.namespace}/${p.port}`);
      const sameHost = claimed.get(`${p.namespace}/${p.port}/${p.host}`);
      if (!other || (other.listeners && p.listeners && !sameHost)) return undefined;
      return `port ${p.port} in namespace ${p.namespace} is already routed by MetaRouter ${(sameHost ?? other).router}`;
    };
    const conflicts = ports.map(conflictOf).filter((m): m is string => !!m);
    if (conflicts.length > 0) { conditions.set(key, accepted(router, 'False', 'Conflict', conflicts.join('; '))); continue; }
    for (const p of ports) {
      claimed.set(`${p.namespace}/${p.port}`, { router: key, listeners: !!p.listeners });
      claimed.set(`${p.namespace}/${p.port}/${p.host}`, { router: key, listeners: !!p.listeners });
      compiled.push(p);
      if (p.pluginConfig.mode === 'perRequest') {
        resources.push(wasmPlugin(p, router, o), perRequestEnvoyFilter(p, router, o));
        const server = serverWasmPlugin(p, router, o);
        if (server) resources.push(server);
        else warned.push(`host ${p.host}: Service ${p.service.metadata.name} has no selector, so no server-side WasmPlugin applies route policies (authorization, rate limits, faults, mutation) to its calls`);
        routes.set(rdsName(p), routeConfiguration(p.pluginConfig, rdsName(p)));
      } else {
        resources.push(wasmPlugin(p, router, o), envoyFilter(p, router, o));
      }
    }
    const hosts = ports.map((p) => `${p.host}:${p.port}`).join(', ');
    if (warned.length > 0) warnings.set(key, warned);
    conditions.set(key, accepted(router, 'True', 'Accepted', [`routes ${hosts}`, ...warned].join('; ')));
  }
  // Last, what the proxies' filter says of each WasmPlugin exactly as it will be sent (scope included).
  const stable = o.filterWasm ? { wasm: o.filterWasm, label: `the filter the proxies run (${o.filterWasm})` } : BUNDLED_FILTER;
  const canary = o.canaryFilterWasm ? { wasm: o.canaryFilterWasm, label: `the canary filter (${o.canaryFilterWasm})` } : BUNDLED_FILTER;
  return againstDeclaredFilters({ resources: o.canary ? withCanary(resources, o.canary) : resources, compiled, conditions, warnings, routes },
    [{ ...stable, runs: (p) => !isCanary(p) }, { ...canary, runs: isCanary }]);
}
