/**
 * meltemi: the controller and its offline twins.
 *
 *   meltemi render -f <files|folders>...   Services, ApplicationProtocols, MetaRouters -> Istio YAML on stdout
 *   meltemi envoy  -f <files|folders>...   the same inputs -> a standalone Envoy bootstrap on stdout
 *   meltemi run                            the controller (in-cluster config, or --kubeconfig / $KUBECONFIG)
 *
 * Exit codes: 0 ok; 1 a MetaRouter was rejected (its errors are on stderr; the others still render),
 * or, with --strict, an accepted MetaRouter has warnings (ignored fields, an unscoped ServiceEntry port;
 * always printed on stderr, with the texts of the status condition); 2 usage or input error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { Controller } from './controller.mjs';
import { DEFAULT_ENVOY_OPTIONS, envoyBootstrap } from './envoy.mjs';
import { readObjects, toRenderInput } from './load.mjs';
import { log } from './log.mjs';
import { DEFAULT_OPTIONS, FAIL_STRATEGIES, type FailStrategy, type RenderOptions } from './model.mjs';
import { render } from './render.mjs';
import { describeCommand, DESCRIBE_HELP } from './describe-cli.mjs';
import { unscopedWarnings } from './scope-warning.mjs';

const COMMON = `  --module-url <url>          oci://, file://, http(s):// Wasm module        [MELTEMI_MODULE_URL] (${DEFAULT_OPTIONS.moduleUrl})
  --module-sha256 <hex>       sha256 of the module                          [MELTEMI_MODULE_SHA256]
  --fail-strategy <s>         FAIL_CLOSE | FAIL_OPEN | FAIL_RELOAD          [MELTEMI_FAIL_STRATEGY] (FAIL_CLOSE)
  --config-namespace <ns>     namespace of the output (default: the MetaRouter's)  [MELTEMI_CONFIG_NAMESPACE]
  --cluster-domain <d>        (cluster.local)                               [MELTEMI_CLUSTER_DOMAIN]
  --max-early-data-bytes <n>  tcp_proxy max_early_data_bytes (65536)
  --stat-prefix <p>           the filter's metric prefix (meltemi)
  --filter-wasm <file>        a copy of the module the proxies run: configs it would refuse are
                              rejected, naming the field (docs/upgrades.md)  [MELTEMI_FILTER_WASM]
  --canary-module-url <url>   a second module for the workloads of --canary-selector (docs/upgrades.md)
  --canary-module-sha256 <hex>  --canary-filter-wasm <file> (its local copy: configs are checked with it)
  --canary-selector <k=v,...> the canary workloads' labels`;

/** Per-command help: `meltemi help <command>` or `meltemi <command> --help`. */
const HELP: Readonly<Record<string, string>> = {
  render: `usage: meltemi render -f <file|folder|->... [options]
  Services, ApplicationProtocols, MetaRouters (and ServiceEntries) -> Istio WasmPlugin + EnvoyFilter
  YAML on stdout. A rejected MetaRouter is named on stderr (exit 1); warnings too.
${COMMON}
  --strict                    exit 1 when any warning is printed (ignored fields, unscoped ports)`,
  envoy: `usage: meltemi envoy -f <file|folder|->... [options]
  The same inputs -> a standalone Envoy bootstrap on stdout, for envoy -c.
${COMMON}
  --module <path|file://>     (file://build/meltemi.wasm)
  --listen-address <ip>       (127.0.0.1)     --port-offset <n>   listener port = Service port + n (0)
  --admin-port <n>            (9901)          --endpoints <host[|subset]=addr:port,...>  (repeatable)
  --mode <m>                  perConnection (default) | perRequest: each call through Envoy's HTTP/2 router
  --strict                    exit 1 when any warning is printed`,
  run: `usage: meltemi run [--kubeconfig <file>] [options]
  Runs the controller: watches Services, ServiceEntries, ApplicationProtocols and MetaRouters and
  applies the WasmPlugins and EnvoyFilters (in a Pod, or with --kubeconfig / $KUBECONFIG).
${COMMON}
  --resync <seconds> (300)    --health-port <n> (8081)   --kubeconfig <file>
  --rds-port <n>              serve per-request MetaRouters' route tables over REST RDS on this port
                              (sidecars reach it through a static cluster named meltemi-rds)
  --istiod-url <url,...>      istiod's HTTP debug address (http://istiod.istio-system:15014), one per
                              replica: Programmed then says whether the proxies ACKed the config
                              (/debug/syncz)                                  [MELTEMI_ISTIOD_URL]
  --istiod-poll <seconds>     how often to read it (5)
  --istiod-token <file>       bearer token for istiod's debug endpoints (a projected ServiceAccount
                              token, audience istio-ca)                [MELTEMI_ISTIOD_TOKEN_FILE]`,
  describe: DESCRIBE_HELP,
};

const USAGE = `usage:
  meltemi render -f <file|folder|->... [options]     Istio WasmPlugin + EnvoyFilter YAML on stdout
  meltemi envoy  -f <file|folder|->... [options]     standalone Envoy bootstrap YAML on stdout
  meltemi describe <ns/name> -f <file|folder>... --attr <k=v>...   which route a request takes, and why
  meltemi run [--kubeconfig <file>] [options]        run the controller
  meltemi help <command>                             the options of one command
  meltemi --version`;

/** Meltemi's version (package.json), which the filter, the controller and the chart share. */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function fail(message: string, command?: string): never {
  process.stderr.write(`meltemi: ${message}\n${(command && HELP[command]) || USAGE}\n`);
  process.exit(2);
}

function renderOptions(v: Record<string, string | string[] | boolean | undefined>, env: NodeJS.ProcessEnv, moduleUrl?: string): RenderOptions {
  const s = (k: string, e?: string) => (v[k] as string | undefined) ?? (e ? env[e] : undefined);
  const failStrategy = (s('fail-strategy', 'MELTEMI_FAIL_STRATEGY') ?? DEFAULT_OPTIONS.failStrategy) as FailStrategy;
  if (!FAIL_STRATEGIES.includes(failStrategy)) fail(`--fail-strategy must be one of ${FAIL_STRATEGIES.join(', ')}`);
  const sha = s('module-sha256', 'MELTEMI_MODULE_SHA256');
  if (sha && !/^[a-f0-9]{64}$/.test(sha)) fail('--module-sha256 must be 64 lowercase hex digits');
  const early = Number(s('max-early-data-bytes') ?? DEFAULT_OPTIONS.maxEarlyDataBytes);
  if (!Number.isInteger(early) || early < 1) fail('--max-early-data-bytes must be a positive integer');
  const statPrefix = s('stat-prefix');
  const configNamespace = s('config-namespace', 'MELTEMI_CONFIG_NAMESPACE');
  const filterWasm = s('filter-wasm', 'MELTEMI_FILTER_WASM');
  if (filterWasm && !existsSync(filterWasm.startsWith('file://') ? new URL(filterWasm) : filterWasm)) fail(`--filter-wasm ${filterWasm}: no such file`);
  return {
    moduleUrl: moduleUrl ?? s('module-url', 'MELTEMI_MODULE_URL') ?? DEFAULT_OPTIONS.moduleUrl,
    ...(sha ? { moduleSha256: sha } : {}),
    failStrategy,
    clusterDomain: s('cluster-domain', 'MELTEMI_CLUSTER_DOMAIN') ?? DEFAULT_OPTIONS.clusterDomain,
    ...(configNamespace ? { configNamespace } : {}),
    maxEarlyDataBytes: early,
    ...(statPrefix ? { statPrefix } : {}),
    ...(filterWasm ? { filterWasm } : {}),
    ...canaryOptions(v),
  };
}

/** --canary-*: a second module for the workloads the selector names (canary.mts). */
function canaryOptions(v: Record<string, string | string[] | boolean | undefined>): Partial<RenderOptions> {
  const url = v['canary-module-url'] as string | undefined;
  const selector = v['canary-selector'] as string | undefined;
  const sha = v['canary-module-sha256'] as string | undefined;
  const wasm = v['canary-filter-wasm'] as string | undefined;
  if (!url) {
    if (selector || sha || wasm) fail('--canary-selector, --canary-module-sha256 and --canary-filter-wasm need --canary-module-url');
    return {};
  }
  if (!selector) fail('--canary-module-url needs --canary-selector <label>=<value>,... (the canary workloads)');
  const labels: Record<string, string> = {};
  for (const kv of selector.split(',')) {
    const [k, val, ...more] = kv.split('=');
    if (!k || val === undefined || more.length > 0) fail(`--canary-selector ${selector}: expected <label>=<value>,...`);
    labels[k] = val;
  }
  if (sha && !/^[a-f0-9]{64}$/.test(sha)) fail('--canary-module-sha256 must be 64 lowercase hex digits');
  if (wasm && !existsSync(wasm)) fail(`--canary-filter-wasm ${wasm}: no such file`);
  return { canary: { moduleUrl: url, ...(sha ? { moduleSha256: sha } : {}), selector: labels }, ...(wasm ? { canaryFilterWasm: wasm } : {}) };
}

function parseEndpoints(list: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i <= 0) fail(`--endpoints ${item}: expected <host>[|<subset>]=<addr:port>,...`);
    out[item.slice(0, i)] = item.slice(i + 1).split(',').filter(Boolean);
  }
  return out;
}

/** Runs the CLI; returns the exit code (the controller's run never returns). */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv;
  // describe takes a positional (the MetaRouter) and options of its own.
  if (command === 'describe') return describeCommand(rest, env, (m) => fail(m, 'describe'));
  let parsed;
  try {
    parsed = parseArgs({
      args: [...rest],
      options: {
        file: { type: 'string', short: 'f', multiple: true },
        'module-url': { type: 'string' }, 'module-sha256': { type: 'string' }, 'fail-strategy': { type: 'string' },
        'config-namespace': { type: 'string' }, 'cluster-domain': { type: 'string' },
        'max-early-data-bytes': { type: 'string' }, 'stat-prefix': { type: 'string' }, 'filter-wasm': { type: 'string' },
        'canary-module-url': { type: 'string' }, 'canary-module-sha256': { type: 'string' }, 'canary-selector': { type: 'string' }, 'canary-filter-wasm': { type: 'string' },
        module: { type: 'string' }, 'listen-address': { type: 'string' }, 'port-offset': { type: 'string' },
        'admin-port': { type: 'string' }, endpoints: { type: 'string', multiple: true }, mode: { type: 'string' },
        resync: { type: 'string' }, 'health-port': { type: 'string' }, kubeconfig: { type: 'string' },
        strict: { type: 'boolean' }, 'rds-port': { type: 'string' },
        'istiod-url': { type: 'string' }, 'istiod-poll': { type: 'string' }, 'istiod-token': { type: 'string' },
        help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' },
      },
      allowPositionals: command === 'help',
    });
  } catch (e) {
    fail((e as Error).message);
  }
  const v = parsed.values;
  if (command === '--version' || command === 'version' || v.version) { process.stdout.write(`meltemi ${version()}\n`); return 0; }
  if (command === 'help') {
    const topic = parsed.positionals[0];
    if (topic && !HELP[topic]) fail(`no command ${topic}`);
    process.stdout.write((topic ? HELP[topic] : USAGE) + '\n');
    return 0;
  }
  if (v.help && command && HELP[command]) { process.stdout.write(HELP[command] + '\n'); return 0; }
  if (v.help || !command || command === '--help' || command === '-h') { process.stdout.write(USAGE + '\n'); return 0; }
  if (!HELP[command]) fail(`unknown command ${command}`);

  if (command === 'render' || command === 'envoy') {
    if (!v.file?.length) fail(`${command} needs -f <file|folder>`);
    let input;
    try { input = toRenderInput(readObjects(v.file)); } catch (e) { fail((e as Error).message); }
    const moduleUrl = command === 'envoy' ? (v.module ?? 'file://build/meltemi.wasm') : undefined;
    const options = renderOptions(v, env, moduleUrl);
    const out = render(input, options);
    let rejected = 0;
    for (const [router, c] of out.conditions) {
      if (c.status === 'False') { rejected++; process.stderr.write(`meltemi: MetaRouter ${router} rejected (${c.reason}): ${c.message}\n`); }
    }
    let warned = 0;
    for (const [router, list] of out.warnings) {
      for (const w of list) { warned++; process.stderr.write(`meltemi: warning: MetaRouter ${router}: ${w}\n`); }
    }
    if (command === 'render') {
      const unscoped = unscopedWarnings(out.resources, [...out.warnings.values()].flat());
      for (const w of unscoped.values()) { warned++; process.stderr.write(`meltemi: warning: ${w}\n`); }
      process.stdout.write(out.resources.map((r) => (unscoped.has(r) ? `# meltemi: warning: ${unscoped.get(r)}\n` : '') + stringify(r, { lineWidth: 0 })).join('---\n'));
    } else {
      const mode = v.mode ?? 'perConnection';
      if (mode !== 'perConnection' && mode !== 'perRequest') fail('--mode must be perConnection or perRequest');
      const num = (k: string, d: number) => { const n = Number(v[k as keyof typeof v] ?? d); if (!Number.isInteger(n) || n < 0) fail(`--${k} must be a non-negative integer`); return n; };
      try {
        process.stdout.write(stringify(envoyBootstrap(out.compiled, options, {
          ...DEFAULT_ENVOY_OPTIONS,
          listenAddress: v['listen-address'] ?? DEFAULT_ENVOY_OPTIONS.listenAddress,
          portOffset: num('port-offset', 0),
          adminPort: num('admin-port', DEFAULT_ENVOY_OPTIONS.adminPort),
          endpoints: parseEndpoints(v.endpoints ?? []),
          mode,
        }), { lineWidth: 0 }));
      } catch (e) { fail((e as Error).message); }
    }
    if (warned > 0 && v.strict) process.stderr.write(`meltemi: --strict: ${warned} warning${warned === 1 ? '' : 's'}\n`);
    return rejected > 0 || (warned > 0 && v.strict) ? 1 : 0;
  }

  if (command === 'run') {
    const kc = new KubeConfig();
    const kubeconfig = v.kubeconfig ?? env.KUBECONFIG;
    if (!kubeconfig && !env.KUBERNETES_SERVICE_HOST) fail('not running in a Pod (no KUBERNETES_SERVICE_HOST): pass --kubeconfig or set KUBECONFIG');
    try {
      if (kubeconfig) kc.loadFromFile(kubeconfig);
      else kc.loadFromCluster();
    } catch (e) {
      fail(`cannot load ${kubeconfig ? `kubeconfig ${kubeconfig}` : 'the in-cluster config'}: ${(e as Error).message}`);
    }
    if (!kc.getCurrentCluster()) fail(`no current cluster in ${kubeconfig ? `kubeconfig ${kubeconfig}` : 'the in-cluster config'}`);
    const resync = Number(v.resync ?? 300);
    const healthPort = Number(v['health-port'] ?? 8081);
    if (!(resync >= 1)) fail('--resync must be at least 1 (seconds)');
    if (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535) fail('--health-port must be a port number');
    const rdsPort = v['rds-port'] !== undefined ? Number(v['rds-port']) : undefined;
    if (rdsPort !== undefined && (!Number.isInteger(rdsPort) || rdsPort < 0 || rdsPort > 65535)) fail('--rds-port must be a port number', 'run');
    const istiodUrl = v['istiod-url'] ?? env.MELTEMI_ISTIOD_URL;
    if (istiodUrl && !istiodUrl.split(',').every((u) => /^https?:\/\/./.test(u.trim()))) fail('--istiod-url must be http:// or https:// URLs, separated by commas', 'run');
    const istiodPoll = Number(v['istiod-poll'] ?? 5);
    const istiodToken = v['istiod-token'] ?? env.MELTEMI_ISTIOD_TOKEN_FILE;
    if (!(istiodPoll > 0)) fail('--istiod-poll must be a positive number of seconds', 'run');
    const controller = new Controller(kc, {
      render: renderOptions(v, env), resyncMs: resync * 1000, healthPort, ...(rdsPort !== undefined ? { rdsPort } : {}),
      ...(istiodUrl ? { istiodUrl, istiodPollMs: istiodPoll * 1000 } : {}),
      ...(istiodToken ? { istiodTokenFile: istiodToken } : {}),
    });
    await controller.start();
    const a = controller.healthAddress;
    if (a) log('info', 'health endpoints', { address: a.address, port: a.port });
    if (controller.rdsPort !== undefined) log('info', 'route discovery (REST RDS)', { port: controller.rdsPort });
    const shutdown = (signal: string) => { log('info', 'stopping', { signal }); void controller.stop().then(() => process.exit(0)); };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    return new Promise<number>(() => undefined);
  }
  fail(`unknown command ${command}`);
}
