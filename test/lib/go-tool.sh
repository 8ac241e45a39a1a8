# Sourced by the test/*/fetch-*.sh scripts that build a Go tool from the Go module proxy into
# ~/.cache/meltemi: the Go they build with, and one build at a time. Set NAME (for messages) first.
#
#   use_go           puts a Go 1.26+ first on PATH: the machine's when new enough, else the toolchain
#                    module test/kube/fetch-apiserver.sh caches (it runs first in `make setup`)
#   build_lock DIR   waits for DIR/.lock: `make setup` and a test run may race; the loser waits, then
#                    finds the cache (the caller checks again after it)
#   $NICE            keeps the 2 shared cores usable for others while a build runs

GO_TOOLCHAIN="${GO_TOOLCHAIN:-1.26.8}"
NICE="nice -n 15"

use_go() {
  if command -v go >/dev/null && go version | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])'; then return 0; fi
  local tc="${MELTEMI_KUBE_CACHE:-$HOME/.cache/meltemi/kube}/go${GO_TOOLCHAIN}"
  [ -x "$tc/bin/go" ] || { echo "$NAME: no Go 1.26+; run test/kube/fetch-apiserver.sh first (it fetches one)" >&2; exit 1; }
  export PATH="$tc/bin:$PATH" GOROOT="$tc" GOTOOLCHAIN=local
}

build_lock() {
  exec 9>"$1/.lock"
  flock 9
}
