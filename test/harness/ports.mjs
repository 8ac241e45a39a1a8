// Free loopback ports. The kernel picks: bind port 0 on 127.0.0.1, read the port, close.
// There is a small window in which another process could take the port; callers that
// can let the server bind port 0 itself (Thrift peers, Envoy listeners) should do so.
import net from 'node:net';

/** @returns {Promise<number>} a TCP port that was free on 127.0.0.1 a moment ago */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const { port } = srv.address();
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/**
 * n distinct free ports. All n sockets are held open at the same time before closing,
 * so the kernel cannot hand out the same port twice.
 * @returns {Promise<number[]>}
 */
export async function freePorts(n, host = '127.0.0.1') {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      srv.unref();
      await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ port: 0, host, exclusive: true }, resolve);
      });
      servers.push(srv);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r()))));
  }
}
