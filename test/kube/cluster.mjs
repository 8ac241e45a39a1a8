// A real kube-apiserver + etcd for tests, from the binaries test/kube/fetch-apiserver.sh caches.
// Every port is picked free at start; everything lives in a temp folder removed by stop(); only the
// processes started here are ever signalled (by their pid).
import { spawn, execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, existsSync, createWriteStream } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FETCH = fileURLToPath(new URL('./fetch-apiserver.sh', import.meta.url));

/** Runs fetch-apiserver.sh (a no-op when cached) and returns the cache folder. */
export function binaries() {
  const out = execFileSync('bash', [FETCH], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = out.trim().split('\n').pop();
  for (const f of ['kube-apiserver', 'etcd']) if (!existsSync(join(dir, f))) throw new Error(`${f} missing in ${dir}`);
  return dir;
}

// The harness's: kube tests and e2e tests draw ports the same way (freePorts holds n at once).
export { freePort, freePorts } from '../harness/ports.mjs';
import { freePorts } from '../harness/ports.mjs';

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value; throws the last error (or `what`) after timeoutMs. */
export async function until(what, fn, timeoutMs = 30000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await delay(everyMs);
  }
}

function get(url, token) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export class Cluster {
  /** Tokens: admin (system:masters) and the controller's ServiceAccount identity (RBAC from deploy/). */
  adminToken = randomBytes(16).toString('hex');
  controllerToken = randomBytes(16).toString('hex');
  procs = {};

  constructor(bin) {
    this.bin = bin;
    this.dir = mkdtempSync(join(tmpdir(), 'meltemi-kube-'));
  }

  get server() { return `https://127.0.0.1:${this.apiPort}`; }

  async start() {
    [this.etcdPort, this.peerPort, this.apiPort] = await freePorts(3);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(this.dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(this.dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(this.dir, 'tokens.csv'), [
      `${this.adminToken},admin,admin,"system:masters"`,
      `${this.controllerToken},system:serviceaccount:meltemi-system:meltemi,meltemi,"system:serviceaccounts,system:serviceaccounts:meltemi-system,system:authenticated"`,
    ].join('\n') + '\n');
    const t0 = Date.now();
    this.startEtcd();
    await this.startApiserver();
    this.startupMs = Date.now() - t0;
    return this;
  }

  spawnLogged(name, args) {
    const log = createWriteStream(join(this.dir, `${name}.log`), { flags: 'a' });
    const p = spawn(join(this.bin, name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.pipe(log, { end: false });
    p.stderr.pipe(log, { end: false });
    p.exited = new Promise((r) => p.on('exit', (code, signal) => r({ code, signal })));
    this.procs[name] = p;
    return p;
  }

  startEtcd() {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const client = `http://127.0.0.1:${this.etcdPort}`;
    this.spawnLogged('etcd', [
      '--name=meltemi', `--data-dir=${join(this.dir, 'etcd')}`, `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=meltemi=${peer}`,
      '--unsafe-no-fsync', '--log-level=warn', '--quota-backend-bytes=268435456',
    ]);
  }

  async startApiserver() {
    const p = this.spawnLogged('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${this.etcdPort}`, '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1',
      `--secure-port=${this.apiPort}`, `--cert-dir=${join(this.dir, 'certs')}`, '--service-cluster-ip-range=10.96.0.0/16',
      `--service-account-issuer=https://kubernetes.default.svc`, `--service-account-key-file=${join(this.dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(this.dir, 'sa.key')}`, `--token-auth-file=${join(this.dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC', '--enable-priority-and-fairness=false', '--v=0',
    ]);
    let exited = false;
    p.exited.then(() => { exited = true; });
    await until('kube-apiserver /readyz', async () => {
      if (exited) throw new Error(`kube-apiserver exited; see ${join(this.dir, 'kube-apiserver.log')}`);
      const r = await get(`${this.server}/readyz`, this.adminToken);
      return r.status === 200;
    }, 90000, 200);
  }

  /** Stops kube-apiserver only (etcd keeps the data) and starts it again on the same port. */
  async restartApiserver() {
    await this.stopProc('kube-apiserver');
    const t0 = Date.now();
    await this.startApiserver();
    return Date.now() - t0;
  }

  async stopProc(name) {
    const p = this.procs[name];
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 10000);
    await p.exited;
    clearTimeout(timer);
  }

  async version() {
    return JSON.parse((await get(`${this.server}/version`, this.adminToken)).body);
  }

  /** kubeconfig (YAML text) for a token. */
  kubeconfig(token) {
    return `apiVersion: v1
kind: Config
clusters: [{ name: test, cluster: { server: "${this.server}", insecure-skip-tls-verify: true } }]
users: [{ name: test, user: { token: "${token}" } }]
contexts: [{ name: test, context: { cluster: test, user: test } }]
current-context: test
`;
  }

  writeKubeconfig(name, token) {
    const file = join(this.dir, `${name}.kubeconfig`);
    writeFileSync(file, this.kubeconfig(token));
    return file;
  }

  async stop({ keep = false } = {}) {
    await this.stopProc('kube-apiserver');
    await this.stopProc('etcd');
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}
