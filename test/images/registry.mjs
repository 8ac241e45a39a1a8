// go-containerregistry's `registry` (an OCI distribution registry keeping blobs in memory) on a free
// loopback port, and `crane` to talk to it; both built by test/images/fetch-crane.sh. Only the
// process started here is signalled.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, until } from '../kube/cluster.mjs';
import { spawnGroup, stopGroup } from '../istio/istiod.mjs';

const FETCH = fileURLToPath(new URL('./fetch-crane.sh', import.meta.url));

/** Runs fetch-crane.sh (a no-op when cached) and returns the folder with `crane` and `registry`. */
export function craneBinaries() {
  const out = execFileSync('bash', [FETCH], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop();
}

/** `crane <args>` and its stdout (a Buffer when `binary`); on failure the error carries crane's stderr. */
export function crane(bin, args, { binary = false } = {}) {
  const out = execFileSync(join(bin, 'crane'), args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  return binary ? out : out.toString('utf8').trim();
}

export class Registry {
  constructor(bin) {
    this.bin = bin;
    this.dir = mkdtempSync(join(tmpdir(), 'meltemi-registry-'));
    this.log = join(this.dir, 'registry.log');
  }

  /** host:port, the registry part of an image reference (plain HTTP: crane and Istio use http for 127.0.0.1). */
  get host() { return `127.0.0.1:${this.port}`; }

  async start() {
    this.port = await freePort();
    this.proc = spawnGroup(join(this.bin, 'registry'), ['-port', String(this.port)], { cwd: this.dir, env: { PATH: process.env.PATH }, log: this.log });
    let exited = false;
    this.proc.exited.then(() => { exited = true; });
    await until('registry /v2/', async () => {
      if (exited) throw new Error(`registry exited: ${readFileSync(this.log, 'utf8')}`);
      const r = await fetch(`http://${this.host}/v2/`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      return r?.status === 200;
    }, 20000, 100);
    return this;
  }

  async stop() {
    await stopGroup(this.proc);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
