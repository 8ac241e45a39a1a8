// The live connection contexts of this VM, by context id: what the exported callbacks and the
// root's timers dispatch to. Connections are held as roles, so this module depends on no role's
// code; plugin roots are kept by root.ts, which dispatches its timers through here.
import { Role } from "./roles/role";

export const connections = new Map<u32, Role>();

export function connection(id: u32): Role | null {
  return connections.has(id) ? connections.get(id) : null;
}
