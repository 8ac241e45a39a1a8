// Local rate limit: token buckets, as in Aeraki's MetaRouter localRateLimit. A default bucket
// plus ordered conditions, each with its own bucket; the first condition that matches decides.
//
// The bucket state is pure (refill from a clock passed in); where it lives is the caller's
// choice. Meltemi keeps it in Envoy shared data, so the limit holds for the whole Envoy process
// and not per worker thread (see policy/shared-bucket.ts), and each worker leases a few tokens
// at a time from it (Lease), so that most requests touch no shared data.
import { Metadata } from "../core/metadata";
import { AttributeMatch, allHold } from "../route/condition";

export class BucketSpec {
  constructor(public maxTokens: u32, public tokensPerFill: u32, public fillIntervalMs: u32) {}
}

/** The state of one bucket: tokens left and when it was last refilled. */
export class BucketState {
  constructor(public tokens: u32, public lastFillMs: u64) {}
}

/** Refills `state` for whole fill intervals elapsed up to `nowMs` (as Envoy's token bucket). */
export function refill(spec: BucketSpec, state: BucketState, nowMs: u64): void {
  if (nowMs <= state.lastFillMs || spec.fillIntervalMs == 0) return;
  const fills = (nowMs - state.lastFillMs) / <u64>spec.fillIntervalMs;
  if (fills == 0) return;
  const next = <u64>state.tokens + fills * <u64>spec.tokensPerFill;
  state.tokens = next > <u64>spec.maxTokens ? spec.maxTokens : <u32>next;
  state.lastFillMs += fills * <u64>spec.fillIntervalMs;
}

/** Refills `state` up to `nowMs`, then takes up to `wanted` tokens; returns how many it took. */
export function takeTokens(spec: BucketSpec, state: BucketState, nowMs: u64, wanted: u32): u32 {
  refill(spec, state, nowMs);
  const granted = min(wanted, state.tokens);
  state.tokens -= granted;
  return granted;
}

/** A lease never holds more than this many of a bucket's tokens. */
export const MAX_LEASE: u32 = 64;
/** A lease takes at most this share (1/LEASE_SHARE) of the tokens the bucket has left. */
export const LEASE_SHARE: u32 = 16;

/**
 * How many tokens one worker takes from the shared bucket at once, when it has `available`:
 * a small share, so that other workers still find tokens, and 1 once the bucket runs low, so a
 * small limit is exact. Taking several per shared-data update is what keeps the limit off the
 * hot path: the shared bucket costs two host calls (a read and a compare-and-swap) per update.
 */
export function leaseSize(available: u32): u32 {
  const share = available / LEASE_SHARE;
  return share < 1 ? 1 : min(share, MAX_LEASE);
}

/**
 * Refills `state` up to `nowMs` and takes a request's token with a lease's worth more
 * (leaseSize of what the bucket holds then); returns how many it took, 0 when the bucket is dry.
 */
export function takeLease(spec: BucketSpec, state: BucketState, nowMs: u64): u32 {
  refill(spec, state, nowMs);
  return takeTokens(spec, state, nowMs, leaseSize(state.tokens));
}

/** What a worker's lease says about a request without asking the shared bucket. */
export const enum LeaseAnswer { Ask = 0, Pass = 1, Refuse = 2 }

/**
 * What a worker knows of the shared bucket until its next refill (untilMs): tokens it took
 * ahead of its requests, or that the bucket was dry. Only a refill adds tokens, so a dry bucket
 * stays dry until then. Leased tokens were taken from the bucket, so the process never admits
 * more than the limit; a lease still unused at the refill lapses, so leases never add to a
 * refilled bucket's burst. What a lease can cost is admission: tokens one worker holds while
 * another runs dry, at most a 1/LEASE_SHARE share of what was left each time.
 */
export class Lease {
  tokens: u32 = 0;
  dry: bool = false;
  untilMs: u64 = 0;

  /** Passes a request on a leased token, refuses it while the bucket is known dry, or asks. */
  use(nowMs: u64): LeaseAnswer {
    if (nowMs >= this.untilMs) return LeaseAnswer.Ask;
    if (this.dry) return LeaseAnswer.Refuse;
    if (this.tokens == 0) return LeaseAnswer.Ask;
    this.tokens--;
    return LeaseAnswer.Pass;
  }

  /** Records what takeLease took from `state` (one token is the request's own). */
  hold(granted: u32, spec: BucketSpec, state: BucketState): void {
    this.tokens = granted > 0 ? granted - 1 : 0;
    this.dry = granted == 0;
    this.untilMs = state.lastFillMs + <u64>spec.fillIntervalMs;
  }
}

export class RateLimitCondition {
  matches: AttributeMatch[] = [];
  constructor(public bucket: BucketSpec) {}
}

export class RateLimitPolicy {
  /** null: requests no condition matches are not limited. */
  defaultBucket: BucketSpec | null = null;
  conditions: RateLimitCondition[] = [];

  /** Index of the bucket that governs `meta`: a condition's index, conditions.length for the default, -1 for none. */
  bucketFor(meta: Metadata): i32 {
    const cs = this.conditions;
    for (let i = 0; i < cs.length; i++) {
      if (allHold(cs[i].matches, meta)) return i;
    }
    return this.defaultBucket != null ? cs.length : -1;
  }

  /** UTF-8 shared-data keys by bucket index, built on first use instead of once per request. */
  private keys: Array<ArrayBuffer | null> = [];
  /** This worker's lease on each bucket, by bucket index (each worker's VM has its own policies). */
  private leases: Array<Lease | null> = [];

  /** This worker's lease on bucket `index`. */
  lease(index: i32): Lease {
    while (this.leases.length <= index) this.leases.push(null);
    let l = this.leases[index];
    if (l == null) {
      l = new Lease();
      this.leases[index] = l;
    }
    return l;
  }

  /** The shared-data key of bucket `index`: meltemi.rl.<statPrefix>.<route>.<index>. */
  sharedKey(index: i32, statPrefix: string, route: string): ArrayBuffer {
    while (this.keys.length <= index) this.keys.push(null);
    let k = this.keys[index];
    if (k == null) {
      k = String.UTF8.encode("meltemi.rl." + statPrefix + "." + route + "." + index.toString());
      this.keys[index] = k;
    }
    return k;
  }

  spec(index: i32): BucketSpec {
    return index < this.conditions.length ? this.conditions[index].bucket : this.defaultBucket!;
  }
}
