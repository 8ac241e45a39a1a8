#!/usr/bin/env bash
# Builds one Maven test peer (a jar plus target/lib/) for a module's build.sh:
#   maven-peer.sh <label> <module dir> <jar> [more source paths the jar depends on...]
# Idempotent: skips when the jar is newer than the module's pom.xml, build.sh, src/ and the extra
# paths; builds offline when the local Maven repository already has everything, else online
# (Maven Central). <label> names the make target in its messages.
set -euo pipefail
label=$1 dir=$2 jar=$3
shift 3
cd "$dir"

for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "$label: '$tool' not found (need Java 17+ and Maven 3.8+)" >&2; exit 1; }
done

if [[ -f $jar && -d target/lib && -z "$(find pom.xml build.sh src "$@" -newer "$jar" -print -quit)" ]]; then
  echo "$label: $jar is up to date"
  exit 0
fi

start=$(date +%s)
rm -rf target/lib   # copy-dependencies never deletes; keep lib/ exactly what the pom says
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# -q keeps the log short; nice keeps a shared machine responsive.
MVN=(nice -n 10 mvn -q -B -Dstyle.color=never -DskipTests)
if "${MVN[@]}" -o package >"$log" 2>&1; then
  mode=offline
else
  echo "$label: offline build not possible (local Maven repo cold?); building online" >&2
  "${MVN[@]}" package
  mode=online
fi
touch "$jar"   # the jar plugin may leave an unchanged jar's mtime alone
echo "$label: built $jar ($mode) in $(( $(date +%s) - start ))s"
