#!/usr/bin/env bash
# Side-by-side figures for the runner cache, as ratios measured in one run on this machine:
#   cold miss    extctl cache warm HASH (fetch from the filesystem store, hash, zstd, tar walk,
#                UI ETags, write, rename) of a 20 MiB bundle
#                vs  openssl dgst -sha256 FILE; zstd -dc FILE | tar -x     (target: wall <= 1.2 x)
#   warm hit     archive-bench cache-hit: DiskModuleCache.ensureUiCached on a cached entry
#                                                                   (target: <= 5 µs median)
# The bundle: 10 MiB of random bytes (dist/main.wasm) and 10 MiB of text (ui/assets/app.js), zstd -3.
# Both sides start cold in the sense that matters (nothing extracted); the file is in the page
# cache for both, and the sync before each run is not timed.
# usage: scripts/bench/cache.sh        (RUNS=9 BENCH_DIR=/tmp/extbundles-bench)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${BENCH_DIR:-/tmp/extbundles-bench}/cache"
RUNS="${RUNS:-9}"

echo "building release binaries..." >&2
swift build -c release --package-path "$ROOT" --product extctl >&2
swift build -c release --package-path "$ROOT/Benchmarks" --product archive-bench >&2
EXTCTL="$ROOT/.build/release/extctl"
BENCH="$ROOT/Benchmarks/.build/release/archive-bench"

mkdir -p "$WORK"
cd "$WORK"
if [ ! -f bundle.tar.zst ]; then
    rm -rf tree && mkdir -p tree/dist tree/ui/assets
    printf '{"name":"com.acme.bench","publisher":"Acme","version":"1.0.0","runtime":"wasm-js@1"}' > tree/manifest.json
    head -c $((10 << 20)) /dev/urandom > tree/dist/main.wasm
    python3 -c "import sys; sys.stdout.write(''.join('line %d of the app;\n' % (i % 977) for i in range(700000))[:10 << 20])" > tree/ui/assets/app.js
    printf '<!doctype html><script src="assets/app.js"></script>' > tree/ui/index.html
    "$EXTCTL" pack tree -o bundle.tar.zst --level 3 >/dev/null
fi
rm -rf store && "$EXTCTL" store put-bundle bundle.tar.zst --store "file://$WORK/store" >/dev/null
HASH=$("$EXTCTL" hash bundle.tar.zst)
STORE_FILE="$WORK/store/sha256/${HASH#sha256:}/bundle.tar.zst"
cat "$STORE_FILE" > /dev/null

read -r T_OURS T_PEER < <(python3 "$ROOT/scripts/bench/timeit.py" "$RUNS" \
    "rm -rf cache; sync" "$EXTCTL cache warm $HASH --cache cache --store file://$WORK/store >/dev/null" \
    "rm -rf out; mkdir out; sync" "openssl dgst -sha256 $STORE_FILE >/dev/null; zstd -dc $STORE_FILE | tar -x -C out")
HIT=$("$BENCH" cache-hit 200000 | cut -d' ' -f1)
RSS=$(rm -rf cache; /usr/bin/time -f %M "$EXTCTL" cache warm "$HASH" --cache cache --store "file://$WORK/store" 2>&1 >/dev/null | tail -1)

echo
echo "bundle: $(stat -c %s bundle.tar.zst) bytes (20 MiB tree, zstd -3); $(nproc) cores; median of $RUNS runs"
printf '%-22s %-14s %-40s %-7s %s\n' figure ours peer ratio target
printf '%-22s %-14s %-40s %-7s %s\n' "cold miss (fs store)" "${T_OURS} s" "${T_PEER} s (openssl dgst; zstd -dc | tar -x)" \
    "$(python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$T_OURS" "$T_PEER")" "wall <= 1.20"
printf '%-22s %-14s %-40s %-7s %s\n' "warm hit" "${HIT} µs" "" "" "<= 5 µs median"
printf '%-22s %-14s %-40s %-7s %s\n' "peak RSS cold miss" "${RSS} KiB" "" "" ""
