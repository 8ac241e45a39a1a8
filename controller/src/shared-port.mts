/**
 * Per-request mode on a port that other services share. Istio applies WasmPlugins and EnvoyFilters
 * by port number, but gives every TCP service that has an address its own outbound listener, named
 * `<address>_<port>` (istiod's buildSidecarOutboundListener: the service's VIP becomes the
 * listener's address; a Sidecar egress `bind` names it the same way). On a shared port the
 * EnvoyFilter that replaces tcp_proxy by the connection manager therefore matches those listener
 * names: the other services' listeners keep their tcp_proxy, and each per-request service gets its
 * own connection manager and route table. The client role of every per-request router on the port
 * still runs on all of the port's listeners (a WasmPlugin is matched by port only); its scope, the
 * service's own addresses without loopback, makes it step aside on the others.
 *
 * A routed host without a plain IP address (headless Service, ServiceEntry without spec.addresses
 * or with CIDRs) has no listener of its own: Istio puts it on the wildcard listener of the port, and
 * no EnvoyFilter match can tell its chain from another's. Such a router is refused.
 */
import type { Service, ServiceEntry } from './model.mjs';
import type { CompiledPort } from './render.mjs';

/** The plain IP addresses Istio names a service's own listeners after. */
export function listenerAddresses(svc: Service): string[] {
  const ips = svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : []);
  return ips.filter((ip) => ip && ip !== 'None' && !ip.includes('/'));
}

/** Everything else with a port numbered `c.port`, as "Service ns/name" or "ServiceEntry ns/name". */
export function sharersOf(c: CompiledPort, services: readonly Service[], entries: readonly ServiceEntry[], domain: string): string[] {
  const host = c.host.toLowerCase();
  const onPort = (ports: readonly { readonly port?: number; readonly number?: number }[] | undefined) => (ports ?? []).some((p) => (p.port ?? p.number) === c.port);
  return [
    ...services.filter((s) => `${s.metadata.name}.${s.metadata.namespace ?? 'default'}.svc.${domain}` !== host && onPort(s.spec?.ports))
      .map((s) => `Service ${s.metadata.namespace ?? 'default'}/${s.metadata.name}`),
    ...entries.filter((se) => !(se.spec?.hosts ?? []).some((h) => h.toLowerCase() === host) && onPort(se.spec?.ports))
      .map((se) => `ServiceEntry ${se.metadata.namespace ?? 'default'}/${se.metadata.name}`),
  ].sort();
}

/**
 * A per-request port as it must be rendered when other services share its port number: its
 * EnvoyFilter restricted to the listeners named after its addresses; or why it cannot be.
 */
export function onSharedPort(c: CompiledPort, services: readonly Service[], entries: readonly ServiceEntry[], domain: string):
  { readonly port: CompiledPort } | { readonly error: string } {
  const others = sharersOf(c, services, entries, domain);
  if (others.length === 0) return { port: c };
  const addresses = listenerAddresses(c.service);
  const named = others.length > 3 ? `${others.slice(0, 3).join(', ')} and ${others.length - 3} more` : others.join(', ');
  if (addresses.length === 0) {
    return { error: `host ${c.host} port ${c.port}: per-request mode on a port shared with ${named} needs a listener of its own, which Istio builds only for a host with an IP address (a ClusterIP, or a ServiceEntry's spec.addresses); this host has none, so its connection manager would replace the others' tcp_proxy too: give it an address or a port of its own` };
  }
  return { port: { ...c, listeners: addresses.map((a) => `${a}_${c.port}`) } };
}
