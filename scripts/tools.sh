# Sourced by the scripts (and exported by the Makefile): the tools scripts/setup.sh installs into .tools/
# come first on PATH, so `python3` is the project's venv (.tools/venv, PyPI packages of scripts/requirements.txt)
# and `helm`/`kubectl` are the pinned binaries in .tools/bin. By hand: `source scripts/tools.sh`.
NETMAP_TOOLS=${NETMAP_TOOLS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools}
export NETMAP_TOOLS
case ":$PATH:" in
    *":$NETMAP_TOOLS/bin:"*) ;;
    *) export PATH="$NETMAP_TOOLS/bin:$NETMAP_TOOLS/venv/bin:$PATH" ;;
esac
