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
# usage: scripts/bench/cache.sh        (RUNS=11 BENCH_DIR=/tmp/extbundles-bench)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$ROOT/scripts/bench/common.sh"
WORK="$WORK/cache"
build_release

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

read -r T_OURS O_LO O_HI T_PEER P_LO P_HI < <(timeit \
    "rm -rf cache; sync" "$EXTCTL cache warm $HASH --cache cache --store file://$WORK/store >/dev/null" \
    "rm -rf out; mkdir out; sync" "openssl dgst -sha256 $STORE_FILE >/dev/null; zstd -dc $STORE_FILE | tar -x -C out")
HIT=$("$BENCH" cache-hit 200000 | cut -d' ' -f1)
RSS=$(rm -rf cache; /usr/bin/time -f %M "$EXTCTL" cache warm "$HASH" --cache cache --store "file://$WORK/store" 2>&1 >/dev/null | tail -1)

echo
echo "bundle: $(stat -c %s bundle.tar.zst) bytes (20 MiB tree, zstd -3); $(nproc) cores; medians of $RUNS alternating runs (lowest-highest)"
row figure ours peer ratio target
row "cold miss (fs store)" "${T_OURS} s ($(spread "$O_LO" "$O_HI"))" "${T_PEER} s ($(spread "$P_LO" "$P_HI")) dgst; zstd|tar" "$(ratio "$T_OURS" "$T_PEER")" "median <= 1.20"
row "warm hit" "${HIT} µs" "" "" "<= 5 µs median"
row "peak RSS cold miss" "${RSS} KiB" "" "" ""
