// A minimal proxy-wasm host (ABI 0.2.x, the calls Meltemi makes) that runs the real
// build/meltemi.wasm in Node's V8, the engine of Envoy's Wasm runtime: one root context and one
// connection fed reads of client and server bytes. No Envoy, no sockets. bench/micro.mjs times the
// filter's hot path with it; tests use it for what a real Envoy cannot be made to do (a shared-data
// compare-and-swap that always loses, test/wasm/ratelimit-contended.test.mjs).
//
// Every host call is counted by name (`calls`). A host function is replaced by passing it in
// `imports` under its import name; it is called with the host as `this` (memory helpers below) and
// is counted like the others. Imports neither given nor implemented here answer 0 (Ok). As in
// Envoy, each defined metric gets its own id, and shared data is a store updated under
// compare-and-swap (`shared`).
import { readFileSync } from 'node:fs';

/** proxy-wasm buffer types. */
export const BUFFER = { DownstreamData: 2, UpstreamData: 3, PluginConfiguration: 7 };

/** proxy-wasm results (WasmResult in @solo-io/proxy-runtime/assembly/runtime.ts; abi.Status in Meltemi). */
export const STATUS = { Ok: 0, NotFound: 1, BadArgument: 2, Empty: 7, CasMismatch: 8 };

/** proxy-wasm metric types. */
export const METRIC = { Counter: 0, Gauge: 1, Histogram: 2 };

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
   * @param {boolean} [o.metrics]  keep every metric's value by name (`metrics`, metric())
   */
  constructor(wasmPath, config, { imports = {}, metrics = false } = {}) {
    /** Host calls by import name since the last calls.clear(). */
    this.calls = new Map();
    this.buffers = new Map();
    this.config = Buffer.from(JSON.stringify(config));
    /** The filter's log lines of level warn and above. */
    this.logs = [];
    /** The filter's answer to the last feed(): 0 Continue, 1 StopIteration. */
    this.status = 0;
    /** Shared data: key (latin1 string of its bytes) → {value: Buffer, cas}. */
    this.shared = new Map();
    /** With `metrics`: metric name → value (counters and gauges: their value; histograms: the values recorded). */
    this.metrics = metrics ? new Map() : null;
    const metricNames = [];
    let lastCas = 0;
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
      proxy_define_metric: (type, ptr, len, idPtr) => {
        const name = this.string(ptr, len);
        metricNames.push(name);
        this.metrics?.set(name, this.metrics.get(name) ?? (type === METRIC.Histogram ? [] : 0));
        this.view().setUint32(idPtr, metricNames.length, true); // ids from 1: 0 is never a valid one
        return STATUS.Ok;
      },
      proxy_increment_metric: (id, by) => {
        const name = metricNames[id - 1];
        if (name === undefined) return STATUS.NotFound;
        this.metrics?.set(name, this.metrics.get(name) + Number(by));
        return STATUS.Ok;
      },
      proxy_record_metric: (id, value) => {
        const name = metricNames[id - 1];
        if (name === undefined) return STATUS.NotFound;
        const m = this.metrics;
        if (m) {
          if (Array.isArray(m.get(name))) m.get(name).push(Number(value));
          else m.set(name, Number(value));
        }
        return STATUS.Ok;
      },
      proxy_get_current_time_nanoseconds: (ptr) => { this.view().setBigUint64(ptr, process.hrtime.bigint(), true); return STATUS.Ok; },
      proxy_get_property: () => STATUS.NotFound,
      // Envoy's SharedData (proxy-wasm-cpp-host): a set with a CAS token other than the value's
      // fails; a set with 0, or of a key not there, always succeeds; each set draws a new token.
      proxy_get_shared_data: (keyPtr, keyLen, valuePtr, valueSize, casPtr) => {
        const entry = this.shared.get(this.bytes(keyPtr, keyLen).toString('latin1'));
        if (!entry) return STATUS.NotFound;
        this.give(entry.value, valuePtr, valueSize);
        this.view().setUint32(casPtr, entry.cas, true);
        return STATUS.Ok;
      },
      proxy_set_shared_data: (keyPtr, keyLen, valuePtr, valueLen, cas) => {
        const key = this.bytes(keyPtr, keyLen).toString('latin1');
        const entry = this.shared.get(key);
        if (entry && cas !== 0 && cas !== entry.cas) return STATUS.CasMismatch;
        this.shared.set(key, { value: Buffer.from(this.bytes(valuePtr, valueLen)), cas: ++lastCas });
        return STATUS.Ok;
      },
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
   * pass on. The filter's answer is in `status`. `context` is a connection openConnection() made
   * (the one the constructor opened by default).
   */
  feed(type, bytes, context = CONNECTION_CONTEXT) {
    this.buffers.set(type, bytes);
    this.status = type === BUFFER.DownstreamData
      ? this.exports.proxy_on_downstream_data(context, bytes.length, 0)
      : this.exports.proxy_on_upstream_data(context, bytes.length, 0);
    return this.buffers.get(type);
  }

  /** Opens another connection with context id `context` (above 2, unused) and returns the id. */
  openConnection(context) {
    this.exports.proxy_on_context_create(context, ROOT_CONTEXT);
    this.exports.proxy_on_new_connection(context);
    return context;
  }

  /**
   * With `metrics`: the value of the metric `name` (`ratelimit_contended_total`), summed over
   * every name that is it or ends with `;.;<name>` (its labels before it); undefined when none.
   */
  metric(name) {
    let sum;
    for (const [n, v] of this.metrics) {
      if (n === name || n.endsWith(`;.;${name}`)) sum = (sum ?? 0) + v;
    }
    return sum;
  }

  // ---- for host functions: the VM's memory ----

  view() {
    return new DataView(this.exports.memory.buffer);
  }

  /** `len` bytes of VM memory at `ptr` (a view: copy what must outlive the call). */
  bytes(ptr, len) {
    // Wasm passes i32s: an address past 2 GiB arrives negative.
    return Buffer.from(this.exports.memory.buffer, ptr >>> 0, len >>> 0);
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
