#!/usr/bin/env bash
# Builds (once) istiod (`pilot-discovery`) from the Go module proxy, for the Istio-in-the-loop test
# (test/controller/istio.test.mjs). Idempotent and fast when cached: the binary lives in
# $HOME/.cache/meltemi/istio/<version>/ and is never committed. Prints the cache folder on the last
# line of stdout.
#
#   ISTIO_VERSION   istio.io/istio module version (default: the newest pseudo-version on the proxy
#                   when this was written; istio.io/istio publishes no semver tags as a Go module)
#
# Why build: no package registry ships istiod, and istio's go.mod has no replace lines, so a throwaway
# module that requires istio.io/istio builds it with a plain `go build`.
set -euo pipefail
NAME=fetch-istiod
. "$(dirname "$0")/../lib/go-tool.sh"

ISTIO_VERSION="${ISTIO_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}"
ROOT="${MELTEMI_ISTIO_CACHE:-$HOME/.cache/meltemi/istio}"
CACHE="$ROOT/$ISTIO_VERSION"

have() { [ -x "$CACHE/pilot-discovery" ] && [ -s "$CACHE/istio.version" ]; }
# One build at a time (make setup-istio and a test run may race); the loser waits, then finds the cache.
enter_cache "$CACHE"
export GOFLAGS="-mod=mod -buildvcs=false"

go_module meltemi.dev/istio-build "istio.io/istio $ISTIO_VERSION"
if [ ! -x "$CACHE/pilot-discovery" ]; then
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "istio.io/istio/pilot/cmd/pilot-discovery"
GO
  go_tidy
  echo "fetch-istiod: building pilot-discovery (long when cold on 2 cores)" >&2
  # istio stamps its version through istio.io/istio/pkg/version; istiod reports it to proxies and in logs.
  $NICE go build -trimpath -ldflags "-s -w -X istio.io/istio/pkg/version.buildVersion=$ISTIO_VERSION" \
    -o "$CACHE/pilot-discovery.tmp" istio.io/istio/pilot/cmd/pilot-discovery
  mv "$CACHE/pilot-discovery.tmp" "$CACHE/pilot-discovery"
fi
# The release line (e.g. 1.31) the proxies announce as ISTIO_VERSION: istio's own VERSION file.
if [ ! -s "$CACHE/istio.version" ]; then
  dir="$(cd "$work" && module_dir istio.io/istio "$ISTIO_VERSION")"
  tr -d '[:space:]' < "$dir/VERSION" > "$CACHE/istio.version.tmp" && mv "$CACHE/istio.version.tmp" "$CACHE/istio.version"
fi

echo "fetch-istiod: ready in $(( $(date +%s) - start ))s: istio $(cat "$CACHE/istio.version") ($ISTIO_VERSION)" >&2
echo "$CACHE"
