import { describe as describeMeta } from "../../../assembly/engine/exchange";
import { Metadata } from "../../../assembly/core/metadata";

describe("access-log metadata", () => {
  it("writes each key=value, and a key that is also a field of the line as meta.<key>", () => {
    const m = new Metadata();
    m.set("interface", "dev.meltemi.demo.GreetService");
    m.set("id", "42");
    m.set("status", "gold");
    expect(describeMeta(m)).toBe("interface=dev.meltemi.demo.GreetService meta.id=42 meta.status=gold");
  });
});
