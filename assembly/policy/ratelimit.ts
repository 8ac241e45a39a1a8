// Local rate limit: token buckets, as in Aeraki's MetaRouter localRateLimit. A default bucket
// plus ordered conditions, each with its own bucket; the first condition that matches decides.
//
// The bucket state is pure (refill from a clock passed in); where it lives is the caller's
// choice. Meltemi keeps it in Envoy shared data, so the limit holds for the whole Envoy process
// and not per worker thread (see policy/shared-bucket.ts).
import { Metadata } from "../core/metadata";
import { AttributeMatch, allHold } from "../route/condition";

export class BucketSpec {
  constructor(public maxTokens: u32, public tokensPerFill: u32, public fillIntervalMs: u32) {}
}

/** The state of one bucket: tokens left and when it was last refilled. */
export class BucketState {
  constructor(public tokens: u32, public lastFillMs: u64) {}
}

/**
 * Refills `state` for the time elapsed up to `nowMs`, then takes one token if there is one.
 * Returns true when the request may pass. Whole fill intervals only, as Envoy's token bucket.
 */
export function takeToken(spec: BucketSpec, state: BucketState, nowMs: u64): bool {
  if (nowMs > state.lastFillMs && spec.fillIntervalMs > 0) {
    const fills = (nowMs - state.lastFillMs) / <u64>spec.fillIntervalMs;
    if (fills > 0) {
      const added = fills * <u64>spec.tokensPerFill;
      const next = <u64>state.tokens + added;
      state.tokens = next > <u64>spec.maxTokens ? spec.maxTokens : <u32>next;
      state.lastFillMs += fills * <u64>spec.fillIntervalMs;
    }
  }
  if (state.tokens == 0) return false;
  state.tokens--;
  return true;
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
