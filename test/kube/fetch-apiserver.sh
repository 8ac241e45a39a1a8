#!/usr/bin/env bash
# Builds (once) a real kube-apiserver and etcd from the Go module proxy, and fetches Istio's CRDs.
# Idempotent and fast when cached: the binaries live in $HOME/.cache/meltemi/kube/<version>/ and are
# never committed. Prints the cache folder on the last line of stdout.
#
#   KUBE_VERSION   k8s.io/kubernetes version to build (default 1.36.3)
#   ISTIO_API      istio.io/api version whose CRDs are installed (default 1.32.0)
#
# Why build: no registry ships a kube-apiserver binary, and envtest-style helpers download from the
# internet at run time. k8s.io/kubernetes pins its staging modules (k8s.io/api, ...) at v0.0.0, so a
# wrapper module replaces each of them with the matching v0.<minor>.<patch> release. etcd is built from
# the same module graph (go.etcd.io/etcd/server/v3 has a main package), so its version matches what
# this kube-apiserver was tested with.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.36.3}"
ISTIO_API="${ISTIO_API:-1.32.0}"
CACHE="${MELTEMI_KUBE_CACHE:-$HOME/.cache/meltemi/kube}/v${KUBE_VERSION}"
CRDS="$CACHE/istio-crds-v${ISTIO_API}.yaml"

have() { [ -x "$CACHE/kube-apiserver" ] && [ -x "$CACHE/etcd" ] && [ -s "$CRDS" ]; }
if have; then echo "$CACHE"; exit 0; fi

mkdir -p "$CACHE"
# Go 1.26+ builds kube-apiserver 1.36. Without one on PATH, use the official toolchain, which is itself a
# Go module on the module proxy (golang.org/toolchain), cached next to the binaries.
GO_TOOLCHAIN="${GO_TOOLCHAIN:-1.26.8}"
go_ok() { command -v go >/dev/null && go version | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])'; }
if ! go_ok; then
  tc="${MELTEMI_KUBE_CACHE:-$HOME/.cache/meltemi/kube}/go${GO_TOOLCHAIN}"
  if [ ! -x "$tc/bin/go" ]; then
    echo "fetch-apiserver: fetching Go ${GO_TOOLCHAIN} from the module proxy" >&2
    zip="$(mktemp)"
    curl -fsSL -o "$zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go${GO_TOOLCHAIN}.linux-amd64.zip"
    rm -rf "$tc.tmp" && python3 -m zipfile -e "$zip" "$tc.tmp" && rm -f "$zip"
    mv "$tc.tmp/golang.org/toolchain@v0.0.1-go${GO_TOOLCHAIN}.linux-amd64" "$tc" && rm -rf "$tc.tmp"
    chmod +x "$tc"/bin/* "$tc"/pkg/tool/*/*   # zipfile drops the mode bits
  fi
  export PATH="$tc/bin:$PATH" GOROOT="$tc" GOTOOLCHAIN=local
fi
# One build at a time (make setup-kube and a test run may race); the loser waits, then finds the cache.
exec 9>"$CACHE/.lock"
flock 9
if have; then echo "$CACHE"; exit 0; fi
export GOFLAGS="-mod=mod -buildvcs=false"
# Keep the 2 shared cores usable for others while this builds.
NICE="nice -n 15"

start=$(date +%s)
if [ ! -x "$CACHE/kube-apiserver" ] || [ ! -x "$CACHE/etcd" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  go mod init meltemi.dev/kube-build >/dev/null 2>&1
  gomod="$(go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -s "$gomod" ] || { echo "fetch-apiserver: cannot download k8s.io/kubernetes v${KUBE_VERSION}" >&2; exit 1; }
  minor_patch="${KUBE_VERSION#*.}"   # 36.3
  {
    echo "require k8s.io/kubernetes v${KUBE_VERSION}"
    # every staging module pinned at v0.0.0 -> v0.<minor>.<patch>
    grep -E '^[[:space:]]*k8s\.io/[a-z0-9-]+ v0\.0\.0[[:space:]]*$' "$gomod" | awk '{print $1}' | sort -u |
      while read -r m; do echo "replace $m => $m v0.${minor_patch}"; done
  } >> go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
GO
  echo "fetch-apiserver: resolving modules for kube-apiserver v${KUBE_VERSION}" >&2
  $NICE go mod tidy -e > "$work/tidy.log" 2>&1 || { tail -20 "$work/tidy.log" >&2; exit 1; }
    echo "fetch-apiserver: building kube-apiserver (15-25 min cold on 2 cores)" >&2
  $NICE go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v${KUBE_VERSION} -X k8s.io/client-go/pkg/version.gitVersion=v${KUBE_VERSION}" \
    -o "$CACHE/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$CACHE/kube-apiserver.tmp" "$CACHE/kube-apiserver"
  echo "fetch-apiserver: building etcd" >&2
  $NICE go build -trimpath -ldflags "-s -w" -o "$CACHE/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$CACHE/etcd.tmp" "$CACHE/etcd"
  go list -m go.etcd.io/etcd/server/v3 | awk '{print $2}' > "$CACHE/etcd.version"
  cd - >/dev/null
fi

if [ ! -s "$CRDS" ]; then
  dir="$(GOFLAGS=-mod=mod go mod download -json "istio.io/api@v${ISTIO_API}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -s "$dir/kubernetes/customresourcedefinitions.gen.yaml" ] || { echo "fetch-apiserver: no Istio CRDs in istio.io/api v${ISTIO_API}" >&2; exit 1; }
  cp "$dir/kubernetes/customresourcedefinitions.gen.yaml" "$CRDS.tmp" && chmod 644 "$CRDS.tmp" && mv "$CRDS.tmp" "$CRDS"
fi

echo "fetch-apiserver: ready in $(( $(date +%s) - start ))s: $("$CACHE/kube-apiserver" --version) etcd $(cat "$CACHE/etcd.version" 2>/dev/null || echo '?')" >&2
echo "$CACHE"
