/**
 * The resources Meltemi reads (Service, ApplicationProtocol, MetaRouter) and writes (WasmPlugin,
 * EnvoyFilter), typed as far as render needs them. Field names of ApplicationProtocol and MetaRouter
 * follow Aeraki's metaprotocol.aeraki.io/v1alpha1, so an Aeraki MetaRouter moves over by changing
 * apiVersion only.
 */

export const GROUP = 'meltemi.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Label on everything the controller creates; the controller prunes only objects that carry it. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'meltemi';
export const ROUTER_NS_LABEL = 'meltemi.dev/metarouter-namespace';
export const ROUTER_NAME_LABEL = 'meltemi.dev/metarouter';
/** Full "<namespace>/<name>" of the owning MetaRouter (labels cap at 63 characters, names do not). */
export const OWNER_ANNOTATION = 'meltemi.dev/owner';

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly generation?: number;
  readonly resourceVersion?: string;
  readonly creationTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly OwnerReference[];
}

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
  readonly blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly spec?: unknown;
  readonly status?: unknown;
}

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

export interface Service extends KubeObject {
  readonly kind: 'Service';
  readonly spec?: {
    readonly ports?: readonly ServicePort[];
    readonly selector?: Readonly<Record<string, string>>;
    /** "None" for headless Services; absent until the API server allocates one. */
    readonly clusterIP?: string;
    readonly clusterIPs?: readonly string[];
  };
}

/**
 * An Istio ServiceEntry (networking.istio.io): hosts outside Kubernetes Services, as in Aeraki's
 * interface-level Dubbo demos (one ServiceEntry per Dubbo interface, port tcp-metaprotocol-dubbo).
 */
export interface ServiceEntry extends KubeObject {
  readonly kind: 'ServiceEntry';
  readonly spec?: {
    readonly hosts?: readonly string[];
    /** Virtual IPs or CIDRs of the hosts; when set, the WasmPlugin is scoped to them. */
    readonly addresses?: readonly string[];
    readonly ports?: readonly { readonly number: number; readonly name?: string; readonly protocol?: string; readonly targetPort?: number }[];
    readonly resolution?: string;
    readonly location?: string;
    readonly endpoints?: readonly { readonly address?: string; readonly ports?: Readonly<Record<string, number>>; readonly labels?: Readonly<Record<string, string>> }[];
    /** Namespaces that see the hosts: "*" (default), "." (own), or names. */
    readonly exportTo?: readonly string[];
  };
}

export interface ApplicationProtocol extends KubeObject {
  readonly kind: 'ApplicationProtocol';
  readonly spec?: {
    /** Protocol name as it appears in port names: tcp-metaprotocol-<protocol>-<anything>. */
    readonly protocol?: string;
    /** Codec registered in the filter ("dubbo", "thrift"); Aeraki's "aeraki.meta_protocol.codec.<x>" is accepted. */
    readonly codec?: string;
    /** Meltemi extension: codec options passed to the filter (e.g. Thrift transport, protocol). */
    readonly codecOptions?: Readonly<Record<string, string>>;
  };
}

export interface StringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

export interface Destination {
  readonly host?: string;
  readonly subset?: string;
  readonly port?: { readonly number?: number };
}

export interface KeyValue {
  readonly key?: string;
  readonly value?: string;
}

export interface MetaRoute {
  readonly name?: string;
  readonly match?: { readonly attributes?: Readonly<Record<string, StringMatch>> };
  readonly route?: readonly { readonly destination?: Destination; readonly weight?: number }[];
  readonly requestMutation?: readonly KeyValue[];
  readonly responseMutation?: readonly KeyValue[];
  /** Later policies (mirror, mirrorPercentage, ...) are kept by the CRD and reported as ignored. */
  readonly [policy: string]: unknown;
}

export interface MetaRouter extends KubeObject {
  readonly kind: 'MetaRouter';
  readonly spec?: {
    readonly hosts?: readonly string[];
    readonly routes?: readonly MetaRoute[];
    /** Meltemi: perConnection (default) or perRequest (docs/per-request.md). */
    readonly mode?: 'perConnection' | 'perRequest';
    readonly [policy: string]: unknown;
  };
}

export interface Condition {
  readonly type: 'Accepted' | 'Programmed';
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

/** Every input of render: what the informers hold, or what `meltemi render -f` read from files. */
export interface DestinationRule extends KubeObject {
  readonly kind: 'DestinationRule';
  readonly spec?: {
    readonly host?: string;
    readonly trafficPolicy?: { readonly loadBalancer?: { readonly consistentHash?: { readonly httpHeaderName?: string } } };
  };
}

export interface RenderInput {
  readonly services: readonly Service[];
  readonly protocols: readonly ApplicationProtocol[];
  readonly routers: readonly MetaRouter[];
  /** Istio ServiceEntries whose hosts MetaRouters may name (absent: none). */
  readonly serviceEntries?: readonly ServiceEntry[];
  /** Istio DestinationRules: per request, their consistentHash.httpHeaderName becomes the routes' hash key. */
  readonly destinationRules?: readonly DestinationRule[];
}

export type FailStrategy = 'FAIL_CLOSE' | 'FAIL_OPEN' | 'FAIL_RELOAD';
export const FAIL_STRATEGIES: readonly FailStrategy[] = ['FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD'] as const;

export interface RenderOptions {
  /** Where Istio gets the module: oci://, file://, http(s)://. */
  readonly moduleUrl: string;
  /** sha256 (64 hex) of the module; checked by pilot-agent for oci:// and http(s)://. */
  readonly moduleSha256?: string;
  /** Default FAIL_CLOSE: a proxy that cannot load the filter must not route Dubbo traffic blindly. */
  readonly failStrategy: FailStrategy;
  /** Kubernetes cluster domain for short host names. Default cluster.local. */
  readonly clusterDomain: string;
  /**
   * Namespace the WasmPlugin and EnvoyFilter go to. Empty (default): the MetaRouter's namespace, with an
   * owner reference to it; they then apply to client workloads in that namespace. Istio's root
   * namespace (istio-system) makes them apply mesh-wide; owner references cannot cross namespaces, so
   * there only the labels mark ownership and the controller prunes.
   */
  readonly configNamespace?: string;
  /** tcp_proxy max_early_data_bytes: how much of the first frame the filter may read before routing. */
  readonly maxEarlyDataBytes: number;
  /** statPrefix of the filter's metrics; unset: the filter's default (meltemi). */
  readonly statPrefix?: string;
  /**
   * Local copy of the filter module the proxies run (path or file:// URL): every rendered plugin
   * config must be one it takes (declared-filter.mts). Unset: the build next to the controller.
   */
  readonly filterWasm?: string;
  /** A second module for some workloads first (canary.mts); its configs are checked with canaryFilterWasm. */
  readonly canary?: { readonly moduleUrl: string; readonly moduleSha256?: string; readonly selector: Readonly<Record<string, string>> };
  /** Local copy of the canary module; unset: the build next to the controller. */
  readonly canaryFilterWasm?: string;
}

export const DEFAULT_OPTIONS: RenderOptions = {
  moduleUrl: 'oci://ghcr.io/meltemi-dev/meltemi:0.1.0',
  failStrategy: 'FAIL_CLOSE',
  clusterDomain: 'cluster.local',
  maxEarlyDataBytes: 65536,
};
