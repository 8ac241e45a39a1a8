// How log lines name a connection. A proxy-wasm context id is unique only within one VM, and
// Envoy runs one VM per worker thread (plus one on the main thread), so two workers can both
// have a connection 7. Each VM therefore draws a number once, from a counter in Envoy's shared
// data (process-wide per vm_id, updated with compare-and-swap), and a connection is named
// `<vm>.<context id>`: unique within one Envoy process, including VMs started later by a config
// update, which keep counting. PluginRoot.configure draws it, so the main thread's VM (which Envoy
// configures before it starts the workers' VMs) creates the counter and the workers' VMs only
// ever update it under CAS. 0 stands for the VM number when the host refused shared data.
import * as abi from "../host/abi";

const KEY = String.UTF8.encode("meltemi.vm_number");
const MAX_TRIES = 64;

let vm: u32 = 0;
let drawn = false;

/** This VM's number, drawn on first use; 0 when shared data was unavailable. */
export function vmNumber(): u32 {
  if (drawn) return vm;
  drawn = true;
  const value = new Uint8Array(4);
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const current = abi.getSharedData(KEY);
    const cas = abi.sharedCas;
    const next: u32 = (current != null && current.length == 4 ? load<u32>(current.dataStart) : 0) + 1;
    store<u32>(value.dataStart, next);
    if (abi.setSharedData(KEY, value, cas) == abi.Status.Ok) {
      vm = next;
      break;
    }
  }
  return vm;
}

/** The name of connection `contextId` in log lines: `<vm>.<context id>`. */
export function connectionLabel(contextId: u32): string {
  return vmNumber().toString() + "." + contextId.toString();
}
