import { rolls, PERCENT_SCALE, FaultPolicy } from "../../../assembly/policy/fault";
import { parseConfig } from "../../../assembly/route/config";

/** The fault policy of route 0 of a thrift config whose route carries `fault`. */
function fault(faultJson: string): FaultPolicy {
  const json = '{"codec":"thrift","routes":[{"name":"r","route":[{"cluster":"c"}],"fault":' + faultJson + "}]}";
  const r = parseConfig(Uint8Array.wrap(String.UTF8.encode(json)));
  expect(r.error).toBe("");
  return r.config!.table.routes[0].fault!;
}

describe("fault: rolls", () => {
  it("never fires at 0 %, whatever the draw", () => {
    expect(rolls(0, 0)).toBe(false);
    expect(rolls(0, 1)).toBe(false);
    expect(rolls(0, 0xffffffff)).toBe(false);
  });

  it("always fires at 100 %, whatever the draw", () => {
    expect(rolls(PERCENT_SCALE, 0)).toBe(true);
    expect(rolls(PERCENT_SCALE, 0x80000000)).toBe(true);
    expect(rolls(PERCENT_SCALE, 0xffffffff)).toBe(true);
  });

  it("fires at 25 % for exactly the lowest quarter of draws", () => {
    const quarter: u32 = 250000;
    expect(rolls(quarter, 0)).toBe(true);
    expect(rolls(quarter, 0x3fffffff)).toBe(true, "last draw inside the quarter");
    expect(rolls(quarter, 0x40000000)).toBe(false, "first draw outside the quarter");
    expect(rolls(quarter, 0xffffffff)).toBe(false);
  });

  it("fires at 0.0001 % (one millionth) only for the lowest draws", () => {
    expect(rolls(1, 0)).toBe(true);
    expect(rolls(1, 4294)).toBe(true); // 4294 * 1e6 / 2^32 = 0.99...
    expect(rolls(1, 4295)).toBe(false); // 4295 * 1e6 / 2^32 = 1.00002
  });

  it("fires for a quarter of evenly spread draws", () => {
    let fired = 0;
    for (let i: u32 = 0; i < 1024; i++) if (rolls(250000, i << 22)) fired++;
    expect(fired).toBe(256);
  });
});

describe("fault: config", () => {
  it("reads percentages as millionths", () => {
    expect(fault('{"abort":{"percentage":25}}').abortPerMillion).toBe(250000);
    expect(fault('{"abort":{"percentage":0.01}}').abortPerMillion).toBe(100);
    expect(fault('{"abort":{"percentage":0.0001}}').abortPerMillion).toBe(1);
    expect(fault('{"abort":{"percentage":100}}').abortPerMillion).toBe(PERCENT_SCALE);
  });

  it("defaults the percentage to 100 and the message to Meltemi's", () => {
    const p = fault('{"abort":{}}');
    expect(p.abortPerMillion).toBe(PERCENT_SCALE);
    expect(p.abortMessage).toBe("meltemi: fault injected");
    expect(p.hasAbort()).toBe(true);
    expect(p.hasDelay()).toBe(false);
  });

  it("keeps a custom abort message", () => {
    expect(fault('{"abort":{"message":"chaos monkey"}}').abortMessage).toBe("chaos monkey");
  });

  it("reads a delay", () => {
    const p = fault('{"delay":{"percentage":50,"fixedDelayMs":250}}');
    expect(p.delayPerMillion).toBe(500000);
    expect(p.delayMs).toBe(250);
    expect(p.hasDelay()).toBe(true);
    expect(p.hasAbort()).toBe(false);
  });

  it("treats 0 % as no fault", () => {
    const p = fault('{"abort":{"percentage":0},"delay":{"percentage":0,"fixedDelayMs":10}}');
    expect(p.hasAbort()).toBe(false);
    expect(p.hasDelay()).toBe(false);
  });
});
