import { parseConfig, NoRoutePolicy, MismatchPolicy, DEFAULT_MAX_FRAME_BYTES, DEFAULT_FIRST_REQUEST_TIMEOUT_MS } from "../../../assembly/route/config";

function parse(json: string): string {
  const r = parseConfig(Uint8Array.wrap(String.UTF8.encode(json)));
  return r.config != null ? "ok" : r.error;
}

describe("plugin config", () => {
  it("accepts a minimal config with defaults", () => {
    const r = parseConfig(Uint8Array.wrap(String.UTF8.encode('{"codec":"thrift","routes":[{"name":"a","route":[{"cluster":"c"}]}]}')));
    expect(r.error).toBe("");
    const c = r.config!;
    expect(c.statPrefix).toBe("meltemi");
    expect(c.service).toBe("");
    expect(c.maxFrameBytes).toBe(DEFAULT_MAX_FRAME_BYTES);
    expect(c.firstRequestTimeoutMs).toBe(DEFAULT_FIRST_REQUEST_TIMEOUT_MS);
    expect(DEFAULT_FIRST_REQUEST_TIMEOUT_MS).toBe(10000);
    expect(c.noRoute).toBe(NoRoutePolicy.Reject);
    expect(c.mismatch).toBe(MismatchPolicy.Keep);
    expect(c.table.routes.length).toBe(1);
    expect(c.table.routes[0].destinations[0].cluster).toBe("c");
  });

  it("reads service, the meltemi_service label of every metric", () => {
    const r = parseConfig(Uint8Array.wrap(String.UTF8.encode('{"codec":"thrift","service":"greeter.shop.svc.cluster.local","routes":[]}')));
    expect(r.config!.service).toBe("greeter.shop.svc.cluster.local");
  });

  it("defaults noRoute to default when defaultCluster is set", () => {
    const r = parseConfig(Uint8Array.wrap(String.UTF8.encode('{"codec":"thrift","defaultCluster":"d","routes":[]}')));
    expect(r.config!.noRoute).toBe(NoRoutePolicy.Default);
  });

  it("reads firstRequestTimeoutMs (0 turns it off)", () => {
    const r = parseConfig(Uint8Array.wrap(String.UTF8.encode('{"codec":"thrift","firstRequestTimeoutMs":250,"routes":[]}')));
    expect(r.config!.firstRequestTimeoutMs).toBe(250);
    const off = parseConfig(Uint8Array.wrap(String.UTF8.encode('{"codec":"thrift","firstRequestTimeoutMs":0,"routes":[]}')));
    expect(off.config!.firstRequestTimeoutMs).toBe(0);
    expect(parse('{"codec":"thrift","firstRequestTimeoutMs":-1,"routes":[]}')).toBe("firstRequestTimeoutMs: expected an integer in [0, 86400000], got -1");
    expect(parse('{"codec":"thrift","firstRequestTimeoutMs":"10s","routes":[]}')).toBe('firstRequestTimeoutMs: expected an integer in [0, 86400000], got "10s"');
  });

  it("names the bad field", () => {
    expect(parse('{"routes":[]}')).toBe("codec: required field is missing");
    expect(parse('{"codec":"smtp","routes":[]}')).toBe('codec: unknown codec "smtp" (known: thrift, dubbo, redis)');
    expect(parse('{"codec":"thrift","routes":[],"colour":1}')).toBe('<root>: unknown field "colour"');
    expect(parse('{"codec":"thrift","codecOptions":{"transport":"pigeon"},"routes":[]}')).toBe('codecOptions.transport: expected auto, framed, unframed or header, got "pigeon"');
    expect(parse('{"codec":"thrift","routes":[{"name":"a","route":[{"cluster":"x","weight":1},{"cluster":"y"}]}]}')).toBe("routes[0].route[1].weight: required when a route has several destinations");
    expect(parse('{"codec":"thrift","routes":[{"name":"a","route":[{"cluster":"x","weight":0},{"cluster":"y","weight":0}]}]}')).toBe("routes[0].route: weights add up to 0");
    // Weights are relative: any sum but 0 (the controller renders what the MetaRouter says).
    const relative = parseConfig(Uint8Array.wrap(String.UTF8.encode('{"codec":"thrift","routes":[{"name":"a","route":[{"cluster":"x","weight":50},{"cluster":"y","weight":40}]}]}')));
    expect(relative.error).toBe("");
    expect(relative.config!.table.routes[0].totalWeight).toBe(90);
    expect(parse('{"codec":"thrift","routes":[{"name":"a","route":[{"cluster":"x","weight":-1}]}]}')).toBe("routes[0].route[0].weight: expected an integer in [0, 1000000], got -1");
    expect(parse('{"codec":"thrift","routes":[{"name":"a","match":{"attributes":{"method":{"regex":"(a"}}},"route":[{"cluster":"x"}]}]}').startsWith("routes[0].match.attributes.method.regex: ")).toBe(true);
    expect(parse('{"codec":"thrift","routes":[{"name":"a","match":{"attributes":{"method":{"exact":"x","prefix":"y"}}},"route":[{"cluster":"x"}]}]}')).toBe("routes[0].match.attributes.method: expected only one of exact, prefix, regex");
    expect(parse('{"codec":"thrift","routes":[{"name":"a","route":[{"cluster":"x"}]},{"name":"a","route":[{"cluster":"y"}]}]}')).toBe('routes[1].name: duplicate route name "a"');
    expect(parse('{"codec":"thrift","routes":[{"name":"a b","route":[{"cluster":"x"}]}]}')).toBe("routes[0].name: expected letters, digits, '_', '.' or '-', got \"a b\"");
    expect(parse('{"codec":"thrift","noRoute":"default","routes":[]}')).toBe('noRoute: "default" needs defaultCluster to be set');
    expect(parse('{"codec":"thrift","routes":[{"name":"a","route":[{"cluster":"x"}],"requestMutation":[{"key":"k","value":"v"}]}]}')).toBe("routes[0].requestMutation: codec thrift cannot carry key/values unless codecOptions.transport is header (THeader key/values)");
    expect(parse('{"codec":"thrift","codecOptions":{"transport":"header"},"routes":[{"name":"a","route":[{"cluster":"x"}],"requestMutation":[{"key":"k","value":"v"}]}]}')).toBe("ok", "THeader frames carry key/values");
    expect(parse('{"codec":"thrift","maxFrameBytes":1,"routes":[]}')).toBe("maxFrameBytes: expected an integer in [16, 67108864], got 1");
    expect(parse('{"codec":"thrift","statPrefix":"a.b","routes":[]}')).toBe('statPrefix: expected letters, digits and _ only, got "a.b"');
    expect(parse('{"codec":"thrift","service":"a b","routes":[]}')).toBe('service: expected letters, digits, \'_\', \'.\' or \'-\', got "a b"');
    expect(parse('{"codec":"thrift","service":"","routes":[]}')).toBe('service: expected letters, digits, \'_\', \'.\' or \'-\', got ""');
    expect(parse("{\"codec\":\"thrift\",")).toBe("invalid JSON: expected a string key at offset 18");
  });
});
