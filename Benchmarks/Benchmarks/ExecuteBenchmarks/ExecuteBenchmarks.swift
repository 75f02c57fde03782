import BenchSupport
import Benchmark
import ExtensionRuntime
import Foundation

/// The executor's two paths for the hello-world handler (built from source by its build.sh):
/// a warm execute with the module already parsed (target: p50 at most 50 µs) and a new
/// executor's first execute over a filled cache: parse, probe, instantiate, run (target: at most
/// 5 ms). ../scripts/bench/execute.sh sets both beside wasmtime doing what Alga's runner does per
/// request.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident], maxDuration: .seconds(5))

    let root = NSTemporaryDirectory() + "extbundles-execute-bench-\(getpid())"
    let semaphore = DispatchSemaphore(value: 0)
    let made = LockedBench()
    Task {
        made.set(try! await ExecuteBench.make(root: root))
        semaphore.signal()
    }
    semaphore.wait()
    let bench = made.value!
    let request = bench.request()

    Benchmark("warm execute, hello-world GET /hello", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let executor = bench.executor()
        _ = await executor.execute(request)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(await executor.execute(request)) }
    }

    Benchmark("first execute after a cache fill, hello-world", configuration: .init(maxIterations: 500)) { benchmark in
        let executor = bench.executor()
        benchmark.startMeasurement()
        blackHole(await executor.execute(request))
        benchmark.stopMeasurement()
    }
}

/// Hands the set-up from its task to the registration closure.
final class LockedBench: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: ExecuteBench?
    var value: ExecuteBench? { lock.withLock { stored } }
    func set(_ bench: ExecuteBench) { lock.withLock { stored = bench } }
}
