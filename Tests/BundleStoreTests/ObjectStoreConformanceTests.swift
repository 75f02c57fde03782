import BundleCore
import BundleStore
import Foundation
import Testing
import TestSupport

/// The `ObjectStore` contract, run against every backend.
@Suite struct ObjectStoreConformanceTests {
    @Test(arguments: Backend.available)
    func createOnlyNeverOverwrites(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        let first = TestSupport.randomBytes(1_000, seed: 1)
        let info = try await store.put("a/b/object.bin", bytes: first, condition: .createOnly)
        #expect(info.size == 1_000)
        let error = await #expect(throws: StoreError.self) {
            try await store.put("a/b/object.bin", bytes: [1, 2, 3], condition: .createOnly)
        }
        #expect(error?.code == .storeAlreadyExists)
        #expect(error?.key == "a/b/object.bin")
        #expect(try await contents(store, "a/b/object.bin") == first)
        // Same bytes again: the raw store still refuses (idempotency is BundleStore's job).
        let same = await #expect(throws: StoreError.self) { try await store.put("a/b/object.bin", bytes: first) }
        #expect(same?.code == .storeAlreadyExists)
        // Unconditional writes replace.
        try await store.put("a/b/object.bin", bytes: [9, 9], condition: .unconditional)
        #expect(try await contents(store, "a/b/object.bin") == [9, 9])
        #expect(try await store.head("a/b/object.bin")?.size == 2)
    }

    @Test(arguments: Backend.available)
    func concurrentCreateOnlyWritersHaveOneWinner(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        let results = await withTaskGroup(of: Int?.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    let bytes = TestSupport.randomBytes(50_000, seed: UInt64(writer))
                    return (try? await store.put("race/key", bytes: bytes, condition: .createOnly)) == nil ? nil : writer
                }
            }
            return await group.reduce(into: [Int]()) { if let winner = $1 { $0.append(winner) } }
        }
        #expect(results.count == 1)
        let winner = try #require(results.first)
        #expect(try await contents(store, "race/key") == TestSupport.randomBytes(50_000, seed: UInt64(winner)))
    }

    @Test(arguments: Backend.available)
    func aFailedWriteLeavesNothing(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        for (condition, length) in [(WriteCondition.createOnly, nil), (.unconditional, nil), (.createOnly, Int64(6))] {
            // The body's own error comes back, not a transport or store error.
            await #expect(throws: InjectedFailure.self) {
                try await store.put("broken/key", body: failingStream(after: [1, 2, 3]), length: length, condition: condition)
            }
            #expect(try await store.head("broken/key") == nil)
        }
        // A body shorter than its declared length is refused too.
        await #expect(throws: (any Error).self) {
            try await store.put("short/key", body: .bytes([1, 2, 3]), length: 10, condition: .createOnly)
        }
        #expect(try await store.head("short/key") == nil)
        #expect(try await store.listAll(prefix: "").isEmpty)
    }

    @Test(arguments: Backend.available)
    func rangesAreServed(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        let bytes = TestSupport.randomBytes(10_000, seed: 3)
        try await store.put("r", bytes: bytes)
        for (range, expected) in [
            (ByteRange.bounded(first: 10, last: 19), Array(bytes[10...19])),
            (.bounded(first: 9_990, last: 20_000), Array(bytes[9_990...])),
            (.from(9_000), Array(bytes[9_000...])),
            (.suffix(5), Array(bytes[9_995...])),
        ] {
            let body = try await store.get("r", range: range)
            #expect(try await body.stream.collect(upTo: 1 << 20) == expected, "\(range)")
            #expect(body.info.size == 10_000, "\(range)")
            #expect(body.range?.count == expected.count, "\(range)")
        }
        let error = await #expect(throws: StoreError.self) { try await store.get("r", range: .from(10_000)) }
        #expect(error?.code == .storeRangeNotSatisfiable)
    }

    @Test(arguments: Backend.available)
    func missingKeys(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        #expect(try await store.head("missing/key") == nil)
        let get = await #expect(throws: StoreError.self) { try await store.get("missing/key") }
        #expect(get?.code == .storeNotFound)
        try await store.delete("missing/key")
        let copy = await #expect(throws: StoreError.self) {
            try await store.copy(from: "missing/key", to: "other/key", condition: .createOnly)
        }
        #expect(copy?.code == .storeNotFound)
        #expect(try await store.head("other/key") == nil)
    }

    @Test(arguments: Backend.available)
    func copyKeepsTheCondition(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        try await store.put("src", bytes: [1, 2, 3])
        try await store.put("taken", bytes: [7])
        let copied = try await store.copy(from: "src", to: "dst/copy", condition: .createOnly)
        #expect(copied.size == 3)
        #expect(try await contents(store, "dst/copy") == [1, 2, 3])
        let refused = await #expect(throws: StoreError.self) { try await store.copy(from: "src", to: "taken", condition: .createOnly) }
        #expect(refused?.code == .storeAlreadyExists)
        #expect(try await contents(store, "taken") == [7])
        try await store.copy(from: "src", to: "taken", condition: .unconditional)
        #expect(try await contents(store, "taken") == [1, 2, 3])
    }

    @Test(arguments: Backend.available)
    func aCopyPinnedToAnETagRefusesAReplacedSource(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        try await store.put("pin/src", bytes: [1, 2, 3], condition: .unconditional)
        let read = try await store.get("pin/src")
        let etag = try #require(read.info.etag)
        try await store.copy(from: "pin/src", to: "pin/first", condition: .createOnly, sourceETag: etag)
        #expect(try await contents(store, "pin/first") == [1, 2, 3])
        // Replaced after it was read: the pinned copy refuses and writes nothing.
        try await store.put("pin/src", bytes: [9, 9, 9, 9], condition: .unconditional)
        let changed = await #expect(throws: StoreError.self) {
            try await store.copy(from: "pin/src", to: "pin/second", condition: .createOnly, sourceETag: etag)
        }
        #expect(changed?.code == .storeSourceChanged)
        #expect(changed?.expected == etag)
        #expect(try await store.head("pin/second") == nil)
        // Gone: also a changed source.
        try await store.delete("pin/src")
        let gone = await #expect(throws: StoreError.self) {
            try await store.copy(from: "pin/src", to: "pin/third", condition: .createOnly, sourceETag: etag)
        }
        #expect(gone?.code == .storeSourceChanged)
        // The destination's condition still holds when the source matches.
        try await store.put("pin/src", bytes: [4], condition: .unconditional)
        let current = try #require(try await store.head("pin/src")?.etag)
        let taken = await #expect(throws: StoreError.self) {
            try await store.copy(from: "pin/src", to: "pin/first", condition: .createOnly, sourceETag: current)
        }
        #expect(taken?.code == .storeAlreadyExists)
    }

    @Test(arguments: Backend.available)
    func listingIsOrderedAndPaged(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        let keys = ["p/a", "p/b/1", "p/b/2", "p/c", "p/é", "p/Z", "p/b-x", "q/outside", "pp/near"]
        for key in keys { try await store.put(key, bytes: Array(key.utf8)) }
        let expected = keys.filter { $0.hasPrefix("p/") }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var seen: [String] = []
        var continuation: String?
        var pages = 0
        repeat {
            let page = try await store.list(prefix: "p/", continuation: continuation, limit: 3)
            #expect(page.objects.count <= 3)
            seen += page.objects.map(\.key)
            continuation = page.continuation
            pages += 1
        } while continuation != nil && pages < 10
        #expect(pages == 3)
        let prefixB = try await store.listAll(prefix: "p/b").map(\.key)
        if backend == .s3 {
            // SeaweedFS lists folder by folder (the contract allows any stable order): every key
            // exactly once, and the same order on every call.
            #expect(seen.sorted(by: ObjectKey.precedes) == expected)
            #expect(Set(seen).count == seen.count)
            #expect(try await store.listAll(prefix: "p/").map(\.key) == seen)
            #expect(prefixB.sorted(by: ObjectKey.precedes) == ["p/b-x", "p/b/1", "p/b/2"])
        } else {
            #expect(seen == expected)
            #expect(prefixB == ["p/b-x", "p/b/1", "p/b/2"])
        }
        #expect(try await store.listAll(prefix: "p/").first { $0.key == "p/c" }?.size == 3)
        #expect(try await store.listAll(prefix: "nothing/").isEmpty)
    }

    @Test(arguments: Backend.available)
    func optionalCapabilities(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let presigned = try await fixture.store.presignedURL(for: .get, key: "k", expires: 60)
        #expect((presigned != nil) == (backend == .s3))
        #expect((fixture.store as? any MultipartObjectStore != nil) == (backend == .s3))
    }

    @Test(arguments: Backend.available)
    func deletesRemove(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        try await store.put("d/one", bytes: [1])
        try await store.put("d/two", bytes: [2])
        try await store.delete("d/one")
        #expect(try await store.head("d/one") == nil)
        #expect(try await store.listAll(prefix: "d/").map(\.key) == ["d/two"])
        // Deleted keys can be created again.
        try await store.put("d/one", bytes: [3])
        #expect(try await contents(store, "d/one") == [3])
    }

    @Test(arguments: Backend.available)
    func largeAndUnknownLengthBodies(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        // Over S3's multipart threshold (16 MiB) and not a multiple of the part size.
        let bytes = TestSupport.randomBytes(21 << 20 + 12_345, seed: 8)
        try await store.put("big/known", body: .bytes(bytes, chunkSize: 300_000), length: Int64(bytes.count), condition: .createOnly)
        try await store.put("big/unknown", body: .bytes(bytes, chunkSize: 1 << 20), length: nil, condition: .createOnly)
        try await store.put("small/unknown", body: .bytes([1, 2, 3]), length: nil, condition: .createOnly)
        #expect(try await contents(store, "big/known") == bytes)
        #expect(try await contents(store, "big/unknown") == bytes)
        #expect(try await contents(store, "small/unknown") == [1, 2, 3])
        #expect(try await store.head("big/unknown")?.size == Int64(bytes.count))
        let again = await #expect(throws: StoreError.self) {
            try await store.put("big/unknown", body: .bytes(bytes), length: nil, condition: .createOnly)
        }
        #expect(again?.code == .storeAlreadyExists)
        #expect(try await store.put("empty", bytes: []).size == 0)
        #expect(try await contents(store, "empty") == [])
    }

    @Test(arguments: Backend.available)
    func invalidKeysAreRefusedEverywhere(_ backend: Backend) async throws {
        let fixture = try backend.make()
        let store = fixture.store
        for key in ["", "../escape", "a/../../escape", "/absolute", "a//b", "a/./b", "a/b/", "a/..", "bad\u{0}nul", "tab\tkey", String(repeating: "k", count: 1_025)] {
            let put = await #expect(throws: StoreError.self, "\(key)") { try await store.put(key, bytes: [1]) }
            #expect(put?.code == .storeInvalidKey, "\(key)")
            let get = await #expect(throws: StoreError.self, "\(key)") { try await store.get(key) }
            #expect(get?.code == .storeInvalidKey, "\(key)")
            let delete = await #expect(throws: StoreError.self, "\(key)") { try await store.delete(key) }
            #expect(delete?.code == .storeInvalidKey, "\(key)")
        }
        let prefix = await #expect(throws: StoreError.self) { try await store.list(prefix: "../", continuation: nil, limit: 10) }
        #expect(prefix?.code == .storeInvalidKey)
        #expect(try await store.listAll(prefix: "").isEmpty)
    }
}

@Suite struct FileSystemRaceTests {
    /// Deletes prune the folders they empty while other writers create folders beside them: a
    /// writer whose new folder is pruned under it starts again instead of failing.
    @Test func writersSurviveConcurrentPruning() async throws {
        let fixture = try Backend.filesystem.make()
        let store = fixture.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for round in 0..<150 {
                        let key = "shared/parent/\(worker)-\(round)/object"
                        try await store.put(key, bytes: [UInt8(truncatingIfNeeded: round)])
                        try await store.delete(key)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.listAll(prefix: "shared/").isEmpty)
    }
}
