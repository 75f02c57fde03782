public import BundleCore
import Foundation
public import ManifestV2

/// An error of the host services, carrying Alga's code and HTTP status (reference 4.5-4.8) so an
/// HTTP layer can answer with Alga's envelope unchanged.
public struct HostError: ExtBundlesError, Equatable {
    /// Alga's code: `HASH_MISMATCH`, `EXTENSION_VERSION_ALREADY_EXISTS`, ...
    public var code: ErrorCode
    /// The HTTP status.
    public var status: Int
    /// The public message (Alga's exact text where Alga has one).
    public var message: String
    /// The diagnostic of the upload route's `x-upload-proxy-why` header.
    public var why: String?
    /// Context for the client: `declared`/`computed` hashes, `limit`, `keyId`, `path`, ...
    public var details: [String: String]
    /// The manifest issues of `INVALID_MANIFEST`.
    public var issues: [ManifestIssue]
    /// The underlying error, for logs only (never sent to clients).
    public var underlying: String?

    /// Creates an error.
    public init(
        _ code: ErrorCode, status: Int, _ message: String, why: String? = nil, details: [String: String] = [:],
        issues: [ManifestIssue] = [], underlying: String? = nil
    ) {
        self.code = code
        self.status = status
        self.message = message
        self.why = why
        self.details = details
        self.issues = issues
        self.underlying = underlying
    }

    /// The message.
    public var description: String { message }

    /// Every field.
    public var debugDescription: String {
        var fields = ["code: \(code)", "status: \(status)", "message: \(message)"]
        if let why { fields.append("why: \(why)") }
        if !details.isEmpty { fields.append("details: \(details.sorted { $0.key < $1.key })") }
        if !issues.isEmpty { fields.append("issues: \(issues)") }
        if let underlying { fields.append("underlying: \(underlying)") }
        return "HostError(\(fields.joined(separator: ", ")))"
    }

    /// Alga's HTTP error body (reference 4.6): `{"success": false, "error": {message, code, details}}`
    /// for a duplicate version; `{error, code, details}` otherwise, with the message replaced by
    /// `genericMessage` and no details at status 500 and above.
    public func envelope(genericMessage: String = "Failed to finalize extension bundle.") -> [UInt8] {
        var object: [String: Any] = [:]
        var details: [String: Any] = self.details
        if !issues.isEmpty { details["issues"] = issues.map { ["path": $0.path, "message": $0.message] } }
        if code == .extensionVersionAlreadyExists {
            var error: [String: Any] = ["message": message, "code": code.rawValue]
            if !details.isEmpty { error["details"] = details }
            object = ["success": false, "error": error]
        } else if status >= 500 {
            object = ["error": genericMessage, "code": code.rawValue]
        } else {
            object = ["error": message, "code": code.rawValue]
            if !details.isEmpty { object["details"] = details }
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Array(data)
    }

    static func badRequest(_ message: String, why: String? = nil) -> HostError {
        HostError(.badRequest, status: 400, message, why: why)
    }

    static func internalError(_ message: String, _ error: any Error) -> HostError {
        HostError(.internalError, status: 500, message, underlying: String(reflecting: error))
    }
}

extension ErrorCode {
    /// 400: a request parameter is missing or invalid (Alga's messages).
    public static let badRequest: ErrorCode = "BAD_REQUEST"
    /// 400: the staging object does not exist.
    public static let stagingNotFound: ErrorCode = "STAGING_NOT_FOUND"
    /// 400: the bytes do not hash to the declared hash.
    public static let hashMismatch: ErrorCode = "HASH_MISMATCH"
    /// 400: the bytes are not the declared size.
    public static let sizeMismatch: ErrorCode = "SIZE_MISMATCH"
    /// 413: the bundle is larger than the cap (Alga answers 500 here; we do not).
    public static let bundleTooLarge: ErrorCode = "BUNDLE_TOO_LARGE"
    /// 400: no `manifest.json` in the archive.
    public static let manifestNotFound: ErrorCode = "MANIFEST_NOT_FOUND"
    /// 400: the archive could not be read (corrupt zstd, unsafe or malformed tar).
    public static let manifestExtractionFailed: ErrorCode = "MANIFEST_EXTRACTION_FAILED"
    /// 400: the manifest failed validation; `issues` lists why.
    public static let invalidManifest: ErrorCode = "INVALID_MANIFEST"
    /// 409: the version exists (also with identical bytes).
    public static let extensionVersionAlreadyExists: ErrorCode = "EXTENSION_VERSION_ALREADY_EXISTS"
    /// 500: the store failed a HEAD.
    public static let s3HeadFailed: ErrorCode = "S3_HEAD_FAILED"
    /// 500: the store failed a GET.
    public static let s3GetFailed: ErrorCode = "S3_GET_FAILED"
    /// 500: the store failed a PUT.
    public static let s3PutFailed: ErrorCode = "S3_PUT_FAILED"
    /// 500: the staging object vanished between HEAD and GET.
    public static let objectNotFound: ErrorCode = "OBJECT_NOT_FOUND"
    /// 500: the bucket does not exist.
    public static let bucketNotFound: ErrorCode = "BUCKET_NOT_FOUND"
    /// 409: the staging object was replaced between verification and the canonical copy.
    public static let stagingChanged: ErrorCode = "STAGING_CHANGED"
    /// 500: the create-only copy to the canonical key failed.
    public static let canonicalCopyFailed: ErrorCode = "CANONICAL_COPY_FAILED"
    /// 500: the canonical object is missing, or is not the bytes its key names, after the copy.
    public static let canonicalMissing: ErrorCode = "CANONICAL_MISSING"
    /// 500: `manifest.json` could not be stored beside the bundle.
    public static let manifestStoreFailed: ErrorCode = "MANIFEST_STORE_FAILED"
    /// 500: the registry failed.
    public static let registryFailed: ErrorCode = "REGISTRY_FAILED"
    /// 500: `bundle.sig` could not be stored beside the bundle.
    public static let signatureStoreFailed: ErrorCode = "SIGNATURE_STORE_FAILED"
    /// 409: a new extension's slug (`lower(publisher.name)`) is already another extension's.
    public static let extensionSlugConflict: ErrorCode = "EXTENSION_SLUG_CONFLICT"
    /// 409: a slug names several extensions (registries from before slugs were unique).
    public static let extensionAmbiguous: ErrorCode = "EXTENSION_AMBIGUOUS"
    /// 404: no such upload session.
    public static let uploadNotFound: ErrorCode = "UPLOAD_NOT_FOUND"
    /// 409: an upload piece does not start at the session's offset.
    public static let uploadOffsetMismatch: ErrorCode = "UPLOAD_OFFSET_MISMATCH"
    /// 500: anything else.
    public static let internalError: ErrorCode = "INTERNAL_ERROR"
    /// 404: no such extension.
    public static let extensionNotFound: ErrorCode = "EXTENSION_NOT_FOUND"
    /// 404: no such version.
    public static let versionNotFound: ErrorCode = "VERSION_NOT_FOUND"
    /// 404: the tenant has no install of the extension.
    public static let installNotFound: ErrorCode = "INSTALL_NOT_FOUND"
    /// 403: the install exists but is disabled or not in the `enabled` status.
    public static let installDisabled: ErrorCode = "INSTALL_DISABLED"
    /// 404: the installed version has no bundle.
    public static let bundleNotFound: ErrorCode = "BUNDLE_NOT_FOUND"
}
