#!/usr/bin/env node
// A standalone Thrift test server, for humans (with envoy/thrift-demo.yaml) and for
// startThriftServer({childProcess: true}).
//   node test/peers/thrift/server.mjs --name v1 --port 9191 [--transport framed|buffered]
//        [--protocol binary|compact] [--multiplexed]
// With --json '<options>' it prints one JSON line when listening and one per call.
import process from 'node:process';
import { startThriftServer } from './index.mjs';

const argv = process.argv.slice(2);
let opts = {};
let json = false;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--json') { json = true; opts = { ...opts, ...JSON.parse(argv[++i]) }; }
  else if (a === '--multiplexed') opts.multiplexed = true;
  else if (a === '--port') opts.port = Number(argv[++i]);
  else if (['--name', '--transport', '--protocol', '--service', '--host'].includes(a)) opts[a.slice(2)] = argv[++i];
  else { console.error(`unknown argument ${a}`); process.exit(2); }
}
const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const srv = await startThriftServer({
  ...opts,
  onCall: (call) => (json ? emit({ call }) : console.log(`${srv?.name ?? opts.name}: ${call.service}.${call.method}(${call.args.map((x) => JSON.stringify(x)).join(', ')})`)),
});
const { name, port, transport, protocol, multiplexed, host } = srv;
if (json) emit({ listening: { name, port, transport, protocol, multiplexed, host } });
else console.log(`thrift server ${name} listening on ${host}:${port} (${transport}/${protocol}${multiplexed ? ', multiplexed' : ''})`);
const stop = () => srv.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
