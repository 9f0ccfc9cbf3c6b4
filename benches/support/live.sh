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
