# Shared by the scripts in scripts/bench: builds the release binaries once and defines the
# helpers that print figures side by side. Source it after setting ROOT.
set -euo pipefail
RUNS="${RUNS:-11}"
WORK="${BENCH_DIR:-/tmp/extbundles-bench}"
EXTCTL="$ROOT/.build/release/extctl"
BENCH="$ROOT/Benchmarks/.build/release/archive-bench"

build_release() {
    echo "building release binaries..." >&2
    swift build -c release --static-swift-stdlib --package-path "$ROOT" --product extctl >&2
    build_bench
}

# build_bench: only archive-bench (for the scripts that do not run extctl).
build_bench() {
    # SwiftPM reuses the Benchmarks package's build plan even when files were added to the
    # package it depends on by path; dropping the plan makes it look again.
    rm -f "$ROOT/Benchmarks/.build/release.yaml"
    swift build -c release --package-path "$ROOT/Benchmarks" --product archive-bench >&2
}

# timeit PREPARE COMMAND [PREPARE COMMAND ...]: "median low high" per command, RUNS alternating runs.
timeit() { python3 "$ROOT/scripts/bench/timeit.py" "$RUNS" "$@"; }

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
spread() { printf '%s-%s' "$1" "$2"; }
rss() { /usr/bin/time -f %M bash -c "$1" 2>&1 >/dev/null | tail -1; }
row() { printf '%-30s %-26s %-34s %-7s %s\n' "$@"; }
