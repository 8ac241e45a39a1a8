// Process registry: every child the harness starts is registered here and killed (whole
// process group, SIGKILL) if the test process exits or is interrupted before stop().
import process from 'node:process';

const live = new Set(); // pids of process-group leaders

let installed = false;
function install() {
  if (installed) return;
  installed = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      killAllSync();
      process.kill(process.pid, sig); // default action, now that our handler is gone
    });
  }
}

export function killAllSync() {
  for (const pid of live) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  live.clear();
}

export function registerChild(pid) {
  install();
  live.add(pid);
}

export function unregisterChild(pid) {
  live.delete(pid);
}

/** Registers fn with node:test's per-test cleanup if a test context t is given. */
export function afterTest(t, fn) {
  if (t && typeof t.after === 'function') t.after(fn);
}
