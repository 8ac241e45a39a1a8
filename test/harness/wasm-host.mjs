// A minimal proxy-wasm host (ABI 0.2.x, the calls Meltemi makes) that runs the real
// build/meltemi.wasm in Node's V8, the engine of Envoy's Wasm runtime: one root context and one
// connection fed reads of client and server bytes. No Envoy, no sockets. bench/micro.mjs times the
// filter's hot path with it; tests use it for what a real Envoy cannot be made to do (a shared-data
// compare-and-swap that always loses, test/e2e/ratelimit-contended.test.mjs).
//
// Every host call is counted by name (`calls`). A host function is replaced by passing it in
// `imports` under its import name; it is called with the host as `this` (memory helpers below) and
// is counted like the others. Imports neither given nor implemented here answer 0 (Ok).
import { readFileSync } from 'node:fs';

/** proxy-wasm buffer types. */
export const BUFFER = { DownstreamData: 2, UpstreamData: 3, PluginConfiguration: 7 };

/** proxy-wasm results (WasmResult in @solo-io/proxy-runtime/assembly/runtime.ts; abi.Status in Meltemi). */
export const STATUS = { Ok: 0, NotFound: 1, BadArgument: 2, Empty: 7, CasMismatch: 8 };

const ROOT_CONTEXT = 1;
const CONNECTION_CONTEXT = 2;

export class WasmHost {
  /**
   * Instantiates `wasmPath`, configures it with the plugin config `config` (an object, sent as
   * JSON) and opens one connection. Throws when the filter refuses the config.
   * @param {string} wasmPath
   * @param {object} config
   * @param {object} [o]
   * @param {Record<string, Function>} [o.imports]  host functions by import name, replacing the defaults
   */
  constructor(wasmPath, config, { imports = {} } = {}) {
    /** Host calls by import name since the last calls.clear(). */
    this.calls = new Map();
    this.buffers = new Map();
    this.config = Buffer.from(JSON.stringify(config));
    /** The filter's log lines of level warn and above. */
    this.logs = [];
    /** The filter's answer to the last feed(): 0 Continue, 1 StopIteration. */
    this.status = 0;
    const module = new WebAssembly.Module(readFileSync(wasmPath));
    const count = (name) => this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
    const defaults = {
      proxy_log: (level, ptr, len) => { if (level >= 3) this.logs.push(this.string(ptr, len)); return STATUS.Ok; },
      proxy_get_buffer_bytes: (type, start, length, outPtr, outSize) => {
        const buf = type === BUFFER.PluginConfiguration ? this.config : this.buffers.get(type);
        if (!buf) return STATUS.NotFound;
        this.give(buf.subarray(start, start + length), outPtr, outSize);
        return STATUS.Ok;
      },
      proxy_set_buffer_bytes: (type, start, length, ptr, size) => {
        const buf = this.buffers.get(type) ?? Buffer.alloc(0);
        const data = this.bytes(ptr, size);
        // Envoy's rule: start 0 drains `length` and prepends; start >= size appends.
        if (start === 0) this.buffers.set(type, Buffer.concat([data, buf.subarray(length)]));
        else if (start >= buf.length) this.buffers.set(type, Buffer.concat([buf, data]));
        else return STATUS.BadArgument;
        return STATUS.Ok;
      },
      proxy_define_metric: (_type, _ptr, _len, idPtr) => { this.view().setUint32(idPtr, this.calls.size + 1000, true); return STATUS.Ok; },
      proxy_get_current_time_nanoseconds: (ptr) => { this.view().setBigUint64(ptr, process.hrtime.bigint(), true); return STATUS.Ok; },
      proxy_get_property: () => STATUS.NotFound,
      proxy_get_shared_data: () => STATUS.NotFound,
    };
    const table = {};
    for (const i of WebAssembly.Module.imports(module)) {
      if (i.kind !== 'function') continue;
      const given = imports[i.name];
      const f = given ? given.bind(this) : defaults[i.name] ?? (() => STATUS.Ok);
      (table[i.module] ??= {})[i.name] = (...args) => { count(i.name); return f(...args); };
    }
    this.exports = new WebAssembly.Instance(module, table).exports;
    this.exports._initialize?.();
    this.exports.proxy_on_context_create(ROOT_CONTEXT, 0);
    this.exports.proxy_on_vm_start(ROOT_CONTEXT, 0);
    if (this.exports.proxy_on_configure(ROOT_CONTEXT, this.config.length) !== 1) throw new Error(`wasm-host: config refused: ${this.logs.join('; ')}`);
    this.exports.proxy_on_context_create(CONNECTION_CONTEXT, ROOT_CONTEXT);
    this.exports.proxy_on_new_connection(CONNECTION_CONTEXT);
  }

  /**
   * Hands `bytes` to the connection as its next read from the client (BUFFER.DownstreamData) or
   * the server (BUFFER.UpstreamData). Returns what the filter left in the buffer: what Envoy would
   * pass on. The filter's answer is in `status`.
   */
  feed(type, bytes) {
    this.buffers.set(type, bytes);
    this.status = type === BUFFER.DownstreamData
      ? this.exports.proxy_on_downstream_data(CONNECTION_CONTEXT, bytes.length, 0)
      : this.exports.proxy_on_upstream_data(CONNECTION_CONTEXT, bytes.length, 0);
    return this.buffers.get(type);
  }

  // ---- for host functions: the VM's memory ----

  view() {
    return new DataView(this.exports.memory.buffer);
  }

  /** `len` bytes of VM memory at `ptr` (a view: copy what must outlive the call). */
  bytes(ptr, len) {
    return Buffer.from(this.exports.memory.buffer, ptr, len);
  }

  /** UTF-8 text in VM memory. */
  string(ptr, len) {
    return this.bytes(ptr, len).toString();
  }

  /** Copies `data` into memory the VM allocates (its `malloc`) and writes pointer and size to the two out-parameters. */
  give(data, outPtr, outSize) {
    const at = this.exports.malloc(data.length);
    new Uint8Array(this.exports.memory.buffer, at, data.length).set(data);
    const v = this.view();
    v.setUint32(outPtr, at, true);
    v.setUint32(outSize, data.length, true);
  }
}
