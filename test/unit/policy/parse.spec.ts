import { parseConfig } from "../../../assembly/route/config";
import { AuthzAction } from "../../../assembly/policy/authz";
import { Route } from "../../../assembly/route/match";

/** parseConfig of a one-route thrift config whose route also has `fields`: "ok" or the error. */
function parse(fields: string): string {
  const r = parseConfig(Uint8Array.wrap(String.UTF8.encode(config(fields))));
  return r.config != null ? "ok" : r.error;
}

function route(fields: string): Route {
  const r = parseConfig(Uint8Array.wrap(String.UTF8.encode(config(fields))));
  expect(r.error).toBe("");
  return r.config!.table.routes[0];
}

function config(fields: string): string {
  return '{"codec":"thrift","routes":[{"name":"r","route":[{"cluster":"c"}],' + fields + "}]}";
}

describe("policy config: accepted", () => {
  it("reads every policy field of a route", () => {
    const r = route(
      '"fault":{"abort":{"percentage":10,"message":"no"},"delay":{"percentage":20,"fixedDelayMs":30}},' +
      '"localRateLimit":{"tokenBucket":{"maxTokens":5,"tokensPerFill":2,"fillIntervalMs":1000},' +
      '"conditions":[{"match":{"attributes":{"method":{"exact":"sayHello"}}},"tokenBucket":{"maxTokens":1,"fillIntervalMs":60000}}]},' +
      '"authorization":{"defaultAction":"DENY","rules":[{"name":"lo","action":"ALLOW","match":{"attributes":{"method":{"prefix":"say"}}},' +
      '"sources":["127.0.0.0/8","::1"],"principals":["spiffe://a"]},{"action":"DENY"}]},' +
      '"timeoutMs":1500',
    );
    const f = r.fault!;
    expect(f.abortPerMillion).toBe(100000);
    expect(f.abortMessage).toBe("no");
    expect(f.delayPerMillion).toBe(200000);
    expect(f.delayMs).toBe(30);
    const rl = r.rateLimit!;
    expect(rl.defaultBucket!.maxTokens).toBe(5);
    expect(rl.defaultBucket!.tokensPerFill).toBe(2);
    expect(rl.defaultBucket!.fillIntervalMs).toBe(1000);
    expect(rl.conditions.length).toBe(1);
    expect(rl.conditions[0].bucket.tokensPerFill).toBe(1, "tokensPerFill defaults to maxTokens");
    expect(rl.conditions[0].matches[0].value).toBe("sayHello");
    const a = r.authz!;
    expect(a.defaultAction).toBe(AuthzAction.Deny);
    expect(a.rules.length).toBe(2);
    expect(a.rules[0].name).toBe("lo");
    expect(a.rules[0].action).toBe(AuthzAction.Allow);
    expect(a.rules[0].sources.length).toBe(2);
    expect(a.rules[0].principals[0]).toBe("spiffe://a");
    expect(a.rules[1].name).toBe("rule-1", "unnamed rules are named after their index");
    expect(r.timeoutMs).toBe(1500);
  });

  it("leaves policies off when absent", () => {
    const r = route('"timeoutMs":0');
    expect(r.fault).toBeNull();
    expect(r.rateLimit).toBeNull();
    expect(r.authz).toBeNull();
    expect(r.timeoutMs).toBe(0);
  });

  it("accepts an empty authorization (defaultAction ALLOW)", () => {
    const a = route('"authorization":{}').authz!;
    expect(a.defaultAction).toBe(AuthzAction.Allow);
    expect(a.rules.length).toBe(0);
  });
});

describe("policy config: errors name the field", () => {
  it("fault", () => {
    expect(parse('"fault":1')).toBe("routes[0].fault: expected an object, got 1");
    expect(parse('"fault":{}')).toBe("routes[0].fault: expected abort or delay");
    expect(parse('"fault":{"abort":{},"kill":{}}')).toBe('routes[0].fault: unknown field "kill"');
    expect(parse('"fault":{"abort":{"percent":50}}')).toBe('routes[0].fault.abort: unknown field "percent"');
    expect(parse('"fault":{"abort":{"percentage":101}}')).toBe("routes[0].fault.abort.percentage: expected a number in [0, 100], got 101");
    expect(parse('"fault":{"abort":{"percentage":-0.5}}')).toBe("routes[0].fault.abort.percentage: expected a number in [0, 100], got -0.5");
    expect(parse('"fault":{"abort":{"percentage":"50"}}')).toBe('routes[0].fault.abort.percentage: expected a number, got "50"');
    expect(parse('"fault":{"abort":{"message":7}}')).toBe("routes[0].fault.abort.message: expected a string, got 7");
    expect(parse('"fault":{"delay":{"percentage":50}}')).toBe("routes[0].fault.delay.fixedDelayMs: required field is missing");
    expect(parse('"fault":{"delay":{"fixedDelayMs":0}}')).toBe("routes[0].fault.delay.fixedDelayMs: expected an integer in [1, 86400000], got 0");
    expect(parse('"fault":{"delay":{"fixedDelayMs":1.5}}')).toBe("routes[0].fault.delay.fixedDelayMs: expected an integer in [1, 86400000], got 1.5");
  });

  it("localRateLimit", () => {
    expect(parse('"localRateLimit":{}')).toBe("routes[0].localRateLimit: expected tokenBucket or conditions");
    expect(parse('"localRateLimit":{"conditions":[]}')).toBe("routes[0].localRateLimit: expected tokenBucket or conditions");
    expect(parse('"localRateLimit":{"conditions":{}}')).toBe("routes[0].localRateLimit.conditions: expected an array, got an object");
    expect(parse('"localRateLimit":{"tokenBucket":{"fillIntervalMs":1000}}')).toBe("routes[0].localRateLimit.tokenBucket.maxTokens: required field is missing");
    expect(parse('"localRateLimit":{"tokenBucket":{"maxTokens":5}}')).toBe("routes[0].localRateLimit.tokenBucket.fillIntervalMs: required field is missing");
    expect(parse('"localRateLimit":{"tokenBucket":{"maxTokens":0,"fillIntervalMs":1000}}')).toBe("routes[0].localRateLimit.tokenBucket.maxTokens: expected an integer in [1, 1000000000], got 0");
    expect(parse('"localRateLimit":{"tokenBucket":{"maxTokens":5,"tokensPerFill":0,"fillIntervalMs":1000}}')).toBe("routes[0].localRateLimit.tokenBucket.tokensPerFill: expected an integer in [1, 1000000000], got 0");
    expect(parse('"localRateLimit":{"tokenBucket":{"maxTokens":5,"fillIntervalMs":0}}')).toBe("routes[0].localRateLimit.tokenBucket.fillIntervalMs: expected an integer in [1, 86400000], got 0");
    expect(parse('"localRateLimit":{"tokenBucket":{"maxTokens":5,"fillIntervalMs":1000,"burst":3}}')).toBe('routes[0].localRateLimit.tokenBucket: unknown field "burst"');
    expect(parse('"localRateLimit":{"conditions":[{"match":{"attributes":{"method":{"exact":"a"}}}}]}')).toBe("routes[0].localRateLimit.conditions[0].tokenBucket: required field is missing");
    expect(parse('"localRateLimit":{"conditions":[{"tokenBucket":{"maxTokens":1,"fillIntervalMs":1},"match":{"attributes":{"method":{"exakt":"a"}}}}]}')).toBe('routes[0].localRateLimit.conditions[0].match.attributes.method: unknown field "exakt"');
  });

  it("authorization", () => {
    expect(parse('"authorization":{"defaultAction":"deny"}')).toBe('routes[0].authorization.defaultAction: expected one of "ALLOW", "DENY", got "deny"');
    expect(parse('"authorization":{"rules":[{"match":{}}]}')).toBe("routes[0].authorization.rules[0].action: required field is missing");
    expect(parse('"authorization":{"rules":[{"action":"REJECT"}]}')).toBe('routes[0].authorization.rules[0].action: expected one of "ALLOW", "DENY", got "REJECT"');
    expect(parse('"authorization":{"rules":[{"action":"ALLOW","users":[]}]}')).toBe('routes[0].authorization.rules[0]: unknown field "users"');
    expect(parse('"authorization":{"rules":[{"action":"ALLOW","sources":["10.0.0.0/33"]}]}')).toBe('routes[0].authorization.rules[0].sources[0]: expected an IP address or CIDR range, got "10.0.0.0/33"');
    expect(parse('"authorization":{"rules":[{"action":"ALLOW","sources":["10.0.0.1:80"]}]}')).toBe('routes[0].authorization.rules[0].sources[0]: expected an IP address or CIDR range, got "10.0.0.1:80"');
    expect(parse('"authorization":{"rules":[{"action":"ALLOW","sources":[10]}]}')).toBe("routes[0].authorization.rules[0].sources[0]: expected a string, got 10");
    expect(parse('"authorization":{"rules":[{"action":"ALLOW","sources":"10.0.0.0/8"}]}')).toBe('routes[0].authorization.rules[0].sources: expected an array, got "10.0.0.0/8"');
    expect(parse('"authorization":{"rules":[{"action":"ALLOW","principals":[1]}]}')).toBe("routes[0].authorization.rules[0].principals[0]: expected a string, got 1");
    expect(parse('"authorization":{"rules":[{"action":"ALLOW","name":3}]}')).toBe("routes[0].authorization.rules[0].name: expected a string, got 3");
  });

  it("timeoutMs", () => {
    expect(parse('"timeoutMs":-1')).toBe("routes[0].timeoutMs: expected an integer in [0, 86400000], got -1");
    expect(parse('"timeoutMs":86400001')).toBe("routes[0].timeoutMs: expected an integer in [0, 86400000], got 86400001");
    expect(parse('"timeoutMs":"5s"')).toBe('routes[0].timeoutMs: expected an integer in [0, 86400000], got "5s"');
    expect(parse('"timeoutMs":1.5')).toBe("routes[0].timeoutMs: expected an integer in [0, 86400000], got 1.5");
  });
});
