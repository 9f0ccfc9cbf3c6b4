#!/usr/bin/env bash
# Live capture benchmark (docs/capture.md): what taking DNS answers from the kernel costs, per answer.
#
# Generates an Ethernet capture of a busy node (examples/capture_bench_gen.rs: ANSWERS answers, 4 frames each, of
# which the kernel's BPF filter passes 2) and a 2,000-pod inventory file, then, in the same run:
#   - replays the capture with tcpreplay from one network namespace onto a veth whose peer, in a second namespace,
#     the exporter (release build) captures with --interface, at each rate of RATES answers/s, once with batched
#     delivery (the default) and once with libpcap's immediate mode (the hidden --capture-immediate);
#   - processes the same capture from the file (--pcap-file --print-metrics).
# CPU is the live exporter's CPU time (all its threads, from its own cgroup: benches/support/live.sh), from ready
# to 1 s after the replay ends (start-up excluded); the file path's is its rusage, less a run on an empty capture. Peak RSS is VmHWM. Prints a Markdown table.
#
# Run as root: benches/capture_live.sh   (env: ANSWERS=200000 RATES="25000 60000")
# Exits non-zero when over budget: any kernel drop or uncounted answer, or batched CPU per answer at the lowest
# rate above 2x the file path's.
set -euo pipefail
cd "$(dirname "$0")/.."

ANSWERS=${ANSWERS:-200000}
RATES=${RATES:-"25000 60000"}

. benches/support/live.sh
require_root capture_live "network namespaces, veth pairs, packet capture"
install_missing capture_live tcpreplay curl bc

cargo build --release --locked --bin network-mapper --example capture_bench_gen >&2
exporter=target/release/network-mapper
work=$(mktemp -d /tmp/nm-capbench.XXXXXX)
tag="nmb$$"
replay_lab "$tag" "$work"

target/release/examples/capture_bench_gen "$work/full" "$ANSWERS" >&2
target/release/examples/capture_bench_gen "$work/empty" 0 >&2
inventory="$work/full/inventory.yaml"


scrape() { ip netns exec "$ns_capture" curl -sf http://127.0.0.1:9953/metrics; }

rows=()
over_budget=0

# File path: CPU over and above a run on an empty capture (start-up, inventory parsing).
file_run() {
  python3 - "$@" <<'EOF'
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout
r = resource.getrusage(resource.RUSAGE_CHILDREN)
counted = next((l.split()[1] for l in out.splitlines()
                if l.startswith('network_mapper_dns_responses_total{outcome="counted"}')), "0")
print(f"{r.ru_utime + r.ru_stime:.3f} {r.ru_maxrss} {float(counted):.0f}")
EOF
}
common=(--inventory-file "$inventory" --no-socket-scan --print-metrics)
read -r empty_cpu _ _ < <(file_run "$exporter" --pcap-file "$work/empty/cluster.pcap" "${common[@]}")
started=$(now)
read -r full_cpu file_rss file_counted < <(file_run "$exporter" --pcap-file "$work/full/cluster.pcap" "${common[@]}")
file_wall=$(echo "$(now) - $started" | bc -l)
file_us=$(echo "($full_cpu - $empty_cpu) * 1000000 / $ANSWERS" | bc -l)
rows+=("$(printf '| file (--pcap-file) | — | %.0f | %s | — | %.2f s | 1 core | %.2f | %.1f |' \
  "$(echo "$ANSWERS / $file_wall" | bc -l)" "$file_counted" "$(echo "$full_cpu - $empty_cpu" | bc -l)" \
  "$file_us" "$(echo "$file_rss / 1024" | bc -l)")")
[ "$file_counted" = "$ANSWERS" ] || over_budget=1

# Live path: one exporter per (mode, rate), capturing on the replay veth's peer.
live_run() {
  local mode=$1 rate=$2 extra=()
  [ "$mode" = immediate ] && extra=(--capture-immediate)
  ip netns exec "$ns_capture" "$exporter" --interface "${tag}b" --inventory-file "$inventory" --no-socket-scan \
    --listen-address 127.0.0.1:9953 "${extra[@]}" >"$work/exporter-$mode-$rate.log" 2>&1 &
  exporter_pid=$!
  cpu_track "$exporter_pid"
  wait_ready http://127.0.0.1:9953/readyz
  local cpu0 started wall cpu1 metrics
  cpu0=$(cpu_seconds "$exporter_pid")
  started=$(now)
  ip netns exec "$ns_replay" tcpreplay -q -i "${tag}a" --pps=$((rate * 4)) "$work/full/cluster.pcap" \
    >"$work/tcpreplay-$mode-$rate.log" 2>&1
  wall=$(echo "$(now) - $started" | bc -l)
  sleep 1
  cpu1=$(cpu_seconds "$exporter_pid")
  metrics=$(scrape)
  local rss drops counted cpu_s
  rss=$(peak_rss_kib "$exporter_pid")
  kill -TERM "$exporter_pid"
  wait "$exporter_pid" || true
  cpu_untrack "$exporter_pid"
  exporter_pid=
  drops=$(sample "$metrics" network_mapper_capture_kernel_drops_total)
  counted=$(sample "$metrics" 'network_mapper_dns_responses_total{outcome="counted"}')
  cpu_s=$(echo "$cpu1 - $cpu0" | bc -l)
  local us=$(echo "$cpu_s * 1000000 / $ANSWERS" | bc -l)
  rows+=("$(printf '| live, %s | %s | %.0f | %.0f | %.0f | %.2f s | %.1f%% | %.2f | %.1f |' "$mode" "$rate" \
    "$(echo "$ANSWERS / $wall" | bc -l)" "$counted" "$drops" "$cpu_s" "$(echo "100 * $cpu_s / ($wall + 1)" | bc -l)" \
    "$us" "$(echo "$rss / 1024" | bc -l)")")
  if [ "$mode" = batched ]; then
    [ "${drops%.*}" = 0 ] && [ "${counted%.*}" = "$ANSWERS" ] || over_budget=1
    if [ "$rate" = "${RATES%% *}" ] && [ "$(echo "$us > 2 * $file_us" | bc -l)" = 1 ]; then over_budget=1; fi
  fi
}
for rate in $RATES; do
  for mode in batched immediate; do
    live_run "$mode" "$rate"
  done
done

echo "capture_live: $ANSWERS answers ($((ANSWERS * 4)) frames, 2 per answer pass the filter), 2,000-pod inventory, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| path | target answers/s | achieved answers/s | answers counted | kernel drops | exporter CPU | share of a core | CPU µs per answer | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
if [ "$over_budget" = 1 ]; then
  echo "budget (batched: 0 drops, every answer counted, <= 2x the file path's CPU per answer at ${RATES%% *}/s): MISSED"
  exit 1
fi
echo "budget (batched: 0 drops, every answer counted, <= 2x the file path's CPU per answer at ${RATES%% *}/s): met"
