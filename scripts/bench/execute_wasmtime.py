"""The peer of scripts/bench/execute.sh: wasmtime (PyPI) running a wasm-core@1 module on one
request, the way Alga's runner does per request (a new engine, a compile of the module, a store,
the alga imports, an instance, alloc, write the request, call handler, read the response).

usage: execute_wasmtime.py MODULE.wasm N [warm]
prints "p50 p99" in microseconds per request; with `warm`, the engine and the compiled module
are made once and only the store, instance and call are per request (what a runner that caches
compiled modules would do).
"""
import json
import struct
import sys
import time

import wasmtime

path, count = sys.argv[1], int(sys.argv[2])
warm = len(sys.argv) > 3 and sys.argv[3] == "warm"
wasm = open(path, "rb").read()
document = json.dumps({
    "context": {"request_id": "bench", "tenant_id": "t1", "extension_id": "hello", "install_id": None,
                "version_id": None, "content_hash": "sha256:" + "0" * 64, "config": {"greeting": "Howdy"}},
    "http": {"method": "GET", "path": "/hello", "query": {}, "headers": {"accept": "application/json"}, "body_b64": None},
}, separators=(",", ":")).encode()


def one(engine, module):
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    log_type = wasmtime.FuncType([wasmtime.ValType.i32(), wasmtime.ValType.i32()], [])
    linker.define_func("alga", "log_info", log_type, lambda ptr, length: None)
    linker.define_func("alga", "log_error", log_type, lambda ptr, length: None)
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    memory, alloc, handler = exports["memory"], exports["alloc"], exports["handler"]
    request = alloc(store, len(document))
    memory.write(store, document, request)
    out = alloc(store, 8)
    code = handler(store, request, len(document), out)
    pointer, length = struct.unpack("<II", memory.read(store, out, out + 8))
    response = memory.read(store, pointer, pointer + length)
    if code != 0 or b'"status":200' not in response:
        raise SystemExit("unexpected answer: %r %r" % (code, response[:200]))


shared_engine = wasmtime.Engine() if warm else None
shared_module = wasmtime.Module(shared_engine, wasm) if warm else None
for _ in range(20):
    engine = shared_engine or wasmtime.Engine()
    one(engine, shared_module or wasmtime.Module(engine, wasm))
samples = []
for _ in range(count):
    start = time.perf_counter()
    engine = shared_engine or wasmtime.Engine()
    one(engine, shared_module or wasmtime.Module(engine, wasm))
    samples.append((time.perf_counter() - start) * 1e6)
samples.sort()
print("%.1f %.1f" % (samples[len(samples) // 2], samples[min(len(samples) - 1, len(samples) * 99 // 100)]))
