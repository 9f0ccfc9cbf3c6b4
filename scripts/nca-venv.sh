#!/usr/bin/env bash
# Installs np-guard's Network Config Analyzer (PyPI `network-config-analyzer`) into its own virtualenv and
# prints the path of its `nca` command. The analyzer pins its own dependencies (an older PyYAML, z3, …), so it
# gets a venv instead of the system Python. Idempotent: an existing venv with the right version is reused.
#   NCA_VENV  where the venv lives (default: target/nca-venv, beside the build, never committed)
# Used by tests/policy_nca.rs (which calls it) and by hand: `$(scripts/nca-venv.sh) --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
NCA_VERSION=2.1.0
venv=${NCA_VENV:-$PWD/target/nca-venv}
if [[ -x $venv/bin/nca ]] && "$venv/bin/python" -m pip show network-config-analyzer 2>/dev/null | grep -qx "Version: $NCA_VERSION"; then
    echo "$venv/bin/nca"
    exit 0
fi
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check "network-config-analyzer==$NCA_VERSION" >&2
echo "$venv/bin/nca"
