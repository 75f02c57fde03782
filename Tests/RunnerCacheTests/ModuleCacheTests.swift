import BundleCore
import BundleStore
import BundleVerify
import CoreFoundation
import Foundation
import MetricsTestKit
import RunnerCache
import StoreTestSupport
import ExtBundlesTesting
import Testing
import TestSupport

/// The `ModuleCache` contract (ExtBundlesTesting's `ModuleCacheConformance`), run against
/// `DiskModuleCache` over every store backend.
@Suite struct ModuleCacheConformanceTests {
    @Test(arguments: Backend.available, ModuleCacheConformance.Check.allCases)
    func conformance(_ backend: Backend, _ check: ModuleCacheConformance.Check) async throws {
        let folder = try TestSupport.makeTemporaryDirectory("cache-conformance")
        let fixtures = LockedValue<[StoreFixture]>([])
        defer {
            fixtures.withLock { $0.removeAll() }
            try? FileManager.default.removeItem(atPath: folder)
        }
        try await ModuleCacheConformance(
            makeObjectStore: {
                let fixture = try backend.make()
                fixtures.withLock { $0.append(fixture) }
                return fixture.store
            },
            makeCache: { store in try DiskModuleCache(root: folder + "/root", store: store) }
        ).run(check)
    }
}

/// What `DiskModuleCache` adds to the contract: its layout on disk, metrics, the negative cache.
@Suite struct DiskModuleCacheTests {
    /// An entry planted as a symlink to a complete entry elsewhere is not served (and the link
    /// goes, its target stays); a folder that is not empty and not marked is never taken over,
    /// even when all it holds are 64-hex names, like a store's `sha256/` folder.
    @Test func plantedLinksAndForeignFoldersAreNeverTakenOver() async throws {
        let fixture = try CacheFixture(.memory)
        let bundle = try CacheBundle(seed: 21)
        try await fixture.publish(bundle)
        let elsewhere = try TestSupport.makeTemporaryDirectory("cache-elsewhere")
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        // A real, complete entry filled in another cache folder...
        let other = try DiskModuleCache(root: elsewhere + "/cache", store: fixture.store, verifier: StreamingBundleVerifier(trust: nil))
        _ = try await other.ensureUiCached(bundle.hash)
        // ...linked into this one under its hash.
        let cache = try fixture.cache()
        _ = cache
        try FileManager.default.createSymbolicLink(atPath: fixture.root + "/" + bundle.hash.hex, withDestinationPath: elsewhere + "/cache/" + bundle.hash.hex)
        let reopened = try fixture.cache()
        #expect(await reopened.contains(bundle.hash) == false)
        #expect(TestSupport.listing(elsewhere + "/cache").contains(bundle.hash.hex))
        #expect(fixture.names().isEmpty)

        let store = elsewhere + "/store-sha256"
        try FileManager.default.createDirectory(atPath: store + "/" + bundle.hash.hex, withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: store + "/" + bundle.hash.hex + "/bundle.tar.zst"))
        let before = TestSupport.rawTree(store)
        let refused = #expect(throws: CacheError.self) {
            _ = try DiskModuleCache(root: store, store: fixture.store, verifier: StreamingBundleVerifier(trust: nil))
        }
        #expect(refused?.code == .cacheRootNotACache)
        #expect(TestSupport.rawTree(store) == before)
    }

    @Test(arguments: Backend.available)
    func aColdMissLaysOutTheEntryAndCountsIt(store: Backend) async throws {
        let fixture = try CacheFixture(store)
        let bundle = try CacheBundle()
        try await fixture.publish(bundle)
        let cache = try fixture.cache()
        let ui = try await cache.ensureUiCached(bundle.hash)
        // The archive's files under bundle/, the cache's own beside them.
        #expect(ui.root == fixture.root + "/" + bundle.hash.hex + "/bundle/ui")
        #expect(TestSupport.listing(fixture.root + "/" + bundle.hash.hex) == ["bundle", "meta.json"])
        let module = try await cache.ensureModuleCached(bundle.hash)
        #expect(module.path == fixture.root + "/" + bundle.hash.hex + "/bundle/dist/main.wasm")
        #expect(try await module.bytes() == bundle.mainWasm)
        #expect(fixture.names() == [bundle.hash.hex])
        #expect(fixture.counter("hits") == 1 && fixture.counter("misses") == 1 && fixture.counter("fetches") == 1)
        let bytes = await cache.stats().bytes
        #expect(bytes > Int64(bundle.mainWasm.count))
        #expect(try fixture.metrics.expectGauge("extbundles_cache_bytes").lastValue == Double(bytes))
        #expect(try fixture.metrics.expectGauge("extbundles_cache_entries").lastValue == 1)
    }

    @Test(arguments: Backend.available)
    func failuresAreRememberedForTheirTTLAndLeaveNothing(store: Backend) async throws {
        let fixture = try CacheFixture(store)
        let cache = try fixture.cache(negativeTTL: 10)
        let bundle = try CacheBundle(seed: 3)
        await #expect(throws: CacheError.self) { try await cache.ensureUiCached(bundle.hash) }
        try await fixture.publish(bundle)
        fixture.clock.withLock { $0 += 9 }
        await #expect(throws: CacheError.self) { try await cache.ensureModuleCached(bundle.hash) }  // still remembered
        #expect(fixture.objects.gets.withLock { $0 } == 1)
        #expect(fixture.names().isEmpty)
        fixture.clock.withLock { $0 += 2 }
        #expect(try await cache.ensureUiCached(bundle.hash).hasIndex)
        #expect(fixture.objects.gets.withLock { $0 } == 2)
        #expect(fixture.counter("fetch_failures") == 1)
    }

    @Test func theNegativeCacheIsBoundedAndForgetsExpiredHashes() async throws {
        let fixture = try CacheFixture(.memory)
        // 10,000 random well-formed hashes, each asked twice within the TTL: one GET each.
        let cache = try fixture.cache(negativeTTL: 10)
        let hashes = (0..<10_000).map { ContentHash.of(Array("random-\($0)".utf8)) }
        for _ in 0..<2 {
            for hash in hashes { _ = try? await cache.ensureUiCached(hash) }
        }
        #expect(fixture.objects.gets.withLock { $0 } == 10_000)
        #expect(await cache.stats().failuresRemembered == 10_000)
        // Once expired, they go as new failures come: memory does not grow with the hashes asked.
        fixture.clock.withLock { $0 += 11 }
        _ = try? await cache.ensureUiCached(ContentHash.of(Array("one more".utf8)))
        #expect(await cache.stats().failuresRemembered == 1)
        // A capacity bounds it within the TTL too.
        let small = try fixture.cache(negativeTTL: 10, negativeCapacity: 1_000)
        for hash in hashes { _ = try? await small.ensureUiCached(hash) }
        #expect(await small.stats().failuresRemembered == 1_000)
    }

    @Test func concurrentCompilesOfOneKeyCompileOnceAndCountOnce() async throws {
        let fixture = try CacheFixture(.filesystem)
        let bundle = try CacheBundle(seed: 31)
        try await fixture.publish(bundle)
        let cache = try fixture.cache()
        _ = try await cache.ensureModuleCached(bundle.hash)
        let before = await cache.stats().bytes
        let compiler = CompiledModuleTests.FakeCompiler(delay: 200_000_000)
        let sizes = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 { group.addTask { try await cache.ensureCompiled(bundle.hash, compiler: compiler, load: CompiledModuleTests.load) } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(Set(sizes) == [bundle.mainWasm.count + 5])
        #expect(compiler.compiles.withLock { $0 } == 1)
        #expect(await cache.stats().bytes == before + Int64(bundle.mainWasm.count + 5), "the artifact is counted once")
        // A damaged artifact met by many callers at once is dropped (and uncounted) once.
        let path = fixture.root + "/\(bundle.hash.hex)/compiled/" + compiler.artifactName
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: path))
        let restarted = try fixture.cache()
        let counted = await restarted.stats().bytes
        _ = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 { group.addTask { try await restarted.ensureCompiled(bundle.hash, compiler: compiler, load: CompiledModuleTests.load) } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(compiler.compiles.withLock { $0 } == 2)
        #expect(await restarted.stats().bytes == counted - 7 + Int64(bundle.mainWasm.count + 5))
        #expect(await restarted.stats().bytes == DiskLayoutProbe.size(of: fixture.root + "/" + bundle.hash.hex))
    }

    @Test func theLayoutFollowsTheFirstManifest() async throws {
        let fixture = try CacheFixture(.memory)
        // A root ui/ and dist/ that belong to no manifest, the manifest one folder down with its own.
        let own = TestSupport.randomBytes(2_000, seed: 41)
        let stray = TestSupport.randomBytes(2_000, seed: 42)
        let bytes = try TestBundle.rawArchive([
            ("ext/manifest.json", Array(TestBundle.manifest(seed: 41).utf8)), ("ext/dist/main.wasm", own), ("ext/ui/index.html", Array("own".utf8)),
            ("dist/main.wasm", stray), ("ui/index.html", Array("stray".utf8)), ("ui/only-root.js", [1]),
            ("other/manifest.json", Array("{}".utf8)),
        ])
        let hash = ContentHash.of(bytes)
        _ = try await fixture.store.putBundle(.bytes(bytes), expected: hash)
        let cache = try fixture.cache()
        let ui = try await cache.ensureUiCached(hash)
        #expect(ui.files.keys.sorted() == ["index.html"])
        #expect(FileManager.default.contents(atPath: ui.path(of: "index.html")).map(Array.init) == Array("own".utf8))
        #expect(try await cache.ensureModuleCached(hash).bytes() == own)
    }

    @Test func aBundleCannotPlantACompiledModule() async throws {
        let fixture = try CacheFixture(.filesystem)
        let wasm = TestSupport.randomBytes(5_000, seed: 77)
        let compiler = CompiledModuleTests.FakeCompiler()
        // Every place a compiled artifact was ever looked for, and the current one, inside the archive.
        var files: [(String, [UInt8])] = [("manifest.json", Array(TestBundle.manifest(seed: 77).utf8)), ("dist/main.wasm", wasm)]
        for folder in [".compiled/", "compiled/", "bundle/compiled/", "dist/.compiled/"] {
            files.append((folder + compiler.artifactName, Array("CWASM-planted".utf8)))
        }
        let bytes = try TestBundle.rawArchive(files)
        let hash = ContentHash.of(bytes)
        _ = try await fixture.store.putBundle(.bytes(bytes), expected: hash)
        let cache = try fixture.cache()
        let size = try await cache.ensureCompiled(hash, compiler: compiler, load: CompiledModuleTests.load)
        #expect(size == wasm.count + 5, "the planted artifact was not loaded")
        #expect(compiler.compiles.withLock { $0 } == 1)
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
        await cache.flush()  // evicted entries' files go off the actor
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
        // Leftovers of a crash: a temporary folder of a dead process, trash, an entry without
        // metadata, and an entry of the old layout (its files beside an `.entry.json`).
        let fake = String(repeating: "a", count: 64)
        let old = String(repeating: "b", count: 64)
        for name in [".tmp-\(fake)-999999-1", ".trash-1-2", fake, old] {
            try FileManager.default.createDirectory(atPath: fixture.root + "/" + name + "/ui", withIntermediateDirectories: true)
            try Data("x".utf8).write(to: URL(fileURLWithPath: fixture.root + "/" + name + "/ui/index.html"))
        }
        try Data(#"{"format":1,"hash":"sha256:\#(old)","base":"","uiFiles":{},"filledAt":0}"#.utf8)
            .write(to: URL(fileURLWithPath: fixture.root + "/" + old + "/.entry.json"))
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
        var delay: UInt64 = 0
        let compiles = LockedValue(0)

        func compile(_ module: [UInt8]) async throws -> [UInt8] {
            compiles.withLock { $0 += 1 }
            if delay > 0 { try await Task.sleep(nanoseconds: delay) }
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
        let artifacts = try FileManager.default.contentsOfDirectory(atPath: fixture.root + "/\(bundle.hash.hex)/compiled").sorted()
        #expect(artifacts == ["fake--1--x86_64-unknown-linux-gnu.cwasm", "fake--2--x86_64-unknown-linux-gnu.cwasm"])
        // The artifacts count toward the entry's bytes, and are found again after a restart.
        let bytes = await cache.stats().bytes
        #expect(bytes > Int64(2 * bundle.mainWasm.count))
        #expect(try await fixture.cache().stats().bytes == bytes)
        // An artifact that fails to load is evicted and counts as a miss.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: fixture.root + "/\(bundle.hash.hex)/compiled/" + artifacts[0]))
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

/// The bytes of the files under a folder, as the cache counts them.
enum DiskLayoutProbe {
    static func size(of folder: String) -> Int64 {
        TestSupport.rawTree(folder).filter { $0.last != 0x2f }.reduce(Int64(0)) { total, relative in
            var info = stat()
            _ = lstat(folder + "/" + String(decoding: relative, as: UTF8.self), &info)
            return total + Int64(info.st_size)
        }
    }
}
