// Entry point of build/meltemi.wasm: the proxy-wasm exports.
export * from "./host/exports";
// For `meltemi describe`: which route a request takes and why, decided by the same route table.
export { meltemi_explain, meltemi_explain_size } from "./explain";
