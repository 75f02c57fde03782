public import BundleCore
public import BundleVerify
public import Foundation

/// A runner's local cache of bundles, keyed by content hash.
///
/// The contract every implementation keeps (the shared conformance suite checks each point):
/// - ``ensureModuleCached(_:)`` and ``ensureUiCached(_:)`` return a handle to a complete, verified
///   entry, fetching the bundle on a miss. A handle is only ever given for bytes that hashed to
///   the requested hash and passed the archive limits; a failed fill leaves nothing that a later
///   call could serve.
/// - Concurrent misses for one hash share one fetch.
/// - An entry is never removed while a handle to it is held; handles release when the last copy
///   is dropped.
/// - Errors are ``CacheError``s naming the hash (`CACHE_HASH_MISMATCH`, `CACHE_NOT_FOUND`,
///   `CACHE_SIGNATURE_REFUSED`, `CACHE_FILL_FAILED`, `CACHE_NO_MODULE`); a remembered failure is
///   rethrown as it was.
public protocol ModuleCache: Sendable {
    /// The bundle's module (`dist/main.wasm`), fetching the bundle on a miss.
    func ensureModuleCached(_ hash: ContentHash) async throws -> ModuleHandle
    /// The bundle's UI root (`ui/`), fetching the bundle on a miss.
    func ensureUiCached(_ hash: ContentHash) async throws -> UIHandle
}

/// A bundle's detached signatures as a runner checks them: a key's validity window is judged at
/// the time the bundle was published (so retiring a key, or a certificate running out, does not
/// strand what it signed while valid); a revocation counts whenever it is made.
public struct PublishedSignatures: Sendable {
    /// The signatures finalize accepted.
    public var signatures: [DetachedSignature]
    /// When the bundle was published; nil judges validity windows now.
    public var publishedAt: Date?
    /// The publisher the bundle was registered under (the `manifest.json` finalize stored, which
    /// may override the archive's own); keys bound to publishers must allow it as well as the
    /// archive's. Nil: the archive's manifest alone decides.
    public var publisher: String?

    /// Creates a value.
    public init(_ signatures: [DetachedSignature], publishedAt: Date? = nil, publisher: String? = nil) {
        self.signatures = signatures
        self.publishedAt = publishedAt
        self.publisher = publisher
    }
}

/// Keeps a cache entry from being evicted while any copy of the value that holds it is alive.
public final class CacheLease: Sendable {
    /// The entry held.
    public let hash: ContentHash
    private let release: @Sendable () -> Void

    /// Creates a lease that calls `release` once, when the last reference goes.
    public init(hash: ContentHash, release: @escaping @Sendable () -> Void) {
        self.hash = hash
        self.release = release
    }

    deinit { release() }
}

/// A UI file of an entry: its size and strong ETag, computed once when the entry was filled.
public struct UIFile: Sendable, Equatable, Codable {
    /// Size in bytes.
    public var size: Int64
    /// `"sha256-<hex of the file>"`, quotes included.
    public var etag: String

    /// Creates a record.
    public init(size: Int64, etag: String) {
        self.size = size
        self.etag = etag
    }
}

/// A held cache entry's UI.
public struct UIHandle: Sendable {
    /// The bundle.
    public let hash: ContentHash
    /// The folder that holds the bundle's `ui/` files (it may not exist when the bundle has no UI).
    public let root: String
    /// The UI's files by path relative to ``root``, with their ETags.
    public let files: [String: UIFile]
    /// Keeps the entry while this handle (or a copy) lives.
    public let lease: CacheLease

    /// Creates a handle.
    public init(hash: ContentHash, root: String, files: [String: UIFile], lease: CacheLease) {
        self.hash = hash
        self.root = root
        self.files = files
        self.lease = lease
    }

    /// Whether `ui/index.html` is present (Alga's "UI cached" test).
    public var hasIndex: Bool { files["index.html"] != nil }

    /// The absolute path of a file of the UI.
    public func path(of relative: String) -> String { relative.isEmpty ? root : root + "/" + relative }

    /// The UI file at `relative` and its path as stored, matched byte for byte (a canonically
    /// equivalent spelling of a name is another name, as on the file system).
    public func file(at relative: String) -> (path: String, file: UIFile)? {
        guard let index = files.index(forKey: relative), files[index].key.utf8.elementsEqual(relative.utf8) else { return nil }
        return (files[index].key, files[index].value)
    }
}

/// A held cache entry's module.
public struct ModuleHandle: Sendable {
    /// The bundle.
    public let hash: ContentHash
    /// The path of `dist/main.wasm`.
    public let path: String
    /// Its size in bytes.
    public let size: Int64
    /// The entry's folder (the bundle's files, `dist/`, `manifest.json`, ...).
    public let bundleRoot: String
    /// Keeps the entry while this handle (or a copy) lives.
    public let lease: CacheLease

    /// Creates a handle.
    public init(hash: ContentHash, path: String, size: Int64, bundleRoot: String, lease: CacheLease) {
        self.hash = hash
        self.path = path
        self.size = size
        self.bundleRoot = bundleRoot
        self.lease = lease
    }

    /// Reads the module's bytes (on ``BundleCore/BlockingIO/shared``).
    public func bytes() async throws -> [UInt8] {
        let path = self.path
        let hash = self.hash
        do {
            return try await BlockingIO.shared.run { try BoundedFile.read(path, limit: 1 << 30) }
        } catch {
            throw CacheError(
                code: .cacheFillFailed, reason: "the cached module cannot be read", hash: hash, path: path, underlying: String(reflecting: error))
        }
    }
}

/// An error of a ``ModuleCache``.
public struct CacheError: ExtBundlesError, Equatable {
    /// The stable code.
    public var code: ErrorCode
    /// What went wrong.
    public var reason: String
    /// The bundle.
    public var hash: ContentHash?
    /// The file or folder involved.
    public var path: String?
    /// The expected value (a hash).
    public var expected: String?
    /// The actual value.
    public var actual: String?
    /// The underlying error's code (`VERIFY_HASH_MISMATCH`, `ARCHIVE_UNSAFE_PATH`, `STORE_NOT_FOUND`, ...).
    public var underlyingCode: String?
    /// The underlying error's details, for logs.
    public var underlying: String?

    /// Creates an error.
    public init(
        code: ErrorCode, reason: String, hash: ContentHash? = nil, path: String? = nil, expected: String? = nil, actual: String? = nil,
        underlyingCode: String? = nil, underlying: String? = nil
    ) {
        self.code = code
        self.reason = reason
        self.hash = hash
        self.path = path
        self.expected = expected
        self.actual = actual
        self.underlyingCode = underlyingCode
        self.underlying = underlying
    }

    /// A short description naming the bundle.
    public var description: String {
        var text = reason
        if let hash { text += " (\(hash.prefixed))" }
        if let expected, let actual { text += ": expected \(expected), got \(actual)" }
        return text
    }

    /// Every field.
    public var debugDescription: String {
        var fields = ["code: \(code)", "reason: \(reason)"]
        if let hash { fields.append("hash: \(hash.prefixed)") }
        if let path { fields.append("path: \(path)") }
        if let expected { fields.append("expected: \(expected)") }
        if let actual { fields.append("actual: \(actual)") }
        if let underlyingCode { fields.append("underlyingCode: \(underlyingCode)") }
        if let underlying { fields.append("underlying: \(underlying)") }
        return "CacheError(\(fields.joined(separator: ", ")))"
    }
}

extension ErrorCode {
    /// The fetched bytes do not hash to the requested hash.
    public static let cacheHashMismatch: ErrorCode = "CACHE_HASH_MISMATCH"
    /// The store has no bundle with this hash.
    public static let cacheNotFound: ErrorCode = "CACHE_NOT_FOUND"
    /// The bundle could not be fetched, verified or unpacked (a corrupt archive, an I/O error).
    public static let cacheFillFailed: ErrorCode = "CACHE_FILL_FAILED"
    /// The bundle's signatures do not satisfy the verifier's trust bundle (unsigned, unknown,
    /// revoked or expired key, a key not allowed for the publisher, a bad signature file).
    public static let cacheSignatureRefused: ErrorCode = "CACHE_SIGNATURE_REFUSED"
    /// The cache folder holds files that are not the cache's; it is refused, never cleaned.
    public static let cacheRootNotACache: ErrorCode = "CACHE_ROOT_NOT_A_CACHE"
    /// The bundle has no `dist/main.wasm`.
    public static let cacheNoModule: ErrorCode = "CACHE_NO_MODULE"
    /// A compiled module could not be produced.
    public static let cacheCompileFailed: ErrorCode = "CACHE_COMPILE_FAILED"
}
