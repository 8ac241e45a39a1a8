import { parseConfig, FilterConfig } from "../../../assembly/route/config";
import { explainRoute } from "../../../assembly/route/explain";
import { Metadata } from "../../../assembly/core/metadata";

function config(json: string): FilterConfig {
  const r = parseConfig(Uint8Array.wrap(String.UTF8.encode(json)));
  expect(r.error).toBe("");
  return r.config!;
}

function request(method: string): Metadata {
  const m = new Metadata();
  m.set("method", method);
  return m;
}

const TABLE = '{"codec":"thrift","defaultCluster":"d","routes":[' +
  '{"name":"reads","match":{"attributes":{"method":{"prefix":"get"},"x-tenant":{}}},"route":[{"cluster":"r1","weight":1},{"cluster":"r2","weight":3}],"timeoutMs":250},' +
  '{"name":"writes","match":{"attributes":{"method":{"regex":"(put|post)[A-Z].*"}}},"route":[{"cluster":"w"}]}]}';

describe("explainRoute", () => {
  it("tries routes in order and stops at the first whose conditions all hold", () => {
    expect(explainRoute(config(TABLE), request("putUser"))).toBe(
      '{"metadata":{"method":"putUser"},"evaluated":[' +
      '{"index":0,"name":"reads","matched":false,"conditions":[{"key":"method","kind":"prefix","value":"get","actual":"putUser","holds":false},{"key":"x-tenant","kind":"present","actual":null,"holds":false}]},' +
      '{"index":1,"name":"writes","matched":true,"conditions":[{"key":"method","kind":"regex","value":"(put|post)[A-Z].*","actual":"putUser","holds":true}]}],' +
      '"route":"writes","reason":"first route whose conditions all hold (routes[1] of 2)",' +
      '"destinations":[{"cluster":"w","weight":1,"share":1.0}],"policies":{}}');
  });

  it("gives each destination its share of the weights, and the route's policies", () => {
    const m = request("getUser");
    m.set("x-tenant", "t1");
    const e = explainRoute(config(TABLE), m);
    expect(e.includes('"route":"reads"')).toBe(true);
    expect(e.includes('"destinations":[{"cluster":"r1","weight":1,"share":0.25},{"cluster":"r2","weight":3,"share":0.75}]')).toBe(true);
    expect(e.includes('"policies":{"timeoutMs":250}')).toBe(true);
  });

  it("says what noRoute does when nothing matches", () => {
    const e = explainRoute(config(TABLE), request("delete"));
    expect(e.includes('"route":"_default","reason":"no route matched; noRoute is default, so the request goes to defaultCluster","destinations":[{"cluster":"d","weight":1,"share":1}]')).toBe(true);
    const reject = explainRoute(config('{"codec":"thrift","routes":[{"name":"a","match":{"attributes":{"method":{"exact":"x"}}},"route":[{"cluster":"c"}]}]}'), request("y"));
    expect(reject.includes('"route":null,"reason":"no route matched; noRoute is reject')).toBe(true);
  });
});
