#!/usr/bin/env bash
# Builds (once) Envoy's reference rate limit service (github.com/envoyproxy/ratelimit) from the Go
# module proxy, for the global rate limit test (test/e2e/per-request-ratelimit.test.mjs). Cached in
# $HOME/.cache/meltemi/ratelimit/<version>/ratelimit, never committed; prints that path last.
#   RATELIMIT_VERSION   module version (default: the one this was tested with)
set -euo pipefail

RATELIMIT_VERSION="${RATELIMIT_VERSION:-v1.4.1-0.20260122083618-3fb702589d36}"
CACHE="${MELTEMI_RATELIMIT_CACHE:-$HOME/.cache/meltemi/ratelimit}/$RATELIMIT_VERSION"
if [ -x "$CACHE/ratelimit" ]; then echo "$CACHE/ratelimit"; exit 0; fi
mkdir -p "$CACHE"
# Same Go as the other builds: the system one when new enough, else the cached toolchain.
GO_TOOLCHAIN="${GO_TOOLCHAIN:-1.26.8}"
if ! (command -v go >/dev/null && go version | grep -Eq 'go1\.(2[4-9]|[3-9][0-9])'); then
  tc="${MELTEMI_KUBE_CACHE:-$HOME/.cache/meltemi/kube}/go${GO_TOOLCHAIN}"
  [ -x "$tc/bin/go" ] || { echo "fetch-ratelimit: no Go 1.24+; run test/kube/fetch-apiserver.sh first (it fetches one)" >&2; exit 1; }
  export PATH="$tc/bin:$PATH" GOROOT="$tc" GOTOOLCHAIN=local
fi
exec 9>"$CACHE/.lock"
flock 9
if [ -x "$CACHE/ratelimit" ]; then echo "$CACHE/ratelimit"; exit 0; fi
start=$(date +%s)
GOBIN="$CACHE/bin" GOFLAGS="-mod=mod -buildvcs=false" nice -n 15 go install "github.com/envoyproxy/ratelimit/src/service_cmd@$RATELIMIT_VERSION" >&2
mv "$CACHE/bin/service_cmd" "$CACHE/ratelimit"
echo "fetch-ratelimit: built in $(( $(date +%s) - start )) s" >&2
echo "$CACHE/ratelimit"
