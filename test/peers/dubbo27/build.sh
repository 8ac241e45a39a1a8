#!/usr/bin/env bash
# Builds the real Apache Dubbo 2.7.23 peers (target/meltemi-dubbo27-peers.jar + target/lib/) with
# Maven (run by `make setup-dubbo`, after the 3.3.5 peers; see ../maven-peer.sh).
exec bash "$(dirname "$0")/../maven-peer.sh" setup-dubbo27 "$(dirname "$0")" target/meltemi-dubbo27-peers.jar
