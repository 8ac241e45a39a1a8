// Weighted destination choice. Randomness comes in as an argument, so tests can pin it.
import { Route } from "./match";

/** Index of the destination that `rand` (uniform over u32) selects, in proportion to weight. */
export function pickDestination(route: Route, rand: u32): i32 {
  const ds = route.destinations;
  if (ds.length == 1 || route.totalWeight == 0) return 0;
  // Scale rand into [0, totalWeight) without modulo bias beyond 2^-32.
  const point = <u32>((<u64>rand * <u64>route.totalWeight) >> 32);
  let acc: u32 = 0;
  for (let i = 0, n = ds.length; i < n; i++) {
    acc += unchecked(ds[i]).weight;
    if (point < acc) return i;
  }
  return ds.length - 1;
}

/** xorshift32: small, fast, and good enough to split traffic; seeded from the host clock. */
export class Xorshift32 {
  private state: u32;

  constructor(seed: u32) {
    this.state = seed != 0 ? seed : 0x9e3779b9;
  }

  next(): u32 {
    let x = this.state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    this.state = x;
    return x;
  }
}
