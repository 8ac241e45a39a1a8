// Which connections the filter acts on. Istio applies a network WasmPlugin by port, so every
// TCP service that shares a routed port gets the filter; `scope` names the routed service's
// addresses (its ClusterIPs) and/or Envoy filter chains, and every other connection passes
// through untouched: never decoded, never routed.
import { Cidr } from "../policy/cidr";

export class Scope {
  /** Destination (original, pre-redirect) addresses of the routed service. */
  destinations: Cidr[] = [];
  /** Names of the Envoy filter chains that carry the routed service. */
  filterChains: string[] = [];

  /** True when the config restricts the filter at all. */
  isSet(): bool {
    return this.destinations.length > 0 || this.filterChains.length > 0;
  }

  /**
   * True when a connection with this destination (16-byte address, or null when unknown) and
   * filter chain name belongs to the routed service. Either list may admit it.
   */
  admits(destination: Uint8Array | null, filterChain: string | null): bool {
    if (!this.isSet()) return true;
    if (destination != null) {
      for (let i = 0; i < this.destinations.length; i++) {
        if (this.destinations[i].contains(destination)) return true;
      }
    }
    if (filterChain != null && this.filterChains.includes(filterChain)) return true;
    return false;
  }
}
