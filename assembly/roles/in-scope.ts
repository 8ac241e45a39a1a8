// Whether the current connection belongs to the routed service (route/scope.ts), from what the host
// knows of it: its original destination address (before any redirect) and, when the scope names
// filter chains, the name of the Envoy filter chain that took it. Both roles that face clients ask
// this once per connection, when it opens; one outside the scope passes through untouched.
import * as abi from "../host/abi";
import { Scope } from "../route/scope";
import { parseIp } from "../policy/cidr";

export function connectionInScope(scope: Scope): bool {
  if (!scope.isSet()) return true;
  let destination: Uint8Array | null = null;
  if (scope.destinations.length > 0) {
    const addr = abi.getPropertyString(["destination", "address"]);
    if (addr != null) destination = parseIp(addr);
  }
  let chain: string | null = null;
  if (scope.filterChains.length > 0) {
    chain = abi.getPropertyString(["xds", "filter_chain_name"]);
  }
  return scope.admits(destination, chain);
}
