# Shared by the live benchmark scripts (sourced): root, and the Debian tools they replay and measure with.

# require_root NAME WHY: exits 1 unless run as root.
require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1: needs root ($2)" >&2
    exit 1
  fi
}

# install_missing NAME TOOL...: installs each missing tool from Debian's package of the same name.
install_missing() {
  local name=$1 tool
  shift
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "$name: installing $tool" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
    fi
  done
}

# replay_lab TAG WORK: two namespaces joined by a veth, "$ns_replay" (end "${TAG}a", where tcpreplay sends) and
# "$ns_capture" (end "${TAG}b", lo up, where the exporter captures); on exit, the exporter "$exporter_pid" (if
# set), both namespaces and the work directory WORK go.
replay_lab() {
  tag=$1
  lab_work=$2
  ns_replay="${tag}-replay"
  ns_capture="${tag}-capture"
  trap remove_replay_lab EXIT
  ip netns add "$ns_replay"
  ip netns add "$ns_capture"
  ip link add "${tag}a" type veth peer name "${tag}b"
  ip link set "${tag}a" netns "$ns_replay"
  ip link set "${tag}b" netns "$ns_capture"
  ip -n "$ns_replay" link set "${tag}a" up
  ip -n "$ns_capture" link set "${tag}b" up
  ip -n "$ns_capture" link set lo up
}

remove_replay_lab() {
  if [ -n "${exporter_pid:-}" ]; then
    kill "$exporter_pid" 2>/dev/null || true
    wait "$exporter_pid" 2>/dev/null || true
    cpu_untrack "$exporter_pid"
  fi
  ip netns del "$ns_replay" 2>/dev/null || true
  ip netns del "$ns_capture" 2>/dev/null || true
  rm -rf "$lab_work"
}

# cpu_track PID: from now on, PID's CPU (its threads', ended ones too) is counted in a cgroup of its own, which
# cpu_seconds reads to the microsecond: cgroup v2's cpu.stat (on /sys/fs/cgroup, or /unified on a hybrid host),
# else v1's cpuacct. Where no cgroup can be made, cpu_seconds reads utime + stime in clock ticks (10 ms).
# cpu_untrack PID removes the group once PID has ended.
cpu_track() {
  local root group
  for root in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/cpuacct; do
    [ -f "$root/cgroup.controllers" ] || [ -f "$root/cpuacct.usage" ] || continue
    group="$root/nm-bench-$1"
    mkdir "$group" 2>/dev/null || continue
    if echo "$1" >"$group/cgroup.procs" 2>/dev/null; then
      echo "$group" >"/tmp/nm-bench-cpu-group.$1"
      return
    fi
    rmdir "$group"
  done
}
cpu_untrack() {
  [ -f "/tmp/nm-bench-cpu-group.$1" ] || return 0
  rmdir "$(cat "/tmp/nm-bench-cpu-group.$1")" 2>/dev/null || true
  rm -f "/tmp/nm-bench-cpu-group.$1"
}
# cpu_seconds PID: the CPU PID has used, in seconds (see cpu_track).
cpu_seconds() {
  local group
  group=$(cat "/tmp/nm-bench-cpu-group.$1" 2>/dev/null || true)
  if [ -f "$group/cpu.stat" ]; then
    awk '$1 == "usage_usec" { printf "%.6f\n", $2 / 1e6 }' "$group/cpu.stat"
  elif [ -f "$group/cpuacct.usage" ]; then
    awk '{ printf "%.9f\n", $1 / 1e9 }' "$group/cpuacct.usage"
  else
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
  fi
}
# cpu_method PID: how cpu_seconds measures PID, for the report.
cpu_method() {
  if [ -f "/tmp/nm-bench-cpu-group.$1" ]; then echo "cgroup CPU time (µs)"; else echo "utime + stime (clock ticks)"; fi
}

# Measuring a process: peak RSS in KiB, a sample from exposition text, the time.
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
sample() { awk -v s="$2" '$1 == s { print $2 }' <<<"$1"; }
now() { date +%s.%N; }

# wait_ready URL: waits up to 10 s for the exporter in "$ns_capture" to answer URL, then lets it settle.
wait_ready() {
  for _ in $(seq 100); do
    ip netns exec "$ns_capture" curl -sf -o /dev/null "$1" && break
    sleep 0.1
  done
  sleep 0.5
}
