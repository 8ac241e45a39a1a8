#!/usr/bin/env bash
# Builds (once) Istio's agent (`pilot-agent`) from the same istio.io/istio module version as istiod
# (test/istio/fetch-istiod.sh), for the Istio-in-the-loop tests that run Envoy as a sidecar: the agent
# fetches Wasm modules (oci:// and https://) into its own cache, serves the proxy's certificates over
# SDS from istiod's CA, and proxies xDS. Cached beside istiod in
# $HOME/.cache/meltemi/istio/<version>/pilot-agent, never committed; prints that folder on the last
# line of stdout, with envoy_bootstrap_tmpl.json beside it: the agent renders Envoy's bootstrap from
# that template, which Istio's images carry in /var/lib/istio/envoy/ (tools/packaging/common/).
#
#   ISTIO_VERSION   istio.io/istio module version (default: the one fetch-istiod.sh builds)
set -euo pipefail
NAME=fetch-pilot-agent
. "$(dirname "$0")/../lib/go-tool.sh"

ISTIO_VERSION="${ISTIO_VERSION:-$(sed -n 's/^ISTIO_VERSION="\${ISTIO_VERSION:-\(.*\)}"$/\1/p' "$(dirname "$0")/fetch-istiod.sh")}"
[ -n "$ISTIO_VERSION" ] || { echo "fetch-pilot-agent: cannot read ISTIO_VERSION from fetch-istiod.sh" >&2; exit 1; }
ROOT="${MELTEMI_ISTIO_CACHE:-$HOME/.cache/meltemi/istio}"
CACHE="$ROOT/$ISTIO_VERSION"

have() { [ -x "$CACHE/pilot-agent" ] && [ -s "$CACHE/envoy_bootstrap_tmpl.json" ]; }
# The same lock as fetch-istiod.sh: both write into this folder, and two Go builds at once would
# starve the 2 shared cores.
enter_cache "$CACHE"
export GOFLAGS="-mod=mod -buildvcs=false"

go_module meltemi.dev/istio-build "istio.io/istio $ISTIO_VERSION"
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "istio.io/istio/pilot/cmd/pilot-agent"
GO
go_tidy
echo "fetch-pilot-agent: building pilot-agent (most packages are shared with istiod's build)" >&2
# The agent announces this version to istiod (ISTIO_META_ISTIO_VERSION), as istiod's build does.
if [ ! -x "$CACHE/pilot-agent" ]; then
  $NICE go build -trimpath -ldflags "-s -w -X istio.io/istio/pkg/version.buildVersion=$ISTIO_VERSION" \
    -o "$CACHE/pilot-agent.tmp" istio.io/istio/pilot/cmd/pilot-agent
  mv "$CACHE/pilot-agent.tmp" "$CACHE/pilot-agent"
fi
dir="$(module_dir istio.io/istio "$ISTIO_VERSION")"
cp "$dir/tools/packaging/common/envoy_bootstrap.json" "$CACHE/envoy_bootstrap_tmpl.json.tmp"
mv "$CACHE/envoy_bootstrap_tmpl.json.tmp" "$CACHE/envoy_bootstrap_tmpl.json"
echo "fetch-pilot-agent: ready in $(( $(date +%s) - start ))s: $CACHE/pilot-agent" >&2
echo "$CACHE"
