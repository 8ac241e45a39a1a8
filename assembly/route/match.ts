// Route matching: pure functions over Metadata and the compiled route table.
import { Metadata, KeyValue } from "../core/metadata";
import { AttributeMatch, allHold } from "./condition";
import { FaultPolicy } from "../policy/fault";
import { RateLimitPolicy } from "../policy/ratelimit";
import { AuthzPolicy } from "../policy/authz";
import { PerRequestRoute } from "./per-request";

export class Destination {
  constructor(public cluster: string, public weight: u32) {}
}

export class Route {
  name: string;
  matches: AttributeMatch[] = [];
  destinations: Destination[] = [];
  totalWeight: u32 = 0;
  requestMutation: KeyValue[] = [];
  responseMutation: KeyValue[] = [];
  // Traffic policies, null when the route has none.
  fault: FaultPolicy | null = null;
  rateLimit: RateLimitPolicy | null = null;
  authz: AuthzPolicy | null = null;
  /** Close the connection when a request waits longer than this for its answer (0: never). */
  timeoutMs: u32 = 0;
  /** Per-request mode only: hash key, retries, mirror (null when the route sets none). */
  perRequest: PerRequestRoute | null = null;

  constructor(name: string) {
    this.name = name;
  }

  /**
   * Whether this route's frames of one direction can pass by their first bytes (the per-connection
   * pass-through): nothing rewrites them (a mutation needs the whole frame) and no fault draws on
   * them (an abort or a delay is a random draw, made once, on the whole path). Authorization and
   * rate limits decide from metadata: a request they let through passes; one they refuse is
   * handed to the whole-frame path, which answers it.
   */
  passesByPrefix(requests: bool): bool {
    if (requests) return this.requestMutation.length == 0 && this.fault == null;
    return this.responseMutation.length == 0;
  }

  /** All conditions hold (an empty match holds for every request). */
  matchesAll(meta: Metadata): bool {
    return allHold(this.matches, meta);
  }
}

export class RouteTable {
  routes: Route[] = [];

  /** Index of the route named `name`, or -1. */
  indexOf(name: string): i32 {
    const rs = this.routes;
    for (let i = 0, n = rs.length; i < n; i++) {
      if (unchecked(rs[i]).name == name) return i;
    }
    return -1;
  }

  /** Index of the first route whose match holds for `meta`, or -1. */
  find(meta: Metadata): i32 {
    const rs = this.routes;
    for (let i = 0, n = rs.length; i < n; i++) {
      if (unchecked(rs[i]).matchesAll(meta)) return i;
    }
    return -1;
  }
}
