#!/usr/bin/env bash
# Installs np-guard's Network Config Analyzer (PyPI `network-config-analyzer`) into its own virtualenv and
# prints the path of its `nca` command. The analyzer pins its own dependencies (an older PyYAML, z3, …), so it
# gets a venv of its own instead of sharing .tools/venv. Idempotent: an existing venv with the right version is
# reused (scripts/setup.sh calls this, so tests find it installed).
#   NCA_VENV  where the venv lives (default: target/nca-venv, beside the build, never committed)
# Used by tests/policy_shop.rs (which calls it) and by hand: `$(scripts/nca-venv.sh) --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
NCA_VERSION=2.1.0
venv=${NCA_VENV:-$PWD/target/nca-venv}
if [[ -x $venv/bin/nca && $(cat "$venv/nca-version" 2>/dev/null) == "$NCA_VERSION" ]]; then
    echo "$venv/bin/nca"
    exit 0
fi
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check "network-config-analyzer==$NCA_VERSION" >&2
echo "$NCA_VERSION" >"$venv/nca-version"
echo "$venv/bin/nca"
