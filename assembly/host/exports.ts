// The proxy-wasm callbacks Envoy calls (ABI 0.2.0), dispatched to root and connection objects.
// proxy-runtime's own exports are not used: they miss the network callbacks and build debug
// strings over every live context on each new connection. Each callback that runs filter code
// starts with enter() (a fresh clock reading, see abi.callbackNanos) and ends with leave() (where
// the garbage collector may run: host/collector.ts).
import * as abi from "./abi";
import { PluginRoot, roots, rootList } from "../root";
import { PerConnection } from "../roles/per-connection";
import { RequestClient } from "../roles/request-client";
import { RequestServer } from "../roles/request-server";
import { Role as ConfiguredRole } from "../route/config";
import { connections } from "../contexts";
import * as collector from "./collector";

export function proxy_abi_version_0_2_0(): void {}

function enter(): void {
  abi.newCallback();
  collector.enterCallback();
}

function leave(): void {
  // Counts held across callbacks go out (or wait for the tick) as the outermost callback ends.
  if (collector.outermost()) {
    for (let i = 0, n = rootList.length; i < n; i++) unchecked(rootList[i]).settleStats();
  }
  collector.leaveCallback(connections.size);
}

/** Memory the host fills before handing it to us (see abi.hostAlloc). */
export function malloc(size: usize): usize {
  return abi.hostAlloc(size);
}

export function proxy_on_context_create(contextId: u32, rootContextId: u32): void {
  enter();
  createContext(contextId, rootContextId);
  leave();
}

function createContext(contextId: u32, rootContextId: u32): void {
  if (rootContextId == 0) {
    const root = new PluginRoot(contextId);
    roots.set(contextId, root);
    rootList.push(root);
    return;
  }
  if (!roots.has(rootContextId)) return;
  const root = roots.get(rootContextId);
  if (root.config == null) return;
  const role = root.config!.role;
  if (role == ConfiguredRole.RequestClient) connections.set(contextId, new RequestClient(contextId, root));
  else if (role == ConfiguredRole.RequestServer) connections.set(contextId, new RequestServer(contextId, root));
  else connections.set(contextId, new PerConnection(contextId, root));
}

export function proxy_on_vm_start(rootContextId: u32, vmConfigSize: u32): u32 {
  return 1;
}

export function proxy_validate_configuration(rootContextId: u32, size: u32): u32 {
  return 1;
}

export function proxy_on_configure(rootContextId: u32, size: u32): u32 {
  enter();
  let ok: u32 = 0;
  if (roots.has(rootContextId)) {
    const bytes = abi.getBuffer(abi.BufferType.PluginConfiguration, 0, size);
    ok = roots.get(rootContextId).configure(bytes) ? 1 : 0;
  }
  leave();
  return ok;
}

export function proxy_on_tick(rootContextId: u32): void {
  enter();
  if (roots.has(rootContextId)) roots.get(rootContextId).onTick();
  leave();
}

export function proxy_on_new_connection(contextId: u32): u32 {
  enter();
  let status: u32 = abi.FilterStatus.Continue;
  if (connections.has(contextId)) status = connections.get(contextId).onNewConnection();
  leave();
  return status;
}

export function proxy_on_downstream_data(contextId: u32, size: u32, endOfStream: u32): u32 {
  enter();
  let status: u32 = abi.FilterStatus.Continue;
  if (connections.has(contextId)) status = connections.get(contextId).onDownstreamData(<i32>size, endOfStream != 0);
  leave();
  return status;
}

export function proxy_on_upstream_data(contextId: u32, size: u32, endOfStream: u32): u32 {
  enter();
  let status: u32 = abi.FilterStatus.Continue;
  if (connections.has(contextId)) status = connections.get(contextId).onUpstreamData(<i32>size, endOfStream != 0);
  leave();
  return status;
}

export function proxy_on_downstream_connection_close(contextId: u32, peerType: u32): void {
  enter();
  if (connections.has(contextId)) connections.get(contextId).onClose();
  leave();
}

export function proxy_on_upstream_connection_close(contextId: u32, peerType: u32): void {}

export function proxy_on_done(contextId: u32): u32 {
  return 1;
}

export function proxy_on_log(contextId: u32): void {}

export function proxy_on_delete(contextId: u32): void {
  enter();
  if (connections.has(contextId)) {
    connections.get(contextId).onDelete();
    connections.delete(contextId);
  } else if (roots.has(contextId)) {
    const root = roots.get(contextId);
    root.flushStats();
    roots.delete(contextId);
    rootList.splice(rootList.indexOf(root), 1);
  }
  leave();
}
