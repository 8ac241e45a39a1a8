#!/usr/bin/env node
// What Envoy's own HTTP path costs per request, with no Wasm at all: the floor under per-request
// mode, which hands every call to the HTTP connection manager (HCM) and its router. h2load drives
// HTTP/2 into one Envoy (pinned to CPU 0) whose HCM either answers itself (direct_response) or
// routes to a second Envoy (the upstream, on CPU 1 with h2load) over HTTP/1.1 or HTTP/2, or over
// per-request mode's own path without its Wasm roles (HTTP/1.1 into an internal listener whose
// tcp_proxy dials the upstream, clusters from dist/controller/per-request.mjs), or that path with
// HTTP/2 into the internal listener (what an HTTP/2 upstream into the server role would start
// from); the figure is the first Envoy's CPU time per request (/proc/<pid>/stat), as in
// bench/run.mjs.
//
//   node bench/hcm-floor.mjs [--conns 16,64] [--streams 4] [--requests 200000] [--repeats 3]
//        [--rate R] [--paths direct,http1,http2,internal,internal2] [--h2load-arg ARG ...]
//
// --rate R caps the whole load at R requests/s (h2load --rps per connection): Envoy's CPU per
// request grows as the rate falls (fewer requests share each wakeup and syscall), so a floor is
// compared with a native proxy's figure at the rate that proxy ran at (Dubbo's Java peers reach a
// few thousand calls/s, Thrift's Go peers tens of thousands). Each --h2load-arg goes to h2load as
// it is: `--h2load-arg -H --h2load-arg 'method: echo'` sends a header per call as the client role
// does, `--h2load-arg --encoder-header-table-size=0` sends every header as a literal, as the
// client role's HPACK encoder does (within noise of the indexed default: 89-93 µs against 94-96
// through the internal listener, 2 alternations, a busy machine).
//
// Compare with the native proxies' CPU per request from the same machine (`make bench`):
// per-request mode cannot cost less than the router's floor plus Meltemi's two roles.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { startEnvoy, freePorts, socketAddress, staticClusters } from '../test/harness/index.mjs';

const pr = await import(new URL('../dist/controller/per-request.mjs', import.meta.url));

const CPU_ENVOY = '0';
const CPU_PEERS = '1';

function parseArgs(argv) {
  const o = { conns: [16, 64], streams: 4, requests: 200_000, repeats: 3, rate: 0, paths: null, h2loadArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--conns') o.conns = next().split(',').map(Number);
    else if (a === '--streams') o.streams = Number(next());
    else if (a === '--requests') o.requests = Number(next());
    else if (a === '--repeats') o.repeats = Number(next());
    else if (a === '--rate') o.rate = Number(next());
    else if (a === '--paths') o.paths = next().split(',');
    else if (a === '--h2load-arg') o.h2loadArgs.push(next());
    else { console.error(`hcm-floor: unknown argument ${a}`); process.exit(2); }
  }
  return o;
}

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const DIRECT = { direct_response: { status: 200, body: { inline_string: 'ok' } } };

function hcmListener(port, codec, action) {
  return {
    name: `hcm_${port}`,
    address: socketAddress(port),
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          stat_prefix: 'floor',
          codec_type: codec,
          route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, ...action }] }] },
          http_filters: [ROUTER],
        },
      }],
    }],
  };
}

/** The measured Envoy: HCM over HTTP/2 answering itself, or routing to `upstream` over `protocol`. */
function frontConfig(port, upstreamPort, protocol) {
  if (protocol === 'direct') return { static_resources: { listeners: [hcmListener(port, 'HTTP2', DIRECT)] } };
  if (protocol === 'internal' || protocol === 'internal2') {
    // Per-request mode's topology, Meltemi's filters left out of both listeners.
    const hop = { name: 'hop', internal_listener: {}, filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'hop', cluster: pr.ORIGINAL_DST_CLUSTER } }] }] };
    return {
      bootstrap_extensions: [pr.INTERNAL_LISTENER_EXTENSION],
      static_resources: {
        listeners: [hcmListener(port, 'HTTP2', { route: { cluster: 'up' } }), hop],
        clusters: [hopCluster(upstreamPort, protocol === 'internal2'), pr.originalDstCluster()],
      },
    };
  }
  const [cluster] = staticClusters({ up: [{ port: upstreamPort }] });
  cluster.typed_extension_protocol_options = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: protocol === 'http2' ? { http2_protocol_options: {} } : { http_protocol_options: {} },
    },
  };
  return { static_resources: { listeners: [hcmListener(port, 'HTTP2', { route: { cluster: 'up' } })], clusters: [cluster] } };
}

/** The router's cluster into the internal listener, as per-request mode renders it; HTTP/2 on request. */
function hopCluster(upstreamPort, http2) {
  const cluster = pr.routedCluster('up', [{ address: '127.0.0.1', port: upstreamPort }], { serverListener: 'hop', outlierDetection: null });
  if (http2) cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config = { http2_protocol_options: {} };
  return cluster;
}

function pin(pid, cpu) {
  if (existsSync('/usr/bin/taskset')) execFileSync('/usr/bin/taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' });
}

function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
}

function h2load(port, conns, streams, requests, rate) {
  return new Promise((resolve, reject) => {
    const args = ['-c', String(conns), '-m', String(streams), '-n', String(requests), ...o.h2loadArgs, `http://127.0.0.1:${port}/`];
    if (rate > 0) args.unshift(`--rps=${Math.max(1, Math.round(rate / conns))}`);
    const [cmd, argv] = existsSync('/usr/bin/taskset') ? ['/usr/bin/taskset', ['-c', CPU_PEERS, 'h2load', ...args]] : ['h2load', args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('exit', (code) => {
      const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(out);
      const rate = /finished in [^,]+, ([\d.]+) req\/s/.exec(out);
      if (code !== 0 || !done || Number(done[2]) !== requests) reject(new Error(`h2load failed (exit ${code}):\n${out}`));
      else resolve({ rps: Number(rate[1]) });
    });
  });
}

async function measure(protocol, conns, o) {
  const [port, upstreamPort] = await freePorts(2);
  const upstream = protocol === 'direct' ? null : await startEnvoy({ config: { static_resources: { listeners: [hcmListener(upstreamPort, 'AUTO', DIRECT)] } }, logLevel: 'error' });
  const front = await startEnvoy({ config: frontConfig(port, upstreamPort, protocol), logLevel: 'error' });
  try {
    pin(front.pid, CPU_ENVOY);
    if (upstream) pin(upstream.pid, CPU_PEERS);
    await h2load(port, conns, o.streams, Math.min(20_000, o.requests), 0); // warm-up: connections, pools
    const t0 = cpuTicks(front.pid);
    const { rps } = await h2load(port, conns, o.streams, o.requests, o.rate);
    const ticks = cpuTicks(front.pid) - t0;
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
    return { rps, usPerReq: (ticks / hz) * 1e6 / o.requests };
  } finally {
    await front.stop();
    if (upstream) await upstream.stop();
  }
}

const o = parseArgs(process.argv.slice(2));
const LABEL = {
  direct: 'HCM answering itself (direct_response)',
  http1: 'HCM + router, HTTP/1.1 upstream',
  http2: 'HCM + router, HTTP/2 upstream',
  internal: 'HCM + router, HTTP/1.1 via an internal listener and tcp_proxy (per-request mode without Wasm)',
  internal2: 'HCM + router, HTTP/2 via an internal listener and tcp_proxy',
};
const paths = o.paths ?? Object.keys(LABEL);
for (const p of paths) if (!LABEL[p]) { console.error(`hcm-floor: unknown path ${p} (known: ${Object.keys(LABEL).join(', ')})`); process.exit(2); }
console.log(`hcm-floor: h2load ${o.streams} streams per connection, ${o.requests} requests, ${o.rate > 0 ? `at most ${o.rate} req/s, ` : ''}median of ${o.repeats}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('| conns | Envoy doing | req/s | Envoy CPU µs/req |');
console.log('|---:|---|---:|---:|');
for (const conns of o.conns) {
  for (const protocol of paths) {
    const runs = [];
    for (let r = 0; r < o.repeats; r++) runs.push(await measure(protocol, conns, o));
    const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`| ${conns} | ${LABEL[protocol]} | ${Math.round(median(runs.map((x) => x.rps))).toLocaleString('en-US')} | ${median(runs.map((x) => x.usPerReq)).toFixed(1)} |`);
  }
}
