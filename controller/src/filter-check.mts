/**
 * The filter's own config check, run here: the built module (build/meltemi.wasm) is loaded with a
 * minimal proxy-wasm host and handed the plugin config through `proxy_on_configure`, exactly as
 * Envoy does. So whatever the controller accepts, every proxy accepts: regex syntax, size limits,
 * route counts and every field rule are the filter's, not a second implementation of them.
 *
 * The host implements what configuring touches (the config buffer, logs, metric definitions, the
 * clock); every other host call answers "ok" with nothing, which configuring never reaches.
 */
import { readFileSync } from 'node:fs';

/** The filter module next to the controller (dist/controller -> build/meltemi.wasm). */
export const DEFAULT_FILTER_WASM = new URL('../../build/meltemi.wasm', import.meta.url);

const PLUGIN_CONFIGURATION = 7;
const LOG_ERROR = 4;

interface FilterExports {
  readonly memory: WebAssembly.Memory;
  readonly malloc: (size: number) => number;
  readonly _initialize?: () => void;
  readonly proxy_on_context_create: (id: number, root: number) => void;
  readonly proxy_on_vm_start: (root: number, size: number) => number;
  readonly proxy_on_configure: (root: number, size: number) => number;
}

/** One filter instance after proxy_on_configure, as a proxy would hold it (root context 1). */
export interface Configured {
  readonly exports: FilterExports & Record<string, unknown>;
  /** The filter's refusal (its own log line, without "meltemi: "), or undefined when it took the config. */
  readonly error: string | undefined;
}

export class FilterCheck {
  private constructor(private readonly module: WebAssembly.Module) {}

  /** Compiles the module once; each check() runs in a fresh instance. */
  static load(path: string | URL = DEFAULT_FILTER_WASM): FilterCheck {
    return new FilterCheck(new WebAssembly.Module(readFileSync(path)));
  }

  /** Why the filter refuses `config` (its own log line, without the "meltemi: " prefix), or undefined when it accepts it. */
  check(config: unknown): string | undefined {
    return this.configure(config).error;
  }

  /** A fresh instance of the module handed `config` through proxy_on_configure. */
  configure(config: unknown): Configured {
    const bytes = Buffer.from(typeof config === 'string' ? config : JSON.stringify(config), 'utf8');
    const errors: string[] = [];
    let exports: Configured['exports'] | undefined;
    let metric = 0;
    const view = () => new DataView(exports!.memory.buffer);
    const text = (ptr: number, len: number) => Buffer.from(exports!.memory.buffer, ptr, len).toString('utf8');
    const host: Record<string, (...args: number[]) => number> = {
      proxy_log: (level, ptr, len) => { if (level >= LOG_ERROR) errors.push(text(ptr, len)); return 0; },
      proxy_get_buffer_bytes: (type, start, length, outPtr, outSize) => {
        if (type !== PLUGIN_CONFIGURATION) return 1; // NotFound
        const part = bytes.subarray(start, start + length);
        const at = exports!.malloc(part.length);
        new Uint8Array(exports!.memory.buffer, at, part.length).set(part);
        view().setUint32(outPtr, at, true);
        view().setUint32(outSize, part.length, true);
        return 0;
      },
      proxy_define_metric: (_type, _ptr, _len, idPtr) => { view().setUint32(idPtr, ++metric, true); return 0; },
      proxy_get_current_time_nanoseconds: (ptr) => { view().setBigUint64(ptr, process.hrtime.bigint(), true); return 0; },
    };
    const imports: WebAssembly.Imports = { env: {}, wasi_snapshot_preview1: {} };
    for (const i of WebAssembly.Module.imports(this.module)) {
      if (i.kind !== 'function') continue;
      const table = (imports[i.module] ??= {}) as Record<string, unknown>;
      table[i.name] = host[i.name] ?? (() => 0);
    }
    exports = new WebAssembly.Instance(this.module, imports).exports as unknown as Configured['exports'];
    exports._initialize?.();
    exports.proxy_on_context_create(1, 0);
    exports.proxy_on_vm_start(1, 0);
    if (exports.proxy_on_configure(1, bytes.length) === 1) return { exports, error: undefined };
    const line = errors.find((e) => e.startsWith('meltemi: invalid plugin configuration: ')) ?? errors.at(-1) ?? 'refused with no reason';
    return { exports, error: line.replace(/^meltemi: /, '') };
  }
}

let shared: FilterCheck | undefined;

/**
 * The filter's verdict on a plugin config, from the module next to the controller (loaded once).
 * Returns [] when it accepts, else one problem line.
 */
export function filterProblems(config: unknown, path?: string | URL): string[] {
  const checker = path ? FilterCheck.load(path) : (shared ??= FilterCheck.load());
  const problem = checker.check(config);
  return problem ? [`the filter refuses it: ${problem}`] : [];
}
