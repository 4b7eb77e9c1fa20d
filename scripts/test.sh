#!/usr/bin/env bash
# Runs every test of the workspace, on the embedded store, on Amazon's DynamoDB Local and on
# a local Lambda runtime API. Starts DynamoDB Local (fetched on first use, see
# scripts/dynamodb-local.sh) and cargo lambda watch (scripts/lambda-local.sh) and stops them
# again, also when tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# A private state directory, so this run's DynamoDB Local never collides with another one.
BELDI_DDB_STATE_DIR="$(mktemp -d)"
export BELDI_DDB_STATE_DIR
BELDI_LAMBDA_STATE_DIR="$BELDI_DDB_STATE_DIR"
export BELDI_LAMBDA_STATE_DIR
cleanup() {
    scripts/lambda-local.sh stop || true
    scripts/dynamodb-local.sh stop || true
    rm -rf "$BELDI_DDB_STATE_DIR"
}
trap cleanup EXIT

# Headless Chromium and ChromeDriver for the web UI's browser test, from Debian's packages
# when they are missing (as root; elsewhere the test says what to install).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
    else
        echo "test.sh: chromium/chromedriver missing and not root: install Debian's chromium and chromium-driver" >&2
    fi
fi

BELDI_DYNAMODB_ENDPOINT="$(scripts/dynamodb-local.sh start)"
export BELDI_DYNAMODB_ENDPOINT
echo "test.sh: DynamoDB Local at $BELDI_DYNAMODB_ENDPOINT"

# A local Lambda runtime API (cargo lambda watch) hosting the examples' Lambda binary, on
# that DynamoDB Local, for the end-to-end Lambda tests.
BELDI_LAMBDA_NAMESPACE="lambda_e2e_"
export BELDI_LAMBDA_NAMESPACE
BELDI_LAMBDA_ENDPOINT="$(scripts/lambda-local.sh start "$BELDI_DYNAMODB_ENDPOINT" "$BELDI_LAMBDA_NAMESPACE")"
export BELDI_LAMBDA_ENDPOINT
echo "test.sh: cargo lambda watch at $BELDI_LAMBDA_ENDPOINT"

cargo test --workspace --all-targets --all-features "$@"
cargo test --workspace --doc --all-features "$@"
