#!/usr/bin/env bash
# Builds the real Apache Dubbo 2.7.23 peers (target/meltemi-dubbo27-peers.jar + target/lib/) with
# Maven. Idempotent (run by `make setup-dubbo`, after the 3.3.5 peers): skips when the jar is newer
# than every source; builds offline when the local Maven repository already has everything, else
# online (Maven Central).
set -euo pipefail
cd "$(dirname "$0")"

JAR=target/meltemi-dubbo27-peers.jar

for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "setup-dubbo27: '$tool' not found (need Java 17+ and Maven 3.8+)" >&2; exit 1; }
done

if [[ -f $JAR && -d target/lib && -z "$(find pom.xml build.sh src -newer "$JAR" -print -quit)" ]]; then
  echo "setup-dubbo27: $JAR is up to date"
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
  echo "setup-dubbo27: offline build not possible (local Maven repo cold?); building online" >&2
  "${MVN[@]}" package
  mode=online
fi
touch "$JAR"   # the jar plugin may leave an unchanged jar's mtime alone
echo "setup-dubbo27: built $JAR ($mode) in $(( $(date +%s) - start ))s"
