import { describe as describeMeta } from "../../../assembly/engine/exchange";
import { Metadata } from "../../../assembly/core/metadata";

describe("log-line metadata", () => {
  it("writes each key=value in the order the codec found them", () => {
    const m = new Metadata();
    m.set("interface", "dev.meltemi.demo.GreetService");
    m.set("id", "42");
    expect(describeMeta(m)).toBe("interface=dev.meltemi.demo.GreetService id=42");
  });
});
