// Authorization: ordered ALLOW/DENY rules over request metadata and the connection's source
// (address, and peer identity from mTLS). The first rule whose conditions all hold decides;
// when none does, defaultAction decides.
import { Metadata } from "../core/metadata";
import { AttributeMatch, allHold } from "../route/condition";
import { Cidr } from "./cidr";

export const enum AuthzAction { Allow = 0, Deny = 1 }

/** What is known about the client connection; fetched once per connection. */
export class Peer {
  /** 16-byte address (IPv4-mapped for IPv4), or null when Envoy did not say. */
  address: Uint8Array | null = null;
  /** URI SANs of the client certificate (SPIFFE ids in Istio); empty without mTLS. */
  principals: string[] = [];
}

export class AuthzRule {
  name: string = "";
  action: AuthzAction = AuthzAction.Deny;
  matches: AttributeMatch[] = [];
  /** Any of these ranges must contain the source (no entry: any source). */
  sources: Cidr[] = [];
  /** Any of these must equal a principal of the peer (no entry: any peer, mTLS or not). */
  principals: string[] = [];

  holds(meta: Metadata, peer: Peer): bool {
    if (!allHold(this.matches, meta)) return false;
    if (this.sources.length > 0) {
      const a = peer.address;
      if (a == null) return false;
      let any = false;
      for (let i = 0; i < this.sources.length && !any; i++) any = this.sources[i].contains(a);
      if (!any) return false;
    }
    if (this.principals.length > 0) {
      let any = false;
      for (let i = 0; i < this.principals.length && !any; i++) any = peer.principals.includes(this.principals[i]);
      if (!any) return false;
    }
    return true;
  }
}

export class AuthzPolicy {
  rules: AuthzRule[] = [];
  defaultAction: AuthzAction = AuthzAction.Allow;
  /**
   * The rule that decides `meta` from `peer`: the index of the first rule that holds, or -1 when
   * none does and defaultAction decides. Returned, not stored: the policy is shared by every
   * connection of the plugin.
   */
  decidingRule(meta: Metadata, peer: Peer): i32 {
    for (let i = 0; i < this.rules.length; i++) {
      if (this.rules[i].holds(meta, peer)) return i;
    }
    return -1;
  }

  /** True when the request may pass. */
  allows(meta: Metadata, peer: Peer): bool {
    return this.allowedBy(this.decidingRule(meta, peer));
  }

  /** Whether the rule decidingRule() returned lets the request pass. */
  allowedBy(rule: i32): bool {
    const action = rule >= 0 ? this.rules[rule].action : this.defaultAction;
    return action == AuthzAction.Allow;
  }

  /** The name logs and replies give for the rule decidingRule() returned. */
  ruleName(rule: i32): string {
    return rule >= 0 ? this.rules[rule].name : "defaultAction";
  }

  /** Whether any rule looks at the connection's source or identity (then fetch the Peer). */
  needsPeer(): bool {
    for (let i = 0; i < this.rules.length; i++) {
      if (this.rules[i].sources.length > 0 || this.rules[i].principals.length > 0) return true;
    }
    return false;
  }
}
