import { InFlight } from "../../../assembly/core/inflight";

function reply(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

describe("InFlight: requests waiting for their answer", () => {
  it("takes entries by id in any order and keeps the oldest first", () => {
    const f = new InFlight(16);
    for (let i: u64 = 1; i <= 4; i++) expect(f.add(i, <i32>i, i * 100)).toBe(true);
    expect(f.oldestStart()).toBe(100);
    const third = f.take(3)!;
    expect(third.id).toBe(3);
    expect(third.route).toBe(3);
    expect(f.take(1)!.start).toBe(100);
    expect(f.oldestStart()).toBe(200);
    expect(f.take(3)).toBeNull("taken once");
    expect(f.size).toBe(2);
  });

  it("reuses entries without mixing their fields: a taken entry stays valid until the next take", () => {
    const f = new InFlight(16);
    f.add(1, 0, 10, reply("local"), reply("\"id\":1"), 7);
    const a = f.take(1)!;
    f.add(2, 1, 20); // may not reuse `a` yet: it was the last one taken
    expect(a.id).toBe(1);
    expect(a.reply).not.toBeNull();
    expect(a.op).toBe(7);
    const b = f.take(2)!;
    expect(b.id).toBe(2);
    expect(b.reply).toBeNull("no leftover local reply");
    expect(b.note).toBeNull("no leftover access-log note");
    expect(b.op).toBe(-1);
    // `a` is spare now: the next add refills it with its own values only.
    f.add(3, 2, 30);
    const c = f.take(3)!;
    expect(c.id).toBe(3);
    expect(c.route).toBe(2);
    expect(c.start).toBe(30);
    expect(c.reply).toBeNull();
  });

  it("refuses past its limit", () => {
    const f = new InFlight(2);
    expect(f.add(1, 0, 0)).toBe(true);
    expect(f.add(2, 0, 0)).toBe(true);
    expect(f.add(3, 0, 0)).toBe(false);
    f.take(1);
    expect(f.add(3, 0, 0)).toBe(true);
  });
});
