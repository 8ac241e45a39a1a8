#!/usr/bin/env bash
# Builds (once) Envoy's reference rate limit service (github.com/envoyproxy/ratelimit) from the Go
# module proxy, for the global rate limit test (test/e2e/per-request-ratelimit.test.mjs). Cached in
# $HOME/.cache/meltemi/ratelimit/<version>/ratelimit, never committed; prints that path last.
#   RATELIMIT_VERSION   module version (default: the one this was tested with)
set -euo pipefail
NAME=fetch-ratelimit
. "$(dirname "$0")/../lib/go-tool.sh"

RATELIMIT_VERSION="${RATELIMIT_VERSION:-v1.4.1-0.20260122083618-3fb702589d36}"
CACHE="${MELTEMI_RATELIMIT_CACHE:-$HOME/.cache/meltemi/ratelimit}/$RATELIMIT_VERSION"
if [ -x "$CACHE/ratelimit" ]; then echo "$CACHE/ratelimit"; exit 0; fi
mkdir -p "$CACHE"
use_go
build_lock "$CACHE"
if [ -x "$CACHE/ratelimit" ]; then echo "$CACHE/ratelimit"; exit 0; fi
start=$(date +%s)
GOBIN="$CACHE/bin" GOFLAGS="-mod=mod -buildvcs=false" $NICE go install "github.com/envoyproxy/ratelimit/src/service_cmd@$RATELIMIT_VERSION" >&2
mv "$CACHE/bin/service_cmd" "$CACHE/ratelimit"
echo "fetch-ratelimit: built in $(( $(date +%s) - start )) s" >&2
echo "$CACHE/ratelimit"
