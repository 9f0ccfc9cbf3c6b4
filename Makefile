# One entry point for every gate. `make test` is what CI runs (.ci/run); `make demo` is the main job.
SHELL := /bin/bash
CARGO ?= cargo
# What scripts/setup.sh installs into .tools/ comes first (as scripts/tools.sh does for the scripts): helm and
# kubectl in .tools/bin, the Python tools' venv (its python3 too) in .tools/venv.
export NETMAP_TOOLS := $(CURDIR)/.tools
export PATH := $(NETMAP_TOOLS)/bin:$(NETMAP_TOOLS)/venv/bin:$(PATH)

.PHONY: all setup build fmt lint test test-rust check-ops check-tools image test-image dashboard bench demo golden-update clean

all: build

## setup: install every tool the build, the tests and the demo use (root): Debian packages, .tools/ (venv, helm, kubectl)
setup:
	@scripts/setup.sh

## build: debug build of both binaries
build: setup
	$(CARGO) build --locked --bins

## fmt: formatting gate
fmt:
	$(CARGO) fmt --all -- --check

## lint: clippy with warnings as errors
lint: setup
	$(CARGO) clippy --locked --all-targets -- -D warnings

## test-rust: every Rust test, the live ones included (they need root); fails if any test was not run
test-rust: setup
	set -o pipefail; $(CARGO) test --locked -- --include-ignored 2>&1 | tee target/test-rust.log
	@scripts/check-none-skipped.sh target/test-rust.log

## check-ops: manifests, the Helm chart, alert rules and runbooks, dashboards, and the checkers' own break-a-copy tests
check-ops: setup
	scripts/check-deploy.sh
	scripts/check-helm.sh
	scripts/check-alerts.sh
	python3 scripts/check-grafana.py
	scripts/test-checks.sh

## check-tools: every command the scripts, tests and Makefile run is installed by scripts/setup.sh
check-tools: setup
	python3 scripts/check-tools.py

## image: the container image (podman, base made from Debian packages) and its OCI archive in target/image/
image: setup
	scripts/build-image.sh

## test-image: the image's config and contents, and the simulated node with the exporter run from the image
test-image: image
	scripts/test-image.sh

## test: all gates, as CI runs them
test: check-tools fmt lint test-rust check-ops test-image

## dashboard: regenerate grafana/network-mapper.json with Grafana's Foundation SDK (scripts/gen-dashboard.py)
dashboard: setup
	python3 scripts/gen-dashboard.py

## bench: the benchmarks whose figures the README reports
bench: setup
	$(CARGO) bench --locked

## golden-update: rewrite golden files and generated fixtures (review the diff!)
golden-update: setup
	UPDATE_GOLDEN=1 $(CARGO) test --locked

## demo: build, run the exporter on the demo capture, print the map and write ClientIntents to ./demo-out
demo: setup
	@scripts/demo.sh

clean:
	$(CARGO) clean
