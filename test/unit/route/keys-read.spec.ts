import { parseConfig } from "../../../assembly/route/config";
import { keysRead } from "../../../assembly/route/keys-read";

function keysOf(json: string): string[] | null {
  const r = parseConfig(Uint8Array.wrap(String.UTF8.encode(json)));
  expect(r.config).not.toBeNull(r.error);
  return keysRead(r.config!);
}

describe("keysRead: the metadata keys a config reads", () => {
  it("collects route matches, authorization rules and rate-limit conditions, once each", () => {
    const keys = keysOf('{"codec":"dubbo","routes":[' +
      '{"name":"a","match":{"attributes":{"method":{"exact":"sayHello"},"interface":{"prefix":"dev."}}},"route":[{"cluster":"c"}],' +
      '"authorization":{"defaultAction":"DENY","rules":[{"name":"r","action":"ALLOW","match":{"attributes":{"x-tenant":{"exact":"blue"}}}}]}},' +
      '{"name":"b","match":{"attributes":{"method":{"exact":"other"}}},"route":[{"cluster":"c"}],' +
      '"localRateLimit":{"conditions":[{"match":{"attributes":{"x-user":{"exact":"alice"}}},"tokenBucket":{"maxTokens":1,"tokensPerFill":1,"fillIntervalMs":1000}}]}}]}');
    expect(keys).not.toBeNull();
    expect(keys!.join(",")).toBe("method,interface,x-tenant,x-user");
  });

  it("is empty when nothing is matched on", () => {
    expect(keysOf('{"codec":"redis","defaultCluster":"c","routes":[]}')!.length).toBe(0);
  });

  it("includes the service-wide limit's conditions", () => {
    const keys = keysOf('{"codec":"redis","defaultCluster":"c","routes":[],"localRateLimit":{"conditions":[{"match":{"attributes":{"key":{"prefix":"hot:"}}},"tokenBucket":{"maxTokens":1,"tokensPerFill":1,"fillIntervalMs":1000}}]}}');
    expect(keys!.join(",")).toBe("key");
  });

  it("is null (every key) while the access log is on: it writes them all", () => {
    expect(keysOf('{"codec":"redis","defaultCluster":"c","accessLog":true,"routes":[]}')).toBeNull();
  });
});
