#!/usr/bin/env bash
# The registry's hot paths, as rates:
#   resolve   (tenant, extension) -> content hash on SQLite, 100 extensions x 10 tenants,
#             two concurrent tasks                                        (target: >= 100,000/s)
#   publish   finalize of an already stored bundle (verify, validate, register), in memory
#                                                                         (target: >= 1,000/s)
# Each is run RUNS times (default 5); the median and the spread are printed.
# usage: scripts/bench/registry.sh        (RUNS=5)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-5}"
source "$ROOT/scripts/bench/common.sh"
build_release

median() { python3 -c "import sys, statistics; v = [float(x) for x in sys.argv[1:]]; print('%.0f %.0f-%.0f' % (statistics.median(v), min(v), max(v)))" "$@"; }
RESOLVE=()
PUBLISH=()
for _ in $(seq "$RUNS"); do
    RESOLVE+=("$("$BENCH" resolve 200000 | cut -d' ' -f1)")
    PUBLISH+=("$("$BENCH" publish 5000 | cut -d' ' -f1)")
done
read -r R R_SPREAD < <(median "${RESOLVE[@]}")
read -r P P_SPREAD < <(median "${PUBLISH[@]}")
echo
echo "$(nproc) cores; medians of $RUNS runs (lowest-highest)"
row figure ours "" "" target
row "resolve/s (SQLite)" "$R ($R_SPREAD)" "" "" ">= 100000"
row "publish/s (in memory)" "$P ($P_SPREAD)" "" "" ">= 1000"
