import { Stats } from "../../assembly/stats";
import { Route } from "../../assembly/route/match";

function stats(): Stats {
  return new Stats("meltemi", "svc", new Array<Route>(), "default", "");
}

describe("Stats: counts held in the VM", () => {
  it("are sent as the callback ends when no request is in flight", () => {
    const s = stats();
    s.later(s.noRoute, 1);
    expect(s.holding).toBe(true);
    expect(s.settle()).toBe(false);
    expect(s.holding).toBe(false);
  });

  it("wait while requests are in flight and go out once none is", () => {
    const s = stats();
    s.inFlight(2);
    expect(s.settle()).toBe(true, "two requests in flight: held for the tick");
    s.inFlight(-1);
    s.later(s.noRoute, 1);
    expect(s.settle()).toBe(true, "one still in flight");
    s.inFlight(-1);
    expect(s.settle()).toBe(false);
    expect(s.holding).toBe(false);
  });

  it("go out on flush whatever is in flight (the tick, a new config, the root going away)", () => {
    const s = stats();
    s.inFlight(1);
    s.later(s.noRoute, 3);
    s.flush();
    expect(s.holding).toBe(false);
    expect(s.settle()).toBe(false, "nothing left to send");
  });

  it("with nothing held, settling asks for no tick even with requests in flight", () => {
    const s = stats();
    s.inFlight(1);
    s.flush();
    expect(s.settle()).toBe(false);
  });
});
