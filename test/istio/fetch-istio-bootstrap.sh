#!/usr/bin/env bash
# Builds (once) test/istio/bootstrap-render, which writes the Envoy bootstrap Istio's agent writes
# (Istio's own pkg/bootstrap and template), against the same istio.io/istio as
# test/istio/fetch-istiod.sh. Idempotent and fast when cached: the binary and the template live in
# $HOME/.cache/meltemi/istio-bootstrap/<version>-<source hash>/. Prints that folder on the last line
# of stdout.
set -euo pipefail
NAME=fetch-istio-bootstrap
. "$(dirname "$0")/../lib/go-tool.sh"

ISTIO_VERSION="${ISTIO_VERSION:-$(sed -n 's/^ISTIO_VERSION="\${ISTIO_VERSION:-\(.*\)}"$/\1/p' "$(dirname "$0")/fetch-istiod.sh")}"
SRC="$(cd "$(dirname "$0")/bootstrap-render" && pwd)"
HASH="$(sha256sum "$SRC/main.go" | cut -c1-12)"
ROOT="${MELTEMI_ISTIO_BOOTSTRAP_CACHE:-$HOME/.cache/meltemi/istio-bootstrap}"
CACHE="$ROOT/$ISTIO_VERSION-$HASH"

have() { [ -x "$CACHE/istio-bootstrap" ] && [ -s "$CACHE/envoy_bootstrap.json" ]; }
enter_cache "$CACHE"
export GOFLAGS="-mod=mod -buildvcs=false"

go_module meltemi.dev/istio-bootstrap "istio.io/istio $ISTIO_VERSION"
cp "$SRC/main.go" .
go_tidy
echo "fetch-istio-bootstrap: building" >&2
$NICE go build -trimpath -ldflags "-s -w" -o "$CACHE/istio-bootstrap.tmp" .
mv "$CACHE/istio-bootstrap.tmp" "$CACHE/istio-bootstrap"
dir="$(module_dir istio.io/istio "$ISTIO_VERSION")"
cp "$dir/tools/packaging/common/envoy_bootstrap.json" "$CACHE/envoy_bootstrap.json.tmp"
mv "$CACHE/envoy_bootstrap.json.tmp" "$CACHE/envoy_bootstrap.json"
echo "fetch-istio-bootstrap: ready in $(( $(date +%s) - start ))s" >&2
echo "$CACHE"
