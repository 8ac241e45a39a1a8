#!/usr/bin/env bash
# Builds (once) the filter and, where the commit has one, the controller of an earlier commit of this
# repository, for the upgrade tests (test/controller/upgrade.test.mjs): an older filter in front of a
# newer controller, an older controller in front of the newer filter. Idempotent and fast when cached:
# the build lives in $HOME/.cache/meltemi/old-build/<commit>/ (build/meltemi.wasm, dist/controller/)
# and is never committed. Prints the cache folder on the last line of stdout.
#
#   build-old.sh <commit>
#
# The commit's own build line is used (its Makefile's first `npx asc` line), with this working tree's
# node_modules: the AssemblyScript and TypeScript versions are pinned in package-lock.json and have
# not changed since the first commit. Needs the commit in the local history (a shallow clone has not).
set -euo pipefail

COMMIT="$(git rev-parse --verify "${1:?usage: build-old.sh <commit>}^{commit}")"
ROOT="$(git rev-parse --show-toplevel)"
CACHE="${MELTEMI_OLD_BUILD_CACHE:-$HOME/.cache/meltemi/old-build}/$COMMIT"

have() { [ -s "$CACHE/build/meltemi.wasm" ] && [ -e "$CACHE/.done" ]; }
if have; then echo "$CACHE"; exit 0; fi

mkdir -p "$CACHE"
# One build at a time (two test files may ask for the same commit); the loser waits, then finds the cache.
exec 9>"$CACHE/.lock"
flock 9
if have; then echo "$CACHE"; exit 0; fi
# Keep the 2 shared cores usable for others while this builds.
NICE="nice -n 15"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git -C "$ROOT" archive "$COMMIT" | tar -x -C "$work"
ln -s "$ROOT/node_modules" "$work/node_modules"
mkdir -p "$work/build"
asc_line="$(sed -n 's/^\t\(npx asc .*\)$/\1/p' "$work/Makefile" | head -1)"
[ -n "$asc_line" ] || { echo "build-old: no 'npx asc' line in the Makefile of $COMMIT" >&2; exit 1; }
# The first commits named no entry file (asc then prints its help): theirs was assembly/index.ts.
case "$asc_line" in *.ts*) ;; *) asc_line="${asc_line/npx asc/npx asc assembly/index.ts}" ;; esac
echo "build-old: $COMMIT: $asc_line" >&2
(cd "$work" && PATH="$work/node_modules/.bin:$PATH" $NICE bash -c "$asc_line" >&2)
mkdir -p "$CACHE/build"
cp "$work/build/meltemi.wasm" "$CACHE/build/meltemi.wasm"
if [ -f "$work/controller/tsconfig.json" ]; then
  (cd "$work" && $NICE node_modules/.bin/tsc -p controller/tsconfig.json >&2)
  rm -rf "$CACHE/dist" && cp -r "$work/dist" "$CACHE/dist"
  # The old controller loads its schema and package.json relative to dist/: keep them beside it.
  for f in schema package.json; do [ -e "$work/$f" ] && cp -r "$work/$f" "$CACHE/"; done
fi
touch "$CACHE/.done"
echo "$CACHE"
