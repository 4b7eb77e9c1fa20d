#!/usr/bin/env bash
# Runs every benchmark on the embedded store and on DynamoDB Local (started and stopped
# here) and writes docs/bench/REPORT.md with its PNG plots.
#
#   scripts/bench.sh                  the standard scale (the committed results; minutes)
#   scripts/bench.sh --scale smoke    a few samples of everything
#
# Extra arguments go to the bench binary (see `cargo run -p beldi-examples --bin bench -- --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

BELDI_DDB_STATE_DIR="$(mktemp -d)"
export BELDI_DDB_STATE_DIR
cleanup() {
    scripts/dynamodb-local.sh stop || true
    rm -rf "$BELDI_DDB_STATE_DIR"
}
trap cleanup EXIT

cargo build --release -q -p beldi-examples --features dynamodb --bin bench
endpoint="$(scripts/dynamodb-local.sh start)"
target/release/bench all --dynamodb "$endpoint" "$@"
