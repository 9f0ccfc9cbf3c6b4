#!/usr/bin/env bash
# What a node's agent asks of the API server, side by side with the previous release (benches/api_load/main.rs;
# docs/performance.md, docs/operating.md "What each agent asks of the API server"): builds the previous release
# once (benches/baseline.sh), then runs the benchmark with it.
#
# Run: benches/api_load.sh   (env: BASELINE_REF=8bea47d; no root needed; about ten minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=$(benches/baseline.sh)
BASELINE_BIN=$PWD/$baseline exec cargo bench --locked --bench api_load
