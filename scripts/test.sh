#!/usr/bin/env bash
# The test command: starts the SeaweedFS S3 server (scripts/s3-server.sh), runs `swift test`
# against it, and stops the server, whatever the outcome. Extra arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/s3-server.sh start
trap 'bash scripts/s3-server.sh stop' EXIT
eval "$(bash scripts/s3-server.sh env)"
swift test "$@"
