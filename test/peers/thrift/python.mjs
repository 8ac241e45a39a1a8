// Apache Thrift's Python library (PyPI thrift, pinned in the Makefile's setup-envoy) as a test peer:
// python_peer.py's Greeter/Calculator server and its one-connection client, run with the project
// venv's python. A third Thrift implementation beside npm thrift (index.mjs) and Go (go.mjs), with
// its own THeaderTransport; its THeader server answers each client in the client's own transport.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerChild, unregisterChild } from '../../harness/cleanup.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../../..');
export const PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
const PEER = path.join(HERE, 'python_peer.py');

function modeArgs({ transport = 'framed', protocol = 'binary', multiplexed = false }) {
  return ['--transport', transport, '--protocol', protocol, ...(multiplexed ? ['--multiplexed'] : [])];
}

/**
 * Starts the Python Greeter server (Calculator too when multiplexed) on a free port.
 * sayHello answers "<name>: hello <who>"; calls are recorded in `calls` as the server reports them
 * ({service, method, args, conn} and, under THeader, {headers, flags, headerSeqId, clientType}).
 * @param {{name?: string, transport?: 'framed'|'buffered'|'header', protocol?: 'binary'|'compact', multiplexed?: boolean}} [o]
 * @returns {Promise<{name: string, port: number, calls: object[], connections: () => number, stop(): Promise<void>}>}
 */
export async function startPythonThriftServer({ name = 'v1', ...mode } = {}) {
  // stdin is a pipe the server watches (--watch-stdin): if this process dies, the server exits.
  const child = spawn(PYTHON, [PEER, 'server', '--port', '0', '--name', name, ...modeArgs(mode), '--watch-stdin'],
    { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  registerChild(child.pid);
  const exited = new Promise((r) => child.on('exit', (code, signal) => r(code ?? signal)));
  const calls = [];
  let connections = 0;
  let out = '';
  const port = await new Promise((resolve, reject) => {
    let ready = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s) => {
      out += s;
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        const m = /^READY port=(\d+)$/.exec(line);
        if (m) { ready = true; resolve(Number(m[1])); continue; }
        const ev = JSON.parse(line);
        if (ev.call) calls.push(ev.call);
        if (ev.connection) connections++;
      }
    });
    exited.then((code) => { if (!ready) reject(new Error(`python thrift server exited (${code}) before listening: ${out}`)); });
  });
  return {
    name,
    port,
    calls,
    connections: () => connections,
    async stop() {
      child.stdin.end();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      unregisterChild(child.pid);
    },
  };
}

/**
 * Runs the Python client: the calls in order on ONE connection.
 * @param {object} o
 * @param {number} o.port
 * @param {'framed'|'buffered'|'header'} [o.transport='framed']
 * @param {'binary'|'compact'} [o.protocol='binary']
 * @param {boolean} [o.multiplexed=false]
 * @param {Array<{method: string, args?: any[], service?: 'Greeter'|'Calculator', headers?: Record<string,string>}>} o.calls
 * @param {Record<string,string>} [o.headers]  THeader key/values written with every call
 * @param {boolean} [o.trace=false]   add each call's bytes (hex) sent and received
 * @param {number} [o.timeoutMs=5000] socket timeout: a reply that never comes is an error line
 * @returns {Promise<Array<{i: number, service: string, method: string, ok: boolean, result?: any,
 *   error?: {type: string, message: string, kind?: number, code?: number}, replyHeaders?: object,
 *   replyFlags?: number, sent?: string, received?: string}>>}  one per call
 */
export async function runPythonThriftClient({ port, calls, headers, trace = false, timeoutMs = 5000, ...mode }) {
  const args = [PEER, 'client', '--port', String(port), ...modeArgs(mode), '--calls', JSON.stringify(calls),
    '--timeout-ms', String(timeoutMs), ...(headers ? ['--headers', JSON.stringify(headers)] : []), ...(trace ? ['--trace'] : [])];
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  registerChild(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s) => { stdout += s; });
  child.stderr.setEncoding('utf8').on('data', (s) => { stderr += s; });
  const code = await new Promise((r) => child.on('close', (c, sig) => r(c ?? sig)));
  unregisterChild(child.pid);
  if (code !== 0) throw new Error(`python thrift client exited ${code}: ${stderr}${stdout}`);
  const lines = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  if (lines.length !== calls.length) throw new Error(`python thrift client printed ${lines.length} lines for ${calls.length} calls: ${stderr}${stdout}`);
  return lines;
}
