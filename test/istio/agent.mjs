// Istio's agent (pilot-agent, built by test/istio/fetch-pilot-agent.sh) running a real Envoy as the
// sidecar of one workload, connected to the test's istiod: what an injected pod runs, minus the
// iptables capture. The agent renders Envoy's bootstrap from Istio's own template, proxies xDS
// between Envoy and istiod, serves SDS, and fetches Wasm modules named by oci:// or http(s)://
// into its own cache, rewriting each ECDS Wasm config to the local file before Envoy sees it.
//
// Every port is a free one (Envoy admin, agent status, Envoy's readiness and Prometheus
// listeners); the agent's sockets and files live in its own folder, which is its working directory
// (the template path and the SDS/XDS sockets are relative to it), except its Wasm cache (WASM_CACHE).
// Only the process group started here is signalled.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, until } from '../kube/cluster.mjs';
import { spawnGroup, stopGroup } from './istiod.mjs';
import { envoyPath, parseStatsJson } from '../harness/envoy.mjs';
import { parsePrometheus } from '../harness/prometheus.mjs';
import { istioMeshConfig } from '../../dist/controller/stats-tags.mjs';

export const WASM_CACHE = '/var/lib/istio/data';
const FETCH = fileURLToPath(new URL('./fetch-pilot-agent.sh', import.meta.url));

/** Runs fetch-pilot-agent.sh (a no-op when cached) and returns the folder with pilot-agent. */
export function agentBinaries() {
  const out = execFileSync('bash', [FETCH], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = out.trim().split('\n').pop();
  if (!existsSync(join(dir, 'pilot-agent'))) throw new Error(`pilot-agent missing in ${dir}`);
  return dir;
}

export class Agent {
  /**
   * @param {string} bin folder with pilot-agent and envoy_bootstrap_tmpl.json
   * @param {{namespace: string, workload: string, xdsAddress: string, ca: {address: string, rootCert: string, token: string}, ip?: string, labels?: object, env?: object}} o
   *   ca: istiod's CA (Istiod.caAddress), the root certificate istiod publishes in each namespace
   *   (ConfigMap istio-ca-root-cert) and a service account token for audience istio-ca: what an
   *   injected pod has mounted. The agent refuses to start without a root certificate.
   *   ip: the workload's address (INSTANCE_IP; any 127.x.y.z, so that several workloads are told
   *   apart by istiod); labels: the workload's labels (default { app: workload })
   *   env: extra agent environment (e.g. WASM_INSECURE_REGISTRIES), applied last
   */
  constructor(bin, { namespace, workload, xdsAddress, ca, ip = '127.0.0.1', labels = { app: workload }, env = {} }) {
    Object.assign(this, { bin, namespace, workload, xdsAddress, ca, ip, labels, extraEnv: env });
    this.dir = mkdtempSync(join(tmpdir(), `meltemi-agent-${workload}-`));
    this.log = join(this.dir, 'agent.log');
  }

  async start() {
    [this.adminPort, this.statusPort, this.readyPort, this.promPort] = await freePorts(4);
    mkdirSync(join(this.dir, 'var/lib/istio/envoy'), { recursive: true });
    copyFileSync(join(this.bin, 'envoy_bootstrap_tmpl.json'), join(this.dir, 'var/lib/istio/envoy/envoy_bootstrap_tmpl.json'));
    // The agent's Wasm cache is the fixed absolute folder Istio's images create (constants.IstioDataDir,
    // not configurable): modules land in /var/lib/istio/data/<sha256 of the url>/<checksum>.wasm.
    mkdirSync(WASM_CACHE, { recursive: true });
    mkdirSync(join(this.dir, 'var/run/secrets/istio'), { recursive: true });
    mkdirSync(join(this.dir, 'var/run/secrets/tokens'), { recursive: true });
    writeFileSync(join(this.dir, 'var/run/secrets/istio/root-cert.pem'), this.ca.rootCert);
    writeFileSync(join(this.dir, 'var/run/secrets/tokens/istio-token'), this.ca.token);
    // ProxyConfig (what the mesh config's defaultConfig and the proxy.istio.io/config annotation set).
    // controlPlaneAuthPolicy NONE: plaintext xDS to the test's istiod, whose secure port is off.
    const proxyConfig = {
      discoveryAddress: this.xdsAddress, controlPlaneAuthPolicy: 'NONE', binaryPath: envoyPath(),
      configPath: join(this.dir, 'etc/istio/proxy'), proxyAdminPort: this.adminPort, statusPort: this.statusPort,
      concurrency: 1, drainDuration: '1s', terminationDrainDuration: '1s',
      // What docs/metrics.md says to set for the filter's labels (pilot-agent writes them into the bootstrap).
      ...istioMeshConfig().defaultConfig,
    };
    const t0 = Date.now();
    this.proc = spawnGroup(join(this.bin, 'pilot-agent'), [
      'proxy', 'sidecar', `--domain=${this.namespace}.svc.cluster.local`,
      '--proxyLogLevel=info', '--proxyComponentLogLevel=wasm:info', '--log_output_level=default:info,wasm:debug',
    ], {
      cwd: this.dir, log: this.log,
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME,
        POD_NAME: `${this.workload}-0`, POD_NAMESPACE: this.namespace, INSTANCE_IP: this.ip, SERVICE_ACCOUNT: 'default',
        ISTIO_META_CLUSTER_ID: 'Kubernetes', ISTIO_META_MESH_ID: 'cluster.local', TRUST_DOMAIN: 'cluster.local',
        // No iptables capture: istiod binds each outbound listener to 127.0.0.1:<service port>.
        ISTIO_META_INTERCEPTION_MODE: 'NONE',
        ISTIO_META_WORKLOAD_NAME: this.workload, ISTIO_METAJSON_LABELS: JSON.stringify(this.labels),
        PROXY_CONFIG: JSON.stringify(proxyConfig),
        // The CA is istiod's secure port; its certificate names istiod's Service, not 127.0.0.1.
        CA_ADDR: this.ca.address, ISTIOD_SAN: 'istiod.istio-system.svc',
        ENVOY_STATUS_PORT: String(this.readyPort), ENVOY_PROMETHEUS_PORT: String(this.promPort),
        ...this.extraEnv,
      },
    });
    let exited = false;
    this.proc.exited.then(() => { exited = true; });
    // The agent's readiness is Envoy's: LDS and CDS received from istiod (through the agent's xDS proxy).
    await until('Envoy under pilot-agent ready', async () => {
      if (exited) throw new Error(`pilot-agent exited; see ${this.log}:\n${this.tail()}`);
      const r = await fetch(`http://127.0.0.1:${this.readyPort}/healthz/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      await r?.text();
      return r?.status === 200;
    }, 90000, 200);
    this.readyMs = Date.now() - t0;
    return this;
  }

  /** GET on Envoy's admin port. */
  async admin(path) {
    const r = await fetch(`http://127.0.0.1:${this.adminPort}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: r.status, body: await r.text() };
  }

  async stats() { return parseStatsJson((await this.admin('/stats?format=json')).body); }

  /** What Prometheus scrapes from the sidecar: ENVOY_PROMETHEUS_PORT's /stats/prometheus, parsed. */
  async metrics() {
    const r = await fetch(`http://127.0.0.1:${this.promPort}/stats/prometheus`, { signal: AbortSignal.timeout(5000) });
    return parsePrometheus(await r.text());
  }

  tail(lines = 40) {
    try { return readFileSync(this.log, 'utf8').trim().split('\n').slice(-lines).join('\n'); } catch { return ''; }
  }

  logs() { try { return readFileSync(this.log, 'utf8'); } catch { return ''; } }

  async stop({ keep = !!process.env.KEEP_AGENT } = {}) {
    await stopGroup(this.proc);
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}
