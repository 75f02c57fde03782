#!/usr/bin/env bash
# Side-by-side figures for executing an extension's handler, measured in one run on this machine:
#   warm execute       archive-bench execute-warm: WasmKitExecutor.execute of hello-world's
#                      GET /hello with the module already parsed (fresh store and instance per
#                      request)                                         (target: p50 <= 50 µs)
#   first execute      archive-bench execute-first: a new executor over a filled cache: parse,
#                      validate, instantiate, run                      (target: p50 <= 5 ms)
#   per request peer   wasmtime from PyPI doing what Alga's runner does per request on the same
#                      module: a new engine, a compile, a store, an instance, the call
#                                                   (target: ours faster; ratio = ours / peer)
#   warm peer          wasmtime with the engine and compiled module kept (context only)
#   timeout            archive-bench execute-timeout 200: a handler that never returns, how far
#                      past timeout_ms the answer came                 (target: <= 100 ms)
# The module is Examples/hello-world built from source with its build.sh.
# usage: scripts/bench/execute.sh        (N=20000 BENCH_DIR=/tmp/extbundles-bench)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$ROOT/scripts/bench/common.sh"
WORK="$WORK/execute"
N="${N:-20000}"
python3 -c 'import wasmtime' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check wasmtime
build_bench

mkdir -p "$WORK"
MODULE=$("$BENCH" execute-module "$WORK/example")
read -r WARM_P50 WARM_P99 _ < <("$BENCH" execute-warm "$N")
read -r FIRST_P50 FIRST_P99 _ < <("$BENCH" execute-first 300)
read -r PEER_P50 PEER_P99 < <(python3 "$ROOT/scripts/bench/execute_wasmtime.py" "$MODULE" 300)
read -r PEERW_P50 PEERW_P99 < <(python3 "$ROOT/scripts/bench/execute_wasmtime.py" "$MODULE" "$N" warm)
read -r OVER_MED OVER_MAX _ < <("$BENCH" execute-timeout 200 10)
ms() { python3 -c "import sys; print('%.3f' % (float(sys.argv[1]) / 1000))" "$1"; }
us() { python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) * 1000))" "$1"; }

echo
echo "module: $(stat -c %s "$MODULE") bytes (hello-world, clang -O2); $(nproc) cores; wasmtime $(python3 -c 'import importlib.metadata as m; print(m.version("wasmtime"))') via Python"
row figure ours peer ratio target
row "warm execute" "${WARM_P50} µs (p99 ${WARM_P99})" "" "" "p50 <= 50 µs"
row "first execute after fill" "${FIRST_P50} ms (p99 ${FIRST_P99})" "" "" "p50 <= 5 ms"
row "per request, as Alga does" "${WARM_P50} µs warm" "${PEER_P50} µs new engine+compile" "$(python3 -c "import sys; print('%.4f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$WARM_P50" "$PEER_P50")" "ours faster (< 1)"
row "per request, both compiling" "${FIRST_P50} ms first" "$(ms "$PEER_P50") ms new engine+compile" "$(ratio "$(us "$FIRST_P50")" "$PEER_P50")" "context"
row "warm, both keeping the module" "${WARM_P50} µs" "${PEERW_P50} µs wasmtime warm" "$(ratio "$WARM_P50" "$PEERW_P50")" "context"
row "timeout 200 ms overshoot" "${OVER_MED} ms median, ${OVER_MAX} worst" "" "" "<= 100 ms"
