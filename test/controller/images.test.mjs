// The images `make images` builds (scripts/images/), pushed to a real OCI registry and used from it:
//
//   scripts/images/build.mjs --out <tmp>        --> OCI layouts of the Wasm filter and the controller
//   registry (go-containerregistry, test/images/fetch-crane.sh) on a free loopback port
//   crane push / digest / manifest / blob / export
//   the controller image's filesystem (crane export), its entrypoint run under chroot as the image's
//   user, against the real kube-apiserver (test/controller/kube-env.mjs), programming a MetaRouter
//   with the Wasm image's oci:// url and digest
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.mjs';
import { KubeEnv, condition, router, service } from './kube-env.mjs';
import { until } from '../kube/cluster.mjs';
import { Registry, crane, craneBinaries } from '../images/registry.mjs';

const { buildWasmImage } = await import(join(ROOT, 'scripts/images/wasm-image.mjs'));
const WASM = join(ROOT, 'build/meltemi.wasm');
// Absolute: the child's PATH is the image's (/usr/bin), and chroot lives in /usr/sbin.
const CHROOT = ['/usr/sbin/chroot', '/usr/bin/chroot', '/sbin/chroot'].find((p) => existsSync(p));
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;

const work = mkdtempSync(join(tmpdir(), 'meltemi-images-'));
const env = new KubeEnv();
let bin, registry, built, refs, rootfs, imageConfig;
const evidence = {};

/** The image config's way to start the controller, run from `rootfs` with chroot as the image's user. */
function chrootLaunch(argv) {
  const { Entrypoint, User, Env, WorkingDir } = imageConfig.config;
  // The kubeconfig the harness wrote lives outside the image's filesystem: copy it in, readable by the image's user.
  const at = argv.indexOf('--kubeconfig');
  const inside = '/tmp/controller.kubeconfig';
  if (at >= 0) {
    copyFileSync(argv[at + 1], join(rootfs, inside));
    const [uid, gid] = User.split(':').map(Number);
    chownSync(join(rootfs, inside), uid, gid);
  }
  const args = argv.map((a, i) => (at >= 0 && i === at + 1 ? inside : a));
  return {
    command: CHROOT, args: [`--userspec=${User}`, rootfs, ...Entrypoint, ...args],
    env: { ...Object.fromEntries(Env.map((e) => e.split(/=(.*)/s).slice(0, 2))), MELTEMI_LOG_LEVEL: 'info', PWD: WorkingDir },
  };
}

before(async () => {
  let t0 = Date.now();
  bin = craneBinaries();
  evidence.craneMs = Date.now() - t0;
  t0 = Date.now();
  const out = join(work, 'layouts');
  execFileSync(process.execPath, [join(ROOT, 'scripts/images/build.mjs'), '--out', out], { stdio: ['ignore', 'pipe', 'inherit'] });
  built = JSON.parse(readFileSync(join(out, 'images.json'), 'utf8'));
  evidence.buildMs = Date.now() - t0;
  registry = await new Registry(bin).start();
  refs = { wasm: `${registry.host}/meltemi:${VERSION}`, controller: `${registry.host}/meltemi-controller:${VERSION}` };
  t0 = Date.now();
  crane(bin, ['push', join(out, 'meltemi'), refs.wasm]);
  crane(bin, ['push', join(out, 'meltemi-controller'), refs.controller]);
  evidence.pushMs = Date.now() - t0;
  rootfs = join(work, 'rootfs');
  mkdirSync(rootfs);
  execFileSync('bash', ['-c', `"$0" export "$1" - | tar -x -C "$2"`, join(bin, 'crane'), refs.controller, rootfs]);
  imageConfig = JSON.parse(crane(bin, ['config', refs.controller]));
}, { timeout: 20 * 60 * 1000 });

after(async () => {
  await env.stop();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
  const sizes = built && `wasm ${built.wasm.digest} (layer ${built.wasm.layer.size} B), controller ${built.controller.digest} (${built.controller.layers.map((l) => l.size).join(' + ')} B)`;
  process.stdout.write(`# images: ${sizes}; fetch-crane ${evidence.craneMs} ms, build ${evidence.buildMs} ms, push ${evidence.pushMs} ms, controller synced from its image ${evidence.controllerMs} ms\n`);
});

test('the registry serves both images under the digests the layouts name', () => {
  assert.equal(crane(bin, ['digest', refs.wasm]), built.wasm.digest);
  assert.equal(crane(bin, ['digest', refs.controller]), built.controller.digest);
  assert.match(built.wasm.digest, /^sha256:[0-9a-f]{64}$/);
});

test('the Wasm image is the compat variant Istio\'s agent reads: one tar+gzip layer whose plugin.wasm is build/meltemi.wasm byte for byte', () => {
  const manifest = JSON.parse(crane(bin, ['manifest', refs.wasm]));
  assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(manifest.annotations['module.wasm.image/variant'], 'compat');
  assert.deepEqual(manifest.layers.map((l) => l.mediaType), ['application/vnd.oci.image.layer.v1.tar+gzip']);
  const layer = crane(bin, ['blob', `${registry.host}/meltemi@${manifest.layers[0].digest}`], { binary: true });
  assert.deepEqual(execFileSync('tar', ['-tzf', '-'], { input: layer, encoding: 'utf8' }).split('\n').filter(Boolean), ['./', './plugin.wasm']);
  const plugin = execFileSync('tar', ['-xzOf', '-', './plugin.wasm'], { input: layer, maxBuffer: 1 << 28 });
  assert.ok(plugin.equals(readFileSync(WASM)), 'plugin.wasm is build/meltemi.wasm');
});

test('building the Wasm image again from the same module gives the same digest (fixed mtimes, gzip -n)', () => {
  const again = buildWasmImage({ wasm: WASM, dir: join(work, 'again'), ref: VERSION, mtime: built.sourceDateEpoch, version: VERSION });
  assert.equal(again.digest, built.wasm.digest);
});

test('the controller image is a from-scratch filesystem: node, the libraries it links, /app, and nothing else', () => {
  assert.deepEqual(readdirSync(rootfs).sort(), ['app', 'etc', 'lib', 'lib64', 'tmp', 'usr']);
  assert.deepEqual(readdirSync(join(rootfs, 'app')).sort(), ['LICENSE', 'build', 'controller', 'dist', 'node_modules', 'package-lock.json', 'package.json', 'schema']);
  assert.ok(readFileSync(join(rootfs, 'app/build/meltemi.wasm')).equals(readFileSync(WASM)), 'the filter the controller\'s config check loads');
  assert.deepEqual(readdirSync(join(rootfs, 'app/node_modules')).filter((n) => ['typescript', 'assemblyscript', '@as-pect'].includes(n)), [], 'no dev dependencies');
  assert.deepEqual(imageConfig.config.Entrypoint, ['/usr/bin/node', '/app/controller/bin/meltemi.mjs']);
  assert.equal(imageConfig.config.User, '65532:65532');
  const { command, args, env: e } = chrootLaunch(['--version']);
  const r = spawnSync(command, args, { env: e, encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), `meltemi ${VERSION}`);
});

test('the controller started from its image programs a MetaRouter with the Wasm image\'s oci:// url and digest, and refuses what the filter would', async () => {
  const url = `oci://${refs.wasm}`;
  const sha256 = built.wasm.digest.slice('sha256:'.length);
  const t0 = Date.now();
  await env.start(['--module-url', url, '--module-sha256', sha256], { launch: chrootLaunch });
  evidence.controllerMs = Date.now() - t0;
  const ns = await env.namespace('image');
  await env.apply(service(ns, 'greeter', [{ name: 'tcp-metaprotocol-thrift-greeter', port: 9090 }]));
  await env.apply(router(ns, 'greeter', { hosts: ['greeter'], routes: [{ name: 'all', route: [{ destination: { host: 'greeter' } }] }] }));
  const wasmPlugin = await until('WasmPlugin', () => env.getOpt('WasmPlugin', ns, 'meltemi-greeter-9090'));
  assert.equal(wasmPlugin.spec.url, url);
  assert.equal(wasmPlugin.spec.sha256, sha256);
  const mr = await until('Programmed', async () => { const m = await env.getOpt('MetaRouter', ns, 'greeter'); return condition(m, 'Programmed')?.status === 'True' && m; });
  assert.equal(condition(mr, 'Accepted').status, 'True');
  // The filter's own check, from the image's /app/build/meltemi.wasm, refuses a POSIX class.
  await env.apply(service(ns, 'posix', [{ name: 'tcp-metaprotocol-thrift-posix', port: 9091 }]));
  await env.apply(router(ns, 'posix', { hosts: ['posix'], routes: [{ name: 'p', match: { attributes: { method: { regex: '[[:alpha:]]+' } } }, route: [{ destination: { host: 'posix' } }] }] }));
  const bad = await until('refused', async () => { const m = await env.getOpt('MetaRouter', ns, 'posix'); return condition(m, 'Accepted')?.status === 'False' && m; });
  assert.match(condition(bad, 'Accepted').message, /POSIX classes are not supported at offset 1/);
  assert.equal(env.controller.exitCode, null, 'the controller from the image is still running');
});
