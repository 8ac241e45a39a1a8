import { AuthzPolicy } from "../../../assembly/policy/authz";
import { RateLimitPolicy } from "../../../assembly/policy/ratelimit";
import { Route, RouteTable, Destination } from "../../../assembly/route/match";
import { AttributeMatch, MatchKind } from "../../../assembly/route/condition";
import { pickDestination, Xorshift32 } from "../../../assembly/route/pick";
import { Metadata, KeyValue } from "../../../assembly/core/metadata";
import { FaultPolicy } from "../../../assembly/policy/fault";
import { Regex } from "../../../assembly/util/regex";

function meta(method: string, service: string | null = null): Metadata {
  const m = new Metadata();
  m.set("method", method);
  if (service != null) m.set("service", service);
  return m;
}

function route(name: string, matches: AttributeMatch[]): Route {
  const r = new Route(name);
  r.matches = matches;
  r.destinations.push(new Destination(name, 1));
  r.totalWeight = 1;
  return r;
}

function split(): Route {
  const r = new Route("split");
  r.destinations.push(new Destination("v1", 20));
  r.destinations.push(new Destination("v2", 80));
  r.totalWeight = 100;
  return r;
}

describe("attribute match", () => {
  it("matches exact, prefix, present and full-match regex", () => {
    expect(new AttributeMatch("method", MatchKind.Exact, "sayHello").matches(meta("sayHello"))).toBe(true);
    expect(new AttributeMatch("method", MatchKind.Exact, "sayHello").matches(meta("sayHelloX"))).toBe(false);
    expect(new AttributeMatch("method", MatchKind.Prefix, "say").matches(meta("sayHello"))).toBe(true);
    expect(new AttributeMatch("method", MatchKind.Prefix, "Say").matches(meta("sayHello"))).toBe(false);
    expect(new AttributeMatch("service", MatchKind.Present, "").matches(meta("x", "Greeter"))).toBe(true);
    expect(new AttributeMatch("service", MatchKind.Present, "").matches(meta("x"))).toBe(false);
    const re = new AttributeMatch("method", MatchKind.Regex, "say.*");
    re.regex = Regex.compile("say.*");
    expect(re.matches(meta("sayHello"))).toBe(true);
    expect(re.matches(meta("xsayHello"))).toBe(false);
  });

  it("never matches an absent key, even with an empty exact value", () => {
    expect(new AttributeMatch("group", MatchKind.Exact, "").matches(meta("x"))).toBe(false);
  });
});

describe("route table", () => {
  it("takes the first route whose conditions all hold", () => {
    const t = new RouteTable();
    t.routes.push(route("both", [new AttributeMatch("method", MatchKind.Exact, "a"), new AttributeMatch("service", MatchKind.Exact, "S")]));
    t.routes.push(route("method", [new AttributeMatch("method", MatchKind.Exact, "a")]));
    t.routes.push(route("any", []));
    expect(t.find(meta("a", "S"))).toBe(0);
    expect(t.find(meta("a", "T"))).toBe(1);
    expect(t.find(meta("b"))).toBe(2);
  });

  it("finds nothing when no route matches", () => {
    const t = new RouteTable();
    t.routes.push(route("method", [new AttributeMatch("method", MatchKind.Exact, "a")]));
    expect(t.find(meta("b"))).toBe(-1);
  });
});

describe("weighted pick", () => {
  it("maps the random range onto weights", () => {
    const r = split();
    expect(pickDestination(r, 0)).toBe(0);
    expect(pickDestination(r, <u32>(0.19 * 4294967296.0))).toBe(0);
    expect(pickDestination(r, <u32>(0.21 * 4294967296.0))).toBe(1);
    expect(pickDestination(r, 0xffffffff)).toBe(1);
  });

  it("never picks a zero-weight destination", () => {
    const r = new Route("z");
    r.destinations.push(new Destination("never", 0));
    r.destinations.push(new Destination("always", 5));
    r.totalWeight = 5;
    const rng = new Xorshift32(42);
    for (let i = 0; i < 1000; i++) expect(pickDestination(r, rng.next())).toBe(1);
  });

  it("takes weights as relative: 50/40 splits 5:4 (any sum but 0, as the controller renders it)", () => {
    const r = new Route("relative");
    r.destinations.push(new Destination("a", 50));
    r.destinations.push(new Destination("b", 40));
    r.totalWeight = 90;
    expect(pickDestination(r, <u32>(0.55 * 4294967296.0))).toBe(0);
    expect(pickDestination(r, <u32>(0.56 * 4294967296.0))).toBe(1);
    const rng = new Xorshift32(777);
    let a = 0;
    for (let i = 0; i < 9000; i++) if (pickDestination(r, rng.next()) == 0) a++;
    expect(a).toBeGreaterThan(4700);
    expect(a).toBeLessThan(5300);
  });

  it("splits 20/80 within 3 points over 10000 draws", () => {
    const r = split();
    const rng = new Xorshift32(12345);
    let v1 = 0;
    for (let i = 0; i < 10000; i++) if (pickDestination(r, rng.next()) == 0) v1++;
    expect(v1).toBeGreaterThan(1700);
    expect(v1).toBeLessThan(2300);
  });
});

describe("frames that pass by their first bytes (the pass-through path)", () => {
  it("a plain route's frames pass both ways", () => {
    const r = new Route("plain");
    expect(r.passesByPrefix(true)).toBe(true);
    expect(r.passesByPrefix(false)).toBe(true);
  });

  it("a response mutation needs whole responses, and only them", () => {
    const r = new Route("tagged");
    r.responseMutation.push(new KeyValue("x-served-by", "meltemi"));
    expect(r.passesByPrefix(false)).toBe(false, "a response mutation must never be skipped");
    expect(r.passesByPrefix(true)).toBe(true);
  });

  it("a request mutation or a fault needs whole requests; authorization and rate limits do not", () => {
    const r = new Route("mutated");
    r.requestMutation.push(new KeyValue("tenant", "acme"));
    expect(r.passesByPrefix(true)).toBe(false);
    expect(r.passesByPrefix(false)).toBe(true);
    const faulty = new Route("faulty");
    faulty.fault = new FaultPolicy();
    expect(faulty.passesByPrefix(true)).toBe(false);
    const guarded = new Route("guarded");
    guarded.authz = new AuthzPolicy();
    guarded.rateLimit = new RateLimitPolicy();
    expect(guarded.passesByPrefix(true)).toBe(true, "they decide from metadata; a refused request takes the whole path");
  });
});
