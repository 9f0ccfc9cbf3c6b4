#!/usr/bin/env bash
# The node filter, live (docs/design.md §7, docs/capture.md): what the agent on the node that hosts CoreDNS costs
# when the kernel passes it only answers to its own pods, side by side with the previous release, which copies
# every answer of the cluster to user space and drops other nodes' there.
#
# Generates the capture of the CoreDNS node of a 20-node cluster (examples/dns_mix_gen.rs, counted for node-00,
# where the CoreDNS pod runs; the inventory gives each node its pod CIDR) and, in the same run, replays it with
# tcpreplay from one network namespace onto a veth whose peer each exporter captures in another (release builds,
# --interface, --inventory-file, --node-name node-00, --no-socket-scan) at RATE responses/s: first the previous
# release (benches/baseline.sh), then this tree. CPU is the exporter's CPU time (all its threads, from its own
# cgroup to the microsecond: benches/support/live.sh) from ready until 1 s after the replay, per second of that
# time; peak RSS is VmHWM.
#
# Run as root: benches/capture_node.sh   (env: RESPONSES=1000000 RATE=25000 BASELINE_REF=8bea47d)
# Exits non-zero when over budget: this tree's CPU per second above 1/5 of the previous release's, or either
# exporter missing a count (node-00's answers counted exactly; the upstream answers to CoreDNS forwarded by the
# previous release, kept out by this tree's kernel filter) or dropping a frame in the kernel.
set -euo pipefail
cd "$(dirname "$0")/.."

RESPONSES=${RESPONSES:-1000000}
RATE=${RATE:-25000}
NODE=node-00

. benches/support/live.sh
require_root capture_node "network namespaces, veth pairs, packet capture"
install_missing capture_node tcpreplay curl bc

cargo build --release --locked --bin network-mapper --example dns_mix_gen >&2
baseline=$(benches/baseline.sh)
current=target/release/network-mapper
work=$(mktemp -d /tmp/nm-capnode.XXXXXX)
tag="nmn$$"
replay_lab "$tag" "$work"

DNS_MIX_SAMPLE_NODE=$NODE target/release/examples/dns_mix_gen "$work" "$RESPONSES" >&2
expected() { awk -v k="$1" '$1 == k { print $2 }' "$work/expected.txt"; }
frames=$(tcpdump -nr "$work/cluster.pcap" 2>/dev/null | wc -l)
responses=$(expected responses)



rows=()
cpu_per_second=()
over_budget=0

# run NAME BINARY FORWARDED: one exporter captures the replay and must count FORWARDED answers to CoreDNS; appends
# a table row and its CPU per second.
run() {
  local name=$1 binary=$2 expect_forwarded=$3
  ip netns exec "$ns_capture" "$binary" --interface "${tag}b" --inventory-file "$work/inventory.yaml" \
    --node-name "$NODE" --no-socket-scan --listen-address 127.0.0.1:9953 >"$work/$name.log" 2>&1 &
  exporter_pid=$!
  cpu_track "$exporter_pid"
  method=$(cpu_method "$exporter_pid")
  wait_ready http://127.0.0.1:9953/readyz
  local cpu0 started wall cpu1 metrics rss
  cpu0=$(cpu_seconds "$exporter_pid")
  started=$(now)
  ip netns exec "$ns_replay" tcpreplay -q -i "${tag}a" --pps=$((RATE * frames / responses)) "$work/cluster.pcap" \
    >"$work/tcpreplay-$name.log" 2>&1
  wall=$(echo "$(now) - $started" | bc -l)
  sleep 1
  cpu1=$(cpu_seconds "$exporter_pid")
  metrics=$(ip netns exec "$ns_capture" curl -sf http://127.0.0.1:9953/metrics)
  rss=$(peak_rss_kib "$exporter_pid")
  kill -TERM "$exporter_pid"
  wait "$exporter_pid" || true
  cpu_untrack "$exporter_pid"
  exporter_pid=
  local drops counted forwarded other packets cpu_s per_s
  drops=$(sample "$metrics" network_mapper_capture_kernel_drops_total)
  counted=$(sample "$metrics" 'network_mapper_dns_responses_total{outcome="counted"}')
  forwarded=$(sample "$metrics" 'network_mapper_dns_responses_total{outcome="forwarded"}')
  other=$(sample "$metrics" 'network_mapper_dns_responses_total{outcome="other_node"}')
  packets=$(sample "$metrics" network_mapper_capture_packets_total)
  cpu_s=$(echo "$cpu1 - $cpu0" | bc -l)
  per_s=$(echo "$cpu_s / ($wall + 1)" | bc -l)
  cpu_per_second+=("$per_s")
  rows+=("$(printf '| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.3f s | %.2f%% | %.1f |' "$name" \
    "$(echo "$responses / $wall" | bc -l)" "$packets" "$counted" "$forwarded" "$other" "$drops" "$cpu_s" \
    "$(echo "100 * $per_s" | bc -l)" "$(echo "$rss / 1024" | bc -l)")")
  [ "${drops%.*}" = 0 ] && [ "${counted%.*}" = "$(expected sample_counted)" ] \
    && [ "${forwarded%.*}" = "$expect_forwarded" ] || over_budget=1
}
run "previous release ($(basename "$(dirname "$baseline")"))" "$baseline" "$(expected forwarded)"
run "this tree (node filter)" "$current" 0

echo "capture_node: $responses responses ($frames frames) of a 20-node cluster's CoreDNS node, counted for $NODE; target $RATE responses/s; CPU: $method; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| exporter | responses/s replayed | frames read | counted | forwarded | other_node | kernel drops | CPU | share of a core | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
ratio=$(echo "${cpu_per_second[1]} / ${cpu_per_second[0]}" | bc -l)
printf 'this tree uses %.3f of the previous release'"'"'s CPU per second\n' "$ratio"
if [ "$(echo "$ratio > 0.2" | bc -l)" = 1 ]; then over_budget=1; fi
if [ "$over_budget" = 1 ]; then
  echo "budget (<= 1/5 of the previous release's CPU per second, counts exact, 0 drops): MISSED"
  exit 1
fi
echo "budget (<= 1/5 of the previous release's CPU per second, counts exact, 0 drops): met"
