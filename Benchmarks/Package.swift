// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so that users of ExtBundles never resolve
// package-benchmark. Run them with `swift package benchmark` from this folder; the side-by-side
// comparisons with system tools are in ../scripts/bench/.
let package = Package(
    name: "ExtBundlesBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "ExtBundles", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/swiftwasm/WasmKit.git", from: "0.4.2"),
    ],
    targets: [
        .target(
            name: "BenchSupport",
            dependencies: [
                .product(name: "BundleArchive", package: "ExtBundles"),
                .product(name: "BundleCore", package: "ExtBundles"),
                .product(name: "BundleStore", package: "ExtBundles"),
                .product(name: "ExtensionHost", package: "ExtBundles"),
                .product(name: "RegistryV2", package: "ExtBundles"),
                .product(name: "RegistryV2SQLite", package: "ExtBundles"),
                .product(name: "RunnerCache", package: "ExtBundles"),
                .product(name: "ExtensionRuntime", package: "ExtBundles"),
            ],
            path: "Sources/BenchSupport"
        ),
        .executableTarget(
            name: "ArchiveBenchmarks",
            dependencies: [
                "BenchSupport",
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "BundleCore", package: "ExtBundles"),
                .product(name: "BundleArchive", package: "ExtBundles"),
                .product(name: "BundleVerify", package: "ExtBundles"),
            ],
            path: "Benchmarks/ArchiveBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "ManifestBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "ManifestV2", package: "ExtBundles"),
            ],
            path: "Benchmarks/ManifestBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "CacheBenchmarks",
            dependencies: [
                "BenchSupport",
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "BundleCore", package: "ExtBundles"),
                .product(name: "BundleArchive", package: "ExtBundles"),
                .product(name: "BundleStore", package: "ExtBundles"),
                .product(name: "RunnerCache", package: "ExtBundles"),
            ],
            path: "Benchmarks/CacheBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "RegistryBenchmarks",
            dependencies: [
                "BenchSupport",
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "ExtensionHost", package: "ExtBundles"),
            ],
            path: "Benchmarks/RegistryBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "ExecuteBenchmarks",
            dependencies: [
                "BenchSupport",
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "ExtensionRuntime", package: "ExtBundles"),
            ],
            path: "Benchmarks/ExecuteBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "archive-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "BundleCore", package: "ExtBundles"),
                .product(name: "BundleArchive", package: "ExtBundles"),
                .product(name: "BundleStore", package: "ExtBundles"),
                .product(name: "RunnerCache", package: "ExtBundles"),
                .product(name: "ManifestV2", package: "ExtBundles"),
                .product(name: "ExtensionHost", package: "ExtBundles"),
                .product(name: "ExtensionRuntime", package: "ExtBundles"),
                .product(name: "WAT", package: "WasmKit"),
            ],
            path: "Sources/archive-bench"
        ),
    ],
    swiftLanguageModes: [.v6]
)
