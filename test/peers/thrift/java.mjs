// Apache Thrift's Java library (libthrift 0.17.0, test/peers/thrift-java, built by
// `make setup-thrift-java`) as a test peer: the Greeter/Calculator server on any of libthrift's
// server kinds, and its sync and async clients, each run making its calls on ONE connection.
// A fourth Thrift implementation beside npm thrift (index.mjs), Go (go.mjs) and Python
// (python.mjs); unlike the Go and Python THeader servers, a Java server speaks the one transport
// and protocol it was started with, as Java services do.
//
// A JVM starts in about 0.3 s here (more on a busy machine): start servers once per test file.
// Every JVM runs in its own process group, registered with test/harness/cleanup.mjs; servers also
// watch their stdin, so they exit if this process dies without running any handler.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerChild, unregisterChild } from '../../harness/cleanup.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PEERS = path.resolve(HERE, '..', 'thrift-java');
export const JAVA_THRIFT_JAR = path.join(PEERS, 'target', 'meltemi-thrift-java-peers.jar');
const JAVA = process.env.JAVA ?? 'java';
// Small heap, serial GC, C1 only: the peers share 2 cores with Envoy and the tests, and a client
// run is over before C2 would pay off.
const JVM_ARGS = ['-Xmx128m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xshare:auto'];

/** Builds the jar if it is missing or older than its sources (build.sh; a no-op when fresh). */
export function ensureJavaThriftBuilt() {
  const r = spawnSync('bash', [path.join(PEERS, 'build.sh')], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`test/peers/thrift-java/build.sh failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

function jar() {
  if (!existsSync(JAVA_THRIFT_JAR)) throw new Error(`${JAVA_THRIFT_JAR} missing: run \`make setup-thrift-java\``);
  return JAVA_THRIFT_JAR;
}

function modeArgs({ transport = 'framed', protocol = 'binary', multiplexed = false }) {
  return ['--transport', transport, '--protocol', protocol, ...(multiplexed ? ['--multiplexed'] : [])];
}

function spawnJava(args, stdin) {
  const child = spawn(JAVA, [...JVM_ARGS, '-jar', jar(), ...args], { stdio: [stdin, 'pipe', 'pipe'], detached: true });
  registerChild(child.pid);
  child.once('exit', () => unregisterChild(child.pid));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-64 * 1024); });
  return { child, stderr: () => stderr };
}

function killGroup(child, signal) {
  try { process.kill(-child.pid, signal); } catch { /* already gone */ }
}

/**
 * Starts a Java Greeter server (Greeter and Calculator under TMultiplexedProcessor when
 * multiplexed) on a free port. sayHello answers "<name>: hello <who>"; `calls` collects what the
 * server reports ({name, service, method, args, conn}), `connections()` counts the connections it
 * accepted, `closed()` those that ended.
 * @param {object} [o]
 * @param {string} [o.name='v1']
 * @param {'threadpool'|'nonblocking'|'hsha'|'selector'} [o.server='threadpool']  TThreadPoolServer,
 *   TNonblockingServer, THsHaServer or TThreadedSelectorServer (the last three framed only)
 * @param {'framed'|'buffered'} [o.transport='framed']
 * @param {'binary'|'compact'} [o.protocol='binary']  binary: strict read and write
 * @param {boolean} [o.multiplexed=false]
 * @returns {Promise<{name: string, server: string, transport: string, protocol: string, port: number,
 *   calls: object[], connections: () => number, closed: () => number, stderr: () => string, stop(): Promise<void>}>}
 */
export async function startJavaThriftServer({ name = 'v1', server = 'threadpool', readyTimeoutMs = 60_000, ...mode } = {}) {
  const { child, stderr } = spawnJava(['server', '--port', '0', '--name', name, '--server', server, ...modeArgs(mode), '--watch-stdin'], 'pipe');
  child.stdin.on('error', () => {});
  const exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const calls = [];
  let connections = 0;
  let closed = 0;
  let out = '';
  const port = await new Promise((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => { killGroup(child, 'SIGKILL'); reject(new Error(`java thrift server ${name} not READY after ${readyTimeoutMs} ms: ${stderr()}`)); }, readyTimeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s) => {
      out += s;
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        const m = /^READY port=(\d+)$/.exec(line);
        if (m) { ready = true; clearTimeout(timer); resolve(Number(m[1])); continue; }
        const ev = JSON.parse(line);
        if (ev.call) calls.push(ev.call);
        if (ev.connection) connections++;
        if (ev.closed) closed++;
      }
    });
    exited.then((code) => { if (!ready) { clearTimeout(timer); reject(new Error(`java thrift server ${name} exited (${code}) before listening: ${stderr()}`)); } });
  });
  return {
    name,
    server,
    transport: mode.transport ?? 'framed',
    protocol: mode.protocol ?? 'binary',
    port,
    calls,
    connections: () => connections,
    closed: () => closed,
    stderr,
    async stop() {
      child.stdin.end();
      if (child.exitCode === null && child.signalCode === null) {
        const t = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
        killGroup(child, 'SIGTERM');
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/**
 * Runs the Java client: the calls in order on ONE connection.
 * Sync (TServiceClient over TSocket, TFramedTransport when framed): seqids 1, 2, ... per service
 * client, a reply with another seqid is refused. async (Greeter.AsyncClient on a TNonblockingSocket,
 * framed only): each call starts when the previous one's callback fired, seqid 0 on every call; a
 * call ending in an exception (GreetError, TApplicationException) makes the library close the
 * connection, and later calls on that client fail with IllegalStateException "Client has an error!".
 * @param {object} o
 * @param {number} o.port
 * @param {'framed'|'buffered'} [o.transport='framed']
 * @param {'binary'|'compact'} [o.protocol='binary']
 * @param {boolean} [o.multiplexed=false]
 * @param {boolean} [o.async=false]
 * @param {Array<{method: string, args?: any[], service?: 'Greeter'|'Calculator'}>} o.calls
 * @param {boolean} [o.trace=false]   add each call's bytes (hex) written and read (sync only)
 * @param {number} [o.timeoutMs=5000] socket (async: call) timeout: a reply that never comes is an error line
 * @returns {Promise<Array<{i: number, service: string, method: string, ok: boolean, result?: any,
 *   error?: {type: string, message: string, kind?: number, code?: number}, sent?: string, received?: string}>>}
 */
export async function runJavaThriftClient({ port, calls, async = false, trace = false, timeoutMs = 5000, ...mode }) {
  const args = ['client', '--port', String(port), ...modeArgs(mode), '--calls', JSON.stringify(calls),
    '--timeout-ms', String(timeoutMs), ...(async ? ['--async'] : []), ...(trace ? ['--trace'] : [])];
  const { child, stderr } = spawnJava(args, 'ignore');
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (s) => { stdout += s; });
  const limit = timeoutMs * (calls.length + 1) + 30_000;
  const code = await new Promise((r) => {
    const t = setTimeout(() => killGroup(child, 'SIGKILL'), limit);
    child.once('close', (c, sig) => { clearTimeout(t); r(c ?? sig); });
  });
  if (code !== 0) throw new Error(`java thrift client exited ${code}: ${stderr()}${stdout}`);
  const lines = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  if (lines.length !== calls.length) throw new Error(`java thrift client printed ${lines.length} lines for ${calls.length} calls: ${stderr()}${stdout}`);
  return lines;
}
