import BundleCore
import BundleStore
import Foundation
import Testing
import TestSupport

@Suite struct BundleStoreTests {
    @Test func keyLayouts() throws {
        let hash = ContentHash.of([1, 2, 3])
        let store = try BundleStore(objects: InMemoryObjectStore())
        #expect(store.bundleKey(for: hash) == "sha256/\(hash.hex)/bundle.tar.zst")
        #expect(store.stagingPrefix == "sha256/_staging/")
        #expect(try store.sideObjectKey(for: hash, .manifest) == "sha256/\(hash.hex)/manifest.json")
        #expect(try store.sideObjectKey(for: hash, .entryWasm) == "sha256/\(hash.hex)/entry.wasm")
        #expect(try store.sideObjectKey(for: hash, .precompiled(name: "x86_64-linux")) == "sha256/\(hash.hex)/precompiled/x86_64-linux.cwasm")
        for bad in ["", "a/b", "../x", ".hidden"] {
            #expect(throws: StoreError.self) { try store.sideObjectKey(for: hash, .precompiled(name: bad)) }
        }
        let tenant = try BundleStore(objects: InMemoryObjectStore(), configuration: .init(layout: .tenant(tenantID: "t1", registryID: "r-9")))
        #expect(tenant.bundleKey(for: hash) == "tenants/t1/extensions/r-9/sha256/\(hash.hex)/bundle.tar.zst")
        #expect(tenant.stagingPrefix == "tenants/t1/_staging/")
        for bad in ["", "a/b", ".."] {
            #expect(throws: StoreError.self) {
                try BundleStore(objects: InMemoryObjectStore(), configuration: .init(layout: .tenant(tenantID: bad, registryID: "r")))
            }
        }
    }

    @Test(arguments: [("", "sha256/"), ("/", "sha256/"), ("bundles", "bundles/"), ("/bundles//", "bundles/"), ("a/b/", "a/b/"), ("//x", "x/")])
    func basePrefixNormalisation(input: String, expected: String) throws {
        #expect(BundleStore.normalizeBasePrefix(input) == expected)
        let store = try BundleStore(objects: InMemoryObjectStore(), configuration: .init(layout: .contentAddressed(base: input)))
        #expect(store.bundlePrefix == expected)
        #expect(store.stagingPrefix == expected + "_staging/")
    }

    @Test(arguments: Backend.available)
    func putBundleIsWriteOnceAndIdempotent(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let bytes = TestSupport.randomBytes(300_000, seed: 1)
        let hash = ContentHash.of(bytes)
        let first = try await store.putBundle(.bytes(bytes, chunkSize: 65_536), length: Int64(bytes.count), expected: hash)
        #expect(first == StoredBundle(hash: hash, size: 300_000, key: store.bundleKey(for: hash), outcome: .stored))
        let second = try await store.putBundle(.bytes(bytes), length: nil)
        #expect(second.outcome == .alreadyPresent)
        #expect(second.hash == hash)
        #expect(try await contents(fixture.store, store.bundleKey(for: hash)) == bytes)
        // Nothing is left in staging.
        #expect(try await fixture.store.listAll(prefix: "").map(\.key) == [store.bundleKey(for: hash)])
        #expect(try await store.headBundle(hash)?.size == 300_000)
        #expect(try await store.getBundle(hash, range: .bounded(first: 0, last: 9)).stream.collect(upTo: 100) == Array(bytes[0...9]))
    }

    @Test(arguments: Backend.available)
    func aStreamWithTheWrongHashLeavesNoCanonicalObject(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let bytes = TestSupport.randomBytes(100_000, seed: 2)
        let claimed = ContentHash.of([0])
        // Several chunks, so most of the body is already sent when the hash check fails.
        let error = await #expect(throws: StoreError.self) {
            try await store.putBundle(.bytes(bytes, chunkSize: 10_000), length: Int64(bytes.count), expected: claimed)
        }
        #expect(error?.code == .storeHashMismatch)
        #expect(error?.expected == claimed.prefixed)
        #expect(error?.actual == ContentHash.of(bytes).prefixed)
        #expect(try await store.headBundle(claimed) == nil)
        #expect(try await store.headBundle(ContentHash.of(bytes)) == nil)
        #expect(try await fixture.store.listAll(prefix: "").isEmpty)
        // A failing stream and an over-size stream leave nothing either.
        await #expect(throws: (any Error).self) { try await store.putBundle(failingStream(after: bytes)) }
        let large = await #expect(throws: StoreError.self) { try await store.putBundle(.bytes(bytes, chunkSize: 10_000), maxBytes: 50_000) }
        #expect(large?.code == .storeTooLarge)
        #expect(try await fixture.store.listAll(prefix: "").isEmpty)
    }

    @Test(arguments: Backend.available)
    func concurrentPutsOfTheSameBytesGiveOneObject(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let bytes = TestSupport.randomBytes(200_000, seed: 3)
        let outcomes = try await withThrowingTaskGroup(of: StoredBundle.Outcome.self) { group in
            for _ in 0..<32 { group.addTask { try await store.putBundle(.bytes(bytes, chunkSize: 50_000), length: Int64(bytes.count)).outcome } }
            return try await group.reduce(into: [StoredBundle.Outcome]()) { $0.append($1) }
        }
        #expect(outcomes.count == 32)
        #expect(outcomes.filter { $0 == .stored }.count == 1)
        #expect(try await fixture.store.listAll(prefix: "").map(\.key) == [store.bundleKey(for: ContentHash.of(bytes))])
        #expect(try await contents(fixture.store, store.bundleKey(for: ContentHash.of(bytes))) == bytes)
    }

    @Test(arguments: Backend.available)
    func aKnownHashGoesStraightToItsKey(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let bytes = TestSupport.randomBytes(120_000, seed: 6)
        let hash = ContentHash.of(bytes)
        let outcomes = try await withThrowingTaskGroup(of: StoredBundle.Outcome.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try await store.putBundle(.bytes(bytes, chunkSize: 30_000), length: Int64(bytes.count), expected: hash).outcome
                }
            }
            return try await group.reduce(into: [StoredBundle.Outcome]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .stored }.count == 1)
        #expect(outcomes.count == 16)
        #expect(try await fixture.store.listAll(prefix: "").map(\.key) == [store.bundleKey(for: hash)])
        // Already stored: the body is not even read.
        let again = try await store.putBundle(failingStream(after: [0]), expected: hash)
        #expect(again == StoredBundle(hash: hash, size: 120_000, key: store.bundleKey(for: hash), outcome: .alreadyPresent))
        #expect(try await contents(fixture.store, store.bundleKey(for: hash)) == bytes)
    }

    @Test(arguments: Backend.available)
    func differentBytesUnderAHashKeyAreNeverOverwritten(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let bytes = TestSupport.randomBytes(10_000, seed: 4)
        let key = store.bundleKey(for: ContentHash.of(bytes))
        try await fixture.store.put(key, bytes: [6, 6, 6])  // a corrupt object planted at the key
        for expected in [nil, ContentHash.of(bytes)] {
            let error = await #expect(throws: StoreError.self) { try await store.putBundle(.bytes(bytes), expected: expected) }
            #expect(error?.code == .storeCorruptObject)
            #expect(error?.key == key)
        }
        #expect(try await contents(fixture.store, key) == [6, 6, 6])
        #expect(try await fixture.store.listAll(prefix: store.stagingPrefix).isEmpty)
    }

    @Test(arguments: Backend.available)
    func uploadSessions(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let bytes = TestSupport.randomBytes(250_000, seed: 5)
        let id = try await store.createUpload()
        #expect(try await store.status(uploadID: id) == 0)
        #expect(try await store.append(uploadID: id, offset: 0, body: .bytes(Array(bytes[..<100_000]))) == 100_000)
        let gap = await #expect(throws: StoreError.self) {
            try await store.append(uploadID: id, offset: 150_000, body: .bytes(Array(bytes[150_000...])))
        }
        #expect(gap?.code == .storeUploadOffset)
        #expect(gap?.expected == "100000")
        #expect(gap?.actual == "150000")
        let overlap = await #expect(throws: StoreError.self) {
            try await store.append(uploadID: id, offset: 50_000, body: .bytes(Array(bytes[50_000...])))
        }
        #expect(overlap?.code == .storeUploadOffset)
        #expect(try await store.status(uploadID: id) == 100_000)
        #expect(try await store.append(uploadID: id, offset: 100_000, body: .bytes(Array(bytes[100_000...]))) == 250_000)
        #expect(try await store.append(uploadID: id, offset: 250_000, body: .bytes([])) == 250_000)
        let wrongSize = await #expect(throws: StoreError.self) { try await store.commit(uploadID: id, expectedSize: 1) }
        #expect(wrongSize?.code == .storeSizeMismatch)
        let staged = try await store.commit(uploadID: id, expectedSize: 250_000, expectedHash: ContentHash.of(bytes))
        #expect(staged.key == "sha256/_staging/\(id)/bundle.tar.zst")
        #expect(staged.hash == ContentHash.of(bytes))
        #expect(try await contents(fixture.store, staged.key) == bytes)
        let stored = try await store.publish(staged)
        #expect(stored.outcome == .stored)
        #expect(try await contents(fixture.store, stored.key) == bytes)
        try await store.abort(uploadID: id)
        #expect(try await fixture.store.listAll(prefix: "").map(\.key) == [stored.key])
        let gone = await #expect(throws: StoreError.self) { try await store.status(uploadID: id) }
        #expect(gone?.code == .storeUploadNotFound)
        let bogus = await #expect(throws: StoreError.self) { try await store.status(uploadID: "../../etc") }
        #expect(bogus?.code == .storeUploadNotFound)
    }

    @Test(arguments: Backend.available)
    func commitRefusesTheWrongHash(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let id = try await store.createUpload()
        try await store.append(uploadID: id, offset: 0, body: .bytes([1, 2, 3]))
        let error = await #expect(throws: StoreError.self) { try await store.commit(uploadID: id, expectedHash: ContentHash.of([9])) }
        #expect(error?.code == .storeHashMismatch)
        #expect(try await fixture.store.head("sha256/_staging/\(id)/bundle.tar.zst") == nil)
    }

    @Test(arguments: Backend.available)
    func committingASessionAgainKeepsWhatTheFirstCommitStaged(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // A retry after a commit that succeeded (with or without the size), then two at once.
        let id = try await store.createUpload()
        try await store.append(uploadID: id, offset: 0, body: .bytes(bytes))
        let first = try await store.commit(uploadID: id, expectedSize: Int64(bytes.count))
        for size in [Int64(bytes.count), nil] {
            let again = try await store.commit(uploadID: id, expectedSize: size, expectedHash: ContentHash.of(bytes))
            #expect(again.key == first.key && again.hash == first.hash && again.size == first.size)
            #expect(try await contents(fixture.store, first.key) == bytes)
        }
        #expect(try await store.status(uploadID: id) == Int64(bytes.count))
        // A retry that expects other bytes is refused and the staged bundle stays.
        let wrong = await #expect(throws: StoreError.self) { try await store.commit(uploadID: id, expectedHash: ContentHash.of([1])) }
        #expect(wrong?.code == .storeHashMismatch)
        let wrongSize = await #expect(throws: StoreError.self) { try await store.commit(uploadID: id, expectedSize: 3) }
        #expect(wrongSize?.code == .storeSizeMismatch)
        #expect(try await contents(fixture.store, first.key) == bytes)
        // Appending to a committed session is refused; the staged bundle stays.
        let late = await #expect(throws: StoreError.self) {
            try await store.append(uploadID: id, offset: Int64(bytes.count), body: .bytes([1]))
        }
        #expect(late?.code == .storeUploadOffset)
        let restart = await #expect(throws: StoreError.self) { try await store.append(uploadID: id, offset: 0, body: .bytes([1])) }
        #expect(restart?.code == .storeUploadOffset)
        #expect(try await contents(fixture.store, first.key) == bytes)

        let racing = try await store.createUpload()
        try await store.append(uploadID: racing, offset: 0, body: .bytes(bytes))
        let results = try await withThrowingTaskGroup(of: StagedBundle.self) { group in
            for _ in 0..<4 { group.addTask { try await store.commit(uploadID: racing, expectedHash: ContentHash.of(bytes)) } }
            return try await group.reduce(into: [StagedBundle]()) { $0.append($1) }
        }
        #expect(results.count == 4 && Set(results.map(\.hash)) == [ContentHash.of(bytes)])
        #expect(try await contents(fixture.store, results[0].key) == bytes)
        #expect(try await store.publish(results[0]).outcome == .stored)
    }

    @Test(arguments: Backend.available)
    func abortAndSweepNeverTouchCanonicalBundles(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let stored = try await store.putBundle(.bytes([1, 2, 3, 4]))
        #expect(try await store.abort(key: stored.key) == .noop(key: stored.key))
        #expect(try await store.abort(key: "sha256/_staging/\(UUID().uuidString.lowercased())/bundle.tar.zst") != .noop(key: ""))
        let old = try await store.createUpload()
        try await store.append(uploadID: old, offset: 0, body: .bytes([5, 5]))
        let staged = try await store.commit(uploadID: try await {
            let id = try await store.createUpload()
            try await store.append(uploadID: id, offset: 0, body: .bytes([7]))
            return id
        }())
        #expect(try await store.abort(key: staged.key) == .deleted(key: staged.key))
        #expect(try await fixture.store.head(staged.key) == nil)
        // Nothing is old yet; an hour later everything in staging is.
        #expect(try await store.sweepStaging(olderThan: 3_600).isEmpty)
        let swept = try await store.sweepStaging(olderThan: 3_600, now: Date().addingTimeInterval(7_200))
        #expect(swept.contains(old))
        #expect(try await fixture.store.listAll(prefix: store.stagingPrefix).isEmpty)
        #expect(try await fixture.store.listAll(prefix: "").map(\.key) == [stored.key])
        #expect(try await contents(fixture.store, stored.key) == [1, 2, 3, 4])
    }
}
