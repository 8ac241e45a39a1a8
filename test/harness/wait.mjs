// Readiness polling: use these instead of fixed sleeps.

/**
 * Polls fn until it returns a truthy value (or a promise of one) and resolves with it.
 * Exceptions thrown by fn count as "not yet"; the last one is reported on timeout.
 * @param {() => any} fn
 * @param {{timeout?: number, interval?: number, message?: string}} [opts]
 */
export async function waitFor(fn, { timeout = 10_000, interval = 50, message } = {}) {
  const deadline = Date.now() + timeout;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      lastErr = undefined;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const what = message ?? `condition ${fn.name || fn.toString().slice(0, 80)}`;
      const err = new Error(`waitFor timed out after ${timeout} ms: ${what}` +
        (lastErr ? ` (last error: ${lastErr.message ?? lastErr})` : ''));
      if (lastErr) err.cause = lastErr;
      throw err;
    }
    await delay(Math.min(interval, Math.max(1, deadline - Date.now())));
  }
}

/** Rejects with a clear message if promise does not settle within ms. */
export function withTimeout(promise, ms, what = 'operation') {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

export function delay(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A delay that does not keep the process alive: for a bound raced against an event (a process's
 * exit) that keeps it alive itself. A plain delay there holds a test file's process open for the
 * whole bound after the event came.
 */
export function unrefDelay(ms) {
  return new Promise((r) => setTimeout(r, ms).unref());
}
