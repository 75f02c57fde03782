#!/usr/bin/env bash
# Builds the hello-world handler (src/handler.c) into dist/main.wasm with the Swift toolchain's
# own clang and wasm-ld: a freestanding WebAssembly core module exporting memory, alloc,
# dealloc and handler (docs/guest-abi.md). dist/main.wasm is built, never committed.
set -euo pipefail
cd "$(dirname "$0")"
TOOLCHAIN="$(dirname "$(readlink -f "$(command -v swift)")")"
CLANG="${CLANG:-$TOOLCHAIN/clang}"
mkdir -p dist
"$CLANG" --target=wasm32 -nostdlib -O2 -fno-builtin -Wall -Wextra -Werror \
    -Wl,--no-entry -Wl,--export=alloc -Wl,--export=dealloc -Wl,--export=handler \
    -o dist/main.wasm src/handler.c
echo "dist/main.wasm ($(stat -c %s dist/main.wasm) bytes)"
