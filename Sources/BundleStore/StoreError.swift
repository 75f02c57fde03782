public import BundleCore

/// A failed store operation.
///
/// ``code`` is stable; ``key`` names the object, and the optional fields carry what the backend
/// said (HTTP status, S3 error code, request id) and, for content checks, the expected and actual
/// values. ``description`` never contains credentials or signed URLs.
public struct StoreError: ExtBundlesError, Equatable {
    /// The stable code.
    public var code: ErrorCode
    /// A short explanation.
    public var reason: String
    /// The object key involved.
    public var key: String?
    /// The HTTP status, for remote backends.
    public var httpStatus: Int?
    /// The backend's own error code (for S3: `NoSuchKey`, `SignatureDoesNotMatch`, ...).
    public var backendCode: String?
    /// The backend's request id, for support.
    public var requestID: String?
    /// The expected value (a hash, a size, an offset).
    public var expected: String?
    /// The value found.
    public var actual: String?

    /// Creates an error.
    public init(
        code: ErrorCode, reason: String, key: String? = nil, httpStatus: Int? = nil, backendCode: String? = nil,
        requestID: String? = nil, expected: String? = nil, actual: String? = nil
    ) {
        self.code = code
        self.reason = reason
        self.key = key
        self.httpStatus = httpStatus
        self.backendCode = backendCode
        self.requestID = requestID
        self.expected = expected
        self.actual = actual
    }

    /// The reason, the key, and expected/actual values.
    public var description: String {
        var text = reason
        if let key { text += " (key '\(Printable.escape(key))')" }
        if let backendCode { text += " [\(backendCode)\(httpStatus.map { ", HTTP \($0)" } ?? "")]" }
        if let expected, let actual { text += ": expected \(expected), got \(actual)" }
        return text
    }

    /// Every field.
    public var debugDescription: String {
        var fields = ["code: \(code)", "reason: \(reason)"]
        if let key { fields.append("key: \"\(key)\"") }
        if let httpStatus { fields.append("httpStatus: \(httpStatus)") }
        if let backendCode { fields.append("backendCode: \(backendCode)") }
        if let requestID { fields.append("requestID: \(requestID)") }
        if let expected { fields.append("expected: \(expected)") }
        if let actual { fields.append("actual: \(actual)") }
        return "StoreError(\(fields.joined(separator: ", ")))"
    }

    /// The object does not exist.
    public static func notFound(_ key: String) -> StoreError {
        StoreError(code: .storeNotFound, reason: "no such object", key: key)
    }

    /// A create-only write found an object already there.
    public static func alreadyExists(_ key: String) -> StoreError {
        StoreError(code: .storeAlreadyExists, reason: "an object already exists and is never overwritten", key: key)
    }

    /// `STORE_SOURCE_CHANGED` for a copy whose source was replaced since it was read.
    public static func sourceChanged(_ key: String, expected: String, actual: String?) -> StoreError {
        StoreError(
            code: .storeSourceChanged, reason: "the source object changed since it was read", key: key, expected: expected,
            actual: actual ?? "missing")
    }

    /// The key breaks the key rules.
    public static func invalidKey(_ key: String, _ why: String) -> StoreError {
        StoreError(code: .storeInvalidKey, reason: "invalid key: \(why)", key: key)
    }
}

extension ErrorCode {
    /// The object does not exist.
    public static let storeNotFound: ErrorCode = "STORE_NOT_FOUND"
    /// A create-only write (or copy) found an object at the key.
    public static let storeAlreadyExists: ErrorCode = "STORE_ALREADY_EXISTS"
    /// The key is empty, too long, absolute, has `..`, `.` or empty segments, or control bytes.
    public static let storeInvalidKey: ErrorCode = "STORE_INVALID_KEY"
    /// The backend refused the credentials or the signature.
    public static let storeAccessDenied: ErrorCode = "STORE_ACCESS_DENIED"
    /// The requested byte range lies outside the object.
    public static let storeRangeNotSatisfiable: ErrorCode = "STORE_RANGE_NOT_SATISFIABLE"
    /// A request argument was refused (for example a multipart part under 5 MiB that is not last).
    public static let storeInvalidArgument: ErrorCode = "STORE_INVALID_ARGUMENT"
    /// A multipart upload id is unknown (completed, aborted or never created).
    public static let storeNoSuchUpload: ErrorCode = "STORE_NO_SUCH_UPLOAD"
    /// The backend failed (5xx) after the retries.
    public static let storeBackend: ErrorCode = "STORE_BACKEND_ERROR"
    /// The backend could not be reached after the retries.
    public static let storeUnreachable: ErrorCode = "STORE_UNREACHABLE"
    /// A local file-system operation failed.
    public static let storeIO: ErrorCode = "STORE_IO"
    /// The bytes do not hash to the expected content hash.
    public static let storeHashMismatch: ErrorCode = "STORE_HASH_MISMATCH"
    /// The bytes do not have the expected size.
    public static let storeSizeMismatch: ErrorCode = "STORE_SIZE_MISMATCH"
    /// An object under a content-addressed key does not hash to its key.
    public static let storeCorruptObject: ErrorCode = "STORE_CORRUPT_OBJECT"
    /// An upload session does not exist (never created, committed, aborted or swept).
    public static let storeUploadNotFound: ErrorCode = "STORE_UPLOAD_NOT_FOUND"
    /// An append did not start at the session's committed offset (a gap or an overlap).
    public static let storeUploadOffset: ErrorCode = "STORE_UPLOAD_OFFSET_MISMATCH"
    /// The backend does not offer this capability (presigning, multipart).
    public static let storeUnsupported: ErrorCode = "STORE_UNSUPPORTED"
    /// The store location or configuration is invalid.
    public static let storeConfiguration: ErrorCode = "STORE_CONFIGURATION"
    /// A conditional copy's source no longer has the ETag it was read with.
    public static let storeSourceChanged: ErrorCode = "STORE_SOURCE_CHANGED"
}
