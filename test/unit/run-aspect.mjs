#!/usr/bin/env node
// Runs the as-pect unit specs and prints one totals line: `as-pect: P passed, F failed`.
//
//   node test/unit/run-aspect.mjs                 every test/unit/**/*.spec.ts
//   node test/unit/run-aspect.mjs <spec.ts ...>   just these
//
// Each spec runs in its own as-pect process, one after another (low CPU, and a spec that fails to
// compile or crashes counts as one failure instead of hiding every later spec's results). Output is
// streamed with ANSI colour stripped. as-pect 8 prints only `[Tests]: P / T` per run; a spec whose
// run fails without any failing test (compile error, crash, group hook or snapshot failure) counts
// as one failure. Exits 1 when anything failed or no test ran.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import url from "node:url";

const ROOT = path.resolve(path.dirname(url.fileURLToPath(import.meta.url)), "../..");
const ASPECT = path.join(ROOT, "node_modules/@as-pect/cli/lib/test.js");
const ANSI = /\x1b\[[0-9;?]*[ -\/]*[@-~]/g;

/** Spec files under test/unit, sorted, relative to the repo root. */
function findSpecs() {
  return readdirSync(path.join(ROOT, "test/unit"), { recursive: true })
    .map((f) => path.join("test/unit", String(f)))
    .filter((f) => f.endsWith(".spec.ts"))
    .sort();
}

/** Runs as-pect on one spec, streaming its output; resolves to { passed, failed }. */
function runSpec(spec) {
  process.stdout.write(`--- ${spec}\n`);
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [ASPECT, "--config", "as-pect.config.mjs", "--as-config", "as-pect.asconfig.json"],
      { cwd: ROOT, env: { ...process.env, ASPECT_ENTRIES: spec, FORCE_COLOR: "0", NO_COLOR: "1" } },
    );
    let text = "";
    // stdout up to as-pect's banner line is its ASCII-art logo (its --no-logo flag is broken).
    let inLogo = true;
    const show = (clean, sink) => {
      if (sink === process.stdout && inLogo) {
        if (clean.includes("AS-pect")) inLogo = false;
        return;
      }
      sink.write(clean + "\n");
    };
    const pump = (stream, sink) => {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop();
        for (const line of lines) {
          const clean = line.replace(ANSI, "");
          text += clean + "\n";
          show(clean, sink);
        }
      });
      stream.on("end", () => {
        if (partial) {
          const clean = partial.replace(ANSI, "");
          text += clean + "\n";
          show(clean, sink);
        }
      });
    };
    pump(child.stdout, process.stdout);
    pump(child.stderr, process.stderr);
    child.on("error", (err) => {
      process.stderr.write(`run-aspect: cannot start as-pect: ${err.message}\n`);
      resolve({ passed: 0, failed: 1 });
    });
    child.on("close", (code, signal) => {
      const m = /\[Tests\]:\s*(\d+)\s*\/\s*(\d+)/.exec(text);
      const passed = m ? Number(m[1]) : 0;
      let failed = m ? Number(m[2]) - passed : 0;
      if (code !== 0 && failed === 0) {
        failed = 1;
        process.stdout.write(`run-aspect: ${spec} failed outside any test (exit ${signal ?? code})\n`);
      }
      resolve({ passed, failed });
    });
  });
}

const specs = process.argv.length > 2 ? process.argv.slice(2) : findSpecs();
let passed = 0;
let failed = 0;
for (const spec of specs) {
  const r = await runSpec(spec);
  passed += r.passed;
  failed += r.failed;
}
if (passed + failed === 0) process.stdout.write("run-aspect: no test ran\n");
process.stdout.write(`as-pect: ${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 || passed + failed === 0 ? 1 : 0);
