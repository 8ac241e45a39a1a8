// Fault injection: abort a request with the protocol's error, or delay it. Decisions take the
// random draw as an argument so tests can pin them.

/** Percentages are kept in millionths so that 0.01 % is exact. */
export const PERCENT_SCALE: u32 = 1000000;

/** True when a uniform u32 draw falls inside `perMillion` millionths. */
export function rolls(perMillion: u32, rand: u32): bool {
  if (perMillion >= PERCENT_SCALE) return true;
  if (perMillion == 0) return false;
  return <u32>((<u64>rand * <u64>PERCENT_SCALE) >> 32) < perMillion;
}

export class FaultPolicy {
  abortPerMillion: u32 = 0;
  abortMessage: string = "meltemi: fault injected";
  delayPerMillion: u32 = 0;
  delayMs: u32 = 0;

  hasAbort(): bool {
    return this.abortPerMillion > 0;
  }

  hasDelay(): bool {
    return this.delayPerMillion > 0 && this.delayMs > 0;
  }
}
