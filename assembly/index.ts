// Entry point of build/meltemi.wasm: the proxy-wasm exports.
export * from "./host/exports";
