#!/usr/bin/env bash
# Prints the path of the previous release's network-mapper binary: the "today's main" of the side-by-side
# benchmarks (benches/capture_node.sh, benches/api_load.sh; docs/performance.md). Builds it once, in release mode,
# from BASELINE_REF (default: the commit that ended round 2, the last one before agents fetched remote pods), into
# target/baseline/<ref>/; the build starts from a copy of this tree's release dependencies, so only the
# network-mapper crate itself is compiled.
#
# Run: benches/baseline.sh   (env: BASELINE_REF=8bea47d)
set -euo pipefail
cd "$(dirname "$0")/.."

ref=${BASELINE_REF:-8bea47d}
out=target/baseline/$ref
binary=$out/network-mapper
if [ ! -x "$binary" ]; then
  git rev-parse --verify --quiet "$ref^{commit}" >/dev/null || {
    echo "baseline: $ref is not a commit of this repository (set BASELINE_REF)" >&2
    exit 2
  }
  rm -rf "$out/src"
  mkdir -p "$out/src" "$out/target"
  git archive "$ref" | tar -x -C "$out/src"
  if [ -d target/release/deps ] && [ ! -d "$out/target/release" ]; then
    cp -a target/release "$out/target/release"
  fi
  echo "baseline: building network-mapper at $ref (release)" >&2
  CARGO_TARGET_DIR="$out/target" cargo build --release --locked --bin network-mapper \
    --manifest-path "$out/src/Cargo.toml" >&2
  cp "$out/target/release/network-mapper" "$binary"
fi
echo "$binary"
