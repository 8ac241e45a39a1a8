// The export behind `meltemi describe` (controller/src/describe.mts): after proxy_on_configure has
// installed a plugin config in a root context, explain one request against it with the route
// table's own code (route/explain.ts). The request is either its routable attributes (key NUL value
// NUL ...) or one captured frame, decoded by the config's codec as a proxy would decode it.
//
// The caller writes the input into memory from `malloc`, calls meltemi_explain, and reads
// meltemi_explain_size() bytes of UTF-8 JSON at the pointer it returns (valid until the next call).
import { roots } from "./root";
import { Metadata } from "./core/metadata";
import { explainRoute } from "./route/explain";
import { quote } from "./util/json";

export const enum ExplainInput { Attributes = 0, Frame = 1 }

let result: ArrayBuffer = new ArrayBuffer(0);

export function meltemi_explain(rootContextId: u32, input: usize, size: u32, kind: u32): usize {
  const bytes = new Uint8Array(<i32>size);
  if (size > 0) memory.copy(bytes.dataStart, input, size);
  if (input != 0) __unpin(input);
  result = String.UTF8.encode(explain(rootContextId, bytes, kind));
  return changetype<usize>(result);
}

export function meltemi_explain_size(): u32 {
  return <u32>result.byteLength;
}

function explain(rootContextId: u32, bytes: Uint8Array, kind: u32): string {
  if (!roots.has(rootContextId) || roots.get(rootContextId).config == null) return error("no plugin configuration installed");
  const cfg = roots.get(rootContextId).config!;
  const meta = new Metadata();
  if (kind == ExplainInput.Frame) {
    const codec = cfg.codec!.create(cfg.codecOptions);
    const n = codec.frameSize(bytes, cfg.maxFrameBytes);
    if (n <= 0) return error(n == 0 ? "the frame is incomplete (" + bytes.length.toString() + " bytes)" : codec.error);
    if (!codec.decode(bytes.subarray(0, n), meta)) return error(codec.error);
    if (!meta.isRoutable()) return error("the frame is not a request (a reply or a heartbeat routes nothing)");
  } else {
    const parts = String.UTF8.decode(bytes.buffer).split("\0");
    for (let i = 0; i + 1 < parts.length; i += 2) meta.set(parts[i], parts[i + 1]);
  }
  return explainRoute(cfg, meta);
}

function error(message: string): string {
  return "{\"error\":" + quote(message) + "}";
}
