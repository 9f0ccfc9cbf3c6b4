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
  [ -n "${exporter_pid:-}" ] && kill "$exporter_pid" 2>/dev/null || true
  ip netns del "$ns_replay" 2>/dev/null || true
  ip netns del "$ns_capture" 2>/dev/null || true
  rm -rf "$lab_work"
}

# Measuring a process: CPU clock ticks (utime + stime), peak RSS in KiB, a sample from exposition text, the time.
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
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
