#!/usr/bin/env bash
# Builds the Apache Thrift Java peers (target/meltemi-thrift-java-peers.jar + target/lib/) with
# Maven, from src/ and the committed generated code in ../thrift/gen-java (run by
# `make setup-thrift-java`; see ../maven-peer.sh).
exec bash "$(dirname "$0")/../maven-peer.sh" setup-thrift-java "$(dirname "$0")" target/meltemi-thrift-java-peers.jar ../thrift/gen-java
