import ArgumentParser
import BundleCore
import BundleStore
import BundleVerify
import ExtensionRuntime
import Foundation
import Logging
import ManifestV2
import RunnerCache

/// `extctl run`: the developer's inner loop: run a bundle's handler on one request, locally, the
/// way a runner would (the same cache fill, the same executor, the same limits).
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a bundle's handler (dist/main.wasm) on one request and print the response.",
        discussion: """
            BUNDLE is a bundle.tar.zst file (verified and unpacked into a temporary cache, no store \
            needed) or a content hash in the store (through the cache, as a runner fetches it). \
            The handler gets the manifest's capabilities, as an install would grant them, unless \
            --provider is given. Exit status 1 when the runner answers with an error \
            (execute_failed: ..., bundle_fetch_failed: ...).
            """)

    @Argument(help: ArgumentHelp("A bundle.tar.zst file, or sha256:<hex> of a bundle in the store.", valueName: "bundle|hash"))
    var target: String

    @Option(help: "The request method.")
    var method: String = "GET"

    @Option(help: "The request path.")
    var path: String = "/"

    @Option(help: ArgumentHelp("A file whose bytes are the request body.", valueName: "file"))
    var body: String?

    @Option(name: .customLong("header"), help: ArgumentHelp("A request header (repeatable).", valueName: "name:value"))
    var headers: [String] = []

    @Option(name: .customLong("query"), help: ArgumentHelp("A query parameter (repeatable).", valueName: "key=value"))
    var queries: [String] = []

    @Option(name: .customLong("config"), help: ArgumentHelp("An install config value (repeatable).", valueName: "key=value"))
    var configs: [String] = []

    @Option(name: .customLong("provider"), help: ArgumentHelp("A capability to grant (repeatable; default: the manifest's).", valueName: "cap"))
    var providers: [String] = []

    @Option(help: "The wall-clock limit in milliseconds (default 5000).")
    var timeoutMs: UInt64?

    @Option(help: "The memory limit in MiB (default 256).")
    var memoryMb: UInt64?

    @Option(help: "A fuel budget (about one unit per WebAssembly operator; default none).")
    var fuel: UInt64?

    @Option(help: "The tenant id the handler sees.")
    var tenant: String = "local"

    @Option(name: .customLong("allow-host"), help: ArgumentHelp("A host http.fetch may reach (repeatable; default EXT_EGRESS_ALLOWLIST, empty allows all).", valueName: "host"))
    var allowHosts: [String] = []

    @Flag(help: "Print the runner's answer as JSON ({status, headers, body_b64, error}).")
    var json = false

    @Flag(name: [.short, .long], help: "Show the runner's debug logs (on stderr).")
    var verbose = false

    @OptionGroup var cacheOptions: CacheOptions
    @OptionGroup var options: HostOptions

    func validate() throws {
        for header in headers where !header.contains(":") { throw ValidationError("--header takes name:value, got \(header)") }
        for pair in queries + configs where !pair.contains("=") { throw ValidationError("--query and --config take key=value, got \(pair)") }
    }

    func run() async throws {
        let level: Logger.Level = verbose ? .debug : .warning
        var logger = Logger(label: "extctl.run") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level

        let scratch = NSTemporaryDirectory() + "extctl-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let cache: DiskModuleCache
        let hash: ContentHash
        var isFile: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isFile), !isFile.boolValue {
            // A local file: into a store of its own and a temporary cache, verified on the way in.
            let store = try BundleStore(objects: InMemoryObjectStore())
            hash = try await store.putBundle(.file(at: target)).hash
            cache = try DiskModuleCache(root: scratch + "/cache", store: store, verifier: StreamingBundleVerifier(trust: nil))
        } else if let parsed = try? ContentHash(parsing: target) {
            hash = parsed
            cache = try cacheOptions.open(options)
        } else {
            throw RefusedInput(message: "RUN_TARGET: \(target) is neither a bundle file nor a content hash")
        }

        // The manifest's name and capabilities, as an install would see them.
        var extensionID = "local"
        var granted = providers
        if let module = try? await cache.ensureModuleCached(hash),
            let bytes = try? BoundedFile.read(module.bundleRoot + "/manifest.json", limit: 1 << 20),
            let manifest = ManifestValidator.validate(bytes).manifest
        {
            extensionID = manifest.name
            if providers.isEmpty {
                granted = manifest.capabilities.filter { Capability.known.contains(Capability(rawValue: Capability.normalise($0))) }
            }
        }

        var configuration = WasmKitExecutor.Configuration.fromEnvironment()
        if !allowHosts.isEmpty { configuration.egress = EgressPolicy(allowlist: allowHosts) }
        var guestLogger = Logger(label: "extctl.guest") { StreamLogHandler.standardError(label: $0) }
        guestLogger.logLevel = verbose ? .debug : .info
        configuration.logger = guestLogger
        let executor = WasmKitExecutor(modules: cache, configuration: configuration)

        var bodyB64: String?
        if let body { bodyB64 = Data(try BoundedFile.read(body, limit: 10 << 20)).base64EncodedString() }
        let request = ExecuteRequest(
            context: .init(
                requestID: UUID().uuidString.lowercased(), tenantID: tenant, extensionID: extensionID, contentHash: hash.prefixed,
                config: Dictionary(configs.map(Self.pair(separator: "=")), uniquingKeysWith: { $1 })),
            http: .init(
                method: method.uppercased(), path: path, query: Dictionary(queries.map(Self.pair(separator: "=")), uniquingKeysWith: { $1 }),
                headers: Dictionary(headers.map(Self.pair(separator: ":")), uniquingKeysWith: { $1 }), bodyB64: bodyB64),
            limits: .init(timeoutMs: timeoutMs, memoryMb: memoryMb, fuel: fuel), providers: granted)
        let response = await executor.execute(request)
        logger.debug("executed", metadata: ["hash": .string(hash.prefixed), "status": .stringConvertible(response.status)])

        if json {
            FileHandle.standardOutput.write(response.jsonData())
            FileHandle.standardOutput.write(Data("\n".utf8))
        } else if response.error == nil {
            Console.out("HTTP \(response.status)")
            for (name, value) in response.headers.sorted(by: { $0.key < $1.key }) { Console.out("\(name): \(value)") }
            Console.out("")
            if let body = response.body, !body.isEmpty {
                if let text = String(validating: body, as: UTF8.self) {
                    Console.block(text)
                } else {
                    Console.out("(\(body.count) bytes of binary body; --json prints it as base64)")
                }
            }
        }
        if let error = response.error {
            if !json { Console.error("error: \(error)") }
            throw ExitCode(1)
        }
    }

    static func pair(separator: Character) -> (String) -> (String, String) {
        { text in
            let parts = text.split(separator: separator, maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).trimmingCharacters(in: .whitespaces)
            let value = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: separator == ":" ? .whitespaces : []) : ""
            return (separator == ":" ? key.lowercased() : key, value)
        }
    }
}
