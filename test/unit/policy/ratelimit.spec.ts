import { BucketSpec, BucketState, takeToken, RateLimitPolicy, RateLimitCondition } from "../../../assembly/policy/ratelimit";
import { AttributeMatch, MatchKind } from "../../../assembly/route/condition";
import { Metadata } from "../../../assembly/core/metadata";

function meta(method: string): Metadata {
  const m = new Metadata();
  m.set("method", method);
  return m;
}

/** Takes `n` tokens at `nowMs` and returns how many were granted. */
function takeMany(spec: BucketSpec, state: BucketState, nowMs: u64, n: i32): i32 {
  let granted = 0;
  for (let i = 0; i < n; i++) if (takeToken(spec, state, nowMs)) granted++;
  return granted;
}

function condition(method: string, maxTokens: u32): RateLimitCondition {
  const c = new RateLimitCondition(new BucketSpec(maxTokens, maxTokens, 1000));
  c.matches.push(new AttributeMatch("method", MatchKind.Exact, method));
  return c;
}

describe("rate limit: takeToken", () => {
  it("grants maxTokens, then refuses until an interval has passed", () => {
    const spec = new BucketSpec(5, 2, 1000);
    const st = new BucketState(5, 0);
    expect(takeMany(spec, st, 0, 8)).toBe(5);
    expect(st.tokens).toBe(0);
    expect(takeToken(spec, st, 999)).toBe(false, "999 ms is not a whole interval");
  });

  it("refills tokensPerFill per whole interval and keeps the partial interval", () => {
    const spec = new BucketSpec(5, 2, 1000);
    const st = new BucketState(0, 0);
    expect(takeMany(spec, st, 1000, 3)).toBe(2);
    expect(st.lastFillMs).toBe(1000);
    // 1.5 intervals later: one fill; the half interval counts towards the next one.
    expect(takeMany(spec, st, 2500, 3)).toBe(2);
    expect(st.lastFillMs).toBe(2000);
    expect(takeMany(spec, st, 2999, 1)).toBe(0);
    expect(takeMany(spec, st, 3000, 3)).toBe(2);
  });

  it("caps the refill at maxTokens however long the bucket was idle", () => {
    const spec = new BucketSpec(5, 2, 1000);
    const st = new BucketState(0, 0);
    expect(takeMany(spec, st, 1000000, 10)).toBe(5);
    expect(st.lastFillMs).toBe(1000000);
  });

  it("adds several fills at once after several intervals", () => {
    const spec = new BucketSpec(10, 2, 100);
    const st = new BucketState(0, 0);
    expect(takeMany(spec, st, 300, 10)).toBe(6);
  });

  it("does not refill when the clock goes backwards", () => {
    const spec = new BucketSpec(5, 5, 1000);
    const st = new BucketState(0, 5000);
    expect(takeToken(spec, st, 1000)).toBe(false);
    expect(st.lastFillMs).toBe(5000);
  });
});

describe("rate limit: bucketFor", () => {
  it("picks the first condition that matches, in order", () => {
    const p = new RateLimitPolicy();
    p.conditions.push(condition("sayHello", 1));
    p.conditions.push(condition("sayHello", 2));
    p.conditions.push(condition("echo", 3));
    expect(p.bucketFor(meta("sayHello"))).toBe(0);
    expect(p.bucketFor(meta("echo"))).toBe(2);
    expect(p.spec(2).maxTokens).toBe(3);
  });

  it("falls back to the default bucket, or to no limit without one", () => {
    const p = new RateLimitPolicy();
    p.conditions.push(condition("sayHello", 1));
    expect(p.bucketFor(meta("add"))).toBe(-1);
    p.defaultBucket = new BucketSpec(9, 9, 1000);
    expect(p.bucketFor(meta("add"))).toBe(1);
    expect(p.spec(1).maxTokens).toBe(9);
    expect(p.bucketFor(meta("sayHello"))).toBe(0);
  });

  it("requires every match of a condition", () => {
    const p = new RateLimitPolicy();
    const c = condition("sayHello", 1);
    c.matches.push(new AttributeMatch("service", MatchKind.Exact, "Greeter"));
    p.conditions.push(c);
    expect(p.bucketFor(meta("sayHello"))).toBe(-1);
    const m = meta("sayHello");
    m.set("service", "Greeter");
    expect(p.bucketFor(m)).toBe(0);
  });

  it("a condition without matches takes every request", () => {
    const p = new RateLimitPolicy();
    p.conditions.push(new RateLimitCondition(new BucketSpec(1, 1, 1000)));
    p.defaultBucket = new BucketSpec(9, 9, 1000);
    expect(p.bucketFor(meta("anything"))).toBe(0);
  });
});
