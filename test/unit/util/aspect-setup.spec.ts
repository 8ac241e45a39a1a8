// Guards the as-pect setup itself: specs of modules that reach proxy-runtime's raw host imports
// must still instantiate, with every `env.proxy_*` import stubbed to return 0 (WasmResult.Ok).
import { proxy_log, proxy_get_buffer_bytes } from "@solo-io/proxy-runtime/assembly/imports";

describe("as-pect setup", () => {
  it("stubs proxy-wasm host imports with Ok", () => {
    expect(proxy_log(2, 0, 0)).toBe(0);
    expect(proxy_get_buffer_bytes(0, 0, 0, 0, 0)).toBe(0);
  });
});
