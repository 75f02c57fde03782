public import BundleArchive
public import BundleCore
public import BundleStore
public import BundleVerify
public import CoreMetrics
public import Foundation

/// The on-disk ``ModuleCache`` of a runner.
///
/// On a miss it streams the bundle from the store through the ``BundleVerify/Verifier`` straight
/// into a temporary folder `<root>/.tmp-<hex>-<pid>-<random>/` (no temporary archive, no whole
/// archive in memory), computing each UI file's ETag on the way, then renames the finished entry
/// to `<root>/<hex>/` in one step. A hash mismatch or any refusal removes the temporary folder:
/// only complete, verified entries ever have a `<hex>` name.
///
/// - Concurrent misses for one hash share one fetch; a failed fetch is remembered for
///   ``Configuration/negativeTTL`` (default 10 s) and rethrown without touching the store.
/// - A byte budget (``Configuration/maxBytes``) with least-recently-used eviction that never
///   removes an entry while a handle to it is held; after each fill, unheld entries are evicted,
///   oldest use first, until the total fits (or only held entries remain; they are trimmed when
///   released).
/// - At start-up the index is rebuilt from disk; temporary folders of dead processes and
///   half-deleted entries are removed and never served. One cache root may be shared by
///   several processes for reading; fills by two processes of one hash are safe (the second
///   rename loses and adopts the first's entry).
public actor DiskModuleCache: ModuleCache {
    /// Settings.
    public struct Configuration: Sendable {
        /// The byte budget (`EXT_CACHE_MAX_BYTES`). Default 1 GiB.
        public var maxBytes: Int64
        /// How long a failed fetch is remembered. Default 10 s; 0 turns it off.
        public var negativeTTL: TimeInterval
        /// Archive limits for fills (the 200 MiB cap, decompressed size, entries, ...).
        public var limits: ArchiveLimits
        /// `fsync` every file, folder and the entry before it becomes visible, so a power loss
        /// cannot leave a torn entry. Default false (a killed process never leaves one either way).
        public var durable: Bool
        /// Where metrics go; nil means `MetricsSystem.factory`.
        public var metricsFactory: (any MetricsFactory)?
        /// The prefix of metric labels. Default `extbundles_cache`.
        public var metricsPrefix: String
        /// The clock the negative cache is judged by (injectable for tests).
        public var now: @Sendable () -> Date

        /// Creates a configuration.
        public init(
            maxBytes: Int64 = 1 << 30, negativeTTL: TimeInterval = 10, limits: ArchiveLimits = .default, durable: Bool = false,
            metricsFactory: (any MetricsFactory)? = nil, metricsPrefix: String = "extbundles_cache",
            now: @escaping @Sendable () -> Date = { Date() }
        ) {
            self.now = now
            self.maxBytes = maxBytes
            self.negativeTTL = negativeTTL
            self.limits = limits
            self.durable = durable
            self.metricsFactory = metricsFactory
            self.metricsPrefix = metricsPrefix
        }

        /// The root and budget from `EXT_CACHE_ROOT` (default `/tmp/extbundles-cache`) and
        /// `EXT_CACHE_MAX_BYTES` (bytes; default 1 GiB).
        public static func fromEnvironment(
            _ environment: [String: String] = ProcessInfo.processInfo.environment
        ) -> (root: String, configuration: Configuration) {
            var configuration = Configuration()
            if let text = environment["EXT_CACHE_MAX_BYTES"], let bytes = Int64(text.trimmingCharacters(in: .whitespaces)), bytes > 0 {
                configuration.maxBytes = bytes
            }
            let root = environment["EXT_CACHE_ROOT"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp/extbundles-cache"
            return (root, configuration)
        }
    }

    /// What the cache holds.
    public struct Stats: Sendable, Equatable, Codable {
        /// Entries on disk.
        public var entries: Int
        /// Their bytes.
        public var bytes: Int64
        /// The budget.
        public var maxBytes: Int64
        /// Entries with a handle held.
        public var held: Int
        /// The entries, most recently used first.
        public var hashes: [String]
    }

    struct Entry: Sendable {
        var hash: ContentHash
        var folder: String
        var metadata: EntryMetadata
        var bytes: Int64
        var lastUse: UInt64
    }

    /// The cache folder.
    public let root: String
    /// The bundle store fills come from.
    public let store: BundleStore
    /// The verifier fills go through.
    public let verifier: any Verifier
    /// The settings.
    public let configuration: Configuration

    private var entries: [ContentHash: Entry]
    private var useClock: UInt64
    private var totalBytes: Int64
    private var inFlight: [ContentHash: Task<Entry, any Error>] = [:]
    private var waiting: [ContentHash: Int] = [:]
    private var failures: [ContentHash: (until: Date, error: any Error)] = [:]
    private let leases = LeaseTable()
    private let metrics: CacheMetrics

    /// Opens (creating if needed) the cache at `root`, removes what crashed fills left, and
    /// rebuilds the index from the entries on disk.
    public init(
        root: String, store: BundleStore, verifier: any Verifier = StreamingBundleVerifier(trust: nil),
        configuration: Configuration = .init()
    ) throws {
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw CacheError(code: .cacheFillFailed, reason: "cannot create the cache folder", path: root, underlying: "\(error)")
        }
        self.root = root
        self.store = store
        self.verifier = verifier
        self.configuration = configuration
        self.metrics = CacheMetrics(prefix: configuration.metricsPrefix, factory: configuration.metricsFactory ?? MetricsSystem.factory)
        let found = DiskLayout.scan(root: root)
        var index: [ContentHash: Entry] = [:]
        var clock: UInt64 = 0
        var total: Int64 = 0
        for item in found {
            clock += 1
            index[item.hash] = Entry(hash: item.hash, folder: item.folder, metadata: item.metadata, bytes: item.bytes, lastUse: clock)
            total += item.bytes
        }
        entries = index
        useClock = clock
        totalBytes = total
        metrics.record(bytes: total, entries: index.count)
        leases.onIdle = { [weak self] in
            guard let self else { return }
            Task { await self.trim() }
        }
        leases.setOverBudget(total > configuration.maxBytes)
    }

    // MARK: - ModuleCache

    public func ensureUiCached(_ hash: ContentHash) async throws -> UIHandle {
        let entry = try await entry(for: hash)
        return UIHandle(
            hash: hash, root: entry.folder + "/" + entry.metadata.base + "ui", files: entry.metadata.uiFiles, lease: lease(hash))
    }

    public func ensureModuleCached(_ hash: ContentHash) async throws -> ModuleHandle {
        let entry = try await entry(for: hash)
        guard let module = entry.metadata.module else {
            throw CacheError(code: .cacheNoModule, reason: "the bundle has no dist/main.wasm", hash: hash)
        }
        return ModuleHandle(
            hash: hash, path: entry.folder + "/" + module.path, size: module.size, bundleRoot: entry.folder + "/" + entry.metadata.base,
            lease: lease(hash))
    }

    // MARK: - Maintenance

    /// What is cached now.
    public func stats() -> Stats {
        let ordered = entries.values.sorted { $0.lastUse > $1.lastUse }
        return Stats(
            entries: entries.count, bytes: totalBytes, maxBytes: configuration.maxBytes,
            held: entries.keys.filter { leases.count($0) > 0 }.count, hashes: ordered.map(\.hash.prefixed))
    }

    /// Whether an entry for `hash` is on disk.
    public func contains(_ hash: ContentHash) -> Bool { entries[hash] != nil }

    /// Evicts unheld entries, least recently used first, until at most `maxBytes` remain
    /// (default: the budget). Returns the hashes evicted.
    @discardableResult
    public func prune(maxBytes: Int64? = nil) -> [ContentHash] {
        trim(to: maxBytes ?? configuration.maxBytes)
    }

    /// Evicts every unheld entry and forgets remembered failures. Returns the hashes evicted.
    @discardableResult
    public func clear() -> [ContentHash] {
        failures = [:]
        return trim(to: 0)
    }

    // MARK: - Compiled modules

    /// A module compiled by `compiler`, cached beside the bundle under (content hash, compiler id
    /// and version, target triple) and handed to `load`. An artifact that `load` refuses is
    /// deleted and compiled again (it counts as a miss).
    public func ensureCompiled<T: Sendable>(
        _ hash: ContentHash, compiler: any ModuleCompiler, load: @Sendable ([UInt8]) throws -> T
    ) async throws -> T {
        let module = try await ensureModuleCached(hash)
        let name = compiler.artifactName
        let folder = module.bundleRoot + ".compiled"
        let path = folder + "/" + name
        if let data = FileManager.default.contents(atPath: path) {
            do {
                let value = try load(Array(data))
                metrics.compiledHits.increment()
                return value
            } catch {
                // A stale or damaged artifact: drop it and compile again.
                try? FileManager.default.removeItem(atPath: path)
                adjust(hash, by: -Int64(data.count))
            }
        }
        metrics.compiledMisses.increment()
        let artifact: [UInt8]
        do {
            artifact = try await compiler.compile(try module.bytes())
        } catch {
            throw CacheError(
                code: .cacheCompileFailed, reason: "the module could not be compiled", hash: hash, underlying: String(reflecting: error))
        }
        let value = try load(artifact)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try Data(artifact).write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else {
                try? FileManager.default.removeItem(atPath: temporary)
                return value
            }
            adjust(hash, by: Int64(artifact.count))
            trim(excluding: hash)
        } catch {
            // Caching is an optimisation: the compiled module is still returned.
        }
        return value
    }

    // MARK: - Internals

    private func entry(for hash: ContentHash) async throws -> Entry {
        if let entry = entries[hash] {
            useClock &+= 1
            entries[hash]?.lastUse = useClock
            metrics.hits.increment()
            return entry
        }
        if let failure = failures[hash] {
            if failure.until > configuration.now() { throw failure.error }
            failures[hash] = nil
        }
        metrics.misses.increment()
        let task = inFlight[hash] ?? startFill(hash)
        waiting[hash, default: 0] += 1
        defer {
            waiting[hash, default: 1] -= 1
            if waiting[hash] == 0 { waiting[hash] = nil }
        }
        let filled = try await task.value
        useClock &+= 1
        entries[hash]?.lastUse = useClock
        return entries[hash] ?? filled
    }

    private func startFill(_ hash: ContentHash) -> Task<Entry, any Error> {
        let root = self.root
        let store = self.store
        let verifier = self.verifier
        let configuration = self.configuration
        let metrics = self.metrics
        let task = Task { () throws -> Entry in
            do {
                metrics.fetches.increment()
                let filled = try await Filler.fill(hash, root: root, store: store, verifier: verifier, configuration: configuration)
                self.install(filled)
                return filled
            } catch {
                metrics.fetchFailures.increment()
                self.remember(hash, error)
                throw error
            }
        }
        inFlight[hash] = task
        return task
    }

    private func install(_ filled: Entry) {
        inFlight[filled.hash] = nil
        useClock &+= 1
        var entry = filled
        entry.lastUse = useClock
        if let previous = entries[filled.hash] { totalBytes -= previous.bytes }
        entries[filled.hash] = entry
        totalBytes += entry.bytes
        trim(excluding: filled.hash)
    }

    private func remember(_ hash: ContentHash, _ error: any Error) {
        inFlight[hash] = nil
        if configuration.negativeTTL > 0 { failures[hash] = (configuration.now().addingTimeInterval(configuration.negativeTTL), error) }
    }

    private func lease(_ hash: ContentHash) -> CacheLease {
        leases.acquire(hash)
        let table = leases
        return CacheLease(hash: hash) { table.release(hash) }
    }

    private func adjust(_ hash: ContentHash, by delta: Int64) {
        guard entries[hash] != nil else { return }
        entries[hash]?.bytes += delta
        totalBytes += delta
        metrics.record(bytes: totalBytes, entries: entries.count)
    }

    /// Called when the last handle of an entry goes while the cache is over budget.
    func trim() { trim(to: configuration.maxBytes) }

    @discardableResult
    private func trim(to budget: Int64? = nil, excluding protected: ContentHash? = nil) -> [ContentHash] {
        let budget = budget ?? configuration.maxBytes
        var evicted: [ContentHash] = []
        if totalBytes > budget {
            let candidates = entries.values
                .filter { $0.hash != protected && waiting[$0.hash] == nil && inFlight[$0.hash] == nil }
                .sorted { $0.lastUse < $1.lastUse }
            for candidate in candidates where totalBytes > budget {
                // Leases are only taken on this actor, so an entry unheld here stays unheld.
                guard leases.count(candidate.hash) == 0 else { continue }
                DiskLayout.remove(candidate.folder, root: root)
                entries[candidate.hash] = nil
                totalBytes -= candidate.bytes
                evicted.append(candidate.hash)
                metrics.evictions.increment()
            }
        }
        leases.setOverBudget(totalBytes > configuration.maxBytes)
        metrics.record(bytes: totalBytes, entries: entries.count)
        return evicted
    }
}

/// How many handles hold each entry. Thread-safe: handles are released from any thread.
final class LeaseTable: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [ContentHash: Int] = [:]
    private var overBudget = false
    /// Called (on the releasing thread) when an entry's last handle goes while over budget.
    var onIdle: (@Sendable () -> Void)?

    func acquire(_ hash: ContentHash) {
        lock.lock()
        counts[hash, default: 0] += 1
        lock.unlock()
    }

    func release(_ hash: ContentHash) {
        lock.lock()
        let remaining = (counts[hash] ?? 1) - 1
        counts[hash] = remaining > 0 ? remaining : nil
        let notify = remaining == 0 && overBudget
        lock.unlock()
        if notify { onIdle?() }
    }

    func count(_ hash: ContentHash) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return counts[hash] ?? 0
    }

    func setOverBudget(_ value: Bool) {
        lock.lock()
        overBudget = value
        lock.unlock()
    }
}

/// The counters and gauges of a cache.
struct CacheMetrics: Sendable {
    let hits: Counter
    let misses: Counter
    let fetches: Counter
    let fetchFailures: Counter
    let evictions: Counter
    let compiledHits: Counter
    let compiledMisses: Counter
    let bytes: Gauge
    let entries: Gauge

    init(prefix: String, factory: any MetricsFactory) {
        hits = Counter(label: prefix + "_hits_total", factory: factory)
        misses = Counter(label: prefix + "_misses_total", factory: factory)
        fetches = Counter(label: prefix + "_fetches_total", factory: factory)
        fetchFailures = Counter(label: prefix + "_fetch_failures_total", factory: factory)
        evictions = Counter(label: prefix + "_evictions_total", factory: factory)
        compiledHits = Counter(label: prefix + "_compiled_hits_total", factory: factory)
        compiledMisses = Counter(label: prefix + "_compiled_misses_total", factory: factory)
        bytes = Gauge(label: prefix + "_bytes", factory: factory)
        entries = Gauge(label: prefix + "_entries", factory: factory)
    }

    func record(bytes total: Int64, entries count: Int) {
        bytes.record(total)
        entries.record(count)
    }
}
