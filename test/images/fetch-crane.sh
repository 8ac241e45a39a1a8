#!/usr/bin/env bash
# Builds (once) go-containerregistry's `crane` (push, pull, digest, export images) and `registry` (a
# small OCI registry that keeps blobs in memory) from the Go module proxy, for `make images` and the
# image test (test/controller/images.test.mjs). No Docker: nothing else is needed to build, push or
# unpack an image. Cached in $HOME/.cache/meltemi/crane/<version>/, never committed; prints that
# folder on the last line of stdout.
#   CRANE_VERSION   github.com/google/go-containerregistry module version (default: the tested one)
set -euo pipefail
NAME=fetch-crane
. "$(dirname "$0")/../lib/go-tool.sh"

CRANE_VERSION="${CRANE_VERSION:-v0.22.1}"
CACHE="${MELTEMI_CRANE_CACHE:-$HOME/.cache/meltemi/crane}/$CRANE_VERSION"
have() { [ -x "$CACHE/crane" ] && [ -x "$CACHE/registry" ]; }
# One build at a time (make setup-images and a test run may race); the loser waits, then finds the cache.
enter_cache "$CACHE"
# go-containerregistry's go.mod has no replace lines, so `go install pkg@version` builds it as released.
GOBIN="$CACHE/bin" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 $NICE go install -trimpath -ldflags "-s -w" \
  "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" \
  "github.com/google/go-containerregistry/cmd/registry@$CRANE_VERSION" >&2
mv "$CACHE/bin/crane" "$CACHE/crane" && mv "$CACHE/bin/registry" "$CACHE/registry" && rmdir "$CACHE/bin"
echo "fetch-crane: built crane and registry $CRANE_VERSION in $(( $(date +%s) - start )) s" >&2
echo "$CACHE"
