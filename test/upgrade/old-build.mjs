// An earlier commit's filter (and controller, where it has one), built once by build-old.sh and
// cached under ~/.cache/meltemi/old-build/<commit>/.
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync, rmSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./build-old.sh', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The filter before `scope` existed (89506ac, "Traffic policies per route"): it refuses the
 * `scope` that today's controller renders for every Service with a ClusterIP.
 */
export const BEFORE_SCOPE = '89506ac3739922766d7d7cdf06f46551167c43c1';
/** The filter and controller before per-request mode (64ab57b, "scope"): they know no `mode`. */
export const BEFORE_PER_REQUEST = '64ab57b9f99403a4b58dfb3b65e8d243183141bd';

/** Builds (or finds) `commit`; returns { dir, wasm, controller (dist/controller, or undefined) }. */
export function oldBuild(commit) {
  const out = execFileSync('bash', [SCRIPT, commit], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = out.trim().split('\n').pop();
  const wasm = join(dir, 'build/meltemi.wasm');
  if (!existsSync(wasm)) throw new Error(`${wasm} missing after build-old.sh ${commit}`);
  const controller = existsSync(join(dir, 'dist/controller/render.mjs')) ? join(dir, 'dist/controller') : undefined;
  // The old controller imports its npm packages (yaml, ...) from beside it: today's node_modules.
  if (controller) {
    const link = join(dir, 'node_modules');
    rmSync(link, { force: true });
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), link);
  }
  return { dir, wasm, controller };
}
