#!/usr/bin/env bash
# The registry's hot paths, as rates:
#   resolve   (tenant, extension) -> content hash on SQLite, 100 extensions x 10 tenants,
#             two concurrent tasks, through ExtensionHost's resolve cache (answers stay at
#             most 250 ms old; local install changes clear it)            (target: >= 100,000/s)
#             and without it, every call one SQLite query                 (informative)
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
UNCACHED=()
PUBLISH=()
for _ in $(seq "$RUNS"); do
    RESOLVE+=("$("$BENCH" resolve 200000 | cut -d' ' -f1)")
    UNCACHED+=("$(RESOLVE_CACHE=0 "$BENCH" resolve 50000 | cut -d' ' -f1)")
    PUBLISH+=("$("$BENCH" publish 5000 | cut -d' ' -f1)")
done
read -r R R_SPREAD < <(median "${RESOLVE[@]}")
read -r U U_SPREAD < <(median "${UNCACHED[@]}")
read -r P P_SPREAD < <(median "${PUBLISH[@]}")
echo
echo "$(nproc) cores; medians of $RUNS runs (lowest-highest)"
row figure ours "" "" target
row "resolve/s (SQLite, cached)" "$R ($R_SPREAD)" "" "" ">= 100000"
row "resolve/s (SQLite, uncached)" "$U ($U_SPREAD)" "" "" "(informative)"
row "publish/s (in memory)" "$P ($P_SPREAD)" "" "" ">= 1000"
