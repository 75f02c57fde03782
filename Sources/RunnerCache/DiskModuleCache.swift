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
/// An entry's folder holds the archive's files under `bundle/` and the cache's own files beside
/// it (`meta.json`, `compiled/`), where no archive path can reach: a bundle cannot plant
/// metadata or a precompiled module.
///
/// - Signatures: a fill verifies the bundle with the signatures from
///   ``Configuration/signatures`` (by default the `bundle.sig` side object finalize stored), so a
///   verifier with a trust bundle refuses unsigned, unknown, revoked and wrong-publisher bundles
///   here too, and nothing of them is kept.
/// - Concurrent misses for one hash share one fetch; a failed fetch is remembered for
///   ``Configuration/negativeTTL`` (default 10 s, at most ``Configuration/negativeCapacity``
///   hashes, expired ones dropped) and rethrown without touching the store.
/// - A byte budget (``Configuration/maxBytes``) with least-recently-used eviction that never
///   removes an entry while a handle to it is held; after each fill, unheld entries are evicted,
///   oldest use first, until the total fits (or only held entries remain; they are trimmed when
///   released).
/// - File work (extraction, metadata, deleting evicted entries, compiled modules) runs on
///   ``BundleCore/BlockingIO/shared``; the actor only keeps the index, so hits never wait for a
///   disk.
/// - At start-up the index is rebuilt from disk; temporary folders of dead processes,
///   half-deleted entries and entries of older layouts are removed and never served. One cache
///   root may be shared by several processes for reading; fills by two processes of one hash are
///   safe (the second rename loses and adopts the first's entry).
public actor DiskModuleCache: ModuleCache {
    /// Where a fill gets a bundle's detached signatures and when they were accepted.
    public typealias SignatureSource = @Sendable (ContentHash) async throws -> PublishedSignatures

    /// Settings.
    public struct Configuration: Sendable {
        /// The byte budget (`EXT_CACHE_MAX_BYTES`). Default 1 GiB.
        public var maxBytes: Int64
        /// How long a failed fetch is remembered. Default 10 s; 0 turns it off.
        public var negativeTTL: TimeInterval
        /// The most failed hashes remembered at once (the oldest go first). Default 10,000.
        public var negativeCapacity: Int
        /// Archive limits for fills (the 200 MiB cap, decompressed size, entries, ...).
        public var limits: ArchiveLimits
        /// `fsync` every file, folder and the entry before it becomes visible, so a power loss
        /// cannot leave a torn entry. Default false (a killed process never leaves one either way).
        public var durable: Bool
        /// Where fills get signatures; nil (the default) reads the `bundle.sig` side object of
        /// the store (none when it is missing), published when that write-once object was written.
        public var signatures: SignatureSource?
        /// Where metrics go; nil means `MetricsSystem.factory`.
        public var metricsFactory: (any MetricsFactory)?
        /// The prefix of metric labels. Default `extbundles_cache`.
        public var metricsPrefix: String
        /// The clock the negative cache is judged by (injectable for tests).
        public var now: @Sendable () -> Date

        /// Creates a configuration.
        public init(
            maxBytes: Int64 = 1 << 30, negativeTTL: TimeInterval = 10, negativeCapacity: Int = 10_000, limits: ArchiveLimits = .default,
            durable: Bool = false, signatures: SignatureSource? = nil, metricsFactory: (any MetricsFactory)? = nil,
            metricsPrefix: String = "extbundles_cache", now: @escaping @Sendable () -> Date = { Date() }
        ) {
            self.now = now
            self.maxBytes = maxBytes
            self.negativeTTL = negativeTTL
            self.negativeCapacity = negativeCapacity
            self.limits = limits
            self.durable = durable
            self.signatures = signatures
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
        /// Failed hashes remembered now (the negative cache).
        public var failuresRemembered: Int
        /// The entries, most recently used first.
        public var hashes: [String]
    }

    struct Entry: Sendable {
        var hash: ContentHash
        var folder: String
        var metadata: EntryMetadata
        var bytes: Int64
        var lastUse: UInt64

        /// The folder holding the archive's files.
        var bundleFolder: String { folder + "/" + DiskLayout.bundleFolder }
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
    private var failures = NegativeCache()
    /// Entries being deleted (off the actor); a fill of the same hash waits for its removal.
    private var removals: [ContentHash: Task<Void, Never>] = [:]
    private var removalGenerations: [ContentHash: UInt64] = [:]
    private var removalGeneration: UInt64 = 0
    private var compiling: [String: Task<[UInt8], any Error>] = [:]
    private let leases = LeaseTable()
    private let metrics: CacheMetrics

    /// Opens (creating if needed) the cache at `root`, removes what crashed fills left, and
    /// rebuilds the index from the entries on disk. This scan blocks its caller (it runs once,
    /// at start-up).
    ///
    /// The cache owns its folder and removes what it does not recognise in it, so it only opens a
    /// folder that is one: new or empty, marked by an earlier open (`.extbundles-cache`), or
    /// holding nothing but cache entries. Any other folder (a mistyped `EXT_CACHE_ROOT` such as a
    /// home folder) is refused with `CACHE_ROOT_NOT_A_CACHE` and left untouched.
    public init(
        root: String, store: BundleStore, verifier: any Verifier = StreamingBundleVerifier(trust: nil),
        configuration: Configuration = .init()
    ) throws {
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw CacheError(code: .cacheFillFailed, reason: "cannot create the cache folder", path: root, underlying: "\(error)")
        }
        try DiskLayout.claim(root: root)
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
            total = total.addingSaturating(item.bytes)
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
        let ui = entry.metadata.layout.uiPrefix
        return UIHandle(
            hash: hash, root: entry.bundleFolder + "/" + String(decoding: ui.utf8.dropLast(), as: UTF8.self),
            files: entry.metadata.uiFiles, lease: lease(hash))
    }

    public func ensureModuleCached(_ hash: ContentHash) async throws -> ModuleHandle {
        let entry = try await entry(for: hash)
        guard let module = entry.metadata.module else {
            throw CacheError(
                code: .cacheNoModule, reason: "the bundle has no module (\(entry.metadata.layout.modulePath))", hash: hash)
        }
        return ModuleHandle(
            hash: hash, path: entry.bundleFolder + "/" + module.path, size: module.size,
            bundleRoot: entry.bundleFolder + "/" + entry.metadata.layout.base, lease: lease(hash))
    }

    // MARK: - Maintenance

    /// What is cached now.
    public func stats() -> Stats {
        let ordered = entries.values.sorted { $0.lastUse > $1.lastUse }
        return Stats(
            entries: entries.count, bytes: totalBytes, maxBytes: configuration.maxBytes,
            held: entries.keys.filter { leases.count($0) > 0 }.count, failuresRemembered: failures.count(at: configuration.now()),
            hashes: ordered.map(\.hash.prefixed))
    }

    /// Whether an entry for `hash` is on disk.
    public func contains(_ hash: ContentHash) -> Bool { entries[hash] != nil }

    /// Evicts unheld entries, least recently used first, until at most `maxBytes` remain
    /// (default: the budget), and waits until their files are gone. Returns the hashes evicted.
    @discardableResult
    public func prune(maxBytes: Int64? = nil) async -> [ContentHash] {
        let evicted = trim(to: maxBytes ?? configuration.maxBytes)
        await waitForRemovals(evicted)
        return evicted
    }

    /// Evicts every unheld entry and forgets remembered failures, and waits until the files are
    /// gone. Returns the hashes evicted.
    @discardableResult
    public func clear() async -> [ContentHash] {
        failures.removeAll()
        let evicted = trim(to: 0)
        await waitForRemovals(evicted)
        return evicted
    }

    private func waitForRemovals(_ hashes: [ContentHash]) async {
        for hash in hashes { await removals[hash]?.value }
    }

    /// Waits until the files of every entry evicted so far are gone (evictions delete them off
    /// the actor); for shutdown and tests.
    public func flush() async {
        while let pending = removals.values.first { await pending.value }
    }

    // MARK: - Compiled modules

    /// A module compiled by `compiler`, cached beside the bundle (in the entry's `compiled/`
    /// folder, which no archive path reaches) under (content hash, compiler id and version,
    /// target triple) and handed to `load`. An artifact that `load` refuses is deleted and
    /// compiled again (it counts as a miss). Concurrent calls for one key share one lookup and
    /// at most one compile, whose bytes are counted once; reading, loading, compiling and
    /// writing artifacts all happen off the actor.
    public nonisolated func ensureCompiled<T: Sendable>(
        _ hash: ContentHash, compiler: any ModuleCompiler, load: @escaping @Sendable ([UInt8]) throws -> T
    ) async throws -> T {
        let module = try await ensureModuleCached(hash)
        let task = try await compileTask(hash, module: module, compiler: compiler) { try load($0) }
        let artifact = try await task.value
        _ = module  // the entry stays held until the artifact is loaded
        return try load(artifact)
    }

    /// The one lookup-or-compile of a key, shared by concurrent callers.
    private func compileTask(
        _ hash: ContentHash, module: ModuleHandle, compiler: any ModuleCompiler, validate: @escaping @Sendable ([UInt8]) throws -> Void
    ) throws -> Task<[UInt8], any Error> {
        guard let entry = entries[hash] else { throw CacheError(code: .cacheFillFailed, reason: "the entry was evicted", hash: hash) }
        let name = compiler.artifactName
        let key = hash.hex + "/" + name
        if let running = compiling[key] { return running }
        let path = entry.folder + "/" + DiskLayout.compiledFolder + "/" + name
        let durable = configuration.durable
        let metrics = self.metrics
        let task = Task.detached { () throws -> [UInt8] in
            var dropped = 0
            if let cached = try? await BlockingIO.shared.run({ try DiskLayout.readFile(path) }) {
                if (try? validate(cached)) != nil {
                    metrics.compiledHits.increment()
                    await self.compileDone(key, hash: hash, delta: 0)
                    return cached
                }
                // A stale or damaged artifact: drop it and compile again.
                await BlockingIO.shared.run { _ = unlink(path) }
                dropped = cached.count
            }
            metrics.compiledMisses.increment()
            let artifact: [UInt8]
            do {
                artifact = try await compiler.compile(try await module.bytes())
                try validate(artifact)
            } catch {
                await self.compileDone(key, hash: hash, delta: -Int64(dropped))
                throw CacheError(
                    code: .cacheCompileFailed, reason: "the module could not be compiled", hash: hash, underlying: String(reflecting: error))
            }
            // Caching is an optimisation: the compiled module is returned even if it cannot be kept.
            let stored = await BlockingIO.shared.run { DiskLayout.replaceFile(path, artifact, sync: durable) }
            await self.compileDone(key, hash: hash, delta: (stored ? Int64(artifact.count) : 0) - Int64(dropped))
            return artifact
        }
        compiling[key] = task
        return task
    }

    private func compileDone(_ key: String, hash: ContentHash, delta: Int64) {
        compiling[key] = nil
        guard delta != 0 else { return }
        adjust(hash, by: delta)
        if delta > 0 { trim(excluding: hash) }
    }

    // MARK: - Internals

    private func entry(for hash: ContentHash) async throws -> Entry {
        if let entry = entries[hash] {
            useClock &+= 1
            entries[hash]?.lastUse = useClock
            metrics.hits.increment()
            return entry
        }
        if let error = failures.error(for: hash, at: configuration.now()) { throw error }
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
        let removal = removals[hash]
        let task = Task { () throws -> Entry in
            // An eviction of this hash still deleting its files goes first.
            await removal?.value
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
        totalBytes = totalBytes.addingSaturating(entry.bytes)
        trim(excluding: filled.hash)
    }

    private func remember(_ hash: ContentHash, _ error: any Error) {
        inFlight[hash] = nil
        guard configuration.negativeTTL > 0 else { return }
        let now = configuration.now()
        failures.insert(hash, error, until: now.addingTimeInterval(configuration.negativeTTL), now: now, capacity: configuration.negativeCapacity)
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

    /// Drops unheld entries from the index, least recently used first, until the total fits;
    /// their files are deleted off the actor (renamed to trash first, so no half-deleted entry
    /// is ever seen under its name).
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
                entries[candidate.hash] = nil
                totalBytes -= candidate.bytes
                evicted.append(candidate.hash)
                metrics.evictions.increment()
                scheduleRemoval(candidate)
            }
        }
        leases.setOverBudget(totalBytes > configuration.maxBytes)
        metrics.record(bytes: totalBytes, entries: entries.count)
        return evicted
    }

    private func scheduleRemoval(_ entry: Entry) {
        let root = self.root
        let previous = removals[entry.hash]
        removalGeneration &+= 1
        let generation = removalGeneration
        let task = Task {
            await previous?.value
            await BlockingIO.shared.run { DiskLayout.remove(entry.folder, root: root) }
            self.removalDone(entry.hash, generation)
        }
        removals[entry.hash] = task
        removalGenerations[entry.hash] = generation
    }

    private func removalDone(_ hash: ContentHash, _ generation: UInt64) {
        // Only the newest removal of a hash clears the slot (a newer one chains after it).
        guard removalGenerations[hash] == generation else { return }
        removals[hash] = nil
        removalGenerations[hash] = nil
    }
}

/// Failed fetches remembered for a while: bounded in count, expired ones dropped as new ones
/// come, so asking for endless random hashes costs bounded memory and one fetch per hash per TTL.
struct NegativeCache {
    private var entries: [ContentHash: (until: Date, error: any Error)] = [:]
    private var order: [(hash: ContentHash, until: Date)] = []
    private var head = 0

    /// The remembered error of `hash`, if it has not expired.
    mutating func error(for hash: ContentHash, at now: Date) -> (any Error)? {
        guard let entry = entries[hash] else { return nil }
        if entry.until > now { return entry.error }
        entries[hash] = nil
        return nil
    }

    /// How many unexpired failures are remembered.
    func count(at now: Date) -> Int { entries.values.filter { $0.until > now }.count }

    /// Remembers `error` for `hash` until `until`, dropping expired entries and then the oldest
    /// beyond `capacity`.
    mutating func insert(_ hash: ContentHash, _ error: any Error, until: Date, now: Date, capacity: Int) {
        entries[hash] = (until, error)
        order.append((hash, until))
        // Oldest first: drop what expired, then what is over capacity. An order record whose
        // hash was remembered again later (a newer `until`) no longer owns the entry.
        while head < order.count {
            let oldest = order[head]
            let owns = entries[oldest.hash].map { $0.until == oldest.until } ?? false
            guard !owns || oldest.until <= now || entries.count > max(1, capacity) else { break }
            if owns { entries[oldest.hash] = nil }
            head += 1
        }
        if head > 1_024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    /// Forgets everything.
    mutating func removeAll() {
        entries = [:]
        order = []
        head = 0
    }
}

extension Int64 {
    /// `self + other`, or `.max` when that overflows (sizes summed from a file system).
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
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
