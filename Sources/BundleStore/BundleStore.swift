public import BundleCore
public import Foundation

/// Where a bundle's objects live.
public enum BundleKeyLayout: Sendable, Equatable {
    /// `<base><hex>/bundle.tar.zst`, staging under `<base>_staging/<uuid>/` (base default
    /// `sha256/`, normalised as Alga's `normalizeBasePrefix` does).
    case contentAddressed(base: String)
    /// Alga's live layout: `tenants/<tenant>/extensions/<registryID>/sha256/<hex>/bundle.tar.zst`,
    /// staging under `tenants/<tenant>/_staging/<uuid>/`.
    case tenant(tenantID: String, registryID: String)

    /// The default: `sha256/<hex>/bundle.tar.zst`.
    public static let `default` = BundleKeyLayout.contentAddressed(base: "sha256/")
}

/// An object that may sit beside a bundle.
public enum BundleSideObject: Sendable, Equatable {
    /// `manifest.json`: the manifest finalize validated.
    case manifest
    /// `bundle.sig`: the detached signatures finalize accepted (a signature file), which a
    /// runner checks again against its own trust bundle.
    case signatures
    /// `entry.wasm`.
    case entryWasm
    /// `precompiled/<name>.cwasm`; `name` may not contain `/`.
    case precompiled(name: String)

    var fileName: String {
        switch self {
        case .manifest: "manifest.json"
        case .signatures: "bundle.sig"
        case .entryWasm: "entry.wasm"
        case .precompiled(let name): "precompiled/\(name).cwasm"
        }
    }
}

/// A bundle written to its canonical key.
public struct StoredBundle: Sendable, Equatable {
    /// Whether this call wrote it.
    public enum Outcome: String, Sendable, Equatable {
        /// The bundle was written now.
        case stored
        /// Identical bytes were already at the canonical key (an idempotent success).
        case alreadyPresent = "already present"
    }

    /// The content hash.
    public var hash: ContentHash
    /// The size in bytes.
    public var size: Int64
    /// The canonical key.
    public var key: String
    /// Stored now or already present.
    public var outcome: Outcome

    /// Creates a record.
    public init(hash: ContentHash, size: Int64, key: String, outcome: Outcome) {
        self.hash = hash
        self.size = size
        self.key = key
        self.outcome = outcome
    }
}

/// A finished staging upload, not yet published to its canonical key.
public struct StagedBundle: Sendable, Equatable {
    /// The session id.
    public var uploadID: String
    /// The staging key, `<staging prefix><uuid>/bundle.tar.zst`.
    public var key: String
    /// The SHA-256 of the staged bytes, computed while they were written.
    public var hash: ContentHash
    /// The size in bytes.
    public var size: Int64
    /// The ETag the store gave the staged object (pins ``BundleStore/publish(_:)``'s copy).
    public var etag: String?

    /// Creates a record.
    public init(uploadID: String, key: String, hash: ContentHash, size: Int64, etag: String? = nil) {
        self.uploadID = uploadID
        self.key = key
        self.hash = hash
        self.size = size
        self.etag = etag
    }
}

/// What ``BundleStore/abort(key:)`` did.
public enum AbortOutcome: Sendable, Equatable {
    /// A staging object was deleted (or was already gone).
    case deleted(key: String)
    /// The key is not a staging key: nothing was deleted (Alga's `noop` / `canonical`).
    case noop(key: String)
}

/// The content-addressed bundle layer over any ``ObjectStore``, and the owner of every key rule
/// and storage step of the publish path: where staging and canonical keys are, which keys are
/// staging keys, reading a staged upload, publishing it to its canonical key pinned to the ETag
/// it was verified under, and the side objects beside a bundle. Services above it (a host's
/// finalize, a runner's cache) never touch the ``ObjectStore`` directly.
///
/// Bundles are written once and never overwritten: ``putBundle(_:length:expected:maxBytes:)``
/// streams the bytes to a staging key while hashing them, then copies create-only to
/// `<base><hex>/bundle.tar.zst`. Identical bytes already there are an idempotent success
/// (checked by re-hashing them, not trusted); different bytes there are a `STORE_CORRUPT_OBJECT`
/// error and are left alone; a stream that does not hash to the expected hash never reaches the
/// canonical key. Resumable uploads are staging sessions with explicit offsets, capped at
/// ``Configuration/maxBundleBytes`` like every other way in.
public struct BundleStore: Sendable {
    /// Settings.
    public struct Configuration: Sendable, Equatable {
        /// The key layout.
        public var layout: BundleKeyLayout
        /// Staging sessions older than this are removed by ``BundleStore/sweepStaging(olderThan:now:)``
        /// callers that use the default. Default 24 hours.
        public var stagingTTL: TimeInterval
        /// The largest bundle any upload may bring (`STORE_TOO_LARGE` past it, with nothing left
        /// behind); nil for no cap. Default 209,715,200 bytes (200 MiB), Alga's cap.
        public var maxBundleBytes: Int64?

        /// Creates a configuration.
        public init(layout: BundleKeyLayout = .default, stagingTTL: TimeInterval = 86_400, maxBundleBytes: Int64? = 209_715_200) {
            self.layout = layout
            self.stagingTTL = stagingTTL
            self.maxBundleBytes = maxBundleBytes
        }
    }

    /// The object store underneath.
    public let objects: any ObjectStore
    /// The settings.
    public let configuration: Configuration
    /// The folder of canonical bundle keys, ending in `/` (`sha256/` by default).
    public let bundlePrefix: String
    /// The folder of staging keys, ending in `/` (`sha256/_staging/` by default).
    public let stagingPrefix: String

    /// Creates the layer over `objects`.
    /// - Throws: `STORE_CONFIGURATION` for a base prefix that breaks the key rules (`..` or `.`
    ///   segments, control characters) or a tenant or registry id that is empty, `.`, `..`, or
    ///   contains `/` or a control character.
    public init(objects: any ObjectStore, configuration: Configuration = .init()) throws(StoreError) {
        self.objects = objects
        self.configuration = configuration
        switch configuration.layout {
        case .contentAddressed(let base):
            bundlePrefix = Self.normalizeBasePrefix(base)
            stagingPrefix = bundlePrefix + "_staging/"
        case .tenant(let tenant, let registry):
            for (name, value) in [("tenant id", tenant), ("registry id", registry)]
            where value.isEmpty || value.utf8.contains(BytePath.slash) || BytePath.isDotSegment(value.utf8)
                || BytePath.containsControl(value.utf8)
            {
                throw StoreError(code: .storeConfiguration, reason: "invalid \(name) '\(Printable.escape(value))'")
            }
            bundlePrefix = "tenants/\(tenant)/extensions/\(registry)/sha256/"
            stagingPrefix = "tenants/\(tenant)/_staging/"
        }
        do {
            try ObjectKey.validatePrefix(bundlePrefix)
            try ObjectKey.validatePrefix(stagingPrefix)
        } catch {
            throw StoreError(
                code: .storeConfiguration, reason: "invalid bundle key prefix: \(error.reason)", key: error.key)
        }
    }

    /// Alga's `normalizeBasePrefix`: no leading `/`, exactly one trailing `/`, empty → `sha256/`.
    /// Works on bytes: a `/` followed by a combining mark is still a `/`.
    public static func normalizeBasePrefix(_ base: String) -> String {
        var value = Array(base.utf8)[...]
        while value.first == BytePath.slash { value = value.dropFirst() }
        while value.last == BytePath.slash { value = value.dropLast() }
        return value.isEmpty ? "sha256/" : String(decoding: value, as: UTF8.self) + "/"
    }

    // MARK: - Key rules

    /// Whether `key` is a staging key of this store: `<staging prefix><id>/bundle.tar.zst` with
    /// one non-empty `<id>` segment (Alga's `/_staging/<id>/bundle.tar.zst`), compared as bytes.
    public func isStagingKey(_ key: String) -> Bool {
        guard (try? ObjectKey.validate(key)) != nil, BytePath.hasPrefix(key, stagingPrefix) else { return false }
        let rest = BytePath.segments(key.utf8.dropFirst(stagingPrefix.utf8.count))
        return rest.count == 2 && !rest[0].isEmpty && rest[1].elementsEqual("bundle.tar.zst".utf8)
    }

    /// Whether `key` lies under this store's bundle prefix (`sha256/` by default), as bytes.
    public func isUnderBundlePrefix(_ key: String) -> Bool { BytePath.hasPrefix(key, bundlePrefix) }

    /// `<prefix><hex>/bundle.tar.zst`.
    public func bundleKey(for hash: ContentHash) -> String { bundlePrefix + hash.hex + "/bundle.tar.zst" }

    /// The key of an object beside the bundle.
    public func sideObjectKey(for hash: ContentHash, _ object: BundleSideObject) throws(StoreError) -> String {
        if case .precompiled(let name) = object, name.isEmpty || name.utf8.contains(BytePath.slash) || name.utf8.first == BytePath.dot {
            throw .invalidKey(name, "a precompiled target name may not be empty, start with '.' or contain '/'")
        }
        let key = bundlePrefix + hash.hex + "/" + object.fileName
        try ObjectKey.validate(key)
        return key
    }

    // MARK: - Bundles

    /// The canonical bundle's info, or nil.
    public func headBundle(_ hash: ContentHash) async throws -> ObjectInfo? { try await objects.head(bundleKey(for: hash)) }

    /// Reads the canonical bundle (or a range of it).
    public func getBundle(_ hash: ContentHash, range: ByteRange? = nil) async throws -> ObjectBody {
        try await objects.get(bundleKey(for: hash), range: range)
    }

    /// Stores a bundle write-once under its content hash.
    ///
    /// Without `expected`, the bytes stream to a staging key while they are hashed, then are
    /// copied create-only to the canonical key, and the staging object is removed. With
    /// `expected`, they stream straight to the canonical key, create-only, and the hash is checked
    /// before the last chunk is released, so a body that does not hash to `expected` fails the
    /// write and leaves nothing; when that bundle is already stored (and re-hashes correctly), the
    /// body is not read at all.
    /// - Parameters:
    ///   - length: the exact length when known (lets backends stream without buffering).
    ///   - expected: the hash the bytes must have; a mismatch is `STORE_HASH_MISMATCH` and leaves
    ///     no canonical object.
    ///   - maxBytes: refuse bodies longer than this (`STORE_TOO_LARGE`), as soon as it is exceeded.
    ///   (Default: ``Configuration/maxBundleBytes``.)
    public func putBundle(
        _ body: ByteStream, length: Int64? = nil, expected: ContentHash? = nil, maxBytes: Int64? = nil
    ) async throws -> StoredBundle {
        let maxBytes = maxBytes ?? configuration.maxBundleBytes
        if let length, let maxBytes, length > maxBytes { throw Self.tooLarge(key: bundlePrefix, limit: maxBytes, actual: length) }
        if let expected { return try await putBundle(body, length: length, directlyAs: expected, maxBytes: maxBytes) }
        let staged = try await stage(body, length: length, key: newStagingKey(), maxBytes: maxBytes)
        do {
            return try await publish(staged)
        } catch {
            try? await objects.delete(staged.key)
            throw error
        }
    }

    private func putBundle(
        _ body: ByteStream, length: Int64?, directlyAs expected: ContentHash, maxBytes: Int64?
    ) async throws -> StoredBundle {
        let key = bundleKey(for: expected)
        if let existing = try await objects.head(key) {
            try await verifyCanonical(key: key, hash: expected, size: existing.size)
            return StoredBundle(hash: expected, size: existing.size, key: key, outcome: .alreadyPresent)
        }
        let hasher = LockedValue(ContentHasher())
        let checked = Self.counting(body, into: hasher, key: key, maxBytes: maxBytes).checkingBeforeEnd {
            try Self.check(hasher.withLock { $0.finalize() }, expected: expected, key: key)
        }
        do {
            let info = try await objects.put(key, body: checked, length: length, condition: .createOnly)
            return StoredBundle(hash: expected, size: info.size, key: key, outcome: .stored)
        } catch let error as StoreError where error.code == .storeAlreadyExists {
            try await verifyCanonical(key: key, hash: expected)
            let size = try await objects.head(key)?.size ?? 0
            return StoredBundle(hash: expected, size: size, key: key, outcome: .alreadyPresent)
        }
    }

    /// Copies a staged bundle create-only to its canonical key, then deletes the staging object.
    /// Identical bytes already at the canonical key are an idempotent success.
    public func publish(_ staged: StagedBundle) async throws -> StoredBundle {
        let stored = try await publishStaged(key: staged.key, hash: staged.hash, size: staged.size, etag: staged.etag)
        try? await objects.delete(staged.key)
        return stored
    }

    /// Publishes a verified staging object to the canonical key of `hash`: a create-only copy
    /// pinned to `etag`, the ETag the bytes were read (and verified) under, so a staging object
    /// replaced since then is never copied (`STORE_SOURCE_CHANGED`, nothing written). An object
    /// already at the canonical key is accepted only after it re-hashes to `hash`
    /// (`STORE_CORRUPT_OBJECT` otherwise, and it is left in place). The copy is then checked:
    /// a canonical object that is missing or not `size` bytes is `STORE_CANONICAL_MISSING`. The
    /// staging object is kept (delete it with ``deleteStaged(_:)`` once the bundle is registered).
    public func publishStaged(key staging: String, hash: ContentHash, size: Int64, etag: String?) async throws -> StoredBundle {
        guard isStagingKey(staging) else { throw StoreError.invalidKey(staging, "not a staging key of this store") }
        let key = bundleKey(for: hash)
        var outcome = StoredBundle.Outcome.stored
        do {
            try await objects.copy(from: staging, to: key, condition: .createOnly, sourceETag: etag)
        } catch let error as StoreError where error.code == .storeAlreadyExists {
            try await verifyCanonical(key: key, hash: hash, size: size)
            outcome = .alreadyPresent
        }
        let info = try await objects.head(key)
        guard let info, info.size == size else {
            throw StoreError(
                code: .storeCanonicalMissing, reason: "the canonical object is missing or has another size after the copy", key: key,
                expected: "\(size) bytes", actual: info.map { "\($0.size) bytes" } ?? "none")
        }
        return StoredBundle(hash: hash, size: size, key: key, outcome: outcome)
    }

    // MARK: - Side objects

    /// Writes a side object beside the bundle `hash`, create-only: side objects are write-once
    /// like the bundle. Returns ``StoredBundle/Outcome/alreadyPresent`` when one is there already
    /// (its bytes are left as they are, as Alga does for `manifest.json`).
    @discardableResult
    public func putSideObject(_ object: BundleSideObject, of hash: ContentHash, bytes: [UInt8]) async throws -> StoredBundle.Outcome {
        do {
            try await objects.put(try sideObjectKey(for: hash, object), bytes: bytes, condition: .createOnly)
            return .stored
        } catch let error as StoreError where error.code == .storeAlreadyExists {
            return .alreadyPresent
        }
    }

    /// The bytes of a side object of the bundle `hash`, or nil when there is none.
    /// - Parameter limit: refuse objects larger than this (`STREAM_LIMIT_EXCEEDED`).
    public func sideObject(_ object: BundleSideObject, of hash: ContentHash, limit: Int) async throws -> [UInt8]? {
        try await sideObjectWithInfo(object, of: hash, limit: limit)?.bytes
    }

    /// The bytes of a side object and its info (size, ETag, and when it was written: side objects
    /// are write-once, so for `bundle.sig` that is when finalize accepted the signatures).
    public func sideObjectWithInfo(_ object: BundleSideObject, of hash: ContentHash, limit: Int) async throws
        -> (bytes: [UInt8], info: ObjectInfo)?
    {
        let key = try sideObjectKey(for: hash, object)
        do {
            let body = try await objects.get(key)
            guard body.info.size <= Int64(limit) else { throw StreamLimitExceeded(limit: limit) }
            return (try await body.stream.collect(upTo: limit), body.info)
        } catch let error as StoreError where error.code == .storeNotFound {
            return nil
        }
    }

    // MARK: - Staged objects

    /// The info (size, ETag) of a staging object, or nil when there is none.
    /// - Throws: `STORE_INVALID_KEY` for a key that is not a staging key of this store, or the
    ///   backend's error.
    public func stagedInfo(_ key: String) async throws -> ObjectInfo? {
        guard isStagingKey(key) else { throw StoreError.invalidKey(key, "not a staging key of this store") }
        return try await objects.head(key)
    }

    /// Opens a staging object for reading, once ``stagedInfo(_:)`` found it.
    /// - Throws: `STORE_TOO_LARGE` when it is larger than `maxBytes` (default
    ///   ``Configuration/maxBundleBytes``; checked before any byte is read), `STORE_NOT_FOUND`
    ///   when it vanished, or the backend's error.
    public func openStaged(_ info: ObjectInfo, maxBytes: Int64? = nil) async throws -> ObjectBody {
        guard isStagingKey(info.key) else { throw StoreError.invalidKey(info.key, "not a staging key of this store") }
        if let limit = maxBytes ?? configuration.maxBundleBytes, info.size > limit {
            throw Self.tooLarge(key: info.key, limit: limit, actual: info.size)
        }
        return try await objects.get(info.key)
    }

    /// Deletes a staging object (a missing one is fine). Only staging keys are ever deleted.
    public func deleteStaged(_ key: String) async throws {
        guard isStagingKey(key) else { throw StoreError.invalidKey(key, "not a staging key of this store") }
        try await objects.delete(key)
    }

    /// Re-hashes the object at a canonical key and fails unless it is the bundle the key names.
    public func verifyCanonical(key: String, hash: ContentHash, size: Int64? = nil) async throws {
        let body = try await objects.get(key)
        var hasher = ContentHasher()
        for try await chunk in body.stream { hasher.update(chunk) }
        let actual = hasher.finalize()
        guard actual == hash, size.map({ $0 == hasher.byteCount }) ?? true else {
            throw StoreError(
                code: .storeCorruptObject,
                reason: "the object at a content-addressed key does not match its hash; it was left in place",
                key: key, expected: hash.prefixed, actual: actual.prefixed)
        }
    }

    // MARK: - Staging

    /// Streams `body` to a new staging key, `<staging prefix><uuid>/bundle.tar.zst`, create-only,
    /// hashing and counting it on the way (Alga's upload-proxy, reference 4.5). The size and hash
    /// are checked before the last chunk is released, so a body that is longer or shorter than
    /// `expectedSize`, larger than `maxBytes`, or does not hash to `expectedHash` fails the write
    /// and leaves no staging object.
    /// - Throws: `STORE_TOO_LARGE`, `STORE_SIZE_MISMATCH`, `STORE_HASH_MISMATCH`, or the backend's error.
    public func stageBundle(
        _ body: ByteStream, length: Int64? = nil, maxBytes: Int64? = nil, expectedSize: Int64? = nil, expectedHash: ContentHash? = nil
    ) async throws -> StagedBundle {
        let key = newStagingKey()
        let cap = [maxBytes, expectedSize, configuration.maxBundleBytes].compactMap { $0 }.min()
        return try await stage(body, length: length, key: key, maxBytes: cap) { hasher in
            if let expectedSize, hasher.byteCount != expectedSize {
                throw StoreError(
                    code: .storeSizeMismatch, reason: "the body is not the declared size", key: key,
                    expected: "\(expectedSize) bytes", actual: "\(hasher.byteCount) bytes")
            }
            if let expectedHash { try Self.check(hasher.finalize(), expected: expectedHash, key: key) }
        }
    }

    // MARK: - Staging sessions

    /// Starts a resumable upload session.
    public func createUpload() async throws -> String {
        let id = Self.newUploadID()
        let marker = Array("{\"createdAt\":\(Int(Date().timeIntervalSince1970))}".utf8)
        try await objects.put(sessionPrefix(id) + "session.json", bytes: marker, condition: .createOnly)
        return id
    }

    /// Appends `body` at `offset`, which must equal the committed offset (a gap or an overlap is
    /// `STORE_UPLOAD_OFFSET_MISMATCH`); returns the new committed offset.
    ///
    /// A session may not grow past ``Configuration/maxBundleBytes``: an append that would is
    /// `STORE_TOO_LARGE`, refused as soon as its length (or its bytes, as they stream) cross the
    /// cap, and the whole session is deleted, so nothing of it is left.
    ///
    /// `maxBytes` lowers the cap for this call (a host whose own limit is smaller than the
    /// store's passes it here). Appending to a committed session is `STORE_UPLOAD_OFFSET_MISMATCH`.
    @discardableResult
    public func append(uploadID: String, offset: Int64, body: ByteStream, length: Int64? = nil, maxBytes: Int64? = nil)
        async throws -> Int64
    {
        let committed = try await status(uploadID: uploadID)
        if try await objects.head(committedKey(uploadID)) != nil {
            throw StoreError(
                code: .storeUploadOffset, reason: "the upload session is already committed", key: sessionPrefix(uploadID),
                expected: String(committed), actual: String(offset))
        }
        guard offset == committed else { throw Self.offsetMismatch(uploadID, expected: committed, actual: offset) }
        let key = sessionPrefix(uploadID) + "chunks/" + Self.offsetName(offset)
        var observed = body
        if let cap = [maxBytes, configuration.maxBundleBytes].compactMap({ $0 }).min() {
            if let length, length > cap - committed {
                try? await abort(uploadID: uploadID)
                throw Self.tooLarge(key: sessionPrefix(uploadID), limit: cap, actual: committed.addingReportingOverflow(length).overflow ? .max : committed + length)
            }
            let total = LockedValue(committed)
            observed = body.observing { chunk in
                let now = total.withLock { value -> Int64 in
                    value += Int64(chunk.count)
                    return value
                }
                if now > cap { throw Self.tooLarge(key: key, limit: cap, actual: now) }
            }
        }
        let info: ObjectInfo
        do {
            info = try await objects.put(key, body: observed, length: length, condition: .createOnly)
        } catch let error as StoreError where error.code == .storeAlreadyExists {
            // Another append at the same offset won the race.
            throw Self.offsetMismatch(uploadID, expected: try await status(uploadID: uploadID), actual: offset)
        } catch let error as StoreError where error.code == .storeTooLarge {
            try? await abort(uploadID: uploadID)
            throw error
        }
        if info.size == 0 { try await objects.delete(key) }
        let (next, overflow) = offset.addingReportingOverflow(info.size)
        guard !overflow, info.size >= 0 else {
            throw StoreError(code: .storeBackend, reason: "the store reported an impossible size", key: key, actual: String(info.size))
        }
        return next
    }

    /// The committed offset: the bytes appended so far, in one contiguous run from 0 (for a
    /// committed session, the size of its staged bundle).
    public func status(uploadID: String) async throws -> Int64 {
        try Self.validateUploadID(uploadID)
        guard try await objects.head(sessionPrefix(uploadID) + "session.json") != nil else {
            throw StoreError(code: .storeUploadNotFound, reason: "no such upload session", key: sessionPrefix(uploadID))
        }
        if let staged = try await objects.head(committedKey(uploadID)) { return staged.size }
        var committed: Int64 = 0
        for chunk in try await chunks(of: uploadID) {
            guard chunk.offset == committed, chunk.info.size >= 0 else { break }
            let (next, overflow) = committed.addingReportingOverflow(chunk.info.size)
            guard !overflow else { break }
            committed = next
        }
        return committed
    }

    /// Assembles the appended chunks into `<staging>/<uuid>/bundle.tar.zst`, hashing them in the
    /// same pass, checks `expectedSize` and `expectedHash`, and removes the chunks.
    ///
    /// Idempotent: committing a committed session (a retry, or the loser of two concurrent
    /// commits) re-reads the staged bundle and returns it, checked against this call's
    /// expectations; it never replaces or deletes what the first commit staged.
    public func commit(uploadID: String, expectedSize: Int64? = nil, expectedHash: ContentHash? = nil) async throws -> StagedBundle {
        let committed = try await status(uploadID: uploadID)
        if let expectedSize, expectedSize != committed {
            throw StoreError(
                code: .storeSizeMismatch, reason: "the upload does not have the expected size", key: sessionPrefix(uploadID),
                expected: String(expectedSize), actual: String(committed))
        }
        if let existing = try await objects.head(committedKey(uploadID)) {
            return try await alreadyCommitted(existing, uploadID: uploadID, expectedHash: expectedHash)
        }
        let parts = try await chunks(of: uploadID)
        let objects = self.objects
        let streams = parts.map { part in
            ByteStream(unfolding: LazyObjectStream(objects: objects, key: part.info.key).next)
        }
        let staged: StagedBundle
        do {
            staged = try await stage(
                .concatenating(streams), length: committed, key: committedKey(uploadID), maxBytes: nil, uploadID: uploadID)
        } catch {
            // A concurrent commit of the same session won (our write found its object, or its
            // removal of the chunks cut our read short); its object is complete once visible.
            guard let existing = try await objects.head(committedKey(uploadID)) else { throw error }
            return try await alreadyCommitted(existing, uploadID: uploadID, expectedHash: expectedHash)
        }
        if let expectedHash {
            do {
                try Self.check(staged.hash, expected: expectedHash, key: staged.key)
            } catch {
                try? await objects.delete(staged.key)
                throw error
            }
        }
        for part in parts { try? await objects.delete(part.info.key) }
        return staged
    }

    /// Deletes every object of an upload session.
    public func abort(uploadID: String) async throws {
        try Self.validateUploadID(uploadID)
        for object in try await objects.listAll(prefix: sessionPrefix(uploadID)) { try await objects.delete(object.key) }
    }

    /// Alga's abort (reference 4.7): a key without `/_staging/` is a no-op; a staging key is
    /// deleted (a missing one counts as deleted). Canonical keys are never deleted here.
    public func abort(key: String) async throws -> AbortOutcome {
        try ObjectKey.validate(key)
        guard isStagingKey(key) else { return .noop(key: key) }
        try await objects.delete(key)
        return .deleted(key: key)
    }

    /// Deletes staging sessions whose newest object is older than `age` seconds (default: the
    /// configured TTL) and returns their ids. Only keys under the staging prefix are listed, so
    /// canonical bundles are never touched.
    @discardableResult
    public func sweepStaging(olderThan age: TimeInterval? = nil, now: Date = Date()) async throws -> [String] {
        let cutoff = now.addingTimeInterval(-(age ?? configuration.stagingTTL))
        // Keyed by the session's bytes: canonically equal ids are different sessions.
        var newest: [[UInt8]: Date] = [:]
        var keys: [[UInt8]: [String]] = [:]
        for object in try await objects.listAll(prefix: stagingPrefix) {
            guard BytePath.hasPrefix(object.key, stagingPrefix) else { continue }
            let rest = BytePath.segments(object.key.utf8.dropFirst(stagingPrefix.utf8.count))
            guard rest.count >= 2, !rest[0].isEmpty else { continue }
            let session = Array(rest[0])
            keys[session, default: []].append(object.key)
            let modified = object.lastModified ?? .distantPast
            newest[session] = max(newest[session] ?? .distantPast, modified)
        }
        var swept: [String] = []
        for (session, date) in newest where date < cutoff {
            for key in keys[session] ?? [] { try await objects.delete(key) }
            swept.append(String(decoding: session, as: UTF8.self))
        }
        return swept.sorted()
    }

    // MARK: - Helpers

    private func sessionPrefix(_ id: String) -> String { stagingPrefix + id + "/" }

    /// Where a session's committed bundle is staged.
    private func committedKey(_ id: String) -> String { sessionPrefix(id) + "bundle.tar.zst" }

    /// The staged bundle of a committed session, re-hashed from the store and checked against
    /// `expectedHash`; a mismatch is refused without touching the object (it belongs to the
    /// commit that made it).
    private func alreadyCommitted(_ info: ObjectInfo, uploadID: String, expectedHash: ContentHash?) async throws -> StagedBundle {
        var hasher = ContentHasher()
        for try await chunk in try await objects.get(info.key).stream { hasher.update(chunk) }
        let hash = hasher.finalize()
        if let expectedHash { try Self.check(hash, expected: expectedHash, key: info.key) }
        return StagedBundle(uploadID: uploadID, key: info.key, hash: hash, size: hasher.byteCount, etag: info.etag)
    }

    private func newStagingKey() -> String { stagingPrefix + Self.newUploadID() + "/bundle.tar.zst" }

    private func chunks(of uploadID: String) async throws -> [(offset: Int64, info: ObjectInfo)] {
        try await objects.listAll(prefix: sessionPrefix(uploadID) + "chunks/").compactMap { info in
            Int64(BytePath.lastSegment(info.key)).map { ($0, info) }
        }.sorted { $0.offset < $1.offset }
    }

    /// Writes `body` to `key` create-only while hashing and counting it; `check`, if given, runs
    /// on the final hasher before the last chunk is released and may fail the write.
    private func stage(
        _ body: ByteStream, length: Int64?, key: String, maxBytes: Int64?, uploadID: String? = nil,
        check: (@Sendable (ContentHasher) throws -> Void)? = nil
    ) async throws -> StagedBundle {
        if let length, let maxBytes, length > maxBytes { throw Self.tooLarge(key: key, limit: maxBytes, actual: length) }
        let hasher = LockedValue(ContentHasher())
        var observed = Self.counting(body, into: hasher, key: key, maxBytes: maxBytes)
        if let check { observed = observed.checkingBeforeEnd { try check(hasher.withLock { $0 }) } }
        let info: ObjectInfo
        // Create-only, so a failed write leaves nothing (the store's contract) and whatever is at
        // `key` then belongs to someone else: it is never deleted here.
        info = try await objects.put(key, body: observed, length: length, condition: .createOnly)
        let (hash, size) = hasher.withLock { ($0.finalize(), $0.byteCount) }
        let id = uploadID ?? BytePath.segments(key.utf8.dropFirst(stagingPrefix.utf8.count)).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        return StagedBundle(uploadID: id, key: key, hash: hash, size: size, etag: info.etag)
    }

    /// `body`, hashed into `hasher` as it passes, failing with `STORE_TOO_LARGE` past `maxBytes`.
    private static func counting(
        _ body: ByteStream, into hasher: LockedValue<ContentHasher>, key: String, maxBytes: Int64?
    ) -> ByteStream {
        body.observing { chunk in
            let total = hasher.withLock { hasher in
                hasher.update(chunk)
                return hasher.byteCount
            }
            if let maxBytes, total > maxBytes { throw tooLarge(key: key, limit: maxBytes, actual: total) }
        }
    }

    static func tooLarge(key: String, limit: Int64, actual: Int64) -> StoreError {
        StoreError(
            code: .storeTooLarge, reason: "the bundle is larger than the limit", key: key, expected: "at most \(limit) bytes",
            actual: "\(actual) bytes or more")
    }

    private static func check(_ actual: ContentHash, expected: ContentHash, key: String) throws(StoreError) {
        guard actual == expected else {
            throw StoreError(
                code: .storeHashMismatch, reason: "the bytes do not hash to the expected content hash", key: key,
                expected: expected.prefixed, actual: actual.prefixed)
        }
    }

    private static func offsetMismatch(_ id: String, expected: Int64, actual: Int64) -> StoreError {
        StoreError(
            code: .storeUploadOffset,
            reason: actual > expected ? "the append would leave a gap" : "the append overlaps committed bytes",
            key: id, expected: String(expected), actual: String(actual))
    }

    static func newUploadID() -> String { UUID().uuidString.lowercased() }

    static func offsetName(_ offset: Int64) -> String {
        let digits = String(offset)
        return String(repeating: "0", count: max(0, 19 - digits.count)) + digits
    }

    static func validateUploadID(_ id: String) throws(StoreError) {
        guard UUID(uuidString: id) != nil, id == id.lowercased() else {
            throw StoreError(code: .storeUploadNotFound, reason: "not an upload id (a lowercase UUID)", key: id)
        }
    }
}

/// Opens an object on the first read, so a concatenation of many objects holds one open at a time.
final class LazyObjectStream: @unchecked Sendable {
    private let objects: any ObjectStore
    private let key: String
    private var iterator: ByteStream.AsyncIterator?

    init(objects: any ObjectStore, key: String) {
        self.objects = objects
        self.key = key
    }

    @Sendable func next() async throws -> [UInt8]? {
        if iterator == nil { iterator = try await objects.get(key).stream.makeAsyncIterator() }
        return try await iterator?.next()
    }
}

extension ErrorCode {
    /// A bundle is larger than the caller's limit.
    public static let storeTooLarge: ErrorCode = "STORE_TOO_LARGE"
    /// After a publish, the canonical object is missing or has another size.
    public static let storeCanonicalMissing: ErrorCode = "STORE_CANONICAL_MISSING"
}
