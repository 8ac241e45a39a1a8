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

#   enter_cache DIR  how every script starts: when the caller's `have` (its test of a complete cache)
#                    holds, prints DIR and exits; else puts Go on PATH, takes DIR's build lock, asks
#                    `have` again (a racing build may have filled it), and starts the clock ($start)
#                    for the caller's "ready in" line
enter_cache() {
  if have; then echo "$1"; exit 0; fi
  mkdir -p "$1"
  use_go
  build_lock "$1"
  if have; then echo "$1"; exit 0; fi
  start=$(date +%s)
}

#   go_module PATH REQUIREMENT...   a throwaway module (in $work, removed on exit; the current folder
#                    from then on) that requires each REQUIREMENT ("istio.io/istio v0.0.0-..."): the
#                    caller adds its sources (a main.go, or a tools.go importing the command), then
#   go_tidy          resolves its modules from the Go module proxy (the log's tail on failure)
go_module() {
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  go mod init "$1" >/dev/null 2>&1
  shift
  for r in "$@"; do echo "require $r" >> go.mod; done
}

go_tidy() {
  echo "$NAME: resolving modules ($(sed -n 's/^require //p' go.mod | tr '\n' ' '))" >&2
  $NICE go mod tidy -e > tidy.log 2>&1 || { tail -20 tidy.log >&2; exit 1; }
}

#   module_dir MODULE VERSION   where the Go module cache holds MODULE at VERSION (downloaded if not)
module_dir() {
  go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}
