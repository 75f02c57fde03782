#!/usr/bin/env bash
# Side-by-side figures for the archive engine against the tools a user would otherwise run,
# as ratios measured in one run on this machine:
#   SHA-256            archive-bench sha256        vs  openssl speed -evp sha256 (1 MiB blocks)
#   decode + walk      archive-bench walk FILE     vs  zstd -dc FILE >/dev/null
#   unpack             extctl unpack FILE DIR      vs  tar --zstd -xf FILE -C DIR
#   pack               extctl pack DIR --level L   vs  tar -cf - DIR | zstd -T0 -L
#   peak RSS           /usr/bin/time -f %M for each
# Times are medians of RUNS (default 11) alternating runs, printed with their spread.
# usage: scripts/bench/archive.sh        (LEVEL=3 RUNS=11 BENCH_DIR=/tmp/extbundles-bench)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LEVEL="${LEVEL:-3}"
source "$ROOT/scripts/bench/common.sh"
for tool in openssl zstd tar python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install openssl zstd tar python3 time)" >&2; exit 1; }
done
build_release

mkdir -p "$WORK"
cd "$WORK"
[ -d tree ] || { echo "generating the 200 MiB tree in $WORK/tree..." >&2; python3 "$ROOT/scripts/bench/make_tree.py" tree; }
"$EXTCTL" pack tree -o bundle.tar.zst --level "$LEVEL" >/dev/null
cat tree/ui/media/*/*.bin tree/ui/src/*/*.js > /dev/null  # warm the page cache
TREE_BYTES=$(du -sb tree | cut -f1)
BUNDLE_BYTES=$(stat -c %s bundle.tar.zst)

# SHA-256: bytes per second, in-process, 1 MiB chunks, both sides.
OURS_SHA=$("$BENCH" sha256 2048 | cut -d' ' -f1)
OPENSSL_SHA=$(openssl speed -evp sha256 -bytes 1048576 -seconds 3 2>/dev/null | awk '/^sha256/ { sub("k", "", $2); printf "%.0f", $2 * 1000 }')

# decode + walk: wall time of whole commands.
read -r T_WALK _ _ T_ZSTD _ _ T_INSPECT _ _ < <(timeit '' "$BENCH walk bundle.tar.zst >/dev/null" \
    '' "zstd -dc bundle.tar.zst >/dev/null" '' "$EXTCTL inspect bundle.tar.zst >/dev/null")

# unpack: fresh target each run; removal and writeback of the previous run are not timed.
read -r T_UNPACK U_LO U_HI T_TARX X_LO X_HI < <(timeit 'rm -rf out-ours && sync' "$EXTCTL unpack bundle.tar.zst out-ours >/dev/null" \
    'rm -rf out-tar && mkdir out-tar && sync' "tar --zstd -xf bundle.tar.zst -C out-tar")
rm -rf out-ours out-tar && sync

# pack at the same level with all cores.
read -r T_PACK P_LO P_HI T_TARC C_LO C_HI < <(timeit 'sync' "$EXTCTL pack tree -o ours.tar.zst --level $LEVEL >/dev/null" \
    'sync' "tar -C tree -cf - . | zstd -T0 -$LEVEL -q -f -o theirs.tar.zst")

M_WALK=$(rss "$BENCH walk bundle.tar.zst")
M_ZSTD=$(rss "zstd -dc bundle.tar.zst")
M_UNPACK=$(rss "rm -rf out-ours; $EXTCTL unpack bundle.tar.zst out-ours")
M_TARX=$(rss "rm -rf out-tar; mkdir out-tar; tar --zstd -xf bundle.tar.zst -C out-tar")
M_PACK=$(rss "$EXTCTL pack tree -o ours.tar.zst --level $LEVEL")
M_TARC=$(rss "tar -C tree -cf - . | zstd -T0 -$LEVEL -q -f -o theirs.tar.zst")

echo
echo "tree: $TREE_BYTES bytes, $(find tree -type f | wc -l) files; bundle: $BUNDLE_BYTES bytes (zstd -$LEVEL); $(nproc) cores; medians of $RUNS alternating runs (lowest-highest)"
row "figure" "ours" "peer" "ratio" "target"
row "SHA-256" "$((OURS_SHA / 1000000)) MB/s" "$((OPENSSL_SHA / 1000000)) MB/s (openssl)" "$(ratio "$OURS_SHA" "$OPENSSL_SHA")" "throughput >= 0.95"
row "decode + walk" "${T_WALK} s" "${T_ZSTD} s (zstd -dc)" "$(ratio "$T_ZSTD" "$T_WALK")" "throughput >= 0.90"
row "  + hash" "${T_INSPECT} s (inspect)" "${T_ZSTD} s (zstd -dc)" "$(ratio "$T_ZSTD" "$T_INSPECT")" "(informative)"
row "unpack" "${T_UNPACK} s ($(spread "$U_LO" "$U_HI"))" "${T_TARX} s ($(spread "$X_LO" "$X_HI")) tar -x" "$(ratio "$T_UNPACK" "$T_TARX")" "median <= 1.00"
row "pack -$LEVEL" "${T_PACK} s ($(spread "$P_LO" "$P_HI"))" "${T_TARC} s ($(spread "$C_LO" "$C_HI")) tar|zstd" "$(ratio "$T_PACK" "$T_TARC")" "median <= 1.00"
row "peak RSS walk" "${M_WALK} KiB" "${M_ZSTD} KiB" "" ""
row "peak RSS unpack" "${M_UNPACK} KiB" "${M_TARX} KiB" "" "ours < 65536"
row "peak RSS pack" "${M_PACK} KiB" "${M_TARC} KiB" "" ""
cmp -s ours.tar.zst bundle.tar.zst && echo "pack is deterministic: the timed packs reproduced bundle.tar.zst byte for byte"
