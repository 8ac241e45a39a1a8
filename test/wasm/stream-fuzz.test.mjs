// Hostile connections through every role of the real build/meltemi.wasm (test/fuzz/streams.mjs;
// `make fuzz` runs 100,000 per role): mutated frames of each codec, pipelined and cut into random
// reads in both directions, then both ends. The VM never traps, no connection is left holding
// bytes nobody will move, and a good connection after hostile ones is served as on a fresh VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzStreams, WORKLOADS } from '../fuzz/streams.mjs';

const CONNECTIONS = 4000;
const SEED = Number(process.env.MELTEMI_FUZZ_SEED ?? 1);

for (const name of Object.keys(WORKLOADS)) {
  test(`${name}: ${CONNECTIONS} hostile connections: no trap, none stuck, good connections still served`, (t) => {
    const r = fuzzStreams(name, { connections: CONNECTIONS, seed: SEED });
    t.diagnostic(`${r.answered} answered, ${r.closed} closed by the filter`);
    const first = r.samples[0] ? ` first: ${r.samples[0].kind}: ${r.samples[0].detail} on ${r.samples[0].input}` : '';
    assert.equal(r.traps, 0, `${r.traps} traps.${first}`);
    assert.equal(r.stuck, 0, `${r.stuck} connections stuck.${first}`);
    assert.equal(r.sick, 0, `${r.sick} good connections not served after hostile ones.${first}`);
    // The mutations must leave enough intact to reach the filter's deeper paths, and enough broken
    // to close connections: a fuzzer that only ever did one of the two would test little.
    assert.ok(r.answered > CONNECTIONS / 10, `only ${r.answered} connections got an answer to the client`);
    assert.ok(r.closed > CONNECTIONS / 10, `only ${r.closed} connections were closed by the filter`);
  });
}
