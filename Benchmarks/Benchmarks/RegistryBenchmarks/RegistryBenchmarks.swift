import BenchSupport
import Benchmark
import ExtensionHost
import Foundation

/// The registry's hot paths: resolve (tenant, extension) to a content hash on SQLite (target:
/// at least 100,000 per second) and publish a bundle that is already stored, in memory (target:
/// at least 1,000 per second). `archive-bench resolve|publish` prints the same as rates.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .peakMemoryResident], maxDuration: .seconds(5))
    let path = NSTemporaryDirectory() + "extbundles-registry-bench-\(getpid()).sqlite"

    Benchmark("resolve on SQLite", configuration: .init(scalingFactor: .kilo)) { benchmark, fixture in
        var index = 0
        for _ in benchmark.scaledIterations {
            let (tenant, id) = fixture.pairs[index % fixture.pairs.count]
            blackHole(try await fixture.host.resolveContentHash(id, tenant: tenant))
            index += 1
        }
    } setup: {
        try await RegistryBench.resolveFixture(path: path)
    }

    Benchmark("publish an already stored bundle, in memory", configuration: .init(maxIterations: 2_000)) { benchmark, fixture in
        // Each sample stages a copy (not measured), then finalizes it as a new version.
        var n = 0
        for _ in benchmark.scaledIterations {
            benchmark.stopMeasurement()
            let key = try await RegistryBench.stage(fixture.host, fixture.bytes)
            benchmark.startMeasurement()
            try await RegistryBench.finalize(fixture.host, key: key, n: n)
            n += 1
        }
    } setup: {
        try await RegistryBench.publishFixture()
    }
}
