// swift-tools-version:6.1
import PackageDescription

/// Settings every target of ExtBundles compiles with: Swift 6 language mode (strict concurrency)
/// and explicit `any` for existentials.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "ExtBundles",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BundleCore", targets: ["BundleCore"]),
        .library(name: "BundleArchive", targets: ["BundleArchive"]),
        .library(name: "BundleStore", targets: ["BundleStore"]),
        .library(name: "BundleStoreS3", targets: ["BundleStoreS3"]),
        .library(name: "ManifestV2", targets: ["ManifestV2"]),
        .library(name: "BundleVerify", targets: ["BundleVerify"]),
        .library(name: "RegistryV2", targets: ["RegistryV2"]),
        .library(name: "RegistryV2SQLite", targets: ["RegistryV2SQLite"]),
        .library(name: "ExtensionHost", targets: ["ExtensionHost"]),
        .library(name: "RunnerCache", targets: ["RunnerCache"]),
        .library(name: "ExtensionRuntime", targets: ["ExtensionRuntime"]),
        .library(name: "ExtensionHTTP", targets: ["ExtensionHTTP"]),
        .library(name: "ExtBundlesTesting", targets: ["ExtBundlesTesting"]),
        .executable(name: "extctl", targets: ["extctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swiftwasm/WasmKit.git", from: "0.4.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .target(
            name: "BundleCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .target(
            name: "BundleArchive",
            dependencies: ["BundleCore", "CZstd"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BundleStore",
            dependencies: ["BundleCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BundleStoreS3",
            dependencies: [
                "BundleCore", "BundleStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BundleVerify",
            dependencies: [
                "BundleCore", "BundleArchive", "ManifestV2",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ManifestV2",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RegistryV2",
            dependencies: ["BundleCore", "ManifestV2"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RegistryV2SQLite",
            dependencies: [
                "BundleCore", "RegistryV2", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RunnerCache",
            dependencies: [
                "BundleCore", "BundleArchive", "BundleStore", "BundleVerify", "ManifestV2",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ExtensionRuntime",
            dependencies: [
                "BundleCore", "RunnerCache", "ManifestV2",
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmParser", package: "WasmKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ExtensionHTTP",
            dependencies: [
                "BundleCore", "ExtensionHost", "ManifestV2",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ExtensionHost",
            dependencies: ["BundleCore", "BundleArchive", "BundleStore", "BundleVerify", "ManifestV2", "RegistryV2"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ExtBundlesTesting",
            dependencies: ["BundleCore", "BundleArchive", "BundleStore", "ManifestV2", "RegistryV2", "RunnerCache"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "extctl",
            dependencies: [
                "BundleCore",
                "BundleArchive",
                "BundleStore",
                "BundleStoreS3",
                "ManifestV2",
                "BundleVerify",
                "RegistryV2",
                "RegistryV2SQLite",
                "ExtensionHost",
                "RunnerCache",
                "ExtensionRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: ["BundleCore", "ExtBundlesTesting"],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StoreTestSupport",
            dependencies: ["BundleCore", "BundleStore", "BundleStoreS3", "RegistryV2", "RegistryV2SQLite", "TestSupport"],
            path: "Tests/StoreTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BundleCoreTests",
            dependencies: ["BundleCore", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BundleArchiveTests",
            dependencies: ["BundleArchive", "BundleCore", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BundleStoreTests",
            dependencies: ["BundleStore", "BundleStoreS3", "BundleCore", "ExtBundlesTesting", "TestSupport", "StoreTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BundleVerifyTests",
            dependencies: ["BundleVerify", "BundleArchive", "BundleCore", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RegistryV2Tests",
            dependencies: ["RegistryV2", "RegistryV2SQLite", "BundleCore", "ManifestV2", "ExtBundlesTesting", "TestSupport", "StoreTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExtensionHostTests",
            dependencies: [
                "ExtensionHost", "RegistryV2", "RegistryV2SQLite", "BundleStore", "BundleStoreS3", "BundleVerify", "BundleArchive",
                "BundleCore", "ManifestV2", "RunnerCache", "ExtBundlesTesting", "TestSupport", "StoreTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RunnerCacheTests",
            dependencies: [
                "RunnerCache", "BundleStore", "BundleVerify", "BundleArchive", "BundleCore", "ExtBundlesTesting", "TestSupport", "StoreTestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExtensionRuntimeTests",
            dependencies: [
                "ExtensionRuntime", "RunnerCache", "BundleStore", "BundleVerify", "BundleArchive", "BundleCore", "ExtBundlesTesting", "TestSupport",
                "StoreTestSupport",
                .product(name: "WAT", package: "WasmKit"),
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExtensionHTTPTests",
            dependencies: [
                "ExtensionHTTP", "ExtensionHost", "BundleStore", "BundleVerify", "BundleArchive", "BundleCore", "RegistryV2", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ManifestV2Tests",
            dependencies: ["ManifestV2", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExtctlTests",
            dependencies: [
                "extctl", "BundleArchive", "BundleCore", "BundleStore", "RunnerCache", "TestSupport", .product(name: "WAT", package: "WasmKit"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
