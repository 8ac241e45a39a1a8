#!/usr/bin/env bash
# Builds the Apache Thrift Java peers (target/meltemi-thrift-java-peers.jar + target/lib/) with
# Maven, from src/ and the committed generated code in ../thrift/gen-java. Idempotent (run by
# `make setup-thrift-java`): skips when the jar is newer than every source; builds offline when the
# local Maven repository already has everything, else online (Maven Central).
set -euo pipefail
cd "$(dirname "$0")"

JAR=target/meltemi-thrift-java-peers.jar

for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "setup-thrift-java: '$tool' not found (need Java 17+ and Maven 3.8+)" >&2; exit 1; }
done

if [[ -f $JAR && -d target/lib && -z "$(find pom.xml build.sh src ../thrift/gen-java -newer "$JAR" -print -quit)" ]]; then
  echo "setup-thrift-java: $JAR is up to date"
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
  echo "setup-thrift-java: offline build not possible (local Maven repo cold?); building online" >&2
  "${MVN[@]}" package
  mode=online
fi
touch "$JAR"   # the jar plugin may leave an unchanged jar's mtime alone
echo "setup-thrift-java: built $JAR ($mode) in $(( $(date +%s) - start ))s"
