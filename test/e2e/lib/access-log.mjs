// The filter's access lines in an Envoy log (assembly/engine/access-log.ts): `meltemi access `
// then one JSON object, in Envoy's `wasm` logger. Parsing is strict: a line that is not valid
// JSON throws, so a test that reads the lines also proves they parse.
export const ACCESS_PREFIX = 'meltemi access ';

/**
 * Every access line of `logs`, in order, as { thread, entry }: `thread` is the id in Envoy's log
 * prefix ([time][thread][level][logger]), `entry` the parsed object.
 */
export function accessLines(logs) {
  const out = [];
  for (const line of logs.split('\n')) {
    const i = line.indexOf(ACCESS_PREFIX);
    if (i < 0) continue;
    const thread = /^\[[^\]]*\]\[(\d+)\]/.exec(line)?.[1];
    try {
      out.push({ thread, entry: JSON.parse(line.slice(i + ACCESS_PREFIX.length)) });
    } catch (e) {
      throw new Error(`access line is not JSON (${e.message}): ${line}`);
    }
  }
  return out;
}

/** Just the parsed entries. */
export const accessEntries = (logs) => accessLines(logs).map((l) => l.entry);
