import { PairMemo, PAIR_MEMO_SIZE } from "../../../assembly/util/pair-memo";

describe("PairMemo", () => {
  it("finds what it remembers by both strings' contents, not their identity", () => {
    const m = new PairMemo();
    expect(m.find("", "GET")).toBe(-1);
    m.remember("", "GET", 3);
    m.remember("svc", "GET", 5);
    expect(m.find("", "GET")).toBe(3);
    expect(m.find("svc", "GE" + "T")).toBe(5);
    expect(m.find("svc", "SET")).toBe(-1);
    expect(m.find("other", "GET")).toBe(-1);
  });

  it("forgets the oldest entry first", () => {
    const m = new PairMemo();
    for (let i = 0; i <= PAIR_MEMO_SIZE; i++) m.remember("s", "op" + i.toString(), i);
    expect(m.find("s", "op0")).toBe(-1);
    for (let i = 1; i <= PAIR_MEMO_SIZE; i++) expect(m.find("s", "op" + i.toString())).toBe(i);
  });
});
