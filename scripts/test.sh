#!/usr/bin/env bash
# Runs every test of the workspace, on the embedded store and on Amazon's DynamoDB Local.
# Starts DynamoDB Local (fetched on first use, see scripts/dynamodb-local.sh) and stops it
# again, also when tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# A private state directory, so this run's DynamoDB Local never collides with another one.
BELDI_DDB_STATE_DIR="$(mktemp -d)"
export BELDI_DDB_STATE_DIR
cleanup() {
    scripts/dynamodb-local.sh stop || true
    rm -rf "$BELDI_DDB_STATE_DIR"
}
trap cleanup EXIT

BELDI_DYNAMODB_ENDPOINT="$(scripts/dynamodb-local.sh start)"
export BELDI_DYNAMODB_ENDPOINT
echo "test.sh: DynamoDB Local at $BELDI_DYNAMODB_ENDPOINT"

cargo test --workspace --all-targets --all-features "$@"
cargo test --workspace --doc --all-features "$@"
