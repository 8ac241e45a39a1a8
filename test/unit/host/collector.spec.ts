import { enterCallback, leaveCallback, collectionCount, dataMoved, COLLECT_BASE, COLLECT_PER_CONTEXT, COLLECT_BYTES } from "../../../assembly/host/collector";

/** `n` outermost callbacks with `contexts` live; returns the collections they ran. */
function callbacks(n: i32, contexts: i32): u64 {
  const before = collectionCount();
  for (let i = 0; i < n; i++) {
    enterCallback();
    leaveCallback(contexts);
  }
  return collectionCount() - before;
}

/** Brings the collector to "just collected": memory grew, so the next outermost callback collects. */
function justCollected(): void {
  memory.grow(1);
  expect(callbacks(1, 0)).toBe(1);
}

describe("collector", () => {
  it("never collects inside a nested callback, only as the outermost one returns", () => {
    justCollected();
    expect(callbacks(COLLECT_BASE - 1, 0)).toBe(0); // the next one is due
    const before = collectionCount();
    enterCallback();
    enterCallback(); // the host called in again from inside a host call
    leaveCallback(0);
    expect(collectionCount()).toBe(before);
    leaveCallback(0);
    expect(collectionCount()).toBe(before + 1);
  });

  it("collects every COLLECT_BASE + COLLECT_PER_CONTEXT x contexts outermost callbacks", () => {
    justCollected();
    const every = COLLECT_BASE + COLLECT_PER_CONTEXT * 10;
    expect(callbacks(every - 1, 10)).toBe(0);
    expect(callbacks(1, 10)).toBe(1);
    expect(callbacks(3 * every, 10)).toBe(3);
  });

  it("collects at once when memory grew since the last collection", () => {
    justCollected();
    expect(callbacks(10, 0)).toBe(0);
    memory.grow(1);
    expect(callbacks(1, 0)).toBe(1);
    expect(callbacks(10, 0)).toBe(0);
  });

  it("collects once COLLECT_BYTES of connection data have crossed, before the count is due", () => {
    justCollected();
    dataMoved(COLLECT_BYTES - 1);
    expect(callbacks(1, 0)).toBe(0);
    dataMoved(1);
    expect(callbacks(1, 0)).toBe(1);
    // The count starts over with the collection: the next is COLLECT_BYTES or COLLECT_BASE away.
    dataMoved(COLLECT_BYTES / 2);
    expect(callbacks(COLLECT_BASE - 1, 0)).toBe(0);
  });
});
