#!/usr/bin/env bash
# A real local Lambda runtime API for the test suite: `cargo lambda watch` serving the
# project's `beldi-lambda` binary (built with --all-features, like the tests).
#
#   scripts/lambda-local.sh start DYNAMODB_ENDPOINT NAMESPACE
#                                      install (first use only), start on a free port,
#                                      print the endpoint
#   scripts/lambda-local.sh endpoint  print the endpoint of the running instance
#   scripts/lambda-local.sh stop      stop it (and the function processes it started)
#   scripts/lambda-local.sh install   fetch cargo-lambda only
#
# cargo-lambda is fetched from PyPI (`pip download cargo-lambda==1.9.2 --no-deps`: a wheel
# holding a static binary) into a cache outside the source tree. The functions get
# BELDI_DYNAMODB_ENDPOINT, BELDI_NAMESPACE, BELDI_LAMBDA_ENDPOINT (this endpoint, so they
# invoke each other through it), BELDI_FUNCTION_NAMES=single:beldi-lambda and
# BELDI_TIMEOUT_SECS (default 10 here: a test kills function processes, and cargo lambda
# never answers an invocation whose process died, so callers give up after timeout + 5 s).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="1.9.2"
CACHE_DIR="${BELDI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/beldi}"
BIN="$CACHE_DIR/cargo-lambda-$VERSION/cargo-lambda"
STATE_DIR="${BELDI_LAMBDA_STATE_DIR:-$CACHE_DIR/run}"
PID_FILE="$STATE_DIR/cargo-lambda.pid"
ENDPOINT_FILE="$STATE_DIR/cargo-lambda.endpoint"
LOG_FILE="$STATE_DIR/cargo-lambda.log"
START_TIMEOUT="${BELDI_LAMBDA_START_TIMEOUT:-900}"
# Sync calls nest (a function calls another through the same Lambda), so allow several;
# and a process killed mid-invocation keeps its slot for good (see the tests), so allow more.
CONCURRENCY="${BELDI_LAMBDA_CONCURRENCY:-64}"

die() { echo "lambda-local: $*" >&2; exit 1; }

install() {
    if [[ -x "$BIN" ]]; then return 0; fi
    command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch cargo-lambda"
    local tmp
    tmp="$(mktemp -d)"
    echo "lambda-local: fetching cargo-lambda $VERSION into $(dirname "$BIN")" >&2
    python3 -m pip download --quiet --no-deps --dest "$tmp" "cargo-lambda==$VERSION" \
        || die "pip download cargo-lambda==$VERSION failed"
    python3 -m zipfile -e "$tmp"/cargo_lambda-*.whl "$tmp/x" || die "cannot unpack the wheel"
    local found
    found="$(find "$tmp/x" -type f -name cargo-lambda | head -1)"
    [[ -n "$found" ]] || die "the cargo-lambda wheel holds no cargo-lambda binary"
    mkdir -p "$(dirname "$BIN")"
    mv "$found" "$BIN"
    chmod +x "$BIN"
    rm -rf "$tmp"
}

# free_port, running
source scripts/lib.sh  # (the working directory is the repository root)

start() {
    local ddb="${1:-}" namespace="${2:-}"
    [[ -n "$ddb" && -n "$namespace" ]] || die "usage: $0 start DYNAMODB_ENDPOINT NAMESPACE"
    if running; then cat "$ENDPOINT_FILE"; return 0; fi
    install
    mkdir -p "$STATE_DIR"
    local port endpoint
    port="$(free_port)"
    endpoint="http://127.0.0.1:$port"
    # Build first, so the first invocation does not wait for a compile.
    cargo build -q -p beldi-examples --all-features --bin beldi-lambda >&2 \
        || die "cannot build the beldi-lambda binary"
    setsid "$BIN" lambda watch --quiet --ignore-changes \
        --invoke-address 127.0.0.1 --invoke-port "$port" \
        --concurrency "$CONCURRENCY" \
        -p beldi-examples --bin beldi-lambda --all-features \
        --env-var "BELDI_DYNAMODB_ENDPOINT=$ddb" \
        --env-var "BELDI_NAMESPACE=$namespace" \
        --env-var "BELDI_LAMBDA_ENDPOINT=$endpoint" \
        --env-var "BELDI_FUNCTION_NAMES=single:beldi-lambda" \
        --env-var "BELDI_TIMEOUT_SECS=${BELDI_LAMBDA_FUNCTION_TIMEOUT:-10}" \
        >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    echo "$endpoint" >"$ENDPOINT_FILE"
    local waited=0
    # Up when an invocation of a missing envelope gets an answer from the function.
    until curl -s -m 120 -o /dev/null -X POST -d '{"ping":1}' \
        "$endpoint/2015-03-31/functions/beldi-lambda/invocations"; do
        if ! running; then cat "$LOG_FILE" >&2; die "cargo lambda watch exited during start-up"; fi
        if (( waited >= START_TIMEOUT )); then stop; die "cargo lambda watch did not answer within ${START_TIMEOUT}s"; fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "$endpoint"
}

stop() {
    if [[ -f "$PID_FILE" ]]; then
        local pid
        pid="$(cat "$PID_FILE")"
        if kill -0 "$pid" 2>/dev/null; then
            # The whole process group: cargo lambda and the function processes it runs.
            kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 -- -"$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$PID_FILE" "$ENDPOINT_FILE"
    fi
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    endpoint) running || die "not running"; cat "$ENDPOINT_FILE" ;;
    install) install ;;
    *) echo "usage: $0 start DYNAMODB_ENDPOINT NAMESPACE|stop|endpoint|install" >&2; exit 2 ;;
esac
