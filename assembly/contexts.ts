// Live proxy-wasm contexts of this VM, by context id: what the exported callbacks and the timer
// tick dispatch to. Connections are held as roles, so this module depends on no role's code.
import { PluginRoot } from "./root";
import { Role } from "./roles/role";

export const roots = new Map<u32, PluginRoot>();
/** The values of `roots`, for walking them on every callback without building an array. */
export const rootList: PluginRoot[] = [];
export const connections = new Map<u32, Role>();

export function connection(id: u32): Role | null {
  return connections.has(id) ? connections.get(id) : null;
}
