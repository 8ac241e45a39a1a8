/**
 * Authorization rules on `principals` that can never hold where Istio runs the filter.
 *
 * Per connection, the WasmPlugin matches mode CLIENT: the filter runs on the outbound listener of the
 * client's own sidecar, whose downstream connection comes from the local application in plaintext.
 * There is no client certificate there, so a principal never equals one, with or without mutual TLS
 * between the sidecars (measured: test/controller/istio-agent.test.mjs, STRICT mTLS on). Per
 * request, the route policies run in the server role on the server's sidecar, behind the mTLS the
 * sidecars use, where the caller's SPIFFE id is the peer certificate's URI SAN.
 */
import type { MetaRouter } from './model.mjs';

/** One problem per non-empty `principals` of a per-connection router, naming its field path (render refuses the router). */
export function unmatchablePrincipals(spec: MetaRouter['spec'] | undefined): string[] {
  const problems: string[] = [];
  (spec?.routes ?? []).forEach((route, i) => {
    const rules = (route as { authorization?: { rules?: readonly { principals?: readonly unknown[] }[] } }).authorization?.rules;
    (Array.isArray(rules) ? rules : []).forEach((rule, j) => {
      if (Array.isArray(rule?.principals) && rule.principals.length > 0) {
        problems.push(`spec.routes[${i}].authorization.rules[${j}].principals: never matches per connection: the filter runs in the client's sidecar, where connections come from the local application without a client certificate (spec.mode: perRequest enforces route policies on the server's sidecar, behind mTLS)`);
      }
    });
  });
  return problems;
}
