// A real istiod (pilot-discovery, built by test/istio/fetch-istiod.sh) against the test kube-apiserver,
// and the bootstrap of an Envoy that talks to it over ADS like a sidecar without pilot-agent.
//
// istiod runs with its webhooks, validation and injection off (and its CA too unless asked for),
// every listener on a free loopback
// port (plaintext xDS, HTTP debug/readiness, ctrlz) or disabled (secure xDS, HTTPS webhooks,
// monitoring), and PILOT_ENABLE_METADATA_EXCHANGE=false because the wheel's upstream Envoy has no
// istio.metadata_exchange filter. Only the processes started here are signalled, by process group.
import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, until } from '../kube/cluster.mjs';
import { registerChild, unregisterChild } from '../harness/cleanup.mjs';
import { statsConfig } from '../../dist/controller/stats-tags.mjs';

const FETCH = fileURLToPath(new URL('./fetch-istiod.sh', import.meta.url));
const FETCH_BOOTSTRAP = fileURLToPath(new URL('./fetch-istio-bootstrap.sh', import.meta.url));

/** Runs fetch-istiod.sh (a no-op when cached) and returns the cache folder. */
export function istiodBinaries() {
  const out = execFileSync('bash', [FETCH], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = out.trim().split('\n').pop();
  if (!existsSync(join(dir, 'pilot-discovery'))) throw new Error(`pilot-discovery missing in ${dir}`);
  return dir;
}

/**
 * The Envoy bootstrap Istio's agent writes for a sidecar whose ProxyConfig is `proxyConfig`
 * (meshConfig.defaultConfig's JSON), rendered by Istio's own pkg/bootstrap and template
 * (test/istio/bootstrap-render, built by fetch-istio-bootstrap.sh; a no-op when cached).
 */
export function istioSidecarBootstrap(proxyConfig) {
  const out = execFileSync('bash', [FETCH_BOOTSTRAP], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = out.trim().split('\n').pop();
  const json = execFileSync(join(dir, 'istio-bootstrap'), [join(dir, 'envoy_bootstrap.json')], { input: JSON.stringify(proxyConfig), encoding: 'utf8' });
  return JSON.parse(json);
}

/** The Istio release line of the cached build ("1.31"), from the module's VERSION file. */
export function istioVersion(dir) {
  try { return readFileSync(join(dir, 'istio.version'), 'utf8').trim(); } catch { return undefined; }
}

/** Spawns a command in its own process group, killed with the test process (pdeathsig + cleanup registry). */
export function spawnGroup(cmd, args, { cwd, env, log }) {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  const [c, a] = setpriv ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', cmd, ...args]] : [cmd, args];
  const p = spawn(c, a, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  registerChild(p.pid);
  const out = createWriteStream(log, { flags: 'a' });
  p.stdout.pipe(out, { end: false });
  p.stderr.pipe(out, { end: false });
  p.exited = new Promise((r) => p.on('exit', (code, signal) => { unregisterChild(p.pid); r({ code, signal }); }));
  return p;
}

export async function stopGroup(p, timeoutMs = 10000) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ }
  const timer = setTimeout(() => { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
  await p.exited;
  clearTimeout(timer);
}

export class Istiod {
  /**
   * @param {string} bin folder with pilot-discovery
   * @param {string} kubeconfig file (admin)
   * @param {{env?: object, ca?: boolean}} [o] env: extra istiod environment (feature flags), applied
   *   last; ca: run istiod's CA on its secure gRPC port (a free one), for pilot-agent's certificates
   */
  constructor(bin, kubeconfig, { env = {}, ca = false } = {}) {
    this.extraEnv = env;
    this.ca = ca;
    this.bin = bin;
    this.kubeconfig = kubeconfig;
    this.dir = mkdtempSync(join(tmpdir(), 'meltemi-istiod-'));
    this.log = join(this.dir, 'istiod.log');
  }

  get xdsAddress() { return `127.0.0.1:${this.grpcPort}`; }

  /** Where istiod's CA answers (TLS, istiod's own certificate for istiod.istio-system.svc); with `ca` only. */
  get caAddress() { return `127.0.0.1:${this.secureGrpcPort}`; }

  async start() {
    this.grpcPort = await freePort();
    this.httpPort = await freePort();
    this.ctrlzPort = await freePort();
    if (this.ca) this.secureGrpcPort = await freePort();
    // No default metrics provider: no istio.stats filter (upstream Envoy lacks it). Auto mTLS off
    // (required, tried): with it, every outbound cluster gets an ISTIO_MUTUAL transport socket match
    // whose SDS secrets come from pilot-agent's sds-grpc (absent here) with initial_fetch_timeout 0,
    // and Envoy never becomes ready.
    const mesh = join(this.dir, 'mesh.yaml');
    writeFileSync(mesh, [
      'rootNamespace: istio-system', 'trustDomain: cluster.local', 'enableAutoMtls: false',
      'defaultProviders: {}', `defaultConfig: { discoveryAddress: "${this.xdsAddress}" }`,
    ].join('\n') + '\n');
    const t0 = Date.now();
    this.proc = spawnGroup(join(this.bin, 'pilot-discovery'), [
      'discovery',
      `--kubeconfig=${this.kubeconfig}`, `--meshConfig=${mesh}`, `--networksConfig=${join(this.dir, 'meshNetworks')}`,
      '--namespace=istio-system', '--clusterID=Kubernetes', '--domain=cluster.local', '--registries=Kubernetes',
      `--grpcAddr=127.0.0.1:${this.grpcPort}`, `--secureGRPCAddr=${this.ca ? this.caAddress : ''}`, `--httpAddr=127.0.0.1:${this.httpPort}`,
      '--httpsAddr=', '--monitoringAddr=', `--ctrlz_port=${this.ctrlzPort}`, '--ctrlz_address=127.0.0.1',
      '--log_output_level=default:info', '--log_as_json=false',
    ], {
      cwd: this.dir, // istiod looks for ./etc/istio/... and ./var/lib/istio/inject relative to it: absent
      log: this.log,
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME,
        POD_NAMESPACE: 'istio-system', POD_NAME: 'istiod-meltemi-test', REVISION: 'default',
        // Required with the wheel's upstream Envoy: with metadata exchange on, istiod puts
        // istio.metadata_exchange on every outbound cluster and Envoy rejects them all (CDS NACK).
        PILOT_ENABLE_METADATA_EXCHANGE: 'false',
        // Not required (tried), but what these tests mean: no CA unless asked for (plaintext xDS, no
        // workload certificates), no webhook configurations to patch, no Gateway API (no CRDs here).
        ENABLE_CA_SERVER: String(this.ca),
        VALIDATION_WEBHOOK_CONFIG_NAME: '',
        INJECTION_WEBHOOK_CONFIG_NAME: '',
        PILOT_ENABLE_GATEWAY_API: 'false',
        PILOT_ENABLE_GATEWAY_API_STATUS: 'false',
        PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER: 'false',
        ENABLE_AGENTGATEWAY: 'false',
        ...this.extraEnv,
      },
    });
    let exited = false;
    this.proc.exited.then(() => { exited = true; });
    await until('istiod /ready', async () => {
      if (exited) throw new Error(`istiod exited; see ${this.log}:\n${this.tail()}`);
      const r = await fetch(`http://127.0.0.1:${this.httpPort}/ready`, { signal: AbortSignal.timeout(2000) });
      await r.text();
      return r.status === 200;
    }, 90000, 200);
    this.readyMs = Date.now() - t0;
    return this;
  }

  tail(lines = 40) {
    try { return readFileSync(this.log, 'utf8').trim().split('\n').slice(-lines).join('\n'); } catch { return ''; }
  }

  logs() { try { return readFileSync(this.log, 'utf8'); } catch { return ''; } }

  /** GET on istiod's debug/HTTP port (e.g. /debug/syncz, /debug/config_dump?proxyID=...). */
  async debug(path) {
    const r = await fetch(`http://127.0.0.1:${this.httpPort}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: r.status, body: await r.text() };
  }

  async stop({ keep = !!process.env.KEEP_ISTIOD } = {}) {
    await stopGroup(this.proc);
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Bootstrap of an Envoy that istiod treats as a sidecar in `namespace` with no traffic capture:
 * INTERCEPTION_MODE NONE makes istiod bind each outbound listener to 127.0.0.1:<service port> (and
 * generate no virtual outbound/inbound listeners). No `sds-grpc` cluster: there are no workload
 * certificates (istiod runs without its CA and with auto mTLS off), so nothing asks for secrets.
 */
export function sidecarBootstrap({ namespace, xdsAddress, istioVersion: version = '1.31.0', workload = 'client' }) {
  const [host, port] = xdsAddress.split(':');
  return {
    node: {
      id: `sidecar~127.0.0.1~${workload}.${namespace}~${namespace}.svc.cluster.local`,
      cluster: `${workload}.${namespace}`,
      metadata: {
        NAMESPACE: namespace, ISTIO_VERSION: version, CLUSTER_ID: 'Kubernetes', INTERCEPTION_MODE: 'NONE',
        NAME: workload, WORKLOAD_NAME: workload, LABELS: { app: workload }, MESH_ID: 'cluster.local',
      },
    },
    dynamic_resources: {
      ads_config: {
        api_type: 'DELTA_GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
      },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    // The tags Istio's bootstrap gets from meshConfig extraStatTags (docs/metrics.md), without its
    // stats matcher: the tests read ECDS and RDS stats it leaves out (test/e2e/metrics.test.mjs runs
    // Istio's own stats_config).
    stats_config: statsConfig(),
    static_resources: {
      clusters: [
        {
          name: 'xds-grpc', type: 'STATIC', connect_timeout: '1s',
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: Number(port) } } } }] }] },
        },
      ],
    },
  };
}
