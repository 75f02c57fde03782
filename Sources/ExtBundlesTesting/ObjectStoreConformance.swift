public import BundleCore
public import BundleStore
import Foundation
public import Testing

/// The ``BundleStore/ObjectStore`` contract as checks any backend can run: ours run it against
/// the in-memory, filesystem and S3 stores, and a backend of yours proves itself the same way.
///
/// Each check records its failures with Swift Testing's `#expect` (so call it from a `@Test`)
/// and throws when it cannot go on. Run one check per test case to see each by name:
///
/// ```swift
/// @Test(arguments: ObjectStoreConformance.Check.allCases)
/// func conformance(_ check: ObjectStoreConformance.Check) async throws {
///     try await ObjectStoreConformance(traits: .init(listsInByteOrder: true)) { MyStore() }.run(check)
/// }
/// ```
public struct ObjectStoreConformance: Sendable {
    /// What the backend offers beyond the minimum, so the checks know what to expect.
    public struct Traits: Sendable {
        /// Listings are in UTF-8 byte order (memory, filesystem, AWS S3); otherwise any stable
        /// order with every key exactly once (SeaweedFS lists folder by folder).
        public var listsInByteOrder: Bool
        /// `presignedURL` returns URLs.
        public var presigns: Bool
        /// The store is a ``BundleStore/MultipartObjectStore``.
        public var multipart: Bool

        /// Creates traits.
        public init(listsInByteOrder: Bool = true, presigns: Bool = false, multipart: Bool = false) {
            self.listsInByteOrder = listsInByteOrder
            self.presigns = presigns
            self.multipart = multipart
        }
    }

    /// The checks, one per rule of the contract.
    public enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case createOnlyNeverOverwrites
        case concurrentCreateOnlyWritersHaveOneWinner
        case aFailedWriteLeavesNothing
        case rangesAreServed
        case missingKeys
        case copyKeepsTheCondition
        case aCopyPinnedToAnETagRefusesAReplacedSource
        case listingIsOrderedAndPaged
        case optionalCapabilities
        case deletesRemove
        case largeAndUnknownLengthBodies
        case invalidKeysAreRefusedEverywhere
        case keysAreBytes

        /// The name in test output.
        public var testDescription: String { rawValue }
    }

    /// The backend's traits.
    public let traits: Traits
    /// Makes a fresh, empty store for each check.
    public let makeStore: @Sendable () async throws -> any ObjectStore

    /// Creates the suite.
    public init(traits: Traits = .init(), makeStore: @escaping @Sendable () async throws -> any ObjectStore) {
        self.traits = traits
        self.makeStore = makeStore
    }

    /// Runs every check.
    public func runAll() async throws {
        for check in Check.allCases { try await run(check) }
    }

    /// Runs one check on a fresh store.
    public func run(_ check: Check) async throws {
        let store = try await makeStore()
        switch check {
        case .createOnlyNeverOverwrites: try await createOnlyNeverOverwrites(store)
        case .concurrentCreateOnlyWritersHaveOneWinner: try await concurrentCreateOnlyWritersHaveOneWinner(store)
        case .aFailedWriteLeavesNothing: try await aFailedWriteLeavesNothing(store)
        case .rangesAreServed: try await rangesAreServed(store)
        case .missingKeys: try await missingKeys(store)
        case .copyKeepsTheCondition: try await copyKeepsTheCondition(store)
        case .aCopyPinnedToAnETagRefusesAReplacedSource: try await aCopyPinnedToAnETagRefusesAReplacedSource(store)
        case .listingIsOrderedAndPaged: try await listingIsOrderedAndPaged(store)
        case .optionalCapabilities: try await optionalCapabilities(store)
        case .deletesRemove: try await deletesRemove(store)
        case .largeAndUnknownLengthBodies: try await largeAndUnknownLengthBodies(store)
        case .invalidKeysAreRefusedEverywhere: try await invalidKeysAreRefusedEverywhere(store)
        case .keysAreBytes: try await keysAreBytes(store)
        }
    }

    // MARK: - The checks

    func createOnlyNeverOverwrites(_ store: any ObjectStore) async throws {
        let first = Conformance.randomBytes(1_000, seed: 1)
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

    func concurrentCreateOnlyWritersHaveOneWinner(_ store: any ObjectStore) async throws {
        let results = await withTaskGroup(of: Int?.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    let bytes = Conformance.randomBytes(50_000, seed: UInt64(writer))
                    return (try? await store.put("race/key", bytes: bytes, condition: .createOnly)) == nil ? nil : writer
                }
            }
            return await group.reduce(into: [Int]()) { if let winner = $1 { $0.append(winner) } }
        }
        #expect(results.count == 1)
        let winner = try #require(results.first)
        #expect(try await contents(store, "race/key") == Conformance.randomBytes(50_000, seed: UInt64(winner)))
    }

    func aFailedWriteLeavesNothing(_ store: any ObjectStore) async throws {
        for (condition, length) in [(WriteCondition.createOnly, nil), (.unconditional, nil), (.createOnly, Int64(6))] {
            // The body's own error comes back, not a transport or store error.
            await #expect(throws: Conformance.InjectedFailure.self) {
                try await store.put("broken/key", body: Conformance.failingStream(after: [1, 2, 3]), length: length, condition: condition)
            }
            #expect(try await store.head("broken/key") == nil)
        }
        // A body shorter than its declared length is refused too.
        await #expect(throws: (any Error).self) {
            try await store.put("short/key", body: .bytes([1, 2, 3]), length: 10, condition: .createOnly)
        }
        #expect(try await store.head("short/key") == nil)
        // And one longer than its declared length (in one chunk, and with the extra in a chunk
        // of its own): the store must not take the first `length` bytes as the whole object.
        for body in [ByteStream.bytes([1, 2, 3, 4, 5, 6, 7]), .bytes([1, 2, 3, 4, 5, 6, 7], chunkSize: 3), .bytes(Array(repeating: 7, count: 100_000), chunkSize: 10_000)] {
            await #expect(throws: (any Error).self) {
                try await store.put("long/key", body: body, length: 6, condition: .createOnly)
            }
            #expect(try await store.head("long/key") == nil)
        }
        #expect(try await store.listAll(prefix: "").isEmpty)
    }

    func rangesAreServed(_ store: any ObjectStore) async throws {
        let bytes = Conformance.randomBytes(10_000, seed: 3)
        try await store.put("r", bytes: bytes)
        for (range, expected) in [
            (ByteRange.bounded(first: 10, last: 19), Array(bytes[10...19])),
            (.bounded(first: 9_990, last: 20_000), Array(bytes[9_990...])),
            (.from(9_000), Array(bytes[9_000...])),
            (.suffix(5), Array(bytes[9_995...])),
            (.suffix(Int64.max), bytes),
        ] {
            let body = try await store.get("r", range: range)
            #expect(try await body.stream.collect(upTo: 1 << 20) == expected, "\(range)")
            #expect(body.info.size == 10_000, "\(range)")
            #expect(body.range.map { $0.upperBound - $0.lowerBound + 1 } == Int64(expected.count), "\(range)")
        }
        for range in [ByteRange.from(10_000), .from(Int64.max), .bounded(first: 10_000, last: Int64.max)] {
            let error = await #expect(throws: StoreError.self, "\(range)") { try await store.get("r", range: range) }
            #expect(error?.code == .storeRangeNotSatisfiable, "\(range)")
        }
    }

    func missingKeys(_ store: any ObjectStore) async throws {
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

    func copyKeepsTheCondition(_ store: any ObjectStore) async throws {
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

    func aCopyPinnedToAnETagRefusesAReplacedSource(_ store: any ObjectStore) async throws {
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

    func listingIsOrderedAndPaged(_ store: any ObjectStore) async throws {
        let keys = ["p/a", "p/b/1", "p/b/2", "p/c", "p/é", "p/Z", "p/b-x", "q/outside", "pp/near"]
        for key in keys { try await store.put(key, bytes: Array(key.utf8)) }
        let expected = keys.filter { $0.hasPrefix("p/") }.sorted(by: ObjectKey.precedes)
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
        if traits.listsInByteOrder {
            #expect(seen == expected)
            #expect(prefixB == ["p/b-x", "p/b/1", "p/b/2"])
        } else {
            // Any stable order: every key exactly once, and the same order on every call.
            #expect(seen.sorted(by: ObjectKey.precedes) == expected)
            #expect(Set(seen).count == seen.count)
            #expect(try await store.listAll(prefix: "p/").map(\.key) == seen)
            #expect(prefixB.sorted(by: ObjectKey.precedes) == ["p/b-x", "p/b/1", "p/b/2"])
        }
        #expect(try await store.listAll(prefix: "p/").first { $0.key == "p/c" }?.size == 3)
        #expect(try await store.listAll(prefix: "nothing/").isEmpty)
    }

    func optionalCapabilities(_ store: any ObjectStore) async throws {
        let presigned = try await store.presignedURL(for: .get, key: "k", expires: 60)
        #expect((presigned != nil) == traits.presigns)
        #expect((store as? any MultipartObjectStore != nil) == traits.multipart)
    }

    func deletesRemove(_ store: any ObjectStore) async throws {
        try await store.put("d/one", bytes: [1])
        try await store.put("d/two", bytes: [2])
        try await store.delete("d/one")
        #expect(try await store.head("d/one") == nil)
        #expect(try await store.listAll(prefix: "d/").map(\.key) == ["d/two"])
        // Deleted keys can be created again.
        try await store.put("d/one", bytes: [3])
        #expect(try await contents(store, "d/one") == [3])
    }

    func largeAndUnknownLengthBodies(_ store: any ObjectStore) async throws {
        // Over a typical multipart threshold (16 MiB) and not a multiple of a part size.
        let bytes = Conformance.randomBytes(21 << 20 + 12_345, seed: 8)
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

    /// Keys that break the rules, on bytes: a `/` hidden in a grapheme cluster with a combining
    /// mark or U+200D is still a `/`.
    public static let invalidKeys = [
        "", "../escape", "a/../../escape", "/absolute", "a//b", "a/./b", "a/b/", "a/..", "x/..", "bad\u{0}nul", "tab\tkey", "del\u{7F}",
        "esc\u{1B}[31m", String(repeating: "k", count: 1_025), "/\u{301}x", "../\u{301}x", "../\u{200D}etc", "./\u{301}",
        "a/\u{301}/", "a/\u{200D}/", "\u{600}/../x",
    ]

    func invalidKeysAreRefusedEverywhere(_ store: any ObjectStore) async throws {
        for key in Self.invalidKeys {
            let put = await #expect(throws: StoreError.self, "\(key.debugDescription)") { try await store.put(key, bytes: [1]) }
            #expect(put?.code == .storeInvalidKey, "\(key.debugDescription)")
            let get = await #expect(throws: StoreError.self, "\(key.debugDescription)") { try await store.get(key) }
            #expect(get?.code == .storeInvalidKey, "\(key.debugDescription)")
            let delete = await #expect(throws: StoreError.self, "\(key.debugDescription)") { try await store.delete(key) }
            #expect(delete?.code == .storeInvalidKey, "\(key.debugDescription)")
            let copy = await #expect(throws: StoreError.self, "\(key.debugDescription)") {
                try await store.copy(from: "nowhere", to: key, condition: .createOnly)
            }
            #expect(copy?.code == .storeInvalidKey || copy?.code == .storeNotFound, "\(key.debugDescription)")
        }
        for prefix in ["../", "/x", "a/../", "/\u{301}x", "../\u{301}", "a//", "\u{1B}"] {
            let error = await #expect(throws: StoreError.self, "\(prefix.debugDescription)") {
                try await store.list(prefix: prefix, continuation: nil, limit: 10)
            }
            #expect(error?.code == .storeInvalidKey, "\(prefix.debugDescription)")
        }
        #expect(try await store.listAll(prefix: "").isEmpty)
    }

    func keysAreBytes(_ store: any ObjectStore) async throws {
        // Canonically equivalent spellings are two keys (a file system and S3 see two names).
        let composed = "u/caf\u{E9}"
        let decomposed = "u/cafe\u{301}"
        try await store.put(composed, bytes: [1])
        try await store.put(decomposed, bytes: [2], condition: .createOnly)
        #expect(try await contents(store, composed) == [1])
        #expect(try await contents(store, decomposed) == [2])
        #expect(try await store.listAll(prefix: "u/").count == 2)
        // A combining mark right after a `/` is part of the next segment, not a way out.
        try await store.put("u/\u{301}x/..\u{301}", bytes: [3])
        #expect(try await contents(store, "u/\u{301}x/..\u{301}") == [3])
        #expect(try await store.listAll(prefix: "u/\u{301}").map(\.key) == ["u/\u{301}x/..\u{301}"])
    }

    private func contents(_ store: any ObjectStore, _ key: String) async throws -> [UInt8] {
        try await store.get(key).stream.collect(upTo: 64 << 20)
    }
}

/// Helpers shared by the conformance suites.
public enum Conformance {
    /// Deterministic pseudo-random bytes (SplitMix64), incompressible.
    public static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var index = 0
            while index < count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                for shift in stride(from: 0, to: 64, by: 8) where index < count {
                    raw[index] = UInt8(truncatingIfNeeded: z >> UInt64(shift))
                    index += 1
                }
            }
        }
        return out
    }

    /// The error ``failingStream(after:)`` throws.
    public struct InjectedFailure: Error, Equatable {
        /// Creates the error.
        public init() {}
    }

    /// A body that yields `bytes` and then fails.
    public static func failingStream(after bytes: [UInt8]) -> ByteStream {
        let sent = LockedValue(false)
        return ByteStream(unfolding: {
            if sent.withLock({ value in defer { value = true }; return value }) { throw InjectedFailure() }
            return bytes
        })
    }
}
