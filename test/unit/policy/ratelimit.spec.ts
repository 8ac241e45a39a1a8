import { BucketSpec, BucketState, takeTokens, RateLimitPolicy, RateLimitCondition, Lease, LeaseAnswer, takeLease, leaseSize, MAX_LEASE, LEASE_SHARE } from "../../../assembly/policy/ratelimit";
import { AttributeMatch, MatchKind } from "../../../assembly/route/condition";
import { Metadata } from "../../../assembly/core/metadata";

function meta(method: string): Metadata {
  const m = new Metadata();
  m.set("method", method);
  return m;
}

/** Takes one token at `nowMs`, if there is one. */
function takeToken(spec: BucketSpec, state: BucketState, nowMs: u64): bool {
  return takeTokens(spec, state, nowMs, 1) == 1;
}

/** Takes `n` tokens at `nowMs`, one at a time, and returns how many were granted. */
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

describe("rate limit: the bucket", () => {
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

/**
 * One worker's request as SharedBuckets.take makes it, against `shared` (the bucket as Envoy's
 * shared data holds it, updated without contention): its lease first, else the bucket.
 */
function request(spec: BucketSpec, shared: BucketState, lease: Lease, nowMs: u64): bool {
  const known = lease.use(nowMs);
  if (known != LeaseAnswer.Ask) return known == LeaseAnswer.Pass;
  const granted = takeLease(spec, shared, nowMs);
  lease.hold(granted, spec, shared);
  return granted > 0;
}

/** How many of `n` requests of one worker pass at `nowMs`. */
function requests(spec: BucketSpec, shared: BucketState, lease: Lease, nowMs: u64, n: i32): i32 {
  let passed = 0;
  for (let i = 0; i < n; i++) if (request(spec, shared, lease, nowMs)) passed++;
  return passed;
}

describe("rate limit: leases of the shared bucket", () => {
  it("leases one token at a time from a small bucket and a share, capped, from a large one", () => {
    expect(leaseSize(0)).toBe(1);
    expect(leaseSize(LEASE_SHARE * 2 - 1)).toBe(1);
    expect(leaseSize(LEASE_SHARE * 10)).toBe(10);
    expect(leaseSize(1000000)).toBe(MAX_LEASE);
  });

  it("a small limit stays exact: every request is one token of the bucket", () => {
    const spec = new BucketSpec(5, 5, 1000);
    const shared = new BucketState(5, 0);
    const a = new Lease();
    const b = new Lease();
    expect(requests(spec, shared, a, 10, 3) + requests(spec, shared, b, 10, 3)).toBe(5);
    expect(requests(spec, shared, a, 10, 1)).toBe(0);
  });

  it("two workers together never pass more than the bucket held, and one alone spends it all", () => {
    const spec = new BucketSpec(1000, 1000, 1000);
    const shared = new BucketState(1000, 0);
    const a = new Lease();
    const b = new Lease();
    let passed = 0;
    for (let i = 0; i < 600; i++) {
      if (request(spec, shared, a, 5)) passed++;
      if (request(spec, shared, b, 5)) passed++;
    }
    expect(passed <= 1000).toBe(true, "at most the bucket's 1000 tokens pass in one interval");
    // Worker a's requests alone take what b holds no more of: b's lease was its last one.
    const afterwards = requests(spec, shared, a, 6, 2000);
    expect(passed + afterwards + <i32>b.tokens).toBe(1000, "every token passes a request or sits in b's lease");
  });

  it("a lease lapses at the bucket's next refill, so a refilled bucket bursts no more than maxTokens", () => {
    const spec = new BucketSpec(640, 640, 1000);
    const shared = new BucketState(640, 0);
    const lease = new Lease();
    expect(request(spec, shared, lease, 0)).toBe(true);
    expect(lease.tokens).toBe(39, "640 / 16 leased, one spent");
    expect(lease.use(999)).toBe(LeaseAnswer.Pass);
    expect(lease.use(1000)).toBe(LeaseAnswer.Ask, "lapsed at the refill");
    expect(requests(spec, shared, lease, 1000, 1000)).toBe(640);
  });

  it("a bucket found dry is refused without asking it again until its refill", () => {
    const spec = new BucketSpec(1, 1, 1000);
    const shared = new BucketState(1, 0);
    const lease = new Lease();
    expect(request(spec, shared, lease, 0)).toBe(true);
    expect(request(spec, shared, lease, 1)).toBe(false);
    expect(lease.use(500)).toBe(LeaseAnswer.Refuse);
    expect(lease.use(1000)).toBe(LeaseAnswer.Ask);
    expect(request(spec, shared, lease, 1000)).toBe(true);
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
