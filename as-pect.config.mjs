// as-pect 8 configuration. ESM in a CommonJS package, hence `.mjs` (see platform-facts §5).
// Compiler options for test builds live in as-pect.asconfig.json, which deliberately does not
// extend asconfig.json: the production config's entries and `use` would leak into every spec.
// Run through `node test/unit/run-aspect.mjs` (`make test-unit`), which prints the totals line.

/**
 * Fills every `env.proxy_*` function the module imports but the test imports do not supply with
 * a stub returning 0 (WasmResult.Ok). Specs of code that pulls in
 * `@solo-io/proxy-runtime/assembly/imports` then instantiate without a host; the pure cores under
 * test never reach a host call, and anything that does sees "Ok" with nothing written back.
 * Any other unresolved import is left alone so instantiation fails loudly, naming it.
 */
function stubProxyImports(binary, imports) {
  const module = new WebAssembly.Module(binary);
  for (const { module: mod, name, kind } of WebAssembly.Module.imports(module)) {
    if (mod !== "env" || kind !== "function" || !name.startsWith("proxy_")) continue;
    imports.env = imports.env || {};
    if (typeof imports.env[name] !== "function") imports.env[name] = () => 0;
  }
  return module;
}

export default {
  /**
   * Spec files, mirroring the source tree under assembly/. run-aspect.mjs runs one spec per
   * as-pect process (so one spec that fails to compile cannot hide the others' results) and names
   * it in ASPECT_ENTRIES; as-pect itself always adds these globs to any given on its command line.
   */
  entries: process.env.ASPECT_ENTRIES ? process.env.ASPECT_ENTRIES.split(",") : ["test/unit/**/*.spec.ts"],
  /** Files added to every spec compilation (none today). */
  include: ["test/unit/**/*.include.ts"],
  disclude: [/node_modules/],

  async instantiate(memory, createImports, instantiate, binary) {
    const imports = createImports({ env: { memory } });
    const module = stubProxyImports(binary, imports);
    return instantiate(module, imports);
  },

  outputBinary: false,
};
