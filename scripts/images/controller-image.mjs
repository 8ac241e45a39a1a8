// The controller as a container image built from scratch (no base image is reachable here, and none
// is needed): layer 1 is a minimal runtime, the machine's node binary with exactly the shared
// libraries `ldd` lists and a nonroot user; layer 2 is the application under /app, the same files
// deploy/Dockerfile copies (dist/controller, controller/bin, schema, production node_modules) plus
// build/meltemi.wasm, which the controller loads to run the filter's own config check.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Layout, reproducibleTar } from './oci-layout.mjs';

const NONROOT = 65532;   // the distroless convention; deploy/meltemi.yaml runs as non-root
export const ENTRYPOINT = ['/usr/bin/node', '/app/controller/bin/meltemi.mjs'];

/** The absolute paths `ldd` prints for `bin` (libraries and the dynamic loader). */
export function sharedLibraries(bin) {
  return execFileSync('ldd', [bin], { encoding: 'utf8' }).split('\n')
    .map((l) => l.match(/(?:=>\s*)?(\/\S+)\s+\(0x/)?.[1]).filter(Boolean);
}

/** Copies `from` to `root` + `to` (the real file, not a symlink), creating folders. */
function put(root, to, from, mode = 0o644) {
  const dest = join(root, to);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(realpathSync(from), dest);
  chmodSync(dest, mode);
}

function runtimeTree(root, node) {
  put(root, '/usr/bin/node', node, 0o755);
  for (const lib of sharedLibraries(node)) put(root, lib, lib, 0o755);
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n`);
  writeFileSync(join(root, 'etc/group'), `root:x:0:\nnonroot:x:${NONROOT}:\n`);
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
}

/**
 * /app from the repository at `repo`: `npm ci --omit=dev` from the lock file in a scratch folder (the
 * working tree's node_modules holds the dev tools too), then the built controller and the filter.
 */
function appTree(root, repo, npm) {
  const app = join(root, 'app');
  mkdirSync(app, { recursive: true });
  for (const f of ['package.json', 'package-lock.json', 'LICENSE']) copyFileSync(join(repo, f), join(app, f));
  execFileSync(npm, ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
    { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  mkdirSync(join(app, 'dist/controller'), { recursive: true });
  for (const f of readdirSync(join(repo, 'dist/controller')).filter((n) => n.endsWith('.mjs'))) {
    copyFileSync(join(repo, 'dist/controller', f), join(app, 'dist/controller', f));
  }
  cpSync(join(repo, 'controller/bin'), join(app, 'controller/bin'), { recursive: true });
  cpSync(join(repo, 'schema'), join(app, 'schema'), { recursive: true });
  mkdirSync(join(app, 'build'));
  copyFileSync(join(repo, 'build/meltemi.wasm'), join(app, 'build/meltemi.wasm'));
}

const GOARCH = { x64: 'amd64', arm64: 'arm64' };

/** Writes the layout to `dir`; returns { digest, size, layers } of what it wrote. */
export function buildControllerImage({ repo, dir, ref, mtime, version, node = process.execPath, npm = 'npm' }) {
  const stage = mkdtempSync(join(tmpdir(), 'meltemi-controller-image-'));
  try {
    const runtime = join(stage, 'runtime');
    const app = join(stage, 'app');
    mkdirSync(runtime);
    mkdirSync(app);
    runtimeTree(runtime, node);
    appTree(app, repo, npm);
    const layout = new Layout(dir);
    const layers = [layout.layer(reproducibleTar(runtime, mtime)), layout.layer(reproducibleTar(app, mtime))];
    const created = new Date(mtime * 1000).toISOString();
    const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
    const desc = layout.image({
      ref,
      config: {
        created, architecture: GOARCH[process.arch] ?? process.arch, os: 'linux',
        config: {
          User: `${NONROOT}:${NONROOT}`, WorkingDir: '/app', Entrypoint: ENTRYPOINT, Cmd: ['run'],
          Env: ['PATH=/usr/bin', 'NODE_ENV=production'],
          Labels: { 'org.opencontainers.image.title': 'meltemi-controller', 'org.opencontainers.image.version': version },
        },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: [
          { created, created_by: `make images: node ${nodeVersion} and the libraries ldd lists, user nonroot` },
          { created, created_by: 'make images: /app (controller, schema, production node_modules, build/meltemi.wasm)' },
        ],
      },
      layers,
      annotations: { 'org.opencontainers.image.title': 'meltemi-controller', 'org.opencontainers.image.version': version, 'org.opencontainers.image.created': created },
    });
    return { digest: desc.digest, size: desc.size, layers: layers.map((l) => l.descriptor) };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
