import { callHeaders, callPath, headerName, isHeaderValue, errorFor } from "../../../assembly/http/call-headers";
import { Metadata } from "../../../assembly/core/metadata";
import { ErrorCode } from "../../../assembly/core/codec";
import { DubboCodecFactory } from "../../../assembly/codecs/dubbo";
import { ThriftCodecFactory } from "../../../assembly/codecs/thrift";
import { RedisCodecFactory } from "../../../assembly/codecs/redis";

function meta(keys: string[], values: string[]): Metadata {
  const m = new Metadata();
  for (let i = 0; i < keys.length; i++) m.set(keys[i], values[i]);
  return m;
}

describe("callPath", () => {
  it("is /<service>/<method> from the codec's operation keys", () => {
    expect(callPath(new DubboCodecFactory(), meta(["interface", "method"], ["dev.meltemi.demo.GreetService", "sayHello"]))).toBe("/dev.meltemi.demo.GreetService/sayHello");
    expect(callPath(new ThriftCodecFactory(), meta(["method"], ["echo"]))).toBe("/-/echo");
    expect(callPath(new RedisCodecFactory(), meta(["command", "key"], ["GET", "a"]))).toBe("/-/GET");
  });

  it("percent-encodes a long hostile method name", () => {
    // 32 KiB of bytes a path may not carry (its cost: test/wasm/hostile-lengths.test.mjs).
    let name = "";
    for (let i = 0; i < 4096; i++) name += " ?#%/\"<>";
    const path = callPath(new ThriftCodecFactory(), meta(["method"], [name]));
    expect(path.length).toBe(3 + name.length * 3);
    expect(path.substring(0, 27)).toBe("/-/%20%3F%23%25%2F%22%3C%3E");
  });

  it("percent-encodes what a path segment may not carry", () => {
    expect(callPath(new ThriftCodecFactory(), meta(["service", "method"], ["a/b", "x y?#%"]))).toBe("/a%2Fb/x%20y%3F%23%25");
  });
});

describe("headerName", () => {
  it("lower-cases metadata keys", () => {
    expect(headerName("X-User")).toBe("x-user");
    expect(headerName("interface")).toBe("interface");
    expect(headerName("trace_id")).toBe("trace_id");
  });

  it("leaves out keys Envoy or Meltemi give meaning to, and non-tokens", () => {
    expect(headerName("x-envoy-upstream-rq-timeout-ms")).toBeNull();
    expect(headerName("X-Meltemi-Route")).toBeNull();
    expect(headerName("x-forwarded-for")).toBeNull();
    expect(headerName("content-length")).toBeNull();
    expect(headerName("host")).toBeNull();
    expect(headerName(":path")).toBeNull();
    expect(headerName("a b")).toBeNull();
    expect(headerName("")).toBeNull();
  });
});

describe("isHeaderValue", () => {
  it("refuses controls, edge whitespace and long values", () => {
    expect(isHeaderValue("alice")).toBe(true);
    expect(isHeaderValue("a b")).toBe(true);
    expect(isHeaderValue("a\r\nb")).toBe(false);
    expect(isHeaderValue(" a")).toBe(false);
    expect(isHeaderValue("a\t")).toBe(false);
    expect(isHeaderValue("x".repeat(4097))).toBe(false);
  });
});

describe("callHeaders", () => {
  it("writes the pseudo-headers, the metadata that may travel, and content-length", () => {
    const names: string[] = [];
    const values: string[] = [];
    callHeaders(new DubboCodecFactory(), meta(["interface", "method", "x-envoy-retry-on", "X-User"], ["I", "m", "5xx", "bob"]), 42, names, values);
    expect(names.join(",")).toBe(":method,:scheme,:authority,:path,interface,method,x-user,content-length");
    expect(values.join(",")).toBe("POST,http,meltemi,/I/m,I,m,bob,42");
  });
});

describe("errorFor", () => {
  it("maps Envoy's statuses to the protocol's errors", () => {
    expect(errorFor(404)).toBe(ErrorCode.NoRoute);
    expect(errorFor(504)).toBe(ErrorCode.Timeout);
    expect(errorFor(429)).toBe(ErrorCode.RateLimited);
    expect(errorFor(403)).toBe(ErrorCode.Unauthorized);
    expect(errorFor(413)).toBe(ErrorCode.BadRequest);
    expect(errorFor(503)).toBe(ErrorCode.Unavailable);
    expect(errorFor(502)).toBe(ErrorCode.Unavailable);
  });
});
