public import BundleCore
public import Foundation

/// What a store knows about an object.
public struct ObjectInfo: Sendable, Equatable {
    /// The key.
    public var key: String
    /// Size in bytes.
    public var size: Int64
    /// An opaque version tag without quotes (MD5 hex for simple S3 puts).
    public var etag: String?
    /// When the object was written.
    public var lastModified: Date?

    /// Creates an info.
    public init(key: String, size: Int64, etag: String? = nil, lastModified: Date? = nil) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// An object being read: its info and its bytes (the requested range only).
public struct ObjectBody: Sendable {
    /// The whole object's info (``ObjectInfo/size`` is the full size, also for a range read).
    public var info: ObjectInfo
    /// The bytes of the requested range.
    public var range: ClosedRange<Int64>?
    /// The bytes.
    public var stream: ByteStream

    /// Creates a body.
    public init(info: ObjectInfo, range: ClosedRange<Int64>?, stream: ByteStream) {
        self.info = info
        self.range = range
        self.stream = stream
    }
}

/// A byte range to read, as in HTTP `Range`.
public enum ByteRange: Sendable, Equatable {
    /// Bytes `first` through `last`, inclusive (clipped to the object).
    case bounded(first: Int64, last: Int64)
    /// From `first` to the end.
    case from(Int64)
    /// The last `count` bytes.
    case suffix(Int64)

    /// The concrete inclusive range within an object of `size` bytes, or nil when unsatisfiable.
    public func resolve(size: Int64) -> ClosedRange<Int64>? {
        switch self {
        case .bounded(let first, let last):
            guard first >= 0, first <= last, first < size else { return nil }
            return first...min(last, size - 1)
        case .from(let first):
            guard first >= 0, first < size else { return nil }
            return first...(size - 1)
        case .suffix(let count):
            guard count > 0, size > 0 else { return nil }
            return max(0, size - count)...(size - 1)
        }
    }

    /// Reads an HTTP `Range` header (RFC 9110) holding one `bytes=` range: nil when it should be
    /// ignored (another unit, several ranges, or a malformed one such as `bytes=5-3`), in which
    /// case the whole object is sent. Whether the range fits an object is ``resolve(size:)``'s
    /// question (nil there means 416).
    public static func parse(httpHeader header: String) -> ByteRange? {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return nil }
        let spec = text.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        func number(_ text: String) -> Int64? {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            return Int64(text) ?? .max  // more digits than fit: past any object's end
        }
        if first.isEmpty { return number(last).map { .suffix($0) } }
        guard let start = number(first) else { return nil }
        if last.isEmpty { return .from(start) }
        guard let end = number(last), end >= start else { return nil }
        return .bounded(first: start, last: end)
    }

    /// The HTTP `Range` header value.
    public var headerValue: String {
        switch self {
        case .bounded(let first, let last): "bytes=\(first)-\(last)"
        case .from(let first): "bytes=\(first)-"
        case .suffix(let count): "bytes=-\(count)"
        }
    }
}

/// When a write may happen.
public enum WriteCondition: Sendable, Equatable {
    /// Only if nothing is at the key (`If-None-Match: *`); otherwise `STORE_ALREADY_EXISTS`.
    case createOnly
    /// Replace whatever is there.
    case unconditional
}

/// One page of a listing.
public struct ObjectListing: Sendable, Equatable {
    /// The objects, in the backend's stable listing order (UTF-8 byte order for memory,
    /// filesystem and AWS S3).
    public var objects: [ObjectInfo]
    /// Pass this to get the next page; nil on the last page.
    public var continuation: String?

    /// Creates a page.
    public init(objects: [ObjectInfo], continuation: String?) {
        self.objects = objects
        self.continuation = continuation
    }
}

/// A presigned operation.
public enum PresignedOperation: Sendable, Equatable {
    /// Download the object.
    case get
    /// Upload the whole object.
    case put
    /// Upload the whole object, whose SHA-256 must be this hash: the store refuses other bytes.
    /// On S3 the URL signs `x-amz-checksum-sha256` (the digest in base64, see
    /// ``PresignedOperation/checksumHeader(_:)``), so the uploader must send it and S3 answers
    /// 400 `BadDigest` for bytes that do not hash to it.
    case putChecked(ContentHash)
    /// Upload one part of a multipart upload.
    case uploadPart(uploadID: String, partNumber: Int)
}

extension PresignedOperation {
    /// The `x-amz-checksum-sha256` header (name and base64 value) an upload of bytes hashing to
    /// `hash` sends with a ``putChecked(_:)`` URL.
    public static func checksumHeader(_ hash: ContentHash) -> (name: String, value: String) {
        ("x-amz-checksum-sha256", Data(hash.digestBytes).base64EncodedString())
    }
}

/// Where objects live: a flat namespace of keys to immutable byte strings.
///
/// The contract every backend keeps (checked by the shared conformance suite):
/// - Keys follow ``ObjectKey/validate(_:)``; any other key is refused with `STORE_INVALID_KEY`
///   before anything is touched, and no key ever reaches outside the backend's namespace.
/// - `put` with ``WriteCondition/createOnly`` is atomic: exactly one of several concurrent writers
///   to a key succeeds, the others get `STORE_ALREADY_EXISTS`, and an existing object is never
///   replaced. A write that fails or is interrupted (error, crash, `SIGKILL`) leaves no visible
///   object at the key, never a partial one.
/// - `get` and `head` of a missing key: `STORE_NOT_FOUND` and nil. A range outside the object:
///   `STORE_RANGE_NOT_SATISFIABLE`.
/// - `copy` keeps the same condition semantics as `put`; copying a missing source is
///   `STORE_NOT_FOUND`.
/// - `delete` of a missing key succeeds.
/// - `list` returns every key with the prefix exactly once across its pages, at most `limit` per
///   page, in a stable order, with a continuation that resumes after the last key returned. The
///   in-memory and filesystem stores (and AWS S3) order by UTF-8 bytes; some S3-compatible servers
///   (SeaweedFS) list folder by folder, so `a/b/1` comes before `a/b-x` there.
/// - Errors are ``StoreError``s; credentials never appear in their `description`.
public protocol ObjectStore: Sendable {
    /// The object's info, or nil when there is none.
    func head(_ key: String) async throws -> ObjectInfo?

    /// Reads the object, or the `range` of it.
    func get(_ key: String, range: ByteRange?) async throws -> ObjectBody

    /// Writes `body` (of `length` bytes when known) at `key`.
    @discardableResult
    func put(_ key: String, body: ByteStream, length: Int64?, condition: WriteCondition) async throws -> ObjectInfo

    /// Copies the object at `source` to `destination`. With `sourceETag`, the copy happens only
    /// if the source still has that ETag, else `STORE_SOURCE_CHANGED` and nothing is written: the
    /// bytes copied are the bytes that were read (and verified) under that ETag.
    @discardableResult
    func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo

    /// Deletes the object; a missing object is not an error.
    func delete(_ key: String) async throws

    /// Lists keys starting with `prefix`, after `continuation`, at most `limit`.
    func list(prefix: String, continuation: String?, limit: Int) async throws -> ObjectListing

    /// A URL that performs `operation` on `key` without credentials until `expires` seconds from
    /// now, or nil when the backend cannot presign.
    func presignedURL(for operation: PresignedOperation, key: String, expires: Int) async throws -> URL?
}

extension ObjectStore {
    /// Backends without presigning return nil.
    public func presignedURL(for operation: PresignedOperation, key: String, expires: Int) async throws -> URL? {
        nil
    }

    /// Reads the whole object.
    public func get(_ key: String) async throws -> ObjectBody { try await get(key, range: nil) }

    /// Copies the object at `source` to `destination`, whatever its ETag.
    @discardableResult
    public func copy(from source: String, to destination: String, condition: WriteCondition) async throws -> ObjectInfo {
        try await copy(from: source, to: destination, condition: condition, sourceETag: nil)
    }

    /// Writes bytes held in memory.
    @discardableResult
    public func put(_ key: String, bytes: [UInt8], condition: WriteCondition = .createOnly) async throws -> ObjectInfo {
        try await put(key, body: .bytes(bytes), length: Int64(bytes.count), condition: condition)
    }

    /// Reads the whole object into memory, refusing more than `limit` bytes.
    public func bytes(_ key: String, limit: Int = 64 << 20) async throws -> [UInt8] {
        try await get(key).stream.collect(upTo: limit)
    }

    /// Every key with `prefix`, following continuations.
    public func listAll(prefix: String, pageSize: Int = 1_000) async throws -> [ObjectInfo] {
        var all: [ObjectInfo] = []
        var continuation: String?
        repeat {
            let page = try await list(prefix: prefix, continuation: continuation, limit: pageSize)
            all += page.objects
            // A continuation that does not move forward (a misbehaving server) ends the listing.
            if let next = page.continuation, let previous = continuation, !ObjectKey.precedes(previous, next) {
                throw StoreError(
                    code: .storeBackend, reason: "the listing does not advance (continuation '\(Printable.escape(next))' repeats)",
                    key: prefix)
            }
            continuation = page.continuation
        } while continuation != nil
        return all
    }
}

/// A part of a multipart upload, as the backend acknowledged it.
public struct UploadedPart: Sendable, Equatable {
    /// 1-based part number.
    public var number: Int
    /// The ETag the backend returned for it, without quotes.
    public var etag: String

    /// Creates a part record.
    public init(number: Int, etag: String) {
        self.number = number
        self.etag = etag
    }
}

/// The optional multipart capability (S3): an object assembled from parts uploaded separately,
/// in parallel or by another client through presigned part URLs.
///
/// Contract: nothing is visible at the key until ``completeMultipartUpload(_:uploadID:parts:condition:)``
/// succeeds; every part but the last must be at least 5 MiB (otherwise the completion fails with
/// `STORE_INVALID_ARGUMENT`); ``WriteCondition/createOnly`` is enforced at completion; an aborted
/// or completed upload id is `STORE_NO_SUCH_UPLOAD` afterwards. Check for it with
/// `store as? any MultipartObjectStore`.
public protocol MultipartObjectStore: ObjectStore {
    /// Starts an upload and returns its id.
    func createMultipartUpload(_ key: String) async throws -> String

    /// Uploads part `number` (1-based).
    func uploadPart(_ key: String, uploadID: String, number: Int, bytes: [UInt8]) async throws -> UploadedPart

    /// Assembles the parts (in number order) into the object.
    @discardableResult
    func completeMultipartUpload(_ key: String, uploadID: String, parts: [UploadedPart], condition: WriteCondition) async throws -> ObjectInfo

    /// Discards the upload and its parts.
    func abortMultipartUpload(_ key: String, uploadID: String) async throws
}

/// The rules every object key follows, on every backend.
public enum ObjectKey {
    /// The longest key, in UTF-8 bytes (S3's limit).
    public static let maxLength = 1_024

    /// Refuses empty keys, keys over 1,024 bytes, a leading or trailing `/`, empty, `.` or `..`
    /// segments, and control characters (C0 and DEL). The rules work on the key's UTF-8 bytes, as
    /// a file system or S3 sees them: a `/` followed by a combining mark is still a `/`.
    public static func validate(_ key: String) throws(StoreError) {
        let bytes = key.utf8
        guard !bytes.isEmpty else { throw .invalidKey(key, "the key is empty") }
        guard bytes.count <= maxLength else {
            throw .invalidKey(String(decoding: bytes.prefix(64), as: UTF8.self) + "…", "longer than \(maxLength) bytes")
        }
        guard !BytePath.containsControl(bytes) else { throw .invalidKey(key, "control characters are not allowed") }
        guard bytes.first != BytePath.slash else { throw .invalidKey(key, "a key may not start with '/'") }
        guard bytes.last != BytePath.slash else { throw .invalidKey(key, "a key may not end with '/'") }
        for segment in BytePath.segments(bytes) {
            if segment.isEmpty { throw .invalidKey(key, "empty path segment") }
            if BytePath.isDotSegment(segment) {
                throw .invalidKey(key, "'\(String(decoding: segment, as: UTF8.self))' segments are not allowed")
            }
        }
    }

    /// Whether `lhs` sorts before `rhs` in UTF-8 byte order, the order of every listing.
    public static func precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    /// One page of `keys` (any order): those after `continuation`, sorted, at most `limit`, and the
    /// continuation for the next page.
    public static func page(_ keys: [String], after continuation: String?, limit: Int) -> (keys: [String], continuation: String?) {
        let sorted = keys.filter { key in continuation.map { precedes($0, key) } ?? true }.sorted(by: precedes)
        let page = Array(sorted.prefix(max(1, limit)))
        return (page, sorted.count > page.count ? page.last : nil)
    }

    /// Refuses a prefix whose complete segments (those followed by a `/`) are empty, `.` or `..`,
    /// a prefix with control characters, a leading `/`, or over 1,024 bytes. The text after the
    /// last `/` is a partial segment and may be anything a key segment may start with; an empty
    /// prefix is fine. On bytes, like ``validate(_:)``.
    public static func validatePrefix(_ prefix: String) throws(StoreError) {
        let bytes = prefix.utf8
        guard !bytes.isEmpty else { return }
        guard bytes.count <= maxLength else {
            throw .invalidKey(String(decoding: bytes.prefix(64), as: UTF8.self) + "…", "longer than \(maxLength) bytes")
        }
        guard !BytePath.containsControl(bytes) else { throw .invalidKey(prefix, "control characters are not allowed") }
        guard bytes.first != BytePath.slash else { throw .invalidKey(prefix, "a prefix may not start with '/'") }
        for segment in BytePath.segments(bytes).dropLast() {
            if segment.isEmpty { throw .invalidKey(prefix, "empty path segment") }
            if BytePath.isDotSegment(segment) {
                throw .invalidKey(prefix, "'\(String(decoding: segment, as: UTF8.self))' segments are not allowed")
            }
        }
    }
}
