import BundleCore
import BundleStore
import Foundation
import MetricsTestKit
import RunnerCache
import StoreTestSupport
import Testing
import TestSupport

/// The `ModuleCache` conformance suite, run against `DiskModuleCache` over every store backend.
@Suite struct ModuleCacheConformanceTests {
    @Test(arguments: Backend.available)
    func aColdMissFillsAndAWarmCallHits(store: Backend) async throws {
        let fixture = try CacheFixture(store)
        let bundle = try CacheBundle()
        try await fixture.publish(bundle)
        let cache = try fixture.cache()
        let ui = try await cache.ensureUiCached(bundle.hash)
        #expect(ui.hasIndex)
        #expect(ui.root == fixture.root + "/" + bundle.hash.hex + "/ui")
        #expect(FileManager.default.contents(atPath: ui.path(of: "index.html")).map(Array.init) == bundle.index)
        #expect(ui.files["index.html"]?.etag == "\"sha256-\(ContentHash.of(bundle.index).hex)\"")
        #expect(ui.files["assets/app.js"]?.size == Int64("console.log(1)".utf8.count))
        let module = try await cache.ensureModuleCached(bundle.hash)
        #expect(try module.bytes() == bundle.mainWasm)
        #expect(module.size == Int64(bundle.mainWasm.count))
        #expect(fixture.objects.gets.withLock { $0 } == 1)
        #expect(fixture.names() == [bundle.hash.hex])
        #expect(fixture.counter("hits") == 1 && fixture.counter("misses") == 1 && fixture.counter("fetches") == 1)
        let bytes = await cache.stats().bytes
        #expect(bytes > Int64(bundle.mainWasm.count))
        #expect(try fixture.metrics.expectGauge("extbundles_cache_bytes").lastValue == Double(bytes))
        #expect(try fixture.metrics.expectGauge("extbundles_cache_entries").lastValue == 1)
    }

    @Test(arguments: Backend.available)
    func failuresLeaveNothingAndAreRemembered(store: Backend) async throws {
        let fixture = try CacheFixture(store)
        let cache = try fixture.cache()
        // Not in the store.
        let missing = ContentHash.of([1, 2, 3])
        let notFound = await #expect(throws: CacheError.self) { try await cache.ensureUiCached(missing) }
        #expect(notFound?.code == .cacheNotFound)
        // Remembered: a second call within the TTL does not touch the store.
        let gets = fixture.objects.gets.withLock { $0 }
        await #expect(throws: CacheError.self) { try await cache.ensureModuleCached(missing) }
        #expect(fixture.objects.gets.withLock { $0 } == gets)

        // Bytes under another bundle's hash: a mismatch, with both hashes.
        let bundle = try CacheBundle(seed: 2)
        let claimed = ContentHash.of(Array("claimed".utf8))
        try await fixture.objects.put(fixture.store.bundleKey(for: claimed), bytes: bundle.bytes)
        let mismatch = await #expect(throws: CacheError.self) { try await cache.ensureUiCached(claimed) }
        #expect(mismatch?.code == .cacheHashMismatch)
        #expect(mismatch?.expected == claimed.prefixed && mismatch?.actual == bundle.hash.prefixed)

        // The right hash of bytes that are not an archive (Alga's 1,024 bytes of 0x1F).
        let junk = [UInt8](repeating: 0x1f, count: 1_024)
        _ = try await fixture.store.putBundle(.bytes(junk), expected: ContentHash.of(junk))
        let corrupt = await #expect(throws: CacheError.self) { try await cache.ensureUiCached(ContentHash.of(junk)) }
        #expect(corrupt?.code == .cacheFillFailed)
        #expect(corrupt?.underlyingCode?.hasPrefix("ZSTD") == true || corrupt?.underlyingCode?.hasPrefix("ARCHIVE") == true)
        #expect(fixture.names().isEmpty)
        #expect(fixture.counter("fetch_failures") == 3)
        #expect(await cache.stats().entries == 0)
    }

    @Test(arguments: Backend.available)
    func aFailureIsForgottenAfterItsTTL(store: Backend) async throws {
        let fixture = try CacheFixture(store)
        let cache = try fixture.cache(negativeTTL: 10)
        let bundle = try CacheBundle(seed: 3)
        await #expect(throws: CacheError.self) { try await cache.ensureUiCached(bundle.hash) }
        try await fixture.publish(bundle)
        fixture.clock.withLock { $0 += 9 }
        await #expect(throws: CacheError.self) { try await cache.ensureUiCached(bundle.hash) }  // still remembered
        #expect(fixture.objects.gets.withLock { $0 } == 1)
        fixture.clock.withLock { $0 += 2 }
        #expect(try await cache.ensureUiCached(bundle.hash).hasIndex)
        #expect(fixture.objects.gets.withLock { $0 } == 2)
    }

    @Test(arguments: Backend.available)
    func bundlesWithoutAModuleOrWithAFolderLevel(store: Backend) async throws {
        let fixture = try CacheFixture(store)
        let cache = try fixture.cache()
        let uiOnly = try CacheBundle(seed: 4, withModule: false)
        try await fixture.publish(uiOnly)
        #expect(try await cache.ensureUiCached(uiOnly.hash).hasIndex)
        let noModule = await #expect(throws: CacheError.self) { try await cache.ensureModuleCached(uiOnly.hash) }
        #expect(noModule?.code == .cacheNoModule)

        let nested = try CacheBundle(seed: 5, folder: "ext/")
        try await fixture.publish(nested)
        let ui = try await cache.ensureUiCached(nested.hash)
        #expect(ui.root.hasSuffix("/\(nested.hash.hex)/ext/ui"))
        #expect(ui.hasIndex)
        #expect(try await cache.ensureModuleCached(nested.hash).bytes() == nested.mainWasm)
    }

    @Test(arguments: Backend.available)
    func oneHundredConcurrentColdMissesMakeOneGet(store: Backend) async throws {
        let fixture = try CacheFixture(store)
        let bundle = try CacheBundle(seed: 6, wasmBytes: 2_000_000)
        try await fixture.publish(bundle)
        let cache = try fixture.cache()
        let roots = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<100 { group.addTask { try await cache.ensureUiCached(bundle.hash).root } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(roots.count == 1)
        #expect(fixture.objects.gets.withLock { $0 } == 1)
        #expect(fixture.counter("fetches") == 1)
    }
}

@Suite struct CacheEvictionTests {
    @Test func leastRecentlyUsedUnheldEntriesGoAndHeldOnesStay() async throws {
        let fixture = try CacheFixture(.filesystem)
        let bundles = try (1...5).map { try CacheBundle(seed: UInt64(10 + $0), wasmBytes: 100_000) }
        for bundle in bundles { try await fixture.publish(bundle) }
        // Measure one entry, then set a budget of three.
        let probe = try fixture.cache()
        _ = try await probe.ensureUiCached(bundles[0].hash)
        let entryBytes = await probe.stats().bytes
        await probe.clear()
        let evictionsBefore = fixture.counter("evictions")
        let budget = entryBytes * 3 + entryBytes / 2
        let cache = try fixture.cache(maxBytes: budget)

        var held: [UIHandle] = []
        for (index, bundle) in bundles.enumerated() {
            let handle = try await cache.ensureUiCached(bundle.hash)
            if index == 0 || index == 2 { held.append(handle) }  // A and C stay held
            let stats = await cache.stats()
            #expect(stats.bytes <= budget, "after fill \(index): \(stats.bytes) > \(budget)")
            for kept in held { #expect(await cache.contains(kept.hash)) }
        }
        // B went when D came, D when E came: the least recently used unheld ones.
        let present = await Set((0..<5).asyncFilter { await cache.contains(bundles[$0].hash) })
        #expect(present == [0, 2, 4])
        #expect(fixture.counter("evictions") - evictionsBefore == 2)
        #expect(Set(fixture.names()) == Set([0, 2, 4].map { bundles[$0].hash.hex }))
        // Held entries survive an explicit prune; released ones do not.
        await cache.prune(maxBytes: 0)
        #expect(await cache.stats().entries == 2)
        held.removeFirst()
        await cache.prune(maxBytes: 0)
        #expect(await cache.stats().hashes == [bundles[2].hash.prefixed])
        _ = held
    }

    @Test func theIndexIsRebuiltAndLeftoversAreRemovedAtStartUp() async throws {
        let fixture = try CacheFixture(.filesystem)
        let bundle = try CacheBundle(seed: 20)
        try await fixture.publish(bundle)
        do {
            let cache = try fixture.cache()
            _ = try await cache.ensureUiCached(bundle.hash)
        }
        // Leftovers of a crash: a temporary folder of a dead process, trash, an entry without metadata.
        let fake = String(repeating: "a", count: 64)
        for name in [".tmp-\(fake)-999999-1", ".trash-1-2", fake] {
            try FileManager.default.createDirectory(atPath: fixture.root + "/" + name + "/ui", withIntermediateDirectories: true)
            try Data("x".utf8).write(to: URL(fileURLWithPath: fixture.root + "/" + name + "/ui/index.html"))
        }
        let reopened = try fixture.cache()
        #expect(fixture.names() == [bundle.hash.hex])
        #expect(await reopened.stats().entries == 1)
        let gets = fixture.objects.gets.withLock { $0 }
        #expect(try await reopened.ensureUiCached(bundle.hash).files["index.html"]?.etag == "\"sha256-\(ContentHash.of(bundle.index).hex)\"")
        #expect(fixture.objects.gets.withLock { $0 } == gets)
        // The fake entry is gone and is a miss now.
        await #expect(throws: CacheError.self) { try await reopened.ensureUiCached(try ContentHash(parsing: fake)) }
    }
}

@Suite struct CompiledModuleTests {
    struct FakeCompiler: ModuleCompiler {
        var identifier = "fake"
        var version = "1"
        var targetTriple = "x86_64-unknown-linux-gnu"
        let compiles = LockedValue(0)

        func compile(_ module: [UInt8]) async throws -> [UInt8] {
            compiles.withLock { $0 += 1 }
            return Array("CWASM".utf8) + module.reversed()
        }
    }

    static func load(_ artifact: [UInt8]) throws -> Int {
        guard artifact.starts(with: Array("CWASM".utf8)) else { throw CacheError(code: .cacheCompileFailed, reason: "not an artifact") }
        return artifact.count
    }

    @Test func compiledModulesAreCachedByHashCompilerAndTarget() async throws {
        let fixture = try CacheFixture(.filesystem)
        let bundle = try CacheBundle(seed: 30)
        try await fixture.publish(bundle)
        let cache = try fixture.cache()
        let compiler = FakeCompiler()
        #expect(try await cache.ensureCompiled(bundle.hash, compiler: compiler, load: Self.load) == bundle.mainWasm.count + 5)
        #expect(try await cache.ensureCompiled(bundle.hash, compiler: compiler, load: Self.load) == bundle.mainWasm.count + 5)
        #expect(compiler.compiles.withLock { $0 } == 1)
        #expect(fixture.counter("compiled_hits") == 1 && fixture.counter("compiled_misses") == 1)
        // Another version is another key.
        let newer = FakeCompiler(version: "2")
        _ = try await cache.ensureCompiled(bundle.hash, compiler: newer, load: Self.load)
        #expect(newer.compiles.withLock { $0 } == 1)
        let artifacts = try FileManager.default.contentsOfDirectory(atPath: fixture.root + "/\(bundle.hash.hex)/.compiled").sorted()
        #expect(artifacts == ["fake--1--x86_64-unknown-linux-gnu.cwasm", "fake--2--x86_64-unknown-linux-gnu.cwasm"])
        // The artifacts count toward the entry's bytes, and are found again after a restart.
        let bytes = await cache.stats().bytes
        #expect(bytes > Int64(2 * bundle.mainWasm.count))
        #expect(try await fixture.cache().stats().bytes == bytes)
        // An artifact that fails to load is evicted and counts as a miss.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: fixture.root + "/\(bundle.hash.hex)/.compiled/" + artifacts[0]))
        _ = try await cache.ensureCompiled(bundle.hash, compiler: compiler, load: Self.load)
        #expect(compiler.compiles.withLock { $0 } == 2)
        #expect(fixture.counter("compiled_misses") == 3)
    }
}

extension Sequence where Element: Sendable {
    func asyncFilter(_ predicate: (Element) async -> Bool) async -> [Element] {
        var out: [Element] = []
        for element in self where await predicate(element) { out.append(element) }
        return out
    }
}
