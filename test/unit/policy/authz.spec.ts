import { AuthzPolicy, AuthzRule, AuthzAction, Peer } from "../../../assembly/policy/authz";
import { parseCidr, parseIp } from "../../../assembly/policy/cidr";
import { AttributeMatch, MatchKind } from "../../../assembly/route/condition";
import { Metadata } from "../../../assembly/core/metadata";

function meta(method: string): Metadata {
  const m = new Metadata();
  m.set("method", method);
  return m;
}

function peer(address: string | null, principal: string | null = null): Peer {
  const p = new Peer();
  if (address != null) p.address = parseIp(address);
  if (principal != null) p.principals.push(principal);
  return p;
}

function rule(name: string, action: AuthzAction, method: string | null): AuthzRule {
  const r = new AuthzRule();
  r.name = name;
  r.action = action;
  if (method != null) r.matches.push(new AttributeMatch("method", MatchKind.Exact, method));
  return r;
}

function withSources(r: AuthzRule, cidrs: string[]): AuthzRule {
  for (let i = 0; i < cidrs.length; i++) r.sources.push(parseCidr(cidrs[i])!);
  return r;
}

const ANY = new Peer();

describe("authorization: rules", () => {
  it("lets the first rule that holds decide", () => {
    const p = new AuthzPolicy();
    p.rules.push(rule("deny-hello", AuthzAction.Deny, "sayHello"));
    p.rules.push(rule("allow-all", AuthzAction.Allow, null));
    expect(p.decidingRule(meta("sayHello"), ANY)).toBe(0);
    expect(p.allowedBy(0)).toBe(false);
    expect(p.decidingRule(meta("echo"), ANY)).toBe(1);
    expect(p.allowedBy(1)).toBe(true);
  });

  it("an earlier ALLOW wins over a later DENY", () => {
    const p = new AuthzPolicy();
    p.rules.push(rule("allow-hello", AuthzAction.Allow, "sayHello"));
    p.rules.push(rule("deny-all", AuthzAction.Deny, null));
    expect(p.allowedBy(p.decidingRule(meta("sayHello"), ANY))).toBe(true);
    expect(p.decidingRule(meta("echo"), ANY)).toBe(1);
    expect(p.allowedBy(1)).toBe(false);
  });

  it("falls back to defaultAction (ALLOW unless set) when no rule holds", () => {
    const p = new AuthzPolicy();
    p.rules.push(rule("deny-hello", AuthzAction.Deny, "sayHello"));
    expect(p.decidingRule(meta("echo"), ANY)).toBe(-1);
    expect(p.allowedBy(-1)).toBe(true);
    p.defaultAction = AuthzAction.Deny;
    expect(p.allowedBy(p.decidingRule(meta("echo"), ANY))).toBe(false);
    expect(p.ruleName(p.decidingRule(meta("echo"), ANY))).toBe("defaultAction");
  });

  it("an empty policy follows defaultAction", () => {
    const p = new AuthzPolicy();
    expect(p.allowedBy(p.decidingRule(meta("x"), ANY))).toBe(true);
    p.defaultAction = AuthzAction.Deny;
    expect(p.allowedBy(p.decidingRule(meta("x"), ANY))).toBe(false);
  });
});

describe("authorization: sources and principals", () => {
  it("matches the source against IPv4 ranges", () => {
    const p = new AuthzPolicy();
    p.defaultAction = AuthzAction.Deny;
    p.rules.push(withSources(rule("loopback", AuthzAction.Allow, null), ["127.0.0.0/8"]));
    expect(p.allows(meta("x"), peer("127.0.0.1:40000"))).toBe(true);
    expect(p.allows(meta("x"), peer("10.0.0.1:40000"))).toBe(false);
  });

  it("matches the source against IPv6 ranges", () => {
    const p = new AuthzPolicy();
    p.defaultAction = AuthzAction.Deny;
    p.rules.push(withSources(rule("v6", AuthzAction.Allow, null), ["10.0.0.0/8", "fd00::/8"]));
    expect(p.allows(meta("x"), peer("[fd12::1]:5000"))).toBe(true);
    expect(p.allows(meta("x"), peer("10.9.9.9:5000"))).toBe(true, "any of the ranges");
    expect(p.allows(meta("x"), peer("[fe80::1]:5000"))).toBe(false);
  });

  it("a rule with sources does not hold when the source is unknown", () => {
    const p = new AuthzPolicy();
    p.rules.push(withSources(rule("deny-outside", AuthzAction.Deny, null), ["0.0.0.0/0"]));
    expect(p.allows(meta("x"), peer(null))).toBe(true);
    expect(p.allows(meta("x"), peer("1.2.3.4:5"))).toBe(false);
  });

  it("needs both the match and the source to hold", () => {
    const p = new AuthzPolicy();
    p.rules.push(withSources(rule("deny-hello-from-10", AuthzAction.Deny, "sayHello"), ["10.0.0.0/8"]));
    expect(p.allows(meta("sayHello"), peer("10.0.0.1:1"))).toBe(false);
    expect(p.allows(meta("echo"), peer("10.0.0.1:1"))).toBe(true);
    expect(p.allows(meta("sayHello"), peer("127.0.0.1:1"))).toBe(true);
  });

  it("matches principals from the peer certificate", () => {
    const p = new AuthzPolicy();
    p.defaultAction = AuthzAction.Deny;
    const r = rule("frontend", AuthzAction.Allow, null);
    r.principals.push("spiffe://cluster.local/ns/a/sa/frontend");
    r.principals.push("spiffe://cluster.local/ns/a/sa/admin");
    p.rules.push(r);
    expect(p.allows(meta("x"), peer("10.0.0.1:1", "spiffe://cluster.local/ns/a/sa/admin"))).toBe(true);
    expect(p.allows(meta("x"), peer("10.0.0.1:1", "spiffe://cluster.local/ns/a/sa/other"))).toBe(false);
    expect(p.allows(meta("x"), peer("10.0.0.1:1"))).toBe(false, "no mTLS, no principal");
  });

  it("asks for the peer only when a rule looks at it", () => {
    const p = new AuthzPolicy();
    p.rules.push(rule("m", AuthzAction.Deny, "x"));
    expect(p.needsPeer()).toBe(false);
    p.rules.push(withSources(rule("s", AuthzAction.Allow, null), ["::1"]));
    expect(p.needsPeer()).toBe(true);
    const q = new AuthzPolicy();
    const r = rule("p", AuthzAction.Allow, null);
    r.principals.push("spiffe://x");
    q.rules.push(r);
    expect(q.needsPeer()).toBe(true);
  });
});
