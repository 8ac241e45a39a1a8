// Token buckets kept in Envoy shared data, so a rate limit holds for the whole Envoy process
// rather than per worker thread (each worker runs its own VM). A worker takes a few tokens per
// update when the bucket has plenty (a Lease) and spends them without touching shared data. Updates use compare-and-swap,
// retried a few times under contention; if contention persists, the request passes (failing
// open on our own bookkeeping is kinder than rejecting traffic for it) and is counted in
// ratelimit_contended, so a limit that let requests through this way leaves a trace.
import * as abi from "../host/abi";
import { BucketSpec, BucketState, Lease, LeaseAnswer, takeLease } from "./ratelimit";

const STATE_BYTES = 12; // u32 tokens, u64 lastFillMs (little endian)
const MAX_TRIES = 8;

export class SharedBuckets {
  private scratch: Uint8Array = new Uint8Array(STATE_BYTES);
  private state: BucketState = new BucketState(0, 0);
  /**
   * Counter for CAS conflicts that outlasted MAX_TRIES (the request was let through): the stat
   * ratelimit_contended, set by PluginRoot.configure (0: not counted).
   */
  contendedMetric: u32 = 0;

  /**
   * Takes one token for a request from `lease`, or else from the bucket under `key` (UTF-8),
   * leasing a few more with it when the bucket has plenty (ratelimit.ts leaseSize); true when
   * the request may pass. A bucket the lease knows dry refuses without shared data.
   */
  take(key: ArrayBuffer, spec: BucketSpec, nowMs: u64, lease: Lease): bool {
    const known = lease.use(nowMs);
    if (known != LeaseAnswer.Ask) return known == LeaseAnswer.Pass;
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const current = abi.getSharedData(key);
      const cas = abi.sharedCas;
      const st = this.state;
      if (current == null || current.length != STATE_BYTES) {
        st.tokens = spec.maxTokens;
        st.lastFillMs = nowMs;
      } else {
        st.tokens = load<u32>(current.dataStart);
        st.lastFillMs = load<u64>(current.dataStart + 4);
      }
      const granted = takeLease(spec, st, nowMs);
      store<u32>(this.scratch.dataStart, st.tokens);
      store<u64>(this.scratch.dataStart + 4, st.lastFillMs);
      if (abi.setSharedData(key, this.scratch, cas) == abi.Status.Ok) {
        lease.hold(granted, spec, st);
        return granted > 0;
      }
    }
    // Rare (eight lost races in a row), so counted at once rather than batched per callback.
    if (this.contendedMetric != 0) abi.incrementMetric(this.contendedMetric, 1);
    return true;
  }
}
