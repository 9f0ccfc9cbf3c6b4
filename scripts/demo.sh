#!/usr/bin/env bash
# `make demo`: the live demo. As root: installs what it needs (scripts/setup.sh), builds the binaries and the
# demo, then runs examples/demo_node.rs, which builds a simulated Kubernetes node out of network namespaces (the
# shop of tests/e2e: real dnsmasq as kube-dns, kube-proxy NAT, real connections), runs network-mapper and
# Prometheus in it, prints the "X calls Y" listing from Prometheus, and writes ClientIntents, map.dot/map.svg,
# map.json and the raw scrape to ./demo-out/. With a terminal it stays up until Ctrl-C (or DEMO_SECONDS=N);
# without one (e.g. `make demo </dev/null`) it exits after printing. Everything is torn down on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root (network namespaces, iptables, packet capture): sudo make demo" >&2
  exit 1
fi
scripts/setup.sh
echo "== building (release)"
cargo build --release --locked -q --bins --example demo_node
exec target/release/examples/demo_node
