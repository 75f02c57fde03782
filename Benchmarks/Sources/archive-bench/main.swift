// archive-bench: the in-process figures that scripts/bench/archive.sh sets beside openssl and zstd.
//
//   archive-bench sha256 [MiB]      SHA-256 of an in-memory buffer in 1 MiB chunks: bytes per second
//   archive-bench walk FILE         zstd decode + tar walk of a bundle file, no hashing: seconds
//   archive-bench walk-hash FILE    the same, also hashing the compressed bytes on a third thread
//   archive-bench manifest FILE [N] validate a manifest N times: manifests per second
//   archive-bench cache-hit [N]     warm DiskModuleCache.ensureUiCached: median microseconds per call
//   archive-bench resolve [N]       resolve (tenant, extension) on SQLite, 2 tasks: resolutions per second
//                                   (RESOLVE_CACHE=0: every call reads SQLite)
//   archive-bench publish [N]       finalize an already stored bundle, in memory: publishes per second
//   archive-bench execute-warm [N]  execute hello-world's GET /hello, module parsed: p50 and p99 microseconds
//   archive-bench execute-first [N] a new executor's first execute over a filled cache (parse, probe,
//                                   instantiate, run): p50 and p99 milliseconds
//   archive-bench execute-timeout MS [N]  a handler that never returns, timeout_ms MS: how long past
//                                   MS the answer came, median and worst, milliseconds
//   archive-bench execute-module DIR   build hello-world under DIR and print its dist/main.wasm path
import BenchSupport
import BundleArchive
import BundleCore
import BundleStore
import ExtensionRuntime
import Foundation
import ManifestV2
import RunnerCache
import WAT

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "sha256":
    let mib = arguments.count > 2 ? Int(arguments[2]) ?? 1024 : 1024
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    for index in chunk.indices { chunk[index] = UInt8(truncatingIfNeeded: index &* 2654435761 >> 13) }
    var hasher = ContentHasher()
    chunk.withUnsafeBytes { hasher.update($0) }  // warm up
    let start = now()
    hasher = ContentHasher()
    for _ in 0..<mib { chunk.withUnsafeBytes { hasher.update($0) } }
    let digest = hasher.finalize()
    let seconds = now() - start
    print(String(format: "%.0f", Double(mib << 20) / seconds), digest.hex.prefix(8))
case "walk", "walk-hash":
    let start = now()
    let summary = try BundleReader.read(
        fileAt: arguments[2], visitor: NullVisitor(), limits: .default, computeHash: arguments[1] == "walk-hash")
    print(String(format: "%.4f", now() - start), summary.decompressedBytes, summary.entryCount)
case "manifest":
    let bytes = Array(FileManager.default.contents(atPath: arguments[2]) ?? Data())
    let count = arguments.count > 3 ? Int(arguments[3]) ?? 200_000 : 200_000
    var valid = 0
    let start = now()
    for _ in 0..<count where ManifestValidator.validate(bytes).isValid { valid += 1 }
    print(String(format: "%.0f", Double(count) / (now() - start)), valid == count ? "valid" : "invalid")
case "execute-warm", "execute-first", "execute-timeout", "execute-module":
    let mode = arguments[1]
    let root = NSTemporaryDirectory() + "/extbundles-execute-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    if mode == "execute-module" {
        let folder = arguments.count > 2 ? arguments[2] : root
        let bench = try await ExecuteBench.make(root: folder)
        print(bench.exampleFolder + "/dist/main.wasm")
        break
    }
    let bench = try await ExecuteBench.make(root: root)
    let request = bench.request()
    func percentiles(_ values: [Double]) -> (Double, Double) {
        let sorted = values.sorted()
        return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
    }
    switch mode {
    case "execute-warm":
        let count = arguments.count > 2 ? Int(arguments[2]) ?? 20_000 : 20_000
        let executor = bench.executor()
        let samples = try await Task.detached { () async throws -> [Double] in
            for _ in 0..<500 { _ = await executor.execute(request) }
            var samples: [Double] = []
            samples.reserveCapacity(count)
            for _ in 0..<count {
                let start = now()
                let response = await executor.execute(request)
                samples.append((now() - start) * 1e6)
                guard response.error == nil else { throw BenchFailure(message: response.error ?? "") }
            }
            return samples
        }.value
        let (p50, p99) = percentiles(samples)
        print(String(format: "%.1f %.1f", p50, p99), "µs p50 p99 per warm execute of hello-world (\(count) requests)")
    case "execute-first":
        let count = arguments.count > 2 ? Int(arguments[2]) ?? 200 : 200
        let samples = try await Task.detached { () async throws -> [Double] in
            var samples: [Double] = []
            for _ in 0..<count {
                let executor = bench.executor()
                let start = now()
                let response = await executor.execute(request)
                samples.append((now() - start) * 1e3)
                guard response.error == nil else { throw BenchFailure(message: response.error ?? "") }
            }
            return samples
        }.value
        let (p50, p99) = percentiles(samples)
        print(String(format: "%.3f %.3f", p50, p99), "ms p50 p99 per first execute after a cache fill (\(count) executors)")
    default:
        let milliseconds = arguments.count > 2 ? UInt64(arguments[2]) ?? 200 : 200
        let count = arguments.count > 3 ? Int(arguments[3]) ?? 10 : 10
        let spin = try wat2wasm("""
            (module (memory (export "memory") 1)
              (func (export "alloc") (param i32) (result i32) (i32.const 4096))
              (func (export "handler") (param i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))
            """)
        let modules = try FixedModuleSource(root: root + "/spin", bytes: spin)
        var configuration = WasmKitExecutor.Configuration()
        configuration.logger.logLevel = .critical
        let executor = WasmKitExecutor(modules: modules, configuration: configuration)
        var spinRequest = request
        spinRequest.context.contentHash = modules.hash.prefixed
        spinRequest.limits = .init(timeoutMs: milliseconds)
        _ = await executor.execute(ExecuteRequest(context: spinRequest.context, http: spinRequest.http, limits: .init(timeoutMs: 10)))
        var overshoot: [Double] = []
        for _ in 0..<count {
            let start = now()
            let response = await executor.execute(spinRequest)
            overshoot.append((now() - start) * 1e3 - Double(milliseconds))
            guard response.error == "execute_failed: timeout" else { throw BenchFailure(message: response.error ?? "no error") }
        }
        let (median, _) = percentiles(overshoot)
        print(String(format: "%.2f %.2f", median, overshoot.max() ?? 0), "ms median and worst past timeout_ms=\(milliseconds) (\(count) runs)")
    }
case "cache-hit":
    let count = arguments.count > 2 ? Int(arguments[2]) ?? 100_000 : 100_000
    let root = NSTemporaryDirectory() + "/extbundles-cache-hit-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let source = root + "/src"
    try FileManager.default.createDirectory(atPath: source + "/ui", withIntermediateDirectories: true)
    try Data("{\"name\":\"b\",\"version\":\"1.0.0\",\"runtime\":\"wasm-js@1\"}".utf8).write(to: URL(fileURLWithPath: source + "/manifest.json"))
    try Data("<html></html>".utf8).write(to: URL(fileURLWithPath: source + "/ui/index.html"))
    var bundle: [UInt8] = []
    _ = try BundlePacker.pack(directory: source) { bundle.append(contentsOf: $0) }
    let store = try BundleStore(objects: InMemoryObjectStore())
    let hash = try await store.putBundle(.bytes(bundle)).hash
    let cache = try DiskModuleCache(root: root + "/cache", store: store)
    _ = try await cache.ensureUiCached(hash)
    // Batches of 1,000 calls from a task off the main actor (as a server's handlers run); the
    // median batch, per call.
    var perCall = try await Task.detached { () async throws -> [Double] in
        var perCall: [Double] = []
        for _ in 0..<(count / 1_000) {
            let start = now()
            for _ in 0..<1_000 { _ = try await cache.ensureUiCached(hash) }
            perCall.append((now() - start) / 1_000 * 1e6)
        }
        return perCall
    }.value
    perCall.sort()
    print(String(format: "%.2f", perCall[perCall.count / 2]), "µs median per warm ensureUiCached")
case "resolve":
    let count = arguments.count > 2 ? Int(arguments[2]) ?? 200_000 : 200_000
    let path = NSTemporaryDirectory() + "/extbundles-resolve-\(getpid()).sqlite"
    defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
    let cached = ProcessInfo.processInfo.environment["RESOLVE_CACHE"] != "0"
    let fixture = try await RegistryBench.resolveFixture(path: path, cached: cached)
    // Two tasks (the machine's two cores), as a server's concurrent requests would.
    let tasks = Int(ProcessInfo.processInfo.environment["RESOLVE_TASKS"] ?? "") ?? 2
    let start = now()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for task in 0..<tasks {
            group.addTask {
                for index in stride(from: task, to: count, by: tasks) {
                    let (tenant, id) = fixture.pairs[index % fixture.pairs.count]
                    _ = try await fixture.host.resolveContentHash(id, tenant: tenant)
                }
            }
        }
        try await group.waitForAll()
    }
    print(String(format: "%.0f", Double(count) / (now() - start)), "resolutions per second (SQLite, \(tasks) tasks, \(cached ? "with" : "without") the resolve cache)")
case "publish":
    let count = arguments.count > 2 ? Int(arguments[2]) ?? 5_000 : 5_000
    let fixture = try await RegistryBench.publishFixture()
    var keys: [String] = []
    for _ in 0..<count { keys.append(try await RegistryBench.stage(fixture.host, fixture.bytes)) }
    let start = now()
    for (n, key) in keys.enumerated() { try await RegistryBench.finalize(fixture.host, key: key, n: n) }
    print(String(format: "%.0f", Double(count) / (now() - start)), "publishes per second (finalize of a stored bundle, in memory)")
default:
    FileHandle.standardError.write(Data("usage: archive-bench sha256 [MiB] | walk FILE | walk-hash FILE | manifest FILE [N] | cache-hit [N] | resolve [N] | publish [N]\n".utf8))
    exit(2)
}

/// Serves one module by its hash (for the timeout figure, which needs no bundle).
final class FixedModuleSource: ModuleCache {
    let hash: ContentHash
    let path: String

    init(root: String, bytes: [UInt8]) throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        hash = ContentHash.of(bytes)
        path = root + "/main.wasm"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func ensureModuleCached(_ hash: ContentHash) async throws -> ModuleHandle {
        ModuleHandle(hash: hash, path: path, size: 0, bundleRoot: "", lease: CacheLease(hash: hash) {})
    }

    func ensureUiCached(_ hash: ContentHash) async throws -> UIHandle {
        throw CacheError(code: .cacheNotFound, reason: "none", hash: hash)
    }
}
