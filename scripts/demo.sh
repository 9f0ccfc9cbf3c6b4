#!/usr/bin/env bash
# `make demo`: the offline demo. Builds both binaries, runs the exporter on the bundled capture of a small shop
# (tests/fixtures/scrape/capture.pcap: DNS answers as `tcpdump -i any` records them on node-a, NAT copies included)
# and the fake /proc tree (tests/fixtures/proc) with the matching inventory, then turns the scrape into the "X calls Y" listing, ClientIntents files and a
# Graphviz graph in ./demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo-out
cargo build --release --locked --bins -q
bin=target/release
rm -rf "$out" && mkdir -p "$out/intents"

echo "== network-mapper on node-a (DNS: tests/fixtures/scrape/capture.pcap, sockets: tests/fixtures/proc)"
"$bin/network-mapper" --pcap-file tests/fixtures/scrape/capture.pcap \
  --inventory-file tests/fixtures/inventory/cluster.yaml \
  --procfs-root tests/fixtures/proc \
  --node-name node-a --cluster-domain cluster.local --print-metrics \
  2>/dev/null >"$out/metrics.prom"
grep '^network_mapper_edge_total' "$out/metrics.prom" | sort
echo
echo "== netmap-reduce: who calls whom"
"$bin/netmap-reduce" "$out/metrics.prom"
"$bin/netmap-reduce" --format intents --output-dir "$out/intents" "$out/metrics.prom"
"$bin/netmap-reduce" --format dot "$out/metrics.prom" >"$out/map.dot"
dot -Tsvg "$out/map.dot" -o "$out/map.svg"
echo
echo "== one of the ClientIntents ($out/intents/checkout.shop.yaml)"
cat "$out/intents/checkout.shop.yaml"
echo
echo "== written to $out/: metrics.prom, intents/ ($(ls "$out/intents" | wc -l) ClientIntents files), map.dot, map.svg"
