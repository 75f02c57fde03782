public import BundleCore
import Foundation

/// Why an archive was refused, or why packing or extracting failed.
///
/// Each refusal carries a stable ``code`` and, where they apply, the entry ``path``, the
/// ``limit`` name with its configured value and the value found (``actual``), and the byte
/// ``offset`` in the decompressed tar stream where the problem was seen.
public struct ArchiveError: ExtBundlesError, Equatable {
    /// The stable code.
    public var code: ErrorCode
    /// A short human explanation, without secrets.
    public var reason: String
    /// The entry path involved (as normalised, or as raw text when the path itself is refused),
    /// printable: control characters, invisible format characters and invalid UTF-8 escaped
    /// (``BundleCore/Printable``).
    public var path: String?
    /// The name of the limit that was exceeded (a ``ArchiveLimits`` property name).
    public var limit: String?
    /// The configured value of ``limit``.
    public var limitValue: Int64?
    /// The value found in the input.
    public var actual: Int64?
    /// The offset in the decompressed tar stream, where known.
    public var offset: Int64?
    /// The errno of a failed system call, where there was one.
    public var errno: Int32?

    /// Creates an error; prefer the static factories.
    public init(
        code: ErrorCode, reason: String, path: String? = nil, limit: String? = nil,
        limitValue: Int64? = nil, actual: Int64? = nil, offset: Int64? = nil, errno: Int32? = nil
    ) {
        self.code = code
        self.reason = reason
        self.path = path
        self.limit = limit
        self.limitValue = limitValue
        self.actual = actual
        self.offset = offset
        self.errno = errno
    }

    /// The reason, the path and the limit in one line.
    public var description: String {
        var text = reason
        if let path { text += " (entry '\(path)')" }
        if let limit {
            text += " [limit \(limit)"
            if let limitValue { text += " = \(limitValue)" }
            if let actual { text += ", found \(actual)" }
            text += "]"
        }
        return text
    }

    /// Every field.
    public var debugDescription: String {
        var fields = ["code: \(code)", "reason: \(reason)"]
        if let path { fields.append("path: \"\(path)\"") }
        if let limit { fields.append("limit: \(limit)") }
        if let limitValue { fields.append("limitValue: \(limitValue)") }
        if let actual { fields.append("actual: \(actual)") }
        if let offset { fields.append("offset: \(offset)") }
        if let errno { fields.append("errno: \(errno)") }
        return "ArchiveError(\(fields.joined(separator: ", ")))"
    }

    /// `ARCHIVE_LIMIT_EXCEEDED` for the ``ArchiveLimits`` property `limit`.
    public static func limitExceeded(_ limit: String, limitValue: Int64, actual: Int64, path: String? = nil) -> ArchiveError {
        ArchiveError(
            code: .archiveLimitExceeded, reason: "archive exceeds the \(limit) limit", path: path, limit: limit,
            limitValue: limitValue, actual: actual)
    }

    static func io(_ operation: String, path: String?, errno: Int32) -> ArchiveError {
        ArchiveError(
            code: .archiveIO, reason: "\(operation) failed: \(String(cString: strerror(errno)))", path: path.map { Printable.escape($0) },
            errno: errno)
    }
}

extension ErrorCode {
    /// The compressed stream ended inside a zstd frame.
    public static let zstdTruncated: ErrorCode = "ARCHIVE_ZSTD_TRUNCATED"
    /// The compressed stream is not valid zstd (bad magic, corrupt block, checksum mismatch).
    public static let zstdCorrupt: ErrorCode = "ARCHIVE_ZSTD_CORRUPT"
    /// A zstd frame needs a window larger than ``ArchiveLimits/windowLogMax`` allows.
    public static let zstdWindowTooLarge: ErrorCode = "ARCHIVE_ZSTD_WINDOW_TOO_LARGE"
    /// The zstd encoder failed.
    public static let zstdEncoder: ErrorCode = "ARCHIVE_ZSTD_ENCODER"
    /// A tar header's checksum does not match its bytes.
    public static let tarChecksum: ErrorCode = "ARCHIVE_TAR_BAD_CHECKSUM"
    /// A tar header or pax/GNU record is malformed.
    public static let tarMalformed: ErrorCode = "ARCHIVE_TAR_MALFORMED"
    /// The tar stream ended inside a header or an entry's data.
    public static let tarTruncated: ErrorCode = "ARCHIVE_TAR_TRUNCATED"
    /// An entry path is absolute or climbs out with `..`.
    public static let archiveUnsafePath: ErrorCode = "ARCHIVE_UNSAFE_PATH"
    /// An entry path is not valid UTF-8, is empty, or has empty or `.` segments.
    public static let archiveInvalidPath: ErrorCode = "ARCHIVE_INVALID_PATH"
    /// A symlink, hardlink, device, fifo, sparse or unknown entry type.
    public static let archiveUnsupportedEntry: ErrorCode = "ARCHIVE_UNSUPPORTED_ENTRY"
    /// The same path appears twice, or a file and a directory share a path.
    public static let archiveDuplicateEntry: ErrorCode = "ARCHIVE_DUPLICATE_ENTRY"
    /// An ``ArchiveLimits`` limit was exceeded; ``ArchiveError/limit`` names it.
    public static let archiveLimitExceeded: ErrorCode = "ARCHIVE_LIMIT_EXCEEDED"
    /// A file-system operation failed.
    public static let archiveIO: ErrorCode = "ARCHIVE_IO"
    /// A limit or setting given by the caller is out of its range (a zstd window log outside 10...31).
    public static let archiveInvalidLimit: ErrorCode = "ARCHIVE_INVALID_LIMIT"
    /// The extraction target exists and is not an empty directory.
    public static let archiveTargetExists: ErrorCode = "ARCHIVE_TARGET_EXISTS"
    /// A file in the tree being packed is a symlink, device, fifo or socket.
    public static let packUnsupportedFile: ErrorCode = "PACK_UNSUPPORTED_FILE"
    /// A packing setting is out of its range (an mtime tar cannot record portably).
    public static let packInvalidOption: ErrorCode = "PACK_INVALID_OPTION"
    /// A file changed size while it was being packed.
    public static let packSourceChanged: ErrorCode = "PACK_SOURCE_CHANGED"
}
