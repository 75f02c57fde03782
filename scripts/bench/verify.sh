#!/usr/bin/env bash
# Verification beside the tools a user would otherwise run, as medians of RUNS (default 21)
# alternating runs with their spread (lowest-highest), so one noisy run cannot decide a ratio:
#   verify          extctl verify BUNDLE --trust-bundle KEY (hash + size cap + zstd + tar walk +
#                   manifest + Ed25519 signature)
#     vs zstd -dc   zstd -dc BUNDLE >/dev/null                         (target: median <= 1.15 x)
#     vs the pair   openssl dgst -sha256 BUNDLE & zstd -dc BUNDLE; wait (target: median <= 1.00 x)
#                   (the two jobs verification does, each on its own core)
#   peak RSS        /usr/bin/time -f %M                                 (target: < 64 MiB)
#   manifests/s     archive-bench manifest (parsed and validated)       (target: >= 50,000)
# The bundle is the 200 MiB tree of scripts/bench/archive.sh, packed at zstd -3 and signed.
# usage: scripts/bench/verify.sh        (RUNS=21 BENCH_DIR=/tmp/extbundles-bench)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# Verification is the figure most shaken by this machine's noise: more runs, steadier medians.
RUNS="${RUNS:-21}"
source "$ROOT/scripts/bench/common.sh"
build_release

mkdir -p "$WORK"
cd "$WORK"
[ -d tree ] || python3 "$ROOT/scripts/bench/make_tree.py" tree
[ -f verify.tar.zst ] || "$EXTCTL" pack tree -o verify.tar.zst --level 3 >/dev/null
rm -f verify.tar.zst.sig verify-key.pem verify-key.pub.pem
"$EXTCTL" keygen --algorithm ed25519 -o verify-key.pem >/dev/null
"$EXTCTL" sign verify.tar.zst --key verify-key.pem >/dev/null
cat verify.tar.zst > /dev/null

read -r V V_LO V_HI Z Z_LO Z_HI P P_LO P_HI < <(timeit \
    '' "$EXTCTL verify verify.tar.zst --trust-bundle verify-key.pub.pem >/dev/null" \
    '' "zstd -dc verify.tar.zst >/dev/null" \
    '' "openssl dgst -sha256 verify.tar.zst >/dev/null & zstd -dc verify.tar.zst >/dev/null; wait")
RSS=$(rss "$EXTCTL verify verify.tar.zst --trust-bundle verify-key.pub.pem")
MANIFESTS=$("$BENCH" manifest "$ROOT/Examples/hello-world/manifest.json" 200000 | cut -d' ' -f1)
printf '%s' '{"name":"com.alga.sample.scheduler-demo","publisher":"Alga","version":"0.1.0","runtime":"wasm-js@1","capabilities":["cap:scheduler.manage","cap:log.emit","cap:context.read"],"ui":{"type":"iframe","entry":"ui/index.html","hooks":{"appMenu":{"label":"Scheduler Demo"}}},"api":{"endpoints":[{"method":"GET","path":"/api/status","handler":"dist/main","schedulable":true},{"method":"POST","path":"/api/setup","handler":"dist/main"},{"method":"GET","path":"/api/schedules","handler":"dist/main"},{"method":"DELETE","path":"/api/schedules/:id","handler":"dist/main"},{"method":"POST","path":"/api/heartbeat","handler":"dist/main","schedulable":true}]},"assets":["ui/**/*"]}' > scheduler.json
SCHEDULER=$("$BENCH" manifest scheduler.json 200000 | cut -d' ' -f1)

echo
echo "bundle: $(stat -c %s verify.tar.zst) bytes (200 MiB tree, zstd -3, Ed25519-signed); $(nproc) cores; medians of $RUNS alternating runs (lowest-highest)"
row figure ours peer ratio target
row "verify vs zstd -dc" "$V s ($(spread "$V_LO" "$V_HI"))" "$Z s ($(spread "$Z_LO" "$Z_HI"))" "$(ratio "$V" "$Z")" "median <= 1.15"
row "verify vs dgst & zstd -dc" "$V s" "$P s ($(spread "$P_LO" "$P_HI"))" "$(ratio "$V" "$P")" "median <= 1.00"
row "peak RSS verify" "$RSS KiB" "" "" "< 65536"
row "manifests/s (hello)" "$MANIFESTS" "" "" ">= 50000"
row "manifests/s (5 endpoints)" "$SCHEDULER" "" "" ">= 50000"
