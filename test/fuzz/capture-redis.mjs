#!/usr/bin/env node
// Captures the Redis fuzz corpus (test/fuzz/corpus/redis.json) from a real redis-server: each
// command as a client puts it on the wire (RESP2 arrays of bulk strings, as redis-cli and ioredis
// send them, and a few inline commands) and the server's reply bytes, in RESP2 and then, after
// HELLO 3, in RESP3 (maps, sets, doubles, nulls, booleans, verbatim strings, pushes).
//   node test/fuzz/capture-redis.mjs        (needs redis-server on PATH)
import { spawn } from 'node:child_process';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { freePort, waitFor } from '../harness/index.mjs';

const resp = (...args) => Buffer.concat([
  Buffer.from(`*${args.length}\r\n`),
  ...args.map((a) => { const b = Buffer.from(String(a)); return Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]); }),
]);
const inline = (line) => Buffer.from(`${line}\r\n`);

const RESP2 = [
  resp('PING'), resp('SET', 'k', 'v'), resp('GET', 'k'), resp('GET', 'missing'), resp('INCR', 'n'),
  resp('MSET', 'a', '1', 'b', '2'), resp('MGET', 'a', 'b', 'c'), resp('LPUSH', 'l', 'x', 'y', 'z'),
  resp('LRANGE', 'l', '0', '-1'), resp('HSET', 'h', 'f', 'v', 'g', 'w'), resp('HGETALL', 'h'),
  resp('SADD', 's', '1', '2', '3'), resp('SMEMBERS', 's'), resp('ZADD', 'z', '1', 'a', '2.5', 'b'),
  resp('ZRANGE', 'z', '0', '-1', 'WITHSCORES'), resp('EXPIRE', 'k', '100'), resp('TTL', 'k'),
  resp('TYPE', 'l'), resp('EXISTS', 'a', 'b'), resp('APPEND', 'k', 'vv'), resp('SET', 'big', 'x'.repeat(4096)),
  resp('GET', 'big'), resp('EVAL', "return {1,{2,{3,{4,'x'}}},'a',{}}", '0'),
  resp('EVAL', "return redis.error_reply('MY custom error')", '0'), resp('FOO', 'bar'), resp('GET'),
  resp('MULTI'), resp('SET', 't', '1'), resp('INCR', 't'), resp('EXEC'), resp('DISCARD'),
  resp('CLIENT', 'SETNAME', 'fuzz'), resp('SELECT', '1'), resp('SELECT', '0'), resp('CONFIG', 'GET', 'maxmemory'),
  resp('OBJECT', 'ENCODING', 'l'), resp('SCAN', '0'), resp('XADD', 'st', '*', 'f', 'v'), resp('XRANGE', 'st', '-', '+'),
  resp('DEL', 'k', 'a'), resp('AUTH', 'nobody', 'secret'), resp('COMMAND', 'COUNT'),
  inline('PING'), inline('SET inl "quoted value" '), inline('GET inl'), inline(''), resp(),
];

const RESP3 = [
  resp('HELLO', '3'), resp('HGETALL', 'h'), resp('SMEMBERS', 's'), resp('ZRANGE', 'z', '0', '-1', 'WITHSCORES'),
  resp('ZSCORE', 'z', 'b'), resp('GET', 'missing'), resp('EVAL', 'redis.setresp(3); return true', '0'),
  resp('EVAL', "redis.setresp(3); return {double=3.5}", '0'), resp('EVAL', "redis.setresp(3); return {big_number='123456789012345678901234567890'}", '0'),
  resp('EVAL', "redis.setresp(3); return {map={a=1,b={map={c=2}}}}", '0'), resp('INFO', 'server'),
  resp('CLIENT', 'TRACKING', 'ON'), resp('GET', 'big'), resp('SET', 'big', 'y'), resp('PING'),
];

async function main() {
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
  try {
    const sock = await waitFor(() => new Promise((resolve) => {
      const s = net.createConnection({ port, host: '127.0.0.1' }, () => resolve(s));
      s.once('error', () => resolve(null));
    }), { message: 'redis-server did not start' });
    let got = Buffer.alloc(0);
    sock.on('data', (c) => { got = Buffer.concat([got, c]); });
    const pairs = [];
    for (const cmd of [...RESP2, ...RESP3]) {
      got = Buffer.alloc(0);
      sock.write(cmd);
      // Replies are complete when nothing more comes for 60 ms (no reply for a blank line or *0).
      let last = -1;
      for (let quiet = 0; quiet < 3;) {
        await new Promise((r) => setTimeout(r, 20));
        if (got.length === last) quiet++; else { quiet = 0; last = got.length; }
      }
      pairs.push({ request: cmd.toString('hex'), reply: got.toString('hex') });
    }
    sock.destroy();
    const version = await new Promise((resolve) => {
      const v = spawn('redis-server', ['--version']);
      let out = '';
      v.stdout.on('data', (c) => { out += c; });
      v.on('close', () => resolve(out.trim()));
    });
    const file = new URL('./corpus/redis.json', import.meta.url);
    writeFileSync(file, `${JSON.stringify({ capturedWith: version, pairs }, null, 1)}\n`);
    console.log(`${pairs.length} commands and replies from ${version} -> ${file.pathname}`);
  } finally {
    server.kill('SIGTERM');
  }
}

await main();
