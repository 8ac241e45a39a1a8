import { parseConfig } from "../../../assembly/route/config";
import { parseIp } from "../../../assembly/policy/cidr";

function config(scope: string): string {
  return '{"codec":"thrift","scope":' + scope + ',"routes":[]}';
}

function parse(json: string): string {
  const r = parseConfig(Uint8Array.wrap(String.UTF8.encode(json)));
  return r.config != null ? "ok" : r.error;
}

describe("scope", () => {
  it("admits everything when not set", () => {
    const c = parseConfig(Uint8Array.wrap(String.UTF8.encode('{"codec":"thrift","routes":[]}'))).config!;
    expect(c.scope.isSet()).toBe(false);
    expect(c.scope.admits(null, null)).toBe(true);
  });

  it("admits the service's addresses and filter chains, and nothing else", () => {
    const c = parseConfig(Uint8Array.wrap(String.UTF8.encode(config('{"destinations":["10.96.0.12","fd00::/64"],"filterChains":["outbound|9090||greeter.demo.svc.cluster.local"]}')))).config!;
    expect(c.scope.admits(parseIp("10.96.0.12:9090"), null)).toBe(true);
    expect(c.scope.admits(parseIp("[fd00::7]:9090"), null)).toBe(true);
    expect(c.scope.admits(parseIp("10.96.0.13:9090"), null)).toBe(false);
    expect(c.scope.admits(null, "outbound|9090||greeter.demo.svc.cluster.local")).toBe(true);
    expect(c.scope.admits(parseIp("10.96.0.99:9090"), "outbound|9090||other.demo.svc.cluster.local")).toBe(false);
    expect(c.scope.admits(null, null)).toBe(false);
  });

  it("names bad scope fields", () => {
    expect(parse(config('{"destinations":["10.0.0.1:80"]}'))).toBe('scope.destinations[0]: expected an IP address or CIDR range, got "10.0.0.1:80"');
    expect(parse(config("{}"))).toBe("scope: expected destinations or filterChains");
    expect(parse(config('{"hosts":["x"]}'))).toBe('scope: unknown field "hosts"');
    expect(parse(config('{"filterChains":[1]}'))).toBe("scope.filterChains[0]: expected a string, got 1");
  });
});
