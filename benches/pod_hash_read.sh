#!/usr/bin/env bash
# What one read of a namespace's net/tcp costs, by the established hash its sockets are in (docs/performance.md,
# "Pods with a hash of their own"). Needs root and Linux >= 6.1 (net.ipv4.tcp_child_ehash_entries).
#
# Fills the host's shared hash with FILL namespaces x 450 loopback connections (900 sockets each; 36,000 with the
# default 40), then creates one namespace per bucket count in BUCKETS (0 = share the host's hash) with 200 loopback
# connections of its own (400 sockets), and prints the CPU (user + system) of one read of its /proc/self/net/tcp,
# mean of 100 reads. The sysctl is put back and every namespace removed at exit.
#
# Run: sudo benches/pod_hash_read.sh   (env: FILL=40 BUCKETS="0 128 1024 16384 65536")
set -euo pipefail

FILL=${FILL:-40}
BUCKETS=${BUCKETS:-"0 128 1024 16384 65536"}
sysctl=/proc/sys/net/ipv4/tcp_child_ehash_entries
[ "$(id -u)" -eq 0 ] || { echo "pod_hash_read: needs root (creates network namespaces)" >&2; exit 2; }
[ -f $sysctl ] || { echo "pod_hash_read: no $sysctl (Linux before 6.1)" >&2; exit 2; }

prefix="nmh$$"
old=$(cat $sysctl)
pids=()
cleanup() {
  echo "$old" >$sysctl
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  for ns in $(ip netns list | awk -v p="$prefix" 'index($1, p) == 1 { print $1 }'); do ip netns del "$ns"; done
}
trap cleanup EXIT

# The pool: N (its argument) loopback connections held open; it prints "ready" once they are.
pool='import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 9000)); l.listen(1024)
n = int(sys.argv[1]); c = [socket.create_connection(("127.0.0.1", 9000)) for _ in range(n)]
s = [l.accept()[0] for _ in range(n)]
print("ready", flush=True); time.sleep(1e6)'

echo 0 >$sysctl
for i in $(seq 1 "$FILL"); do
  ip netns add "$prefix-fill-$i"
  ip -n "$prefix-fill-$i" link set lo up
  ip netns exec "$prefix-fill-$i" python3 -c "$pool" 450 >"/tmp/$prefix-fill-$i.out" &
  pids+=($!)
done
for i in $(seq 1 "$FILL"); do
  until grep -qs ready "/tmp/$prefix-fill-$i.out"; do sleep 0.1; done
  rm -f "/tmp/$prefix-fill-$i.out"
done

echo "| buckets (0: the host's shared hash) | tcp_ehash_entries in the namespace | CPU per read of net/tcp, 400 own sockets |"
echo "|---|---|---|"
for n in $BUCKETS; do
  ns="$prefix-$n"
  echo "$n" >$sysctl
  ip netns add "$ns"
  echo "$old" >$sysctl
  ip -n "$ns" link set lo up
  seen=$(ip netns exec "$ns" cat /proc/sys/net/ipv4/tcp_ehash_entries)
  ms=$(ip netns exec "$ns" python3 -c '
import socket, time
l = socket.socket(); l.bind(("127.0.0.1", 9000)); l.listen(512)
c = [socket.create_connection(("127.0.0.1", 9000)) for _ in range(200)]
s = [l.accept()[0] for _ in range(200)]
t = time.process_time()
for _ in range(100):
    open("/proc/self/net/tcp").read()
print(f"{(time.process_time() - t) / 100 * 1e3:.2f}")')
  echo "| $n | $seen | $ms ms |"
done
