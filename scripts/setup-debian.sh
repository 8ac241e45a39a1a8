#!/usr/bin/env bash
# Debian packages the tests need: the real Redis peers (redis-server; redis-cli and redis-benchmark
# from redis-tools) and the Thrift IDL compiler, to regenerate test/peers/thrift.
# Idempotent: installs only what is missing.
set -euo pipefail
need=()
for pkg in "$@" redis-server redis-tools thrift-compiler; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
