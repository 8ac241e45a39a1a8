#!/usr/bin/env node
// The `meltemi` command: runs the compiled controller CLI (make build writes dist/controller/).
import { main } from '../../dist/controller/cli.mjs';

process.exitCode = await main(process.argv.slice(2));
