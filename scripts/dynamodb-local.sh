#!/usr/bin/env bash
# Amazon DynamoDB Local for the test suite.
#
#   scripts/dynamodb-local.sh start     fetch (first use only), start on a free port, print the endpoint
#   scripts/dynamodb-local.sh endpoint  print the endpoint of the running instance
#   scripts/dynamodb-local.sh stop      stop the running instance
#
# DynamoDB Local ships inside the npm package amplify-dynamodb-simulator (directory emulator/).
# It is fetched with `npm pack` into a cache outside the source tree and reused afterwards.
set -euo pipefail

PKG="amplify-dynamodb-simulator@2.9.30"
CACHE_DIR="${BELDI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/beldi}"
DDB_DIR="$CACHE_DIR/dynamodb-local"
STATE_DIR="${BELDI_DDB_STATE_DIR:-$CACHE_DIR/run}"
PID_FILE="$STATE_DIR/dynamodb-local.pid"
ENDPOINT_FILE="$STATE_DIR/dynamodb-local.endpoint"
LOG_FILE="$STATE_DIR/dynamodb-local.log"
START_TIMEOUT="${BELDI_DDB_START_TIMEOUT:-30}"

die() { echo "dynamodb-local: $*" >&2; exit 1; }

fetch() {
    if [[ -f "$DDB_DIR/emulator/DynamoDBLocal.jar" ]]; then return 0; fi
    command -v npm >/dev/null || die "npm is needed to fetch DynamoDB Local ($PKG)"
    local tmp
    tmp="$(mktemp -d)"
    echo "dynamodb-local: fetching $PKG into $DDB_DIR" >&2
    (cd "$tmp" && npm pack --silent "$PKG" >/dev/null) || die "npm pack $PKG failed"
    mkdir -p "$tmp/x"
    tar -xzf "$tmp"/amplify-dynamodb-simulator-*.tgz -C "$tmp/x"
    [[ -f "$tmp/x/package/emulator/DynamoDBLocal.jar" ]] || die "$PKG has no emulator/DynamoDBLocal.jar"
    mkdir -p "$CACHE_DIR"
    rm -rf "$DDB_DIR"
    mv "$tmp/x/package" "$DDB_DIR"
    rm -rf "$tmp"
}

# free_port, running
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start() {
    if running; then cat "$ENDPOINT_FILE"; return 0; fi
    command -v java >/dev/null || die "java (17 or later) is needed to run DynamoDB Local"
    fetch
    mkdir -p "$STATE_DIR"
    local port endpoint
    port="$(free_port)"
    endpoint="http://127.0.0.1:$port"
    (
        cd "$DDB_DIR/emulator"
        exec java -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar \
            -inMemory -disableTelemetry -port "$port" >"$LOG_FILE" 2>&1
    ) &
    echo $! >"$PID_FILE"
    echo "$endpoint" >"$ENDPOINT_FILE"
    local waited=0
    # Any HTTP answer (even 400 for an unsigned request) means the server is up.
    until curl -s -o /dev/null -m 2 "$endpoint"; do
        if ! running; then cat "$LOG_FILE" >&2; die "DynamoDB Local exited during start-up"; fi
        if (( waited >= START_TIMEOUT * 5 )); then stop; die "DynamoDB Local did not answer within ${START_TIMEOUT}s"; fi
        sleep 0.2
        waited=$((waited + 1))
    done
    echo "$endpoint"
}

stop() {
    if [[ -f "$PID_FILE" ]]; then
        local pid
        pid="$(cat "$PID_FILE")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$PID_FILE" "$ENDPOINT_FILE"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    endpoint) running || die "not running"; cat "$ENDPOINT_FILE" ;;
    fetch) fetch ;;
    *) echo "usage: $0 start|stop|endpoint|fetch" >&2; exit 2 ;;
esac
