#!/usr/bin/env bash
# Finds the smallest capability set the exporter needs, by experiment (deploy/ cites the result).
#
# The exporter runs as uid 0 in its container with a reduced capability bounding set, like a
# container runtime does. It must (1) open a packet socket on device `any` (libpcap), (2) read
# /proc/<pid>/net/tcp{,6} of processes in other network namespaces owned by other uids and by
# root with more capabilities than it has, (3) stat /proc/<pid>/ns/net of those processes to
# dedupe namespaces. This script starts such target processes in network namespaces it creates,
# then runs each probe as root under several bounding sets and prints a table.
# Needs root, iproute2, libpcap0.8, setpriv (util-linux), /usr/bin/python3. Exit 0 when the
# results match the manifest's choice (NET_RAW only, see the end of this file), 1 otherwise.
set -euo pipefail

# A system interpreter every uid can execute (a per-user pyenv shim is not).
py=/usr/bin/python3
ns_a=netmap-probe-a-$$
ns_b=netmap-probe-b-$$
pids=()
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
# A TCP server and an established client in a namespace, so net/tcp has real rows.
holder='import socket,time
s=socket.socket();s.bind(("127.0.0.1",0));s.listen();c=socket.create_connection(s.getsockname());a=s.accept();time.sleep(120)'
ip netns exec "$ns_a" ip link set lo up
ip netns exec "$ns_b" ip link set lo up
# Target 1: an unprivileged workload (uid 1000), as in most application pods.
ip netns exec "$ns_a" setpriv --reuid=1000 --regid=1000 --clear-groups "$py" -c "$holder" &
pids+=($!)
# Target 2: a root process keeping every capability, as a host daemon or privileged pod would.
ip netns exec "$ns_b" "$py" -c "$holder" &
pids+=($!)
# Target 3: a second process in the first namespace, for the namespace-dedupe check.
ip netns exec "$ns_a" setpriv --reuid=1001 --regid=1001 --clear-groups sleep 120 &
pids+=($!)
sleep 1

pcap_open='import ctypes,sys
lib=ctypes.CDLL("libpcap.so.0.8");lib.pcap_open_live.restype=ctypes.c_void_p
err=ctypes.create_string_buffer(256)
sys.exit(0 if lib.pcap_open_live(b"any",65535,0,100,err) else 1)'

probe_sets=("" "net_raw" "sys_ptrace" "dac_read_search" "net_raw,sys_ptrace")
readonly probe_sets

run_as() { # $1 = comma-separated caps to keep; rest = command
    local keep=$1; shift
    local bset="-all"
    [[ -n $keep ]] && bset="-all,+${keep//,/,+}"
    setpriv --inh-caps=-all --ambient-caps=-all --bounding-set="$bset" -- "$@"
}

probe() { # $1 caps, $2 what, $3 pid
    local caps=$1 what=$2 pid=${3:-}
    case $what in
    net_tcp) run_as "$caps" "$py" -c "open('/proc/$pid/net/tcp').read()" 2>/dev/null ;;
    ns_net) run_as "$caps" "$py" -c "import os; os.stat('/proc/$pid/ns/net')" 2>/dev/null ;;
    # What else SYS_PTRACE opens: the environment (often secrets) of root processes on the node.
    environ) run_as "$caps" "$py" -c "open('/proc/$pid/environ','rb').read()" 2>/dev/null ;;
    inode)
        # The fallback namespace key: the inode of net/tcp is the same for two processes in one
        # namespace and differs between namespaces.
        run_as "$caps" "$py" -c "import os,sys
i=lambda p: os.stat(f'/proc/{p}/net/tcp').st_ino
sys.exit(0 if i(${pids[0]})==i(${pids[2]})!=i(${pids[1]})!=i(os.getpid()) else 1)" 2>/dev/null ;;
    pcap)
        # The exporter's own path: libpcap's pcap_open_live("any"), loaded from the same shared
        # library the runtime image ships (tcpdump is no use here: it insists on setuid()).
        run_as "$caps" "$py" -c "$pcap_open" 2>/dev/null ;;
    esac
}

printf '%-22s %-10s %-10s %-10s %-10s %-10s %-10s %-6s\n' "kept capabilities" "tcp(1000)" "tcp(root)" "tcp-inode" "ns(1000)" "ns(root)" "env(root)" "pcap"
declare -A result
for caps in "${probe_sets[@]}"; do
    row=()
    for check in "net_tcp ${pids[0]}" "net_tcp ${pids[1]}" "inode" "ns_net ${pids[0]}" "ns_net ${pids[1]}" "environ ${pids[1]}" "pcap"; do
        # shellcheck disable=SC2086  # $check is "what pid", split on purpose
        if probe "$caps" $check; then row+=(ok); else row+=(DENIED); fi
    done
    result[${caps:-none}]="${row[*]}"
    printf '%-22s %-10s %-10s %-10s %-10s %-10s %-10s %-6s\n' "${caps:-none}" "${row[@]}"
done

# The manifest keeps NET_RAW only: sockets and the namespace key (net/tcp inode) need nothing,
# pcap needs NET_RAW, and SYS_PTRACE would buy only the /proc/<pid>/ns/net path while also opening
# /proc/<pid>/environ (and mem) of every root process on the node.
status=0
expect() { # $1 caps, $2 column (1-based), $3 ok|DENIED
    local got
    got=$(cut -d' ' -f"$2" <<<"${result[$1]}")
    if [[ $got != "$3" ]]; then
        echo "FAIL: with '$1' column $2 is $got, expected $3" >&2; status=1
    fi
}
for col in 1 2 3; do expect none $col ok; done
expect none 7 DENIED
for col in 1 2 3 7; do expect net_raw $col ok; done
expect net_raw 4 DENIED
expect net_raw 6 DENIED
expect sys_ptrace 4 ok
expect sys_ptrace 6 ok
[[ $status -eq 0 ]] && echo "minimum: NET_RAW (SYS_PTRACE would add only /proc/<pid>/ns/net, and root processes' environ)"
exit $status
