import { HoldQueue } from "../../../assembly/core/hold-queue";

function read(n: i32, fill: u8): Uint8Array {
  const b = new Uint8Array(n);
  b.fill(fill);
  return b;
}

describe("HoldQueue", () => {
  it("holds each read until its own time, never before the read ahead of it", () => {
    const q = new HoldQueue();
    expect(q.push(read(2, 1), 100)).toBe(100);
    expect(q.push(read(3, 2), 50)).toBe(100); // behind a read held until 100
    expect(q.push(read(1, 3), 300)).toBe(300);
    expect(q.length).toBe(3);
    expect(q.bytes).toBe(6);
    expect(q.nextDue()).toBe(100);
    expect(q.dueCount(99)).toBe(0);
    expect(q.dueCount(100)).toBe(2);
    const out = q.take(2);
    expect(out.length).toBe(5);
    expect(out[0]).toBe(1);
    expect(out[4]).toBe(2);
    expect(q.length).toBe(1);
    expect(q.bytes).toBe(1);
    expect(q.nextDue()).toBe(300);
  });

  it("queues an empty read only into an empty queue (it still marks the hold)", () => {
    const q = new HoldQueue();
    expect(q.push(new Uint8Array(0), 10)).toBe(10);
    expect(q.length).toBe(1);
    expect(q.nextDue()).toBe(10);
    expect(q.push(new Uint8Array(0), 20)).toBe(20);
    expect(q.length).toBe(1);
    expect(q.nextDue()).toBe(10);
  });

  it("makes every read wait for the last one after the client's end of stream", () => {
    const q = new HoldQueue();
    q.push(read(1, 1), 10);
    q.push(read(1, 2), 40);
    q.holdAllUntilLast();
    expect(q.dueCount(39)).toBe(0);
    expect(q.dueCount(40)).toBe(2);
  });
});
