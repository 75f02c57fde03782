import BenchSupport
import Benchmark
import BundleArchive
import BundleCore
import BundleStore
import Foundation
import RunnerCache

/// The runner cache's two paths: a warm hit (target: at most 5 µs median) and a cold miss of a
/// 20 MiB bundle from the filesystem store (compare with openssl dgst + zstd -dc | tar -x in
/// ../scripts/bench/cache.sh).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .peakMemoryResident], maxDuration: .seconds(5))

    let root = NSTemporaryDirectory() + "extbundles-cache-bench-\(getpid())"
    let bundles = CacheBench.makeBundles(root: root)

    Benchmark("warm ensureUiCached", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let cache = try DiskModuleCache(root: root + "/warm-cache", store: bundles.memory)
        _ = try await cache.ensureUiCached(bundles.small)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try await cache.ensureUiCached(bundles.small)) }
    }

    Benchmark("cold miss, 20 MiB bundle from the filesystem store", configuration: .init(maxIterations: 20)) { benchmark in
        // One fill per sample (scaling factor one), into a cache folder of its own.
        let folder = root + "/cold-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = try DiskModuleCache(root: folder, store: bundles.filesystem)
        benchmark.startMeasurement()
        blackHole(try await cache.ensureUiCached(bundles.large))
        benchmark.stopMeasurement()
    }
}

enum CacheBench {
    /// A small bundle in a memory store and a 20 MiB one (half incompressible) in a filesystem store.
    static func makeBundles(root: String) -> (memory: BundleStore, small: ContentHash, filesystem: BundleStore, large: ContentHash) {
        try? FileManager.default.removeItem(atPath: root)
        let source = root + "/src"
        try! FileManager.default.createDirectory(atPath: source + "/ui/assets", withIntermediateDirectories: true)
        try! FileManager.default.createDirectory(atPath: source + "/dist", withIntermediateDirectories: true)
        try! Data(#"{"name":"b","version":"1.0.0","runtime":"wasm-js@1"}"#.utf8).write(to: URL(fileURLWithPath: source + "/manifest.json"))
        try! Data("<html></html>".utf8).write(to: URL(fileURLWithPath: source + "/ui/index.html"))
        var small: [UInt8] = []
        _ = try! BundlePacker.pack(directory: source) { small.append(contentsOf: $0) }
        try! Data(benchRandomBytes(10 << 20, seed: 1)).write(to: URL(fileURLWithPath: source + "/dist/main.wasm"))
        let text = (0..<400_000).map { "line \($0 % 977) of the app;\n" }.joined()
        try! Data(text.utf8.prefix(10 << 20)).write(to: URL(fileURLWithPath: source + "/ui/assets/app.js"))
        var large: [UInt8] = []
        _ = try! BundlePacker.pack(directory: source, configuration: .init(zstd: .init(level: 3))) { large.append(contentsOf: $0) }
        let memory = try! BundleStore(objects: InMemoryObjectStore())
        let filesystem = try! BundleStore(objects: try! FileSystemObjectStore(root: root + "/store"))
        let semaphore = DispatchSemaphore(value: 0)
        let hashes = LockedValue<(ContentHash, ContentHash)?>(nil)
        Task {
            let a = try! await memory.putBundle(.bytes(small)).hash
            let b = try! await filesystem.putBundle(.bytes(large)).hash
            hashes.withLock { $0 = (a, b) }
            semaphore.signal()
        }
        semaphore.wait()
        let (a, b) = hashes.withLock { $0! }
        return (memory, a, filesystem, b)
    }
}
