// Live proxy-wasm contexts of this VM, by context id: what the exported callbacks and the timer
// tick dispatch to.
import { PluginRoot } from "./root";
import { Connection } from "./connection";

export const roots = new Map<u32, PluginRoot>();
export const connections = new Map<u32, Connection>();

export function connection(id: u32): Connection | null {
  return connections.has(id) ? connections.get(id) : null;
}
