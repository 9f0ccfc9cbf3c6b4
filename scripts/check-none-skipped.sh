#!/usr/bin/env bash
# Fails when a `cargo test -- --include-ignored` run (its output in $1) ignored or filtered out any test: under
# `make test` every test, the live ones included, must run. libtest prints one summary line per test binary:
#   test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s
set -euo pipefail
log=${1:?usage: check-none-skipped.sh CARGO_TEST_OUTPUT}
summaries=$(grep -E '^test result: ' "$log" || true)
if [ -z "$summaries" ]; then
  echo "check-none-skipped: no test summary in $log" >&2
  exit 1
fi
skipped=$(grep -E '^test result: ' "$log" | grep -Ev ' 0 ignored; .* 0 filtered out;' || true)
if [ -n "$skipped" ]; then
  echo "check-none-skipped: some tests did not run (ignored or filtered out):" >&2
  echo "$skipped" >&2
  exit 1
fi
echo "check-none-skipped: $(echo "$summaries" | wc -l) test binaries, none skipped"
