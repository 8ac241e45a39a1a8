// Helpers for test/e2e/faults.test.mjs and bench/soak.mjs: raw Thrift frames, a server that
// answers garbage, and a pool of callers that records every call (and reconnects after a failure).
import net from 'node:net';

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A framed binary Thrift call `method(1: string arg)` (type 1), as Apache Thrift writes it. */
export function thriftCall(method, arg, seqid = 1) {
  const m = Buffer.from(method);
  const a = Buffer.from(arg);
  const body = Buffer.concat([
    Buffer.from([0x80, 0x01, 0x00, 0x01]), u32(m.length), m, u32(seqid),
    Buffer.from([0x0b, 0x00, 0x01]), u32(a.length), a, Buffer.from([0x00]),
  ]);
  return Buffer.concat([u32(body.length), body]);
}

/**
 * A TCP server that answers the first bytes of every connection with `garbage` and then keeps the
 * connection open (so a close the client sees is the proxy's doing, not this server's).
 * @returns {Promise<{port: number, connections: () => number, stop: () => Promise<void>}>}
 */
export async function startGarbageServer(garbage) {
  const sockets = new Set();
  let connections = 0;
  const server = net.createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    sock.once('data', () => sock.write(garbage));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    connections: () => connections,
    stop: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * Callers in closed loops. Each caller runs `call(conn, k)` (k counts from 0 on each connection;
 * a string result is taken as the name of the server that answered) until stop().
 * Without `shared`, every caller has its own connection and opens a new one after any failure;
 * with `shared: n`, callers share n connections (several calls in flight on each), reopened only
 * if they close.
 * @param {{clients: number, shared?: number, connect: () => Promise<object>, call: (conn, k: number) => Promise<string|null>}} o
 */
export function runPool({ clients, shared, connect, call }) {
  let stopping = false;
  const conns = []; // {id, client, server, openedAt}
  const results = []; // {ok, at, server, conn, message, closed}
  const open = async () => {
    const c = { id: conns.length, client: null, server: null, openedAt: Date.now() };
    conns.push(c);
    c.client = await connect();
    return c;
  };
  const sharedConns = shared ? Array.from({ length: shared }, () => null) : null;
  const sharedFor = async (i) => {
    const slot = i % shared;
    let p = sharedConns[slot];
    if (p) {
      const c = await p.catch(() => null);
      if (c && !c.client.isClosed) return c;
    }
    p = open();
    sharedConns[slot] = p;
    return p;
  };
  const callers = Array.from({ length: clients }, (_, i) => {
    const mine = [];
    const loop = (async () => {
      let conn = null;
      let k = 0;
      while (!stopping) {
        try {
          if (shared) conn = await sharedFor(i);
          else if (!conn) { conn = await open(); k = 0; }
        } catch (err) {
          const r = { ok: false, at: Date.now(), server: null, conn: null, message: `connect: ${err.message}`, closed: true };
          results.push(r); mine.push(r);
          continue;
        }
        const kk = k++;
        try {
          const server = await call(conn.client, kk);
          if (server && !conn.server) conn.server = server;
          const r = { ok: true, at: Date.now(), server: server ?? null, conn: conn.id };
          results.push(r); mine.push(r);
        } catch (err) {
          if (stopping) break;
          await new Promise((r) => setImmediate(r));
          const r = { ok: false, at: Date.now(), server: conn.server, conn: conn.id, message: String(err?.message ?? err), closed: conn.client.isClosed };
          results.push(r); mine.push(r);
          if (!shared) { conn.client.close(); conn = null; }
        }
      }
    })();
    return { loop, results: mine, okAfter: (ts) => mine.filter((r) => r.ok && r.at >= ts).length };
  });
  let stopped = null;
  return {
    clients: callers,
    connections: conns,
    results: () => results,
    errors: () => results.filter((r) => !r.ok),
    okCount: () => results.filter((r) => r.ok).length,
    okAfter: (ts) => results.filter((r) => r.ok && r.at >= ts).length,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        await Promise.all(callers.map((c) => c.loop));
        await Promise.all(conns.map((c) => c.client?.close()));
      })();
      return stopped;
    },
  };
}

/**
 * Figures about a pool run around a moment (a kill, an update). errorsOnConnectionsAfter leaves
 * out connections opened within `graceMs` of the moment (a SIGKILLed server's kernel still
 * accepts connections until the process is gone); serversAfter leaves out connections that never
 * got an answer.
 */
export function summarise(pool, at, graceMs = 0) {
  const after = pool.connections.filter((c) => c.openedAt >= at);
  const afterIds = new Set(after.filter((c) => c.openedAt >= at + graceMs).map((c) => c.id));
  const errors = pool.errors();
  return {
    connections: pool.connections.length,
    connectionsAfter: after.length,
    serversAfter: new Set(after.map((c) => c.server).filter(Boolean)),
    errorsOnConnectionsAfter: errors.filter((e) => afterIds.has(e.conn)).length,
    slowestErrorMs: errors.length ? Math.max(...errors.map((e) => e.at - at)) : 0,
  };
}

/** Downstream connections open on Envoy's listeners, admin's left out. */
export async function activeDownstream(envoy) {
  let n = 0;
  for (const [k, v] of await envoy.stats()) {
    if (/^listener\.[^.]+\.downstream_cx_active$/.test(k) && !k.startsWith('listener.admin.')) n += v;
  }
  return n;
}
