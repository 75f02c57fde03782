import ArgumentParser
import BundleCore
import BundleStore
import BundleVerify
import ExtensionHost
import Foundation
import RegistryV2
import RunnerCache

/// Options that pick the runner cache.
struct CacheOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The cache folder (EXT_CACHE_ROOT; default <data>/cache).", valueName: "dir"))
    var cache: String?

    @Option(help: ArgumentHelp("The byte budget (EXT_CACHE_MAX_BYTES; default 1 GiB).", valueName: "bytes"))
    var budget: Int64?

    func validate() throws {
        if let budget, budget < 0 { throw ValidationError("--budget must be 0 or more") }
    }

    func open(_ host: HostOptions) throws -> DiskModuleCache {
        let environment = DiskModuleCache.Configuration.fromEnvironment()
        var configuration = environment.configuration
        if let budget { configuration.maxBytes = budget }
        let root = cache ?? ProcessInfo.processInfo.environment["EXT_CACHE_ROOT"].flatMap { $0.isEmpty ? nil : $0 } ?? host.data + "/cache"
        let trust = try host.trustBundle.map { try TrustBundle.load($0) } ?? TrustBundle.fromEnvironment()
        return try DiskModuleCache(
            root: root, store: try host.bundleStore(), verifier: StreamingBundleVerifier(trust: trust), configuration: configuration)
    }
}

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache", abstract: "Operate a runner's on-disk bundle cache.",
        subcommands: [Warm.self, Stats.self, Prune.self, Clear.self])

    struct Warm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "warm",
            abstract: "Fetch, verify and unpack a bundle into the cache: by content hash, or an extension's newest version.")

        @Argument(help: "sha256:<hex> (or bare hex), or an extension's registry id or publisher.name.")
        var target: String

        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var options: HostOptions

        func run() async throws {
            let hash: ContentHash
            if let parsed = try? ContentHash(parsing: target) {
                hash = parsed
            } else {
                let host = try options.host()
                let record = try await host.findExtension(target)
                guard let version = try await host.registry.versions(extensionID: record.id).first,
                    let bundle = try await host.registry.latestBundle(versionID: version.id)
                else { throw RefusedInput(message: "VERSION_NOT_FOUND: \(target) has no published version") }
                hash = bundle.contentHash
            }
            let cache = try cacheOptions.open(options)
            let ui = try await cache.ensureUiCached(hash)
            let module = try? await cache.ensureModuleCached(hash)
            Console.out("\(hash.prefixed)  \(ui.files.count) UI files  module: \(module.map { "\($0.size) bytes" } ?? "none")")
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stats", abstract: "Entries, bytes and budget of the cache.")

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var options: HostOptions

        func run() async throws {
            let stats = try await cacheOptions.open(options).stats()
            if json { return try Console.json(stats) }
            Console.out("entries: \(stats.entries)")
            Console.out("bytes:   \(stats.bytes)")
            Console.out("budget:  \(stats.maxBytes)")
            for hash in stats.hashes { Console.out(hash) }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune",
            abstract: "Evict least recently filled entries until the cache fits the budget (or --max-bytes).")

        @Option(help: "Evict down to this many bytes.")
        var maxBytes: Int64?

        func validate() throws {
            if let maxBytes, maxBytes < 0 { throw ValidationError("--max-bytes must be 0 or more") }
        }

        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var options: HostOptions

        func run() async throws {
            let cache = try cacheOptions.open(options)
            let evicted = await cache.prune(maxBytes: maxBytes)
            for hash in evicted { Console.out("evicted \(hash.prefixed)") }
            Console.out("bytes: \(await cache.stats().bytes)")
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "clear", abstract: "Remove every entry of the cache.")

        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var options: HostOptions

        func run() async throws {
            let evicted = try await cacheOptions.open(options).clear()
            Console.out("removed \(evicted.count) \(evicted.count == 1 ? "entry" : "entries")")
        }
    }
}
