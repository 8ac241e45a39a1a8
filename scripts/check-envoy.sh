#!/usr/bin/env bash
# Fails unless the venv's Envoy is the pinned version. (Whether it can load Wasm is
# proven by test/e2e/wasm-loads.test.mjs, which runs the real filter.)
set -euo pipefail
envoy_bin=$1 want=$2
got=$("$envoy_bin" --version | grep -o 'version: [^ ]*' | cut -d/ -f2)
if [ "$got" != "$want" ]; then
  echo "envoy is $got, want $want" >&2; exit 1
fi
echo "envoy $got ok"
