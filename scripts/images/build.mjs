#!/usr/bin/env node
// `make images`: the Wasm filter and the controller as OCI image layouts under dist/images/, without
// Docker. Prints one line per image (digest, manifest and layer sizes) and writes
// dist/images/images.json with the same figures, for `crane push` and the WasmPlugin's sha256.
//
// Reproducible: every file in every layer carries the mtime SOURCE_DATE_EPOCH (default: the last
// commit's time), so the same commit, node binary and lock file give the same digests.
//   --out DIR   where to write the layouts (default dist/images; the image test writes its own)
//   NPM         the npm to run `npm ci --omit=dev` with (default: the one beside this node; the Makefile
//               passes the machine's). Not `npm` from PATH: under make, node_modules/.bin comes first,
//               and its npm 6 (from as-pect's dependencies) cannot read today's lock file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { buildWasmImage } from './wasm-image.mjs';
import { buildControllerImage } from './controller-image.mjs';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const OUT = resolve(parseArgs({ options: { out: { type: 'string' } } }).values.out ?? join(REPO, 'dist/images'));
const shown = (p) => relative(process.cwd(), p) || '.';

function besideNode(tool) {
  const p = join(dirname(process.execPath), tool);
  return existsSync(p) ? p : tool;
}

function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH) return Number(process.env.SOURCE_DATE_EPOCH);
  try { return Number(execFileSync('git', ['-C', REPO, 'log', '-1', '--format=%ct'], { encoding: 'utf8' }).trim()); } catch { return 0; }
}

for (const f of ['build/meltemi.wasm', 'dist/controller/cli.mjs']) {
  if (!existsSync(join(REPO, f))) { console.error(`make images: ${f} missing; run make build first`); process.exit(1); }
}
const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
const mtime = sourceDateEpoch();
mkdirSync(OUT, { recursive: true });
const sum = (layers) => layers.reduce((n, l) => n + l.size, 0);
const images = {
  wasm: { layout: shown(join(OUT, 'meltemi')), ref: version,
    ...buildWasmImage({ wasm: join(REPO, 'build/meltemi.wasm'), dir: join(OUT, 'meltemi'), ref: version, mtime, version }) },
  controller: { layout: shown(join(OUT, 'meltemi-controller')), ref: version,
    ...buildControllerImage({ repo: REPO, dir: join(OUT, 'meltemi-controller'), ref: version, mtime, version, npm: process.env.NPM || besideNode('npm') }) },
};
images.wasm.wasmBytes = readFileSync(join(REPO, 'build/meltemi.wasm')).length;
writeFileSync(join(OUT, 'images.json'), JSON.stringify({ version, sourceDateEpoch: mtime, ...images }, null, 2) + '\n');
const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
console.log(`${images.wasm.layout}:${version} ${images.wasm.digest} (layer ${images.wasm.layer.size} B gzip, plugin.wasm ${images.wasm.wasmBytes} B)`);
console.log(`${images.controller.layout}:${version} ${images.controller.digest} (layers ${images.controller.layers.map((l) => mib(l.size)).join(' + ')} = ${mib(sum(images.controller.layers))} gzip)`);
console.log(`WasmPlugin.sha256 for oci:// is the manifest digest: ${images.wasm.digest.slice(7)}`);
