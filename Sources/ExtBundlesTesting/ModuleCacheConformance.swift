import BundleArchive
public import BundleCore
public import BundleStore
import Foundation
public import RunnerCache
public import Testing

/// The ``RunnerCache/ModuleCache`` contract as checks any cache can run: ours run it against
/// `DiskModuleCache` over every store backend, and a cache of yours proves itself the same way.
///
/// Each check gets a fresh object store (from `makeObjectStore`, the in-memory one by default),
/// wraps it to count reads, publishes the bundles it needs into a `BundleStore` over it, and asks
/// `makeCache` for a cache over that store. Failures are recorded with `#expect`.
public struct ModuleCacheConformance: Sendable {
    /// The checks, one per rule of the contract.
    public enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case aColdMissFillsAndAWarmCallHits
        case failuresAreTypedAndServeNothing
        case bundlesWithoutAModuleOrWithAFolderLevel
        case concurrentColdMissesMakeOneFetch
        case hostileArchivesAreRefused
        case aBundleCannotPlantCacheFiles

        /// The name in test output.
        public var testDescription: String { rawValue }
    }

    /// Makes the object store of each check.
    public let makeObjectStore: @Sendable () async throws -> any ObjectStore
    /// Makes the cache under test over a bundle store.
    public let makeCache: @Sendable (BundleStore) async throws -> any ModuleCache

    /// Creates the suite.
    public init(
        makeObjectStore: @escaping @Sendable () async throws -> any ObjectStore = { InMemoryObjectStore() },
        makeCache: @escaping @Sendable (BundleStore) async throws -> any ModuleCache
    ) {
        self.makeObjectStore = makeObjectStore
        self.makeCache = makeCache
    }

    /// Runs every check.
    public func runAll() async throws {
        for check in Check.allCases { try await run(check) }
    }

    /// Runs one check.
    public func run(_ check: Check) async throws {
        let objects = CountingObjectStore(base: try await makeObjectStore())
        let store = try BundleStore(objects: objects)
        switch check {
        case .aColdMissFillsAndAWarmCallHits: try await aColdMissFillsAndAWarmCallHits(store, objects)
        case .failuresAreTypedAndServeNothing: try await failuresAreTypedAndServeNothing(store, objects)
        case .bundlesWithoutAModuleOrWithAFolderLevel: try await bundlesWithoutAModuleOrWithAFolderLevel(store)
        case .concurrentColdMissesMakeOneFetch: try await concurrentColdMissesMakeOneFetch(store, objects)
        case .hostileArchivesAreRefused: try await hostileArchivesAreRefused(store)
        case .aBundleCannotPlantCacheFiles: try await aBundleCannotPlantCacheFiles(store)
        }
    }

    func aColdMissFillsAndAWarmCallHits(_ store: BundleStore, _ objects: CountingObjectStore) async throws {
        let bundle = try TestBundle(seed: 1)
        try await bundle.publish(to: store)
        let cache = try await makeCache(store)
        let ui = try await cache.ensureUiCached(bundle.hash)
        #expect(ui.hash == bundle.hash)
        #expect(ui.hasIndex)
        #expect(FileManager.default.contents(atPath: ui.path(of: "index.html")).map(Array.init) == bundle.index)
        #expect(ui.files["index.html"]?.etag == "\"sha256-\(ContentHash.of(bundle.index).hex)\"")
        #expect(ui.files["assets/app.js"]?.size == Int64(bundle.script.count))
        let module = try await cache.ensureModuleCached(bundle.hash)
        #expect(try await module.bytes() == bundle.module)
        #expect(module.size == Int64(bundle.module.count))
        _ = try await cache.ensureUiCached(bundle.hash)
        #expect(objects.gets.withLock { $0 } == 1, "one fetch for a miss and the hits after it")
    }

    func failuresAreTypedAndServeNothing(_ store: BundleStore, _ objects: CountingObjectStore) async throws {
        let cache = try await makeCache(store)
        // Not in the store.
        let missing = ContentHash.of([1, 2, 3])
        let notFound = await #expect(throws: CacheError.self) { try await cache.ensureUiCached(missing) }
        #expect(notFound?.code == .cacheNotFound)
        #expect(notFound?.hash == missing)
        // Bytes under another bundle's hash: a mismatch naming both hashes.
        let bundle = try TestBundle(seed: 2)
        let claimed = ContentHash.of(Array("claimed".utf8))
        try await objects.put(store.bundleKey(for: claimed), bytes: bundle.bytes)
        let mismatch = await #expect(throws: CacheError.self) { try await cache.ensureUiCached(claimed) }
        #expect(mismatch?.code == .cacheHashMismatch)
        #expect(mismatch?.expected == claimed.prefixed && mismatch?.actual == bundle.hash.prefixed)
        await #expect(throws: CacheError.self) { try await cache.ensureModuleCached(claimed) }
        // The right hash of bytes that are not an archive (Alga's 1,024 bytes of 0x1F).
        let junk = [UInt8](repeating: 0x1f, count: 1_024)
        _ = try await store.putBundle(.bytes(junk), expected: ContentHash.of(junk))
        let corrupt = await #expect(throws: CacheError.self) { try await cache.ensureUiCached(ContentHash.of(junk)) }
        #expect(corrupt?.code == .cacheFillFailed)
    }

    func bundlesWithoutAModuleOrWithAFolderLevel(_ store: BundleStore) async throws {
        let cache = try await makeCache(store)
        let uiOnly = try TestBundle(seed: 4, withModule: false)
        try await uiOnly.publish(to: store)
        #expect(try await cache.ensureUiCached(uiOnly.hash).hasIndex)
        let noModule = await #expect(throws: CacheError.self) { try await cache.ensureModuleCached(uiOnly.hash) }
        #expect(noModule?.code == .cacheNoModule)

        // Everything one folder down (`ext/manifest.json`, `ext/ui/...`): the layout follows the manifest.
        let nested = try TestBundle(seed: 5, folder: "ext/")
        try await nested.publish(to: store)
        let ui = try await cache.ensureUiCached(nested.hash)
        #expect(ui.hasIndex)
        #expect(FileManager.default.contents(atPath: ui.path(of: "index.html")).map(Array.init) == nested.index)
        #expect(try await cache.ensureModuleCached(nested.hash).bytes() == nested.module)
    }

    func concurrentColdMissesMakeOneFetch(_ store: BundleStore, _ objects: CountingObjectStore) async throws {
        let bundle = try TestBundle(seed: 6, moduleBytes: 2_000_000)
        try await bundle.publish(to: store)
        let cache = try await makeCache(store)
        let roots = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<100 { group.addTask { try await cache.ensureUiCached(bundle.hash).root } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(roots.count == 1)
        #expect(objects.gets.withLock { $0 } == 1)
    }

    func hostileArchivesAreRefused(_ store: BundleStore) async throws {
        let cache = try await makeCache(store)
        for name in TestBundle.escapingNames {
            let bytes = try TestBundle.rawArchive([("manifest.json", Array(TestBundle.manifest(seed: 9).utf8)), (name, Array("pwned".utf8))])
            let hash = ContentHash.of(bytes)
            _ = try await store.putBundle(.bytes(bytes), expected: hash)
            let error = await #expect(throws: CacheError.self, "\(name.debugDescription)") { try await cache.ensureUiCached(hash) }
            #expect(error?.code == .cacheFillFailed, "\(name.debugDescription)")
            #expect(error?.hash == hash)
        }
    }

    func aBundleCannotPlantCacheFiles(_ store: BundleStore) async throws {
        // Names a cache might use for its own files: the bundle's copies are only bundle files.
        let module = Conformance.randomBytes(3_000, seed: 21)
        let planted = Array("planted".utf8)
        var files: [(String, [UInt8])] = [("manifest.json", Array(TestBundle.manifest(seed: 21).utf8)), ("dist/main.wasm", module)]
        for name in ["meta.json", ".entry.json", ".compiled/wasmkit--1--x86_64.cwasm", "compiled/wasmkit--1--x86_64.cwasm", "bundle/dist/main.wasm"] {
            files.append((name, planted))
        }
        files.append(("ui/index.html", Array("<p>ok</p>".utf8)))
        let bytes = try TestBundle.rawArchive(files)
        let hash = ContentHash.of(bytes)
        _ = try await store.putBundle(.bytes(bytes), expected: hash)
        let cache = try await makeCache(store)
        #expect(try await cache.ensureModuleCached(hash).bytes() == module)
        let ui = try await cache.ensureUiCached(hash)
        #expect(ui.files.keys.sorted() == ["index.html"])
    }
}

/// A forwarding store that counts GETs of bundles (`…/bundle.tar.zst`; side objects such as
/// `bundle.sig` are not counted).
public struct CountingObjectStore: ObjectStore {
    /// The wrapped store.
    public let base: any ObjectStore
    /// Bundle GETs so far.
    public let gets = LockedValue(0)

    /// Wraps `base`.
    public init(base: any ObjectStore) { self.base = base }

    public func head(_ key: String) async throws -> ObjectInfo? { try await base.head(key) }
    public func get(_ key: String, range: ByteRange?) async throws -> ObjectBody {
        if key.utf8.reversed().starts(with: "/bundle.tar.zst".utf8.reversed()) { gets.withLock { $0 += 1 } }
        return try await base.get(key, range: range)
    }
    public func put(_ key: String, body: ByteStream, length: Int64?, condition: WriteCondition) async throws -> ObjectInfo {
        try await base.put(key, body: body, length: length, condition: condition)
    }
    public func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo {
        try await base.copy(from: source, to: destination, condition: condition, sourceETag: sourceETag)
    }
    public func delete(_ key: String) async throws { try await base.delete(key) }
    public func list(prefix: String, continuation: String?, limit: Int) async throws -> ObjectListing {
        try await base.list(prefix: prefix, continuation: continuation, limit: limit)
    }
}

/// A small packed bundle for cache checks.
public struct TestBundle: Sendable {
    /// The compressed bytes.
    public let bytes: [UInt8]
    /// Their hash.
    public let hash: ContentHash
    /// `dist/main.wasm`.
    public let module: [UInt8]
    /// `ui/index.html`.
    public let index: [UInt8]
    /// `ui/assets/app.js`.
    public let script: [UInt8]

    /// Entry names that try to leave the extraction folder, each of which a cache must refuse:
    /// `..`, absolute paths, and `/` bytes hidden in grapheme clusters.
    public static let escapingNames = [
        "../escape.txt", "/tmp/escape.txt", "ui/../../escape.txt", "../\u{301}escape.txt", "/\u{301}tmp/escape.txt",
        "../\u{200D}escape.txt", "ui/\u{600}/../../escape.txt", "ui/\u{1B}[2Jescape.txt",
    ]

    /// A manifest for test bundles.
    public static func manifest(seed: UInt64) -> String {
        #"{"name":"com.acme.cache","publisher":"Acme","version":"1.0.\#(seed)","runtime":"wasm-js@1"}"#
    }

    /// Packs a bundle (one folder down with `folder: "ext/"`).
    public init(seed: UInt64, moduleBytes: Int = 40_000, withModule: Bool = true, folder: String = "") throws {
        module = Conformance.randomBytes(moduleBytes, seed: seed)
        index = Array("<!doctype html><title>\(seed)</title>".utf8)
        script = Array("console.log(\(seed))".utf8)
        var files: [(String, [UInt8])] = [(folder + "manifest.json", Array(Self.manifest(seed: seed).utf8))]
        if withModule { files.append((folder + "dist/main.wasm", module)) }
        files += [(folder + "ui/index.html", index), (folder + "ui/assets/app.js", script)]
        bytes = try Self.rawArchive(files)
        hash = ContentHash.of(bytes)
    }

    /// Stores the bundle.
    public func publish(to store: BundleStore) async throws {
        _ = try await store.putBundle(.bytes(bytes), expected: hash)
    }

    /// A tar.zst of `files` written as given: names verbatim (hostile ones too), in this order.
    public static func rawArchive(_ files: [(String, [UInt8])]) throws -> [UInt8] {
        var tar: [UInt8] = []
        for (name, data) in files {
            tar += TarWriter.header(path: Array(name.utf8), isDirectory: false, size: Int64(data.count), mode: 0o644, mtime: 0)
            tar += data
            tar += [UInt8](repeating: 0, count: Int(TarWriter.padding(Int64(data.count))))
        }
        tar += TarWriter.endOfArchive
        var out: [UInt8] = []
        func emit(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) { out.append(contentsOf: chunk) }
        let encoder = try ZstdEncoder(configuration: .init(level: 3, workers: 0), pledgedSize: UInt64(tar.count))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, tar.count), alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: tar)
        try encoder.encode(UnsafeRawBufferPointer(rebasing: buffer[0..<tar.count]), into: emit)
        try encoder.finish(into: emit)
        return out
    }
}
