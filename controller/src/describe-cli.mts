/**
 * The `meltemi describe` command: finds the MetaRouter's WasmPlugin (rendered from files, or as the
 * controller applied it in the cluster), and prints the filter's own explanation of one request.
 *
 * Exit codes: 0 explained; 1 the request could not be explained (bad frame, the filter refuses the
 * config, no WasmPlugin for the MetaRouter); 2 usage or input error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { explain, describeText, pluginsOf, portOf, type Request } from './describe.mjs';
import { FilterCheck, DEFAULT_FILTER_WASM } from './filter-check.mjs';
import { Kube, RESOURCES } from './kube.mjs';
import { readObjects, toRenderInput } from './load.mjs';
import { DEFAULT_OPTIONS, type KubeObject } from './model.mjs';
import { render } from './render.mjs';

export const DESCRIBE_HELP = `usage: meltemi describe <namespace/name | name> (-f <file|folder|->... | --kubeconfig <file>) [options]
  Which route one request takes under a MetaRouter, and why: the routes tried in order with each
  condition that held or failed, the route taken (or the noRoute policy), its destinations with
  their weights, and the policies that apply. The filter decides: its build (build/meltemi.wasm)
  runs the MetaRouter's plugin config, as a proxy does.
  -f <file|folder|->          render the MetaRouter from these files (as meltemi render does)
  --kubeconfig <file>         or read the WasmPlugin the controller applied  [KUBECONFIG]
  -n, --namespace <ns>        the MetaRouter's namespace, when <name> has none (default)
  --attr <key=value>          one request attribute (repeatable): interface, method, version, a
                              Dubbo attachment, Thrift service, Redis command or key
  --frame <file>              or one captured request frame (raw bytes), decoded by the codec
  --port <n>                  the Service port, when the MetaRouter routes several
  --json                      the explanation as JSON
  --filter-wasm <file>        the filter build to ask (build/meltemi.wasm)
  --cluster-domain <d>        (cluster.local)   --config-namespace <ns>   --stat-prefix <p>   as for render`;

export async function describeCommand(args: readonly string[], env: NodeJS.ProcessEnv, fail: (message: string) => never): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args], allowPositionals: true,
      options: {
        file: { type: 'string', short: 'f', multiple: true }, kubeconfig: { type: 'string' },
        namespace: { type: 'string', short: 'n' }, attr: { type: 'string', multiple: true }, frame: { type: 'string' },
        port: { type: 'string' }, json: { type: 'boolean' }, 'filter-wasm': { type: 'string' },
        'cluster-domain': { type: 'string' }, 'config-namespace': { type: 'string' }, 'stat-prefix': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    fail((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) { process.stdout.write(DESCRIBE_HELP + '\n'); return 0; }
  const target = parsed.positionals[0];
  if (!target || parsed.positionals.length > 1) fail('describe needs one MetaRouter: <namespace/name> or <name>');
  const [namespace, name] = target.includes('/') ? target.split('/', 2) as [string, string] : [v.namespace ?? 'default', target];
  const request = requestOf(v.attr ?? [], v.frame, fail);
  const port = v.port === undefined ? undefined : Number(v.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) fail('--port must be a port number');

  let resources: readonly KubeObject[];
  if (v.file?.length) {
    let input;
    try { input = toRenderInput(readObjects(v.file)); } catch (e) { fail((e as Error).message); }
    const out = render(input, {
      ...DEFAULT_OPTIONS,
      ...(v['cluster-domain'] ? { clusterDomain: v['cluster-domain'] } : {}),
      ...(v['config-namespace'] ? { configNamespace: v['config-namespace'] } : {}),
      ...(v['stat-prefix'] ? { statPrefix: v['stat-prefix'] } : {}),
    });
    const c = out.conditions.get(`${namespace}/${name}`);
    if (c?.status === 'False') { process.stderr.write(`meltemi: MetaRouter ${namespace}/${name} rejected (${c.reason}): ${c.message}\n`); return 1; }
    resources = out.resources;
  } else {
    const kubeconfig = v.kubeconfig ?? env.KUBECONFIG;
    if (!kubeconfig) fail('describe needs -f <files> or --kubeconfig <file> (or KUBECONFIG)');
    const kc = new KubeConfig();
    try { kc.loadFromFile(kubeconfig); } catch (e) { fail(`cannot load kubeconfig ${kubeconfig}: ${(e as Error).message}`); }
    try {
      resources = (await new Kube(kc).list(RESOURCES.WasmPlugin, `meltemi.dev/metarouter=${name},meltemi.dev/metarouter-namespace=${namespace}`)).items;
    } catch (e) {
      process.stderr.write(`meltemi: cannot list WasmPlugins: ${(e as Error).message}\n`);
      return 1;
    }
  }
  const plugins = pluginsOf(resources, namespace, name, port);
  if (plugins.length === 0) { process.stderr.write(`meltemi: no WasmPlugin for MetaRouter ${namespace}/${name}${port ? ` on port ${port}` : ''}\n`); return 1; }
  if (plugins.length > 1) fail(`MetaRouter ${namespace}/${name} routes ports ${plugins.map(portOf).join(', ')}: pick one with --port`);
  const plugin = plugins[0]!;
  let e;
  try {
    e = explain((plugin.spec as { pluginConfig: unknown }).pluginConfig, request, FilterCheck.load(v['filter-wasm'] ?? DEFAULT_FILTER_WASM));
  } catch (err) {
    process.stderr.write(`meltemi: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(v.json ? JSON.stringify(e, null, 2) + '\n' : describeText(plugin, e));
  return e.error ? 1 : 0;
}

function requestOf(attrs: readonly string[], frame: string | undefined, fail: (message: string) => never): Request {
  if (frame !== undefined) {
    if (attrs.length > 0) fail('give --attr or --frame, not both');
    try { return { frame: readFileSync(frame) }; } catch (e) { fail(`--frame ${frame}: ${(e as Error).message}`); }
  }
  if (attrs.length === 0) fail('describe needs the request: --attr key=value (repeatable) or --frame <file>');
  const attributes: Record<string, string> = {};
  for (const a of attrs) {
    const i = a.indexOf('=');
    if (i <= 0) fail(`--attr ${a}: expected key=value`);
    attributes[a.slice(0, i)] = a.slice(i + 1);
  }
  return { attributes };
}
