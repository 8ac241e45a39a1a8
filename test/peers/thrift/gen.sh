#!/usr/bin/env bash
# Regenerates test/peers/thrift/gen-nodejs/ (npm thrift), gen-py/ (the PyPI thrift library,
# python_peer.py) and gen-java/ (Apache Thrift's Java library, test/peers/thrift-java) from
# meltemi_test.thrift with the real Apache Thrift compiler. The output is committed so tests need
# no compiler at run time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v thrift >/dev/null || { echo "thrift compiler missing: apt-get install thrift-compiler" >&2; exit 1; }
rm -rf "$here/gen-nodejs" "$here/gen-py" "$here/gen-java"
thrift --gen js:node -o "$here" "$here/meltemi_test.thrift"
# The generated code is CommonJS; pin that so a future "type": "module" cannot break it.
printf '{ "type": "commonjs" }\n' > "$here/gen-nodejs/package.json"
# Python: package meltemi_test (the IDL's `namespace py`), imported by python_peer.py.
thrift --gen py -o "$here" "$here/meltemi_test.thrift"
# Java: package dev.meltemi.thrift (`namespace java`), compiled into test/peers/thrift-java's jar.
# No @Generated annotations: the 0.17 compiler writes javax.annotation.Generated (gone from JDK 11
# on) with the date in it, so every run would differ.
thrift --gen java:generated_annotations=suppress -o "$here" "$here/meltemi_test.thrift"
echo "generated with $(thrift --version) into $here/gen-nodejs, $here/gen-py and $here/gen-java"
