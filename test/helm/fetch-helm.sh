#!/usr/bin/env bash
# Builds (once) Helm from the Go module proxy, for the chart test (test/controller/helm.test.mjs) and
# `make manifest` (deploy/meltemi.yaml is `helm template` of deploy/helm/meltemi). Idempotent and fast
# when cached: the binary lives in $HOME/.cache/meltemi/helm/<version>/ and is never committed. Prints
# the cache folder on the last line of stdout.
#
#   HELM_VERSION   helm.sh/helm/v3 module version (default v3.22.0)
#
# Why build: Debian's helm lags and no other registry ships it. `go install module@version` builds
# with Helm's own go.mod (the exact dependency versions Helm releases with), like its Makefile does.
set -euo pipefail
NAME=fetch-helm
. "$(dirname "$0")/../lib/go-tool.sh"

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
ROOT="${MELTEMI_HELM_CACHE:-$HOME/.cache/meltemi/helm}"
CACHE="$ROOT/$HELM_VERSION"

have() { [ -x "$CACHE/helm" ]; }
# One build at a time (make setup-helm and a test run may race); the loser waits, then finds the cache.
enter_cache "$CACHE"
export GOFLAGS="-buildvcs=false"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Helm's Makefile stamps its version and the Kubernetes version it was built against (from
# k8s.io/client-go v0.<minor>.<patch>), which `helm version` shows and `helm template` uses as the
# default .Capabilities.KubeVersion; do the same.
gomod="$(cd "$work" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[ -s "$gomod" ] || { echo "fetch-helm: cannot download helm.sh/helm/v3 $HELM_VERSION" >&2; exit 1; }
client_go="$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -1)"
pkg=helm.sh/helm/v3
ldflags="-s -w -X $pkg/internal/version.version=$HELM_VERSION -X $pkg/internal/version.gitTreeState=clean"
[ -n "$client_go" ] && ldflags="$ldflags -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$client_go -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$client_go"
echo "fetch-helm: building helm $HELM_VERSION (a few minutes when cold on 2 cores)" >&2
GOBIN="$work/bin" $NICE go install -trimpath -ldflags "$ldflags" "$pkg/cmd/helm@$HELM_VERSION"
mv "$work/bin/helm" "$CACHE/helm"

echo "fetch-helm: ready in $(( $(date +%s) - start ))s: $("$CACHE/helm" version --short)" >&2
echo "$CACHE"
