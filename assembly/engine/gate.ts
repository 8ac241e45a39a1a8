// What a route's policies decide about one request before it is forwarded: authorization (with
// the peer its rules need) and the route's and the service's rate limits. It decides; the
// exchange acts on the decision (forwards, or answers locally). The same decision serves the
// whole-frame path and the pass-through's admits(), so that a request is judged alike on both.
import * as abi from "../host/abi";
import { PluginRoot } from "../root";
import { FilterConfig } from "../route/config";
import { Route } from "../route/match";
import { Metadata } from "../core/metadata";
import { Peer } from "../policy/authz";
import { parseIp } from "../policy/cidr";

/** Which route policy refuses a request (see PolicyGate.refusal). */
export const enum Refusal { None = 0, Authorization = 1, RateLimit = 2 }

export const NS_PER_MS: u64 = 1000000;
/** The shared-data name of the service-wide buckets (no route is called this: route names have no '~'). */
const SERVICE_BUCKETS = "~service";

export class PolicyGate {
  /** Fetched on the first authorization rule that needs it; a role may preset it (server role). */
  peer: Peer | null = null;
  /** The authorization rule that refused the last request refusal() refused. */
  deniedBy: i32 = -1;

  constructor(private readonly root: PluginRoot, private readonly cfg: FilterConfig) {}

  /**
   * Which of the route's authorization and rate limit refuses `meta`, taking its token when
   * neither does (deniedBy: the deciding authorization rule). A token is only ever taken when one
   * is there, so a request judged twice (pass-through, then whole frame) never takes two.
   */
  refusal(route: Route, meta: Metadata, now: u64): Refusal {
    const authz = route.authz;
    if (authz != null) {
      const rule = authz.decidingRule(meta, this.peerInfo(authz.needsPeer()));
      if (!authz.allowedBy(rule)) {
        this.deniedBy = rule;
        return Refusal.Authorization;
      }
    }
    const rl = route.rateLimit;
    if (rl != null) {
      const bucket = rl.bucketFor(meta);
      if (bucket >= 0 && !this.root.buckets.take(rl.sharedKey(bucket, this.cfg.statPrefix, route.name), rl.spec(bucket), now / NS_PER_MS, rl.lease(bucket))) return Refusal.RateLimit;
    }
    return Refusal.None;
  }

  /** Whether the listener's service-wide limit (if any) has a token for `meta`; takes it. */
  withinServiceLimit(meta: Metadata, now: u64): bool {
    const rl = this.cfg.serviceRateLimit;
    if (rl == null) return true;
    const bucket = rl.bucketFor(meta);
    if (bucket < 0) return true;
    return this.root.buckets.take(rl.sharedKey(bucket, this.cfg.statPrefix, SERVICE_BUCKETS), rl.spec(bucket), now / NS_PER_MS, rl.lease(bucket));
  }

  /** The client's address and principals, read from the connection once, when a rule needs them. */
  peerInfo(needed: bool): Peer {
    let p = this.peer;
    if (p != null) return p;
    p = new Peer();
    if (needed) {
      const addr = abi.getPropertyString(["source", "address"]);
      if (addr != null) p.address = parseIp(addr);
      const san = abi.getPropertyString(["connection", "uri_san_peer_certificate"]);
      if (san != null && san.length > 0) p.principals.push(san);
    }
    this.peer = p;
    return p;
  }
}
