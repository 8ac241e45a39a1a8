// Apache Thrift's Go library as a test peer: the Greeter server of bench/loadgen/cmd/thrift-server
// (github.com/apache/thrift v0.17, the bench's Thrift server), for what the Node library cannot
// be. Its THeader server answers each client in the client's own transport and protocol; the
// Node library's THeader server answers THeader calls as bare unframed messages.
// Built once per process with `go build` (cached by Go), into build/peers/, apart from the bench's
// build/bench/ so that a test and a benchmark never write one binary at once.
import { spawn, execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { registerChild, unregisterChild } from '../../harness/cleanup.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OUT = path.join(ROOT, 'build', 'peers');
let built = null;

function build() {
  built ??= promisify(execFile)('go', ['build', '-o', OUT + path.sep, './cmd/thrift-server'], { cwd: path.join(ROOT, 'bench', 'loadgen') });
  return built;
}

/**
 * Starts the Go Greeter server on a free port. sayHello answers "<name>: hello <who>".
 * @param {{name?: string, transport?: 'framed'|'header'}} [o]
 * @returns {Promise<{name: string, port: number, stop(): Promise<void>}>}
 */
export async function startGoThriftServer({ name = 'v1', transport = 'header' } = {}) {
  await build();
  const child = spawn(path.join(OUT, 'thrift-server'), ['--port', '0', '--name', name, '--transport', transport], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  registerChild(child.pid);
  const exited = new Promise((r) => child.on('exit', r));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s) => {
      out += s;
      const m = /READY port=(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    exited.then((code) => reject(new Error(`go thrift server exited (${code}) before listening: ${out}`)));
  });
  return {
    name,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      unregisterChild(child.pid);
    },
  };
}
