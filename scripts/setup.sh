#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine (run as root; CI and `make test` call it).
# Idempotent: packages already present are not reinstalled, and apt is only touched when something is missing.
set -euo pipefail

apt_packages=(
  libpcap-dev pkg-config   # the pcap crate links libpcap
  prometheus               # promtool for rule/metric checks, prometheus for the reducer's live test
  dnsmasq-base             # a real DNS server in the live capture tests
  iproute2 iptables        # network namespaces, veth pairs, kube-proxy-style NAT in tests
  graphviz                 # renders the reducer's dot output in the demo
  python3-yaml             # fixture generators
  tcpdump                  # debugging captures by hand; also provides the classic pcap tooling
  python3                  # the pods' applications in the end-to-end test and `make demo`
  python3-venv             # netmap-reduce policy tests: np-guard's analyzer in its own venv (scripts/nca-venv.sh)
)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# apt-cache (used by scripts/check-dockerfile.py) needs package lists; a fresh machine has none.
needs_update=0
[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || needs_update=1
if [ ${#missing[@]} -gt 0 ] || [ "$needs_update" = 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# Python packages for manifest and dashboard validation (scripts/check-deploy.sh, scripts/check-grafana.py).
if [ -f scripts/requirements.txt ]; then
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r scripts/requirements.txt
fi
