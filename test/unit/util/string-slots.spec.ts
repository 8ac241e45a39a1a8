import { StringSlots, SLOT_BYTES } from "../../../assembly/util/string-slots";

function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

describe("StringSlots", () => {
  it("says a slot's bytes start the given bytes only when all of them are there and equal", () => {
    const slots = new StringSlots(2);
    const kept = utf8("abc");
    expect(slots.prefixOf(0, kept.dataStart, kept.length)).toBe(0); // empty
    slots.keep(0, kept.dataStart, 3, "s", "abc");
    const longer = utf8("abcdef");
    expect(slots.prefixOf(0, longer.dataStart, longer.length)).toBe(3);
    expect(slots.prefixOf(0, longer.dataStart, 2)).toBe(0); // cut short
    const other = utf8("abd");
    expect(slots.prefixOf(0, other.dataStart, 3)).toBe(0);
    expect(slots.first(0)).toBe("s");
    expect(slots.second(0)).toBe("abc");
    expect(slots.prefixOf(1, longer.dataStart, longer.length)).toBe(0); // the other slot is empty
  });

  it("empties a slot given an encoding it cannot keep", () => {
    const slots = new StringSlots(1);
    const a = utf8("abc");
    slots.keep(0, a.dataStart, 3, null, "abc");
    const long = utf8("x".repeat(SLOT_BYTES + 1));
    slots.keep(0, long.dataStart, long.length, null, "long");
    expect(slots.prefixOf(0, a.dataStart, 3)).toBe(0);
    expect(slots.prefixOf(0, long.dataStart, long.length)).toBe(0);
  });
});
