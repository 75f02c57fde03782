import Benchmark
import ManifestV2

/// Manifest validation throughput (target: at least 50,000 manifests per second): a typical
/// manifest with a UI and five endpoints, parsed and validated per iteration.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput], maxDuration: .seconds(3))

    let manifest = Array(#"""
    {
      "name": "com.alga.sample.scheduler-demo", "publisher": "Alga", "version": "0.1.0", "runtime": "wasm-js@1",
      "capabilities": ["cap:scheduler.manage", "cap:log.emit", "cap:context.read"],
      "ui": { "type": "iframe", "entry": "ui/index.html", "hooks": { "appMenu": { "label": "Scheduler Demo" } } },
      "api": { "endpoints": [
        { "method": "GET", "path": "/api/status", "handler": "dist/main", "schedulable": true },
        { "method": "POST", "path": "/api/setup", "handler": "dist/main" },
        { "method": "GET", "path": "/api/schedules", "handler": "dist/main" },
        { "method": "DELETE", "path": "/api/schedules/:id", "handler": "dist/main" },
        { "method": "POST", "path": "/api/heartbeat", "handler": "dist/main", "schedulable": true }
      ] },
      "assets": ["ui/**/*"]
    }
    """#.utf8)

    Benchmark("validate a manifest (scheduler-demo)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(ManifestValidator.validate(manifest).isValid)
        }
    }
}
