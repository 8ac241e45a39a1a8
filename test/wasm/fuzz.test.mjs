// A short run of the codec fuzzer (test/fuzz/run.mjs, `make fuzz` runs 1,000,000 frames per codec):
// 20,000 mutated frames per codec through the real Wasm build's decode, mutate and error-reply
// paths. No trap, and every frame Meltemi produces reads back as one whole frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz, formatResults, CODECS } from '../fuzz/run.mjs';

test('20,000 mutated frames per codec: no trap, no malformed frame produced', { timeout: 300_000 }, async (t) => {
  const results = await fuzz({ frames: 20_000, seed: Number(process.env.MELTEMI_FUZZ_SEED ?? 1) });
  for (const line of formatResults(results).split("\n")) t.diagnostic(line);
  for (const name of CODECS) {
    const r = results[name];
    assert.equal(r.frames, 20_000);
    const sample = r.samples[0] ? ` first: ${r.samples[0].error ?? r.samples[0].note} on ${r.samples[0].input.slice(0, 200)}` : '';
    assert.equal(r.traps, 0, `${name}: ${r.traps} traps.${sample}`);
    assert.equal(r.badOutputs, 0, `${name}: ${r.badOutputs} malformed frames produced.${sample}`);
    assert.ok(r.decoded > 1000, `${name}: only ${r.decoded} frames got past the codec: the mutations are too blunt to test decode`);
    assert.ok(r.produced > 1000, `${name}: only ${r.produced} produced frames checked`);
  }
});
