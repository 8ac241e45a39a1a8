#!/usr/bin/env bash
# Builds (once) test/prometheus/promql-names, which parses PromQL with Prometheus's own parser, from
# the Go module proxy. Idempotent and fast when cached: the binary lives in
# $HOME/.cache/meltemi/promql-names/<version>-<source hash>/. Prints that folder on the last line of
# stdout.
#
#   PROMETHEUS_VERSION   github.com/prometheus/prometheus module version (Prometheus 3.x)
set -euo pipefail
NAME=fetch-promql-names
. "$(dirname "$0")/../lib/go-tool.sh"

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
SRC="$(cd "$(dirname "$0")/promql-names" && pwd)"
HASH="$(sha256sum "$SRC/main.go" | cut -c1-12)"
ROOT="${MELTEMI_PROMQL_CACHE:-$HOME/.cache/meltemi/promql-names}"
CACHE="$ROOT/$PROMETHEUS_VERSION-$HASH"

have() { [ -x "$CACHE/promql-names" ]; }
enter_cache "$CACHE"
export GOFLAGS="-mod=mod -buildvcs=false"

go_module meltemi.dev/promql-names "github.com/prometheus/prometheus $PROMETHEUS_VERSION"
cp "$SRC/main.go" .
go_tidy
echo "fetch-promql-names: building" >&2
$NICE go build -trimpath -ldflags "-s -w" -o "$CACHE/promql-names.tmp" .
mv "$CACHE/promql-names.tmp" "$CACHE/promql-names"
echo "fetch-promql-names: ready in $(( $(date +%s) - start ))s" >&2
echo "$CACHE"
