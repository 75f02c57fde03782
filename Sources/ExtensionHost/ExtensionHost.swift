public import BundleCore
public import BundleStore
public import BundleVerify
public import Foundation
import ManifestV2
public import RegistryV2

/// The services a host's HTTP layer calls, free of any web framework: upload to staging,
/// finalize into an immutable registered version, abort, install/update/uninstall,
/// enable/disable, and resolution of a tenant's install to a content hash.
///
/// Bundles are stored once per content hash under the store's content-addressed layout
/// (`sha256/<hex>/bundle.tar.zst` by default), whichever tenant published them; every error is a
/// ``HostError`` with Alga's code and HTTP status.
public struct ExtensionHost: Sendable {
    /// Settings.
    public struct Configuration: Sendable, Equatable {
        /// The bundle size cap. Default 209,715,200 bytes (200 MiB), Alga's.
        public var maxBundleBytes: Int64
        /// Validate manifests in strict mode (reverse-domain names, strict SemVer, `cap:` ids).
        /// Default false: Alga's verdicts.
        public var strictManifests: Bool
        /// How many times a wildcard version is re-resolved when another publisher took the
        /// resolved version first. Default 5.
        public var wildcardRetries: Int
        /// How long ``ExtensionHost/resolveContentHash(_:tenant:)`` may answer from memory
        /// (seconds). This host's own install changes clear it at once; changes another process
        /// makes to a shared registry are seen within this time. Default 0.25; 0 turns it off.
        public var resolveCacheTTL: TimeInterval

        /// Creates a configuration.
        public init(
            maxBundleBytes: Int64 = 209_715_200, strictManifests: Bool = false, wildcardRetries: Int = 5, resolveCacheTTL: TimeInterval = 0.25
        ) {
            self.maxBundleBytes = maxBundleBytes
            self.strictManifests = strictManifests
            self.wildcardRetries = wildcardRetries
            self.resolveCacheTTL = resolveCacheTTL
        }
    }

    /// The bundle store.
    public let store: BundleStore
    /// The registry.
    public let registry: any RegistryBackend
    /// The verifier (its trust bundle sets the signature policy).
    public let verifier: any Verifier
    /// The settings.
    public let configuration: Configuration
    /// The clock (publish times, install times).
    public let now: @Sendable () -> Date
    /// Recent answers of ``resolveContentHash(_:tenant:)``.
    let resolveCache: ResolveCache

    /// Creates the services.
    public init(
        store: BundleStore, registry: any RegistryBackend, verifier: any Verifier = StreamingBundleVerifier(trust: nil),
        configuration: Configuration = .init(), now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.registry = registry
        self.verifier = verifier
        self.configuration = configuration
        self.now = now
        self.resolveCache = ResolveCache(ttl: configuration.resolveCacheTTL)
    }
}

// MARK: - Upload (reference 4.5)

/// The parameters of an upload, as the HTTP route receives them (query strings and headers).
public struct UploadRequest: Sendable, Equatable {
    /// `filename` (required, non-blank).
    public var filename: String?
    /// `size` as written (required, a positive number, at most the cap).
    public var size: String?
    /// `declaredHash` (optional, 64 lowercase hex). Unlike Alga, it is checked while the bytes stream.
    public var declaredHash: String?
    /// The `content-length` header, if any; when numeric it must equal `size`.
    public var contentLength: String?

    /// Creates a request.
    public init(filename: String?, size: String?, declaredHash: String? = nil, contentLength: String? = nil) {
        self.filename = filename
        self.size = size
        self.declaredHash = declaredHash
        self.contentLength = contentLength
    }

    /// A request for a local file of a known size.
    public init(filename: String, size: Int64, declaredHash: ContentHash? = nil) {
        self.init(filename: filename, size: String(size), declaredHash: declaredHash?.hex)
    }
}

/// The upload response: `{upload: {key, strategy}, filename, size, declaredHash?}`.
public struct UploadResult: Sendable, Equatable, Codable {
    /// Where the bytes went.
    public struct Upload: Sendable, Equatable, Codable {
        /// The staging key.
        public var key: String
        /// Always `staging`.
        public var strategy: String
    }

    /// The staging key and strategy.
    public var upload: Upload
    /// The file name given.
    public var filename: String
    /// The size in bytes.
    public var size: Int64
    /// The declared hash, echoed.
    public var declaredHash: String?
    /// The hash computed while streaming (not part of Alga's JSON).
    public var contentHash: ContentHash

    enum CodingKeys: String, CodingKey { case upload, filename, size, declaredHash }

    /// Decodes Alga's JSON (the computed hash is not in it and reads as the declared one, if any).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        upload = try container.decode(Upload.self, forKey: .upload)
        filename = try container.decode(String.self, forKey: .filename)
        size = try container.decode(Int64.self, forKey: .size)
        declaredHash = try container.decodeIfPresent(String.self, forKey: .declaredHash)
        contentHash = try ContentHash(parsing: declaredHash ?? String(repeating: "0", count: 64))
    }

    init(key: String, filename: String, size: Int64, declaredHash: String?, contentHash: ContentHash) {
        upload = Upload(key: key, strategy: "staging")
        self.filename = filename
        self.size = size
        self.declaredHash = declaredHash
        self.contentHash = contentHash
    }
}

extension ExtensionHost {
    /// Validates an upload's parameters with Alga's rules and messages; returns the size and the
    /// declared hash.
    public func validate(_ request: UploadRequest) throws(HostError) -> (size: Int64, declaredHash: ContentHash?) {
        // Alga's checks are JavaScript's: `trim()` and `Number()` (``JavaScriptText``).
        guard let filename = request.filename, !JavaScriptText.trim(filename).isEmpty else {
            throw .badRequest("filename is required", why: "filename_required")
        }
        guard let sizeText = request.size, !JavaScriptText.trim(sizeText).isEmpty else {
            throw .badRequest("size is required", why: "size_required")
        }
        let number = JavaScriptText.number(sizeText)
        guard number.isFinite, number > 0 else {
            throw .badRequest("size must be a positive number", why: "size_invalid")
        }
        guard number <= Double(configuration.maxBundleBytes) else {
            throw .badRequest("size exceeds maximum of \(configuration.maxBundleBytes) bytes", why: "size_exceeds_cap")
        }
        // Below the cap, so it fits an Int64.
        let size = Int64(exactly: number.rounded(.down)) ?? configuration.maxBundleBytes
        let declared = try validateDeclaredHash(request.declaredHash, why: "declared_hash_invalid")
        // A numeric content-length (as JavaScript's Number reads it, any size) must equal size.
        if let lengthText = request.contentLength, !JavaScriptText.trim(lengthText).isEmpty,
            case let length = JavaScriptText.number(lengthText), length.isFinite, length != Double(size)
        {
            throw .badRequest("content-length header does not match size param", why: "content_length_mismatch")
        }
        return (size, declared)
    }

    /// Streams an upload to a new staging key (reference 4.5). The size and the declared hash are
    /// checked while the bytes stream, so a body of the wrong size or hash leaves no staging
    /// object (Alga checks neither).
    public func upload(_ request: UploadRequest, body: ByteStream?) async throws(HostError) -> UploadResult {
        let (size, declared) = try validate(request)
        guard let body else { throw .badRequest("Missing request body", why: "missing_body") }
        do {
            let staged = try await store.stageBundle(body, length: size, maxBytes: size, expectedSize: size, expectedHash: declared)
            return UploadResult(
                key: staged.key, filename: request.filename ?? "", size: staged.size, declaredHash: declared?.hex, contentHash: staged.hash)
        } catch let error as StoreError {
            switch error.code {
            case .storeTooLarge, .storeSizeMismatch:
                throw HostError(
                    .badRequest, status: 400, "request body does not match size param", why: "body_size_mismatch",
                    details: ["expected": error.expected ?? "", "actual": error.actual ?? ""])
            case .storeHashMismatch:
                throw HostError(
                    .hashMismatch, status: 400, "Declared hash does not match computed content hash", why: "hash_mismatch",
                    details: ["declared": declared?.hex ?? "", "computed": Self.bareHex(error.actual)])
            case .storeNotFound where error.backendCode == "NoSuchBucket":
                throw HostError(.bucketNotFound, status: 500, "Storage bucket not found", why: "s3_put_failed", underlying: error.debugDescription)
            default:
                throw HostError(.s3PutFailed, status: 500, "Failed to store upload", why: "s3_put_failed", underlying: error.debugDescription)
            }
        } catch {
            throw HostError(.s3PutFailed, status: 500, "Failed to store upload", why: "s3_put_failed", underlying: String(reflecting: error))
        }
    }

    func validateDeclaredHash(_ text: String?, why: String? = nil) throws(HostError) -> ContentHash? {
        guard let text, !text.isEmpty else { return nil }
        // 64 characters: bare hex only (the `sha256:` spelling is longer).
        guard text.utf8.count == 64, let hash = try? ContentHash(parsing: text, allowUppercase: false) else { throw .badRequest("declaredHash must be 64-char lowercase hex sha256", why: why) }
        return hash
    }

    static func bareHex(_ prefixed: String?) -> String {
        guard let prefixed else { return "" }
        return (try? ContentHash(parsing: prefixed).hex) ?? prefixed
    }
}

// MARK: - Abort (reference 4.7)

/// The abort response: `{status: "deleted"|"noop", key, area: "staging"|"canonical"}`.
public struct AbortResult: Sendable, Equatable, Codable {
    /// `deleted` or `noop`.
    public var status: String
    /// The key given.
    public var key: String
    /// `staging` or `canonical`.
    public var area: String

    /// Creates a result.
    public init(status: String, key: String, area: String) {
        self.status = status
        self.key = key
        self.area = area
    }
}

extension ExtensionHost {
    /// Deletes a staging object; a key outside staging is a no-op, so canonical bundles are never
    /// deleted here. A missing staging object counts as deleted.
    public func abort(key: String?, reason: String? = nil) async throws(HostError) -> AbortResult {
        guard let key, !key.isEmpty else { throw .badRequest("Missing or invalid 'key' (string required)") }
        if case .contentAddressed = store.configuration.layout, !store.isUnderBundlePrefix(key) {
            throw .badRequest("Invalid key: must start with '\(store.bundlePrefix)'")
        }
        do {
            switch try await store.abort(key: key) {
            case .deleted: return AbortResult(status: "deleted", key: key, area: "staging")
            case .noop: return AbortResult(status: "noop", key: key, area: "canonical")
            }
        } catch let error as StoreError where error.code == .storeInvalidKey {
            throw .badRequest("Invalid key: \(error.reason)")
        } catch {
            throw HostError(.internalError, status: 500, "Failed to abort extension bundle upload.", underlying: String(reflecting: error))
        }
    }
}

// MARK: - Resumable upload sessions

/// Where a resumable upload stands.
public struct UploadSessionStatus: Sendable, Equatable, Codable {
    /// The session id.
    public var uploadId: String
    /// The bytes received so far, in one run from 0: the next append starts here.
    public var offset: Int64
    /// The cap the whole upload must stay under.
    public var maxBytes: Int64
}

extension ExtensionHost {
    /// Starts a resumable upload session (a staging area that takes the bundle in pieces).
    public func createUpload() async throws(HostError) -> UploadSessionStatus {
        do {
            let id = try await store.createUpload()
            return UploadSessionStatus(uploadId: id, offset: 0, maxBytes: configuration.maxBundleBytes)
        } catch {
            throw HostError(.s3PutFailed, status: 500, "Failed to start the upload", underlying: String(reflecting: error))
        }
    }

    /// Appends a piece at `offset` (which must be the session's current offset). An append that
    /// would take the upload past the bundle cap is 413 `BUNDLE_TOO_LARGE`, as the upload proxy
    /// and finalize answer, and the whole session is deleted.
    public func appendUpload(_ uploadID: String, offset: Int64, body: ByteStream, length: Int64? = nil) async throws(HostError)
        -> UploadSessionStatus
    {
        do {
            let next = try await store.append(
                uploadID: uploadID, offset: offset, body: body, length: length, maxBytes: configuration.maxBundleBytes)
            return UploadSessionStatus(uploadId: uploadID, offset: next, maxBytes: configuration.maxBundleBytes)
        } catch {
            throw sessionError(error, uploadID)
        }
    }

    /// The session's current offset.
    public func uploadStatus(_ uploadID: String) async throws(HostError) -> UploadSessionStatus {
        do {
            return UploadSessionStatus(
                uploadId: uploadID, offset: try await store.status(uploadID: uploadID), maxBytes: configuration.maxBundleBytes)
        } catch {
            throw sessionError(error, uploadID)
        }
    }

    /// Assembles the pieces into a staging object ready for ``finalize(_:)``, checking the
    /// expected size and hash.
    public func commitUpload(_ uploadID: String, filename: String, size: Int64? = nil, declaredHash: String? = nil) async throws(HostError)
        -> UploadResult
    {
        let declared = try validateDeclaredHash(declaredHash, why: "declared_hash_invalid")
        do {
            let staged = try await store.commit(uploadID: uploadID, expectedSize: size, expectedHash: declared)
            return UploadResult(key: staged.key, filename: filename, size: staged.size, declaredHash: declared?.hex, contentHash: staged.hash)
        } catch {
            throw sessionError(error, uploadID)
        }
    }

    /// Deletes a session and everything uploaded to it.
    public func abortUpload(_ uploadID: String) async throws(HostError) {
        do {
            try await store.abort(uploadID: uploadID)
        } catch {
            throw sessionError(error, uploadID)
        }
    }

    func sessionError(_ error: any Error, _ uploadID: String) -> HostError {
        guard let error = error as? StoreError else {
            return HostError(.internalError, status: 500, "The upload failed", underlying: String(reflecting: error))
        }
        switch error.code {
        case .storeTooLarge:
            return tooLarge(actual: error.actual.flatMap { Int64($0.prefix { $0.isNumber }) })
        case .storeUploadNotFound:
            return HostError(.uploadNotFound, status: 404, "Upload session not found", details: ["uploadId": uploadID])
        case .storeUploadOffset:
            return HostError(
                .uploadOffsetMismatch, status: 409, "The piece does not start at the upload's current offset",
                details: ["expected": error.expected ?? "", "actual": error.actual ?? ""])
        case .storeSizeMismatch:
            return HostError(
                .sizeMismatch, status: 400, "size does not match the uploaded bundle",
                details: ["declared": error.expected ?? "", "actual": error.actual ?? ""])
        case .storeHashMismatch:
            return HostError(
                .hashMismatch, status: 400, "Declared hash does not match computed content hash",
                details: ["declared": Self.bareHex(error.expected), "computed": Self.bareHex(error.actual)])
        default:
            return HostError(.s3PutFailed, status: 500, "Failed to store upload", underlying: error.debugDescription)
        }
    }
}
