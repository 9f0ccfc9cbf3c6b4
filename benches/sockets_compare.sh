#!/usr/bin/env bash
# The socket scan's cost before and after a change, side by side in one run (docs/performance.md): builds
# `cargo bench --bench sockets` of BASE (default: 8bea47d, the scanner before the service-mesh rules) in a
# temporary git worktree, with a target directory of its own under target/ (cargo names a workspace's artifacts
# without their path, so two checkouts sharing one directory would overwrite each other's; the first run builds
# the dependencies once more), then runs it and this checkout's bench in ROUNDS
# interleaved rounds and prints the median of each figure: the steady scan of the fake /proc tree (every namespace
# read: the parser and classifier, with the uid column and the mesh-listener check), the gated steady scan, the
# row parser. The mesh work itself (a tree of sidecar pods with and without their listeners) is a line of the
# current bench only, since the base has no notion of it.
#
# Run: benches/sockets_compare.sh   (env: BASE=<commit> ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:-8bea47d}
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d /tmp/nm-sockets-compare.XXXXXX)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$BASE" >/dev/null

bench() { # dir, target dir, output file; the bench exits non-zero over its budget: a figure here, not a failure
  (cd "$1" && CARGO_TARGET_DIR=$2 cargo bench --locked --bench sockets 2>/dev/null) >"$3" || true
}

for round in $(seq "$ROUNDS"); do
  bench "$work/base" "$PWD/target/sockets-compare-base" "$work/base.$round"
  bench . "$PWD/target" "$work/new.$round"
done

# The number before "ms"/"µs"/"ns" after the first occurrence of `pattern`, in microseconds.
figure() {
  grep -h -- "$2" "$1" | head -1 | sed -E "s/.*$3 ([0-9.]+)(ms|µs|ns).*/\1 \2/" |
    awk '{ v = $1; if ($2 == "ms") v *= 1000; if ($2 == "ns") v /= 1000; print v }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
row() { # label, pattern, key
  local base new
  base=$(for r in $(seq "$ROUNDS"); do figure "$work/base.$r" "$2" "$3"; done | median)
  new=$(for r in $(seq "$ROUNDS"); do figure "$work/new.$r" "$2" "$3"; done | median)
  printf '%-52s %12s µs %12s µs\n' "$1" "$base" "$new"
}

printf '%-52s %15s %15s\n' "median of $ROUNDS rounds" "base ($BASE)" "this checkout"
row "steady scan, every namespace read (CPU per scan)" "^steady scan" "cpu"
row "gated steady scan, no connect (CPU per scan)" "^gated steady scan" "cpu"
row "row parser, hand-written (per row)" "^row parser" "parser:"
grep -h "^sidecar tree" "$work/new.$ROUNDS"
