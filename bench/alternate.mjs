// The A/B of bench/micro.mjs and bench/micro-roles.mjs: a build alone, or two builds run in turn
// `repeats` times (each run in a fresh instance, so drift and tier-up hit both alike), reported as
// the median ratio of their time per unit.
import path from 'node:path';

/**
 * @param {(wasm: string) => object} run  one run of a build; returns an object with `time`
 * @param {{wasm: string, baseline: string | null, repeats: number}} o
 * @param {(label: string, result: object) => void} show  prints one run's result
 * @param {string} root  paths are shown relative to it
 * @param {string} unit  what `time` is per ("request", "call")
 */
export function alternate(run, o, show, root, unit) {
  if (!o.baseline) {
    show(path.relative(root, o.wasm), run(o.wasm));
    return;
  }
  const ratios = []; let a; let b;
  for (let i = 0; i < o.repeats; i++) {
    a = run(o.wasm);
    b = run(o.baseline);
    ratios.push(a.time / b.time);
  }
  show(path.relative(root, o.wasm), a);
  show(path.relative(root, o.baseline), b);
  const median = [...ratios].sort((x, y) => x - y)[Math.floor(ratios.length / 2)];
  console.log(`ratio: ${median.toFixed(2)}x the baseline's time per ${unit} (median of ${o.repeats}; range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`);
}
