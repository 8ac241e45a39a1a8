// Raw TCP client helpers for byte-level tests.
import net from 'node:net';
import { delay } from './wait.mjs';

/**
 * Connects, writes `data` (Buffer, string, or array of them, written in order), then collects
 * everything the peer sends until it closes, `until(buf)` returns true, or `timeout` ms pass.
 * @returns {Promise<{data: Buffer, closedByPeer: boolean, timedOut: boolean, error: Error|null, reset: boolean}>}
 *   closedByPeer: the peer ended or reset the connection (we did not close first).
 */
export function tcpExchange({ port, host = '127.0.0.1', data = [], timeout = 2000, until, endAfterWrite = false } = {}) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let settled = false;
    let error = null;
    let closedByPeer = false;
    let timedOut = false;
    const sock = net.createConnection({ port, host });
    const timer = setTimeout(() => { timedOut = true; finish(); }, timeout);
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({
        data: Buffer.concat(chunks),
        closedByPeer,
        timedOut,
        error,
        reset: error?.code === 'ECONNRESET',
      });
    };
    sock.on('connect', () => {
      for (const d of [].concat(data)) sock.write(d);
      if (endAfterWrite) sock.end();
    });
    sock.on('data', (c) => {
      chunks.push(c);
      if (until && until(Buffer.concat(chunks))) finish();
    });
    sock.on('end', () => { closedByPeer = true; finish(); });
    sock.on('error', (err) => {
      error = err;
      if (err.code === 'ECONNREFUSED' && !chunks.length) { settled = true; clearTimeout(timer); reject(err); return; }
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') closedByPeer = true;
      finish();
    });
    sock.on('close', () => { if (!settled) { closedByPeer = true; finish(); } });
  });
}

/**
 * An open raw connection for step-by-step tests.
 * @returns {Promise<{socket: net.Socket, write(d): void,
 *   writeInReads(chunks: Buffer[], o: {readBytes: () => Promise<number>, timeout?: number}): Promise<void>,
 *   received(): Buffer, read(n: number, timeout?: number): Promise<Buffer>,
 *   waitForClose(timeout?: number): Promise<boolean>, closedByPeer: boolean, close(): void}>}
 */
export function tcpConnect({ port, host = '127.0.0.1', timeout = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ port, host });
    let buf = Buffer.alloc(0);
    let consumed = 0;
    let peerClosed = false;
    let weClosed = false;
    const waiters = new Set();
    const poke = () => { for (const w of waiters) w(); };
    sock.on('data', (c) => { buf = Buffer.concat([buf, c]); poke(); });
    sock.on('end', () => { if (!weClosed) peerClosed = true; poke(); });
    sock.on('close', () => { if (!weClosed) peerClosed = true; poke(); });
    sock.on('error', () => { if (!weClosed) peerClosed = true; poke(); });
    const ct = setTimeout(() => { sock.destroy(); reject(new Error(`connect to ${host}:${port} timed out`)); }, timeout);
    sock.once('error', (err) => { clearTimeout(ct); reject(err); });
    sock.once('connect', () => {
      clearTimeout(ct);
      const wait = (cond, ms, what) => new Promise((res, rej) => {
        let timer;
        const check = () => {
          let v;
          try { v = cond(); } catch (e) { clearTimeout(timer); waiters.delete(check); rej(e); return; }
          if (v !== undefined) { clearTimeout(timer); waiters.delete(check); res(v); }
        };
        timer = setTimeout(() => { waiters.delete(check); rej(new Error(`${what} timed out after ${ms} ms`)); }, ms);
        waiters.add(check);
        check();
      });
      resolve({
        socket: sock,
        get closedByPeer() { return peerClosed; },
        write(d) { sock.write(d); },
        /**
         * Writes `chunks` so that the peer reads each one on its own, instead of however the kernel
         * happens to coalesce back-to-back writes: after each write, waits until `readBytes()` (how
         * many bytes the peer has read so far in all, e.g. `() => envoy.downstreamRxBytes()`) has
         * grown by that chunk's length. Envoy counts a read once its read loop has drained the
         * socket, so the next chunk lands in a later read. Only one connection may be writing to the
         * counted listener meanwhile. Rejects if the peer closes first or a chunk is not read in time.
         */
        async writeInReads(chunks, { readBytes, timeout: ms = 5000 }) {
          let want = await readBytes();
          for (let i = 0; i < chunks.length; i++) {
            const c = Buffer.from(chunks[i]);
            sock.write(c);
            want += c.length;
            const deadline = Date.now() + ms;
            for (let poll = 1; (await readBytes()) < want; poll = Math.min(poll * 2, 20)) {
              const where = `chunk ${i + 1} of ${chunks.length} (${c.length} bytes)`;
              if (peerClosed) throw new Error(`peer closed before it read ${where}`);
              if (Date.now() > deadline) throw new Error(`peer did not read ${where} within ${ms} ms`);
              await delay(poll);
            }
          }
        },
        received() { return buf; },
        /** Next n unread bytes; rejects if the peer closes first or on timeout. */
        read(n, ms = 2000) {
          return wait(() => {
            if (buf.length - consumed >= n) { const r = buf.subarray(consumed, consumed + n); consumed += n; return r; }
            if (peerClosed) throw new Error(`peer closed with ${buf.length - consumed} of ${n} bytes`);
            return undefined;
          }, ms, `read(${n})`);
        },
        /** Resolves true once the peer has closed, false on timeout. */
        waitForClose(ms = 2000) {
          return wait(() => (peerClosed ? true : undefined), ms, 'waitForClose').catch(() => false);
        },
        close() { weClosed = true; sock.destroy(); },
      });
    });
  });
}
