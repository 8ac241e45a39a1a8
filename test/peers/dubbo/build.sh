#!/usr/bin/env bash
# Builds the real Apache Dubbo 3.3.5 peers (target/meltemi-dubbo-peers.jar + target/lib/) with
# Maven (run by `make setup-dubbo`; see ../maven-peer.sh for when it skips and how it builds).
exec bash "$(dirname "$0")/../maven-peer.sh" setup-dubbo "$(dirname "$0")" target/meltemi-dubbo-peers.jar
