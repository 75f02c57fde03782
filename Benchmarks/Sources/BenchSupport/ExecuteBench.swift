import BundleArchive
public import BundleCore
import BundleStore
public import ExtensionRuntime
import Foundation
public import RunnerCache

/// The hello-world example as a runner sees it: built from source with its build.sh, packed,
/// stored in memory and filled into a disk cache, for the execute benchmarks.
public struct ExecuteBench: Sendable {
    /// The filled cache.
    public let cache: DiskModuleCache
    /// The bundle.
    public let hash: ContentHash
    /// `dist/main.wasm`.
    public let module: [UInt8]
    /// Where the built example is (its dist/main.wasm is the module).
    public let exampleFolder: String

    /// Builds, packs and fills under `root` (removed first).
    public static func make(root: String) async throws -> ExecuteBench {
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let folder = root + "/hello-world"
        try shell("cp -R '\(repository)/Examples/hello-world' '\(folder)' && rm -rf '\(folder)/dist' && bash '\(folder)/build.sh' >/dev/null")
        let module = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/dist/main.wasm")))
        var bundle: [UInt8] = []
        _ = try BundlePacker.pack(directory: folder) { bundle.append(contentsOf: $0) }
        let store = try BundleStore(objects: InMemoryObjectStore())
        let hash = try await store.putBundle(.bytes(bundle)).hash
        let cache = try DiskModuleCache(root: root + "/cache", store: store)
        _ = try await cache.ensureModuleCached(hash)
        return ExecuteBench(cache: cache, hash: hash, module: module, exampleFolder: folder)
    }

    /// An executor over the filled cache, with its logs off.
    public func executor() -> WasmKitExecutor {
        var configuration = WasmKitExecutor.Configuration()
        configuration.logger.logLevel = .critical
        return WasmKitExecutor(modules: cache, configuration: configuration)
    }

    /// The request the benchmarks send: `GET /hello` with a greeting.
    public func request() -> ExecuteRequest {
        ExecuteRequest(
            context: .init(requestID: "bench", tenantID: "t1", extensionID: "hello", contentHash: hash.prefixed, config: ["greeting": "Howdy"]),
            http: .init(method: "GET", path: "/hello", query: [:], headers: ["accept": "application/json"], bodyB64: nil))
    }

    static func shell(_ script: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchFailure(message: "failed: \(script)") }
    }
}

/// A benchmark set-up that failed.
public struct BenchFailure: Error, CustomStringConvertible {
    /// What failed.
    public var message: String
    /// The message.
    public var description: String { message }

    /// Creates a failure.
    public init(message: String) { self.message = message }
}
