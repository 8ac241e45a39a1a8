/**
 * How a MetaRouter names its global rate limit service (spec.globalRateLimit.rateLimitService), and
 * the Envoy cluster Envoy's rate limit filter then calls. Aeraki names the cluster itself, as Istio
 * builds it (`outbound|8081||ratelimit.<ns>.svc.cluster.local`); Meltemi also takes `<host>:<port>`
 * (`ratelimit.<ns>:8081`), resolved like a destination host. Any other name is a cluster the
 * sidecar's bootstrap defines, used as given.
 *
 * The filter speaks gRPC, so the cluster must speak HTTP/2. Istio's cluster for a port does when
 * the port selects gRPC or HTTP/2 (Istio's protocol selection: a Service port's appProtocol or its
 * name's prefix before "-"; a ServiceEntry port's protocol). A port that does not would carry the checks over
 * HTTP/1.1, every check would fail and, unless denyOnFail, every call would pass: refused here.
 */
/** A port as Istio selects its protocol: a Service's name and appProtocol, a ServiceEntry's protocol. */
export interface PortInfo { readonly port: number; readonly name?: string; readonly appProtocol?: string; readonly protocol?: string }
/** A host's ports and how messages name it, or undefined when no Service or ServiceEntry has the host. */
export type PortLookup = (host: string) => { readonly what: string; readonly fqdn: string; readonly ports: readonly PortInfo[] } | undefined;

const AT = 'spec.globalRateLimit.rateLimitService';
const H2 = ['grpc', 'grpc-web', 'http2', 'kubernetes.io/h2c'];

/** Whether Istio gives this port's cluster HTTP/2: a ServiceEntry port's protocol decides, else appProtocol or the name's prefix. */
const speaksH2 = (p: PortInfo): boolean => (p.protocol !== undefined
  ? H2.includes(p.protocol.toLowerCase())
  : [p.appProtocol, p.name?.split('-')[0]].some((x) => x !== undefined && H2.includes(x.toLowerCase())));

/** The Envoy cluster for `name`; problems go onto `errors` naming the field. */
export function rateLimitCluster(name: string, lookup: PortLookup, errors: string[]): string {
  const cluster = /^outbound\|(\d+)\|([^|]*)\|(.+)$/.exec(name);
  const hostPort = /^([^|:\s]+):(\d+)$/.exec(name);
  if (!cluster && !hostPort) return name;
  const [host, port, subset] = cluster ? [cluster[3]!, Number(cluster[1]), cluster[2] || undefined] : [hostPort![1]!, Number(hostPort![2]), undefined];
  const target = lookup(host);
  if (!target) {
    errors.push(`${AT}: no Service or ServiceEntry has the host ${host} (give <host>:<port> or Istio's cluster outbound|<port>||<host>)`);
    return name;
  }
  const p = target.ports.find((x) => x.port === port);
  if (!p) errors.push(`${AT}: ${target.what} has no port ${port} (ports: ${target.ports.map((x) => x.port).join(', ') || 'none'})`);
  else if (!speaksH2(p)) {
    const fix = p.protocol !== undefined ? 'set its protocol: GRPC' : 'name it grpc or grpc-<anything>, or set appProtocol: grpc';
    errors.push(`${AT}: ${target.what} port ${port} (${p.name ?? 'unnamed'}) does not select gRPC: ${fix}, so that Istio's cluster speaks HTTP/2 to the rate limit service`);
  }
  return `outbound|${port}|${subset ?? ''}|${target.fqdn}`;   // Istio's name, as render's clusterName
}
