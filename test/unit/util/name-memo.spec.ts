import { NameMemo, NAME_MEMO_SIZE, NAME_MEMO_BYTES } from "../../../assembly/util/name-memo";

function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

describe("NameMemo", () => {
  it("finds a name by its bytes and gives back the strings remembered with it", () => {
    const m = new NameMemo();
    const a = utf8("Greeter:sayHello");
    expect(m.find(a.dataStart, a.length)).toBe(false);
    m.remember(a.dataStart, a.length, "Greeter", "sayHello");
    m.remember(utf8("echo").dataStart, 4, null, "echo");
    const again = utf8("Greeter:sayHello"); // other bytes, same content
    expect(m.find(again.dataStart, again.length)).toBe(true);
    expect(m.first).toBe("Greeter");
    expect(m.second).toBe("sayHello");
    const echo = utf8("echo");
    expect(m.find(echo.dataStart, echo.length)).toBe(true);
    expect(m.first).toBeNull();
    expect(m.second).toBe("echo");
  });

  it("tells apart names that differ in one byte or in length", () => {
    const m = new NameMemo();
    const a = utf8("sayHello");
    m.remember(a.dataStart, a.length, null, "sayHello");
    const b = utf8("sayHellp");
    expect(m.find(b.dataStart, b.length)).toBe(false);
    expect(m.find(a.dataStart, a.length - 1)).toBe(false);
  });

  it("forgets the oldest first and does not remember names over NAME_MEMO_BYTES", () => {
    const m = new NameMemo();
    for (let i = 0; i <= NAME_MEMO_SIZE; i++) {
      const n = utf8("m" + i.toString());
      m.remember(n.dataStart, n.length, null, "m" + i.toString());
    }
    const first = utf8("m0");
    expect(m.find(first.dataStart, first.length)).toBe(false);
    const last = utf8("m" + NAME_MEMO_SIZE.toString());
    expect(m.find(last.dataStart, last.length)).toBe(true);
    const long = utf8("x".repeat(NAME_MEMO_BYTES + 1));
    m.remember(long.dataStart, long.length, null, "long");
    expect(m.second).toBe("long");
    expect(m.find(long.dataStart, long.length)).toBe(false);
  });

  it("never finds an empty name", () => {
    const m = new NameMemo();
    const a = utf8("a");
    m.remember(a.dataStart, 0, null, "");
    expect(m.find(a.dataStart, 0)).toBe(false);
  });
});
