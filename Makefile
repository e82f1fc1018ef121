# Meshwork: build, test and run. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# npm scripts and every tool below run on the project's pinned Node 24 (the `node`
# package in node_modules), never on whatever node the machine has.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

NODE_DEPS := node_modules/.package-lock.json
# iproute2 and nftables: the local stack's network namespaces and kube-proxy (ADR 27).
# iptables: the router of the peer-to-peer tests' NAT (e2e/p2p/nat.ts).
# syncthing: the baseline of the agent benchmark (bench/agent.bench.ts); bsdutils:
# script(1), the terminal the meshwork command's token-prompt test runs in. litmus: a client of
# the WebDAV test (dataplane/src/gateway/dav/dav.int.test.ts). rclone is not taken from Debian:
# `make tools` builds a pinned one (tools/rclone, ADR 61).
# chromium: the browser the web UI test drives headless through playwright-core (web/).
DEBIAN_PACKAGES := openssl ca-certificates iproute2 nftables iptables syncthing bsdutils litmus chromium
# What make image and its tests need: mmdebstrap extracts the root filesystem, umoci assembles
# and unpacks the OCI image, skopeo writes the docker-archive, runc runs the unpacked bundle.
DEBIAN_IMAGE_PACKAGES := mmdebstrap umoci skopeo runc

# Installs the Debian packages named in $(1) that are missing, waiting for another apt to finish.
define install_debian
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing; \
	fi
endef

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: deps-debian $(NODE_DEPS) ## Install npm packages (with Node 24) and the Debian packages the tests need

$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: deps-debian
deps-debian: ## Install missing Debian packages (openssl, ...; and the image's: mmdebstrap, umoci, ...) with apt-get
	$(call install_debian,$(DEBIAN_PACKAGES) $(DEBIAN_IMAGE_PACKAGES))

.PHONY: deps-image
deps-image: ## Install missing Debian packages that make image needs (mmdebstrap, umoci, skopeo, runc)
	$(call install_debian,$(DEBIAN_IMAGE_PACKAGES))

.PHONY: tools
tools: ## Build the pinned infrastructure into bin/ (kube-*, kube-proxy, kubectl, etcd, minio, helm, coredns, jaeger, prometheus, promtool, rclone); a no-op when up to date
	@bash tools/build.sh

.PHONY: tools-prometheus
tools-prometheus: ## Build only Prometheus and promtool into bin/ (the unit tests' rule checks need promtool)
	@bash tools/build.sh prometheus

.PHONY: typecheck
typecheck: $(NODE_DEPS) ## Type-check the whole project with tsc (the web UI with the DOM's types: web/tsconfig.json)
	tsc -p tsconfig.json --noEmit
	tsc -p web/tsconfig.json --noEmit

.PHONY: lint
lint: $(NODE_DEPS) ## Check formatting (Prettier), then lint with typescript-eslint (type-aware rules and import boundaries)
	prettier --check --log-level=warn .
	eslint --max-warnings=0 .

.PHONY: format
format: $(NODE_DEPS) ## Format the sources with Prettier
	prettier --write --log-level=warn .

.PHONY: test-unit
test-unit: $(NODE_DEPS) tools-prometheus ## Unit tests only (no servers; promtool checks the alert rules)
	vitest run --project unit

.PHONY: test-integration
test-integration: $(NODE_DEPS) tools ## Integration tests against real etcd, MinIO and a Kubernetes control plane
	vitest run --project integration

.PHONY: test-e2e
test-e2e: $(NODE_DEPS) tools ## End-to-end tests
	vitest run --project e2e

.PHONY: test
test: deps tools typecheck lint ## Install everything, build the tools, then type-check, lint and run every test project
	@mkdir -p test-results
	@status=0; vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json || status=$$?; \
	node e2e/harness/summarize.ts test-results/vitest.json; exit $$status

.PHONY: test-busy
test-busy: ## make test with a CPU hog pinned to core 0 for the whole run: the suite must pass on a busy machine
	@taskset -c 0 sh -c 'while :; do :; done' & hog=$$!; trap "kill $$hog" EXIT; \
	echo "A busy loop (pid $$hog) holds core 0 until the tests end."; $(MAKE) --no-print-directory test

.PHONY: crds
crds: $(NODE_DEPS) ## Write crds/*.yaml and the Helm chart's CRD templates from operator/src/api/v1alpha1.ts
	node operator/src/api/generate-crds.ts

.PHONY: dashboards
dashboards: $(NODE_DEPS) ## Write the chart's Grafana dashboards and alert rules file from observability/*.ts
	node observability/generate.ts

.PHONY: chart-crds
chart-crds: crds ## The same as make crds (the chart's CRD templates are written with crds/)

# The web UI the gateway serves (web/, docs/web.md): built by Vite into web/dist when its sources change.
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/package.json

.PHONY: web
web: web/dist/index.html ## Build the web UI into web/dist (Vite + Preact), which the gateway serves at /

web/dist/index.html: $(NODE_DEPS) $(WEB_SOURCES)
	npm run --silent build -w @meshwork/web -- --logLevel error

.PHONY: up
up: deps tools web $(if $(IMAGE),image) ## Start the local stack in the background (etcd, MinIO, control plane, 3 nodes; as root with pod networking, kube-proxy and CoreDNS) and say how to reach it; IMAGE=1: pods run from the built image
	node e2e/stack/up.ts $(if $(IMAGE),--image $(IMAGE_DIST)/oci:$(IMAGE_VERSION))

WIPE ?=
.PHONY: down
down: ## Stop the local stack, keeping its data for the next make up (WIPE=1: remove it, as make reset); nothing is left running
	@if [ -d node_modules ]; then node e2e/stack/down.ts $(if $(WIPE),--wipe); else echo "Nothing to stop (no node_modules)."; fi

.PHONY: reset
reset: ## Stop the local stack and remove all its data (.cache/stack): the next make up starts a new cluster
	@$(MAKE) --no-print-directory down WIPE=1

# The image: meshwork/meshwork:<version of package.json>, the chart's default (its appVersion).
IMAGE_VERSION := $(shell node -p 'require("./package.json").version' 2>/dev/null)
IMAGE_DIST ?= dist
IMAGE_ARCHIVE := $(IMAGE_DIST)/meshwork-$(IMAGE_VERSION).docker.tar

.PHONY: image
image: deps-image $(NODE_DEPS) ## Build the OCI image without a container engine into dist/ (layout, archives, SBOM, licences) and print its size (as root)
	IMAGE_DIST=$(IMAGE_DIST) bash image/build.sh

.PHONY: test-image
test-image: deps-image $(NODE_DEPS) tools ## Build the image twice (same digest), then run it with runc against etcd, MinIO and the control plane
	vitest run image/image.e2e.test.ts

KIND_CLUSTER ?= meshwork

.PHONY: kind-up
kind-up: image tools ## On a machine with Docker: create a kind cluster and load the image's archive into it
	@command -v kind >/dev/null || { echo "kind is not installed; see https://kind.sigs.k8s.io (without Docker use make up)"; exit 1; }
	kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --name $(KIND_CLUSTER) --wait 120s
	kind load image-archive $(IMAGE_ARCHIVE) --name $(KIND_CLUSTER)
	@echo "kind cluster $(KIND_CLUSTER) is up with meshwork/meshwork:$(IMAGE_VERSION): bin/kubectl --context kind-$(KIND_CLUSTER) get nodes"

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

.PHONY: clean
clean: ## Remove build output, the image and test results (keeps the Go caches)
	rm -rf bin test-results dist web/dist .cache/image
