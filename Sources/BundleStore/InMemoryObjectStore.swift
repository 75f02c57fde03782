public import BundleCore
import Crypto
public import Foundation

/// An ``ObjectStore`` in memory, for the tests of services that use the stores.
///
/// It keeps the full contract: create-only writes are atomic (the actor inserts only if absent),
/// a failing body leaves nothing, keys are validated, listings are ordered and paged.
public actor InMemoryObjectStore: ObjectStore {
    private struct Stored {
        var bytes: [UInt8]
        var info: ObjectInfo
    }

    /// Keyed by the key's bytes: canonically equivalent spellings are different keys, as on a
    /// file system or S3.
    private var objects: [[UInt8]: Stored] = [:]
    private let now: @Sendable () -> Date

    /// Creates an empty store.
    /// - Parameter now: the clock used for `lastModified` (inject one to test time-based sweeps).
    public init(now: @escaping @Sendable () -> Date = Date.init) {
        self.now = now
    }

    /// The object's info, or nil.
    public func head(_ key: String) async throws -> ObjectInfo? {
        try ObjectKey.validate(key)
        return objects[BytePath.key(key)]?.info
    }

    /// The object's bytes, or a range of them.
    public func get(_ key: String, range: ByteRange?) async throws -> ObjectBody {
        try ObjectKey.validate(key)
        guard let stored = objects[BytePath.key(key)] else { throw StoreError.notFound(key) }
        guard let range else {
            return ObjectBody(info: stored.info, range: nil, stream: .bytes(stored.bytes))
        }
        guard let resolved = range.resolve(size: stored.info.size) else {
            throw StoreError(code: .storeRangeNotSatisfiable, reason: "range \(range.headerValue) is outside the object", key: key)
        }
        let slice = Array(stored.bytes[Int(resolved.lowerBound)...Int(resolved.upperBound)])
        return ObjectBody(info: stored.info, range: resolved, stream: .bytes(slice))
    }

    /// Reads the whole body, then inserts it (only if absent, for create-only writes).
    @discardableResult
    public func put(_ key: String, body: ByteStream, length: Int64?, condition: WriteCondition) async throws -> ObjectInfo {
        try ObjectKey.validate(key)
        if condition == .createOnly, objects[BytePath.key(key)] != nil { throw StoreError.alreadyExists(key) }
        var bytes: [UInt8] = []
        for try await chunk in body { bytes += chunk }
        if let length, Int64(bytes.count) != length {
            throw StoreError(
                code: .storeSizeMismatch, reason: "the body does not have the declared length", key: key,
                expected: String(length), actual: String(bytes.count))
        }
        // The body was read with the actor suspended: check again before inserting.
        if condition == .createOnly, objects[BytePath.key(key)] != nil { throw StoreError.alreadyExists(key) }
        let digest = Hex.encode(Insecure.MD5.hash(data: bytes))
        let info = ObjectInfo(key: key, size: Int64(bytes.count), etag: digest, lastModified: now())
        objects[BytePath.key(key)] = Stored(bytes: bytes, info: info)
        return info
    }

    /// Copies within the store.
    @discardableResult
    public func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo {
        try ObjectKey.validate(source)
        try ObjectKey.validate(destination)
        guard var stored = objects[BytePath.key(source)] else {
            if let sourceETag { throw StoreError.sourceChanged(source, expected: sourceETag, actual: nil) }
            throw StoreError.notFound(source)
        }
        if let sourceETag, stored.info.etag != sourceETag {
            throw StoreError.sourceChanged(source, expected: sourceETag, actual: stored.info.etag)
        }
        if condition == .createOnly, objects[BytePath.key(destination)] != nil { throw StoreError.alreadyExists(destination) }
        stored.info.key = destination
        stored.info.lastModified = now()
        objects[BytePath.key(destination)] = stored
        return stored.info
    }

    /// Removes the object, if any.
    public func delete(_ key: String) async throws {
        try ObjectKey.validate(key)
        objects[BytePath.key(key)] = nil
    }

    /// Keys with the prefix, in byte order, paged.
    public func list(prefix: String, continuation: String?, limit: Int) async throws -> ObjectListing {
        try ObjectKey.validatePrefix(prefix)
        let matching = objects.values.map(\.info.key).filter { BytePath.hasPrefix($0, prefix) }
        let page = ObjectKey.page(matching, after: continuation, limit: limit)
        return ObjectListing(objects: page.keys.compactMap { objects[BytePath.key($0)]?.info }, continuation: page.continuation)
    }

    /// The number of objects (for tests).
    public var count: Int { objects.count }
}
