// Real Apache Thrift peers (npm thrift 0.22, code generated from meltemi_test.thrift).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const thrift = require('thrift');
const Greeter = require('./gen-nodejs/Greeter.js');
const Calculator = require('./gen-nodejs/Calculator.js');
const ttypes = require('./gen-nodejs/meltemi_test_types.js');

const here = path.dirname(fileURLToPath(import.meta.url));

export const SERVICES = { Greeter, Calculator };
export { thrift, ttypes };

// THeader is the library's header protocol over its buffered transport (the protocol writes the
// frame and its key/values); the protocol option then picks the message protocol inside it.
export const TRANSPORTS = { framed: thrift.TFramedTransport, buffered: thrift.TBufferedTransport, header: thrift.TBufferedTransport };
export const PROTOCOLS = { binary: thrift.TBinaryProtocol, compact: thrift.TCompactProtocol };
/** THeader's ids for the protocol inside it (THeaderTransport.SubprotocolId). */
const HEADER_PROTOCOL_IDS = { binary: 0, compact: 2 };

function pick(table, key, what) {
  const v = table[key];
  if (v === undefined) throw new TypeError(`unknown ${what} ${JSON.stringify(key)}; use one of ${Object.keys(table).join(', ')}`);
  return v;
}

/**
 * The handlers. Replies carry the server name so tests can tell which server answered:
 *   Greeter.sayHello(name)  → "<server>: hello <name>"
 *   Greeter.ping(note)      oneway, recorded only
 *   Greeter.echo(payload)   → payload; "delay:<ms>:<rest>" answers after <ms> ms
 *   Greeter.add(a, b)       → a + b; throws GreetError{code: 1} when a < 0
 *   Calculator.multiply(a, b) → a * b
 *   Calculator.whoami()     → "<server>:Calculator"
 */
export function makeHandlers(name, record) {
  const greeter = {
    sayHello: async (who) => { record('Greeter', 'sayHello', [who]); return `${name}: hello ${who}`; },
    ping: (note) => { record('Greeter', 'ping', [note]); },
    echo: async (payload) => {
      record('Greeter', 'echo', [payload]);
      const m = /^delay:(\d+):/.exec(payload);
      if (m) await new Promise((r) => setTimeout(r, Number(m[1])));
      return payload;
    },
    add: (a, b, result) => {
      record('Greeter', 'add', [a, b]);
      if (a < 0) result(new ttypes.GreetError({ code: 1, message: `${name}: negative a` }));
      else result(null, a + b);
    },
  };
  const calculator = {
    multiply: async (a, b) => { record('Calculator', 'multiply', [a, b]); return a * b; },
    whoami: async () => { record('Calculator', 'whoami', []); return `${name}:Calculator`; },
  };
  return { Greeter: greeter, Calculator: calculator };
}

/**
 * Starts a real Thrift server.
 * @param {object} o
 * @param {string} [o.name='v1']          appears in replies
 * @param {'framed'|'buffered'} [o.transport='framed']
 * @param {'binary'|'compact'} [o.protocol='binary']
 * @param {boolean} [o.multiplexed=false] serve Greeter and Calculator through TMultiplexedProcessor
 * @param {'Greeter'|'Calculator'} [o.service='Greeter'] the service when not multiplexed
 * @param {number} [o.port=0]             0 lets the kernel pick (read .port)
 * @param {boolean} [o.childProcess=false] run in a separate node process (calls still reported)
 * @returns {Promise<{name, port, calls: Array<{service, method, args, at}>, connections: () => number,
 *   errors: Error[], stop(): Promise<void>}>}
 */
export async function startThriftServer(opts = {}) {
  if (opts.childProcess) return startChildServer(opts);
  const {
    name = 'v1', transport = 'framed', protocol = 'binary', multiplexed = false,
    service = 'Greeter', port = 0, host = '127.0.0.1',
  } = opts;
  const calls = [];
  const errors = [];
  const record = (svc, method, args) => {
    const c = { service: svc, method, args, at: Date.now() };
    calls.push(c);
    opts.onCall?.(c);
  };
  const handlers = makeHandlers(name, record);
  if (transport === 'header') throw new TypeError("the Node library's THeader server answers THeader calls unframed: use startGoThriftServer (go.mjs)");
  const options = { transport: pick(TRANSPORTS, transport, 'transport'), protocol: pick(PROTOCOLS, protocol, 'protocol') };
  let server;
  if (multiplexed) {
    const processor = new thrift.MultiplexedProcessor();
    processor.registerProcessor('Greeter', new Greeter.Processor(handlers.Greeter));
    processor.registerProcessor('Calculator', new Calculator.Processor(handlers.Calculator));
    server = thrift.createMultiplexServer(processor, options);
  } else {
    server = thrift.createServer(pick(SERVICES, service, 'service'), handlers[service], options);
  }
  const sockets = new Set();
  let connections = 0;
  server.on('connection', (s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('error', (err) => errors.push(err)); // per-connection errors (resets) land here
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    // A deep accept queue: per-request tests open a thousand upstream connections at once, and
    // Node's default backlog (511) drops the excess SYNs, whose retry (1 s) meets Envoy's 1 s
    // connect timeout as a connect failure the proxy never caused.
    server.listen({ port, host, backlog: 4096 }, () => { server.off('error', reject); resolve(); });
  });
  let stopped = null;
  return {
    name, transport, protocol, multiplexed, host,
    port: server.address().port,
    calls,
    errors,
    connections: () => connections,
    openConnections: () => sockets.size,
    stop() {
      stopped ??= new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return stopped;
    },
  };
}

async function startChildServer(opts) {
  const { childProcess, onCall, ...rest } = opts;
  const child = spawn(process.execPath, [path.join(here, 'server.mjs'), '--json', JSON.stringify(rest)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const calls = [];
  let buf = '';
  let resolveReady;
  let rejectReady;
  const ready = new Promise((res, rej) => { resolveReady = res; rejectReady = rej; });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s) => {
    buf += s;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let msg;
      try { msg = JSON.parse(line); } catch { continue; }
      if (msg.listening) resolveReady(msg);
      if (msg.call) { calls.push(msg.call); onCall?.(msg.call); }
    }
  });
  const exited = new Promise((r) => child.on('exit', (code, signal) => { rejectReady(new Error(`thrift server exited (${code ?? signal}) before listening`)); r(); }));
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const info = await ready;
  return {
    ...info.listening,
    calls,
    errors: [],
    pid: child.pid,
    connections: () => NaN,
    openConnections: () => NaN,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A promise-based client using the real npm thrift client.
 * @param {object} o
 * @param {number} o.port
 * @param {'framed'|'buffered'|'header'} [o.transport='framed']
 * @param {'binary'|'compact'} [o.protocol='binary']  inside THeader too
 * @param {Record<string, string>} [o.headers]  THeader key/values every call carries
 * @param {'Greeter'|'Calculator'} [o.service='Greeter']
 * @param {boolean} [o.multiplexed=false]  wrap with TMultiplexedProtocol under the service name
 * @param {number} [o.timeout=5000]        per call; also the connect timeout
 * @returns {Promise<client>} client has one async method per service method (sayHello, ping, ...),
 *   plus call(method, ...args), service(name) (another service on the same multiplexed
 *   connection), close(), closed (a promise), isClosed, closedByPeer, connection.
 *   Pending calls reject when the connection closes or on timeout.
 */
export async function thriftClient({
  port, host = '127.0.0.1', transport = 'framed', protocol = 'binary', service = 'Greeter',
  multiplexed = false, timeout = 5000, headers = {},
} = {}) {
  const header = transport === 'header';
  const connection = thrift.createConnection(host, port, {
    transport: pick(TRANSPORTS, transport, 'transport'),
    protocol: header ? thrift.THeaderProtocol : pick(PROTOCOLS, protocol, 'protocol'),
    connect_timeout: timeout,
  });
  const pending = new Set();
  let closedBy = null; // 'peer' | 'us'
  let lastError = null;
  let resolveClosed;
  const closed = new Promise((r) => { resolveClosed = r; });
  const failAll = (err) => { for (const p of pending) p.reject(err); pending.clear(); };
  connection.on('error', (err) => { lastError = err; failAll(err); });
  connection.on('close', () => {
    closedBy ??= 'peer';
    failAll(lastError ?? new Error(`thrift connection to ${host}:${port} closed by ${closedBy}`));
    resolveClosed(closedBy);
  });
  await new Promise((resolve, reject) => {
    const onErr = (err) => { connection.off('connect', onOk); reject(err); };
    const onOk = () => { connection.off('error', onErr); resolve(); };
    connection.once('connect', onOk);
    connection.once('error', onErr);
  });

  const mux = multiplexed ? new thrift.Multiplexer() : null;
  const raw = new Map();
  const rawClient = (svc) => {
    if (!raw.has(svc)) {
      const S = pick(SERVICES, svc, 'service');
      const c = mux ? mux.createClient(svc, S, connection) : thrift.createClient(S, connection);
      if (header) {
        c.output.setProtocolId(pick(HEADER_PROTOCOL_IDS, protocol, 'protocol'));
        for (const [k, v] of Object.entries(headers)) c.output.setWriteHeader(k, v);
        // The generated client flushes its transport, not its protocol, so the library's
        // THeaderProtocol.flush (which puts the header frame in front) never runs: do what it does.
        const flush = c.output.flush;
        c.output.flush = function () {
          this.writeHeaders();
          return flush.call(this);
        };
      }
      raw.set(svc, c);
    }
    return raw.get(svc);
  };

  const wrap = (svc) => {
    const c = rawClient(svc);
    const call = (method, ...args) => {
      if (typeof c[method] !== 'function' || !c[`send_${method}`]) {
        return Promise.reject(new TypeError(`${svc} has no method ${method}`));
      }
      if (closedBy) return Promise.reject(new Error(`thrift connection already closed by ${closedBy}`));
      return new Promise((resolve, reject) => {
        const entry = { reject };
        pending.add(entry);
        const timer = setTimeout(() => {
          pending.delete(entry);
          reject(new Error(`${svc}.${method} timed out after ${timeout} ms`));
        }, timeout);
        const done = (fn) => (v) => { clearTimeout(timer); if (pending.delete(entry)) fn(v); };
        try {
          c[method](...args).then(done(resolve), done(reject));
        } catch (err) {
          done(reject)(err);
        }
      });
    };
    const api = { call };
    for (const m of Object.keys(Object.getPrototypeOf(c))) {
      if (m.startsWith('send_') && typeof c[m.slice(5)] === 'function') {
        const method = m.slice(5);
        api[method] = (...args) => call(method, ...args);
      }
    }
    return api;
  };

  const main = wrap(service);
  // defineProperties, not Object.assign: assign would snapshot the getters.
  return Object.defineProperties(main, Object.getOwnPropertyDescriptors({
    connection,
    closed,
    get isClosed() { return closedBy !== null; },
    get closedByPeer() { return closedBy === 'peer'; },
    get lastError() { return lastError; },
    service(name) {
      if (!mux && name !== service) throw new Error('service(): only on a multiplexed client');
      return wrap(name);
    },
    close() {
      if (!closedBy) { closedBy = 'us'; connection.end(); }
      return closed;
    },
  }));
}
