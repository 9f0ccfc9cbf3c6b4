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
  chromium                 # headless browser: tests of netmap-reduce --format html (tests/reduce_html.rs)
  python3-yaml             # fixture generators
  tcpdump                  # debugging captures by hand; also provides the classic pcap tooling
  python3                  # the pods' applications in the end-to-end test and `make demo`
  dnsutils                 # `dig +tcp`: a DNS-over-TCP lookup in the end-to-end test
  podman skopeo            # `make image`: builds and saves the image (as root, kernel overlay storage:
                           # buildah, uidmap and fuse-overlayfs are not needed), skopeo reads the archive
  mmdebstrap               # the image's base root filesystem from Debian packages (no image registry)
  docker-registry          # a registry on loopback: `make test-image` pushes the archive as docs/image.md says
  victoria-metrics         # a second real time-series engine for the reducer's live test
  openssl                  # certificates made at test time for the --web-config-file (TLS) test
  python3-venv             # netmap-reduce policy tests: np-guard's analyzer in its own venv (scripts/nca-venv.sh)
)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  echo "setup: installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python packages for manifest and dashboard validation (scripts/check-deploy.sh, scripts/check-grafana.py).
if [ -f scripts/requirements.txt ]; then
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r scripts/requirements.txt
fi
