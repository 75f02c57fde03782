import BundleCore

/// One entry of a bundle archive that passed the safety rules.
public struct ArchiveEntry: Sendable, Equatable, Codable {
    /// What the entry is. Nothing else is ever accepted.
    public enum Kind: String, Sendable, Equatable, Codable {
        /// A regular file.
        case file
        /// A directory.
        case directory
    }

    /// The normalised path: relative, `/`-separated, no leading `./`, no trailing `/`.
    public var path: String
    /// The kind.
    public var kind: Kind
    /// The size of the file's data (0 for directories).
    public var size: Int64
    /// The permission bits as recorded.
    public var mode: UInt32
    /// Modification time as recorded, seconds since the epoch.
    public var mtime: Int64

    /// Creates an entry.
    public init(path: String, kind: Kind, size: Int64, mode: UInt32, mtime: Int64) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.mtime = mtime
    }

    /// Whether any execute bit is set.
    public var isExecutable: Bool { mode & 0o111 != 0 }
}

/// Receives the entries of an archive that pass the rules of ``ArchiveWalker``.
public protocol ArchiveVisitor: AnyObject {
    /// An entry begins; for a file, its data follows in ``visitData(_:)`` calls.
    func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError)
    /// A piece of the current file's data.
    func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError)
    /// The current entry is complete.
    func visitEntryEnd() throws(ArchiveError)
}

/// Forwards every event to two visitors, in order (an inspector and an extractor, say).
public final class TeeVisitor: ArchiveVisitor {
    /// The first visitor.
    public let first: any ArchiveVisitor
    /// The second visitor.
    public let second: any ArchiveVisitor

    /// Creates a tee.
    public init(_ first: any ArchiveVisitor, _ second: any ArchiveVisitor) {
        self.first = first
        self.second = second
    }

    /// Forwards the entry.
    public func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError) {
        try first.visitEntry(entry)
        try second.visitEntry(entry)
    }

    /// Forwards the data.
    public func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        try first.visitData(chunk)
        try second.visitData(chunk)
    }

    /// Forwards the end of the entry.
    public func visitEntryEnd() throws(ArchiveError) {
        try first.visitEntryEnd()
        try second.visitEntryEnd()
    }
}

/// Applies the bundle safety rules to a tar stream and forwards accepted entries to a visitor.
///
/// Every rule works on the entry name's bytes (see ``EntryPathRules``), the way tar tools and
/// file systems see it. Refused, each with a typed ``ArchiveError`` naming the entry: absolute
/// paths and `..` segments (`ARCHIVE_UNSAFE_PATH`); invalid UTF-8, NUL and other control bytes,
/// empty names, empty or `.` segments, segments over 255 bytes (`ARCHIVE_INVALID_PATH`);
/// symlinks, hardlinks, devices, fifos, sparse and unknown types, and any entry other than a
/// regular file that declares data (`ARCHIVE_UNSUPPORTED_ENTRY`: tar tools read such "data" as
/// further headers, so it could hide entries); a path seen twice, two paths that are equal after
/// Unicode NFC normalisation, or a file where a directory is needed (`ARCHIVE_DUPLICATE_ENTRY`);
/// more than ``ArchiveLimits/entryCount`` entries (or implied directories), a path longer than
/// ``ArchiveLimits/pathLength``, a size over ``ArchiveLimits/decompressedBytes``
/// (`ARCHIVE_LIMIT_EXCEEDED`). Leading `./` is removed; an entry that is only `./` (the root of
/// `tar -C dir .`) is skipped.
public final class ArchiveWalker: TarParserDelegate {
    private let visitor: any ArchiveVisitor
    private let limits: ArchiveLimits
    private var names: EntryPathRules.Names
    private var forwarding = false
    private var forwardingData = false
    /// Entries accepted so far (files and directories).
    public private(set) var entryCount = 0
    /// Root entries (`./`) seen: nothing to create, but read all the same.
    private var rootEntries = 0

    /// Creates a walker that forwards to `visitor` (held strongly).
    public init(visitor: any ArchiveVisitor, limits: ArchiveLimits = .default) {
        self.visitor = visitor
        self.limits = limits
        self.names = EntryPathRules.Names(limits: limits)
    }

    /// Checks a header and forwards it.
    public func tarHeader(_ header: TarHeader) throws(ArchiveError) {
        guard header.rawPath.count <= limits.pathLength else {
            throw ArchiveError.limitExceeded(
                "pathLength", limitValue: Int64(limits.pathLength), actual: Int64(header.rawPath.count),
                path: Printable.escape(bytes: Array(header.rawPath.prefix(120))) + "…")
        }
        var kind: ArchiveEntry.Kind
        switch header.kind {
        case .regular: kind = .file
        case .directory: kind = .directory
        default:
            throw ArchiveError(
                code: .archiveUnsupportedEntry, reason: "\(header.kind) entries are not allowed in a bundle",
                path: header.displayPath, offset: header.offset)
        }
        guard let normalized = try EntryPathRules.normalize(header.rawPath, offset: header.offset) else {
            // A file named `.`: GNU tar and bsdtar refuse to create it; a directory `./` is the root.
            guard kind == .directory || header.rawPath.last == BytePath.slash else {
                throw ArchiveError(
                    code: .archiveUnsafePath, reason: "a file named like the archive root", path: Printable.escape(bytes: header.rawPath),
                    offset: header.offset)
            }
            forwarding = false  // the archive root itself (`./`): nothing to create
            forwardingData = false
            guard header.size == 0 else { throw Self.dataOnNonFile(header, path: ".") }
            // Still an entry to read: a flood of them counts against the limit like any other.
            rootEntries += 1
            guard entryCount + rootEntries <= limits.entryCount else {
                throw ArchiveError.limitExceeded(
                    "entryCount", limitValue: Int64(limits.entryCount), actual: Int64(entryCount + rootEntries), path: ".")
            }
            return
        }
        if normalized.isDirectory { kind = .directory }  // old tars mark directories only with a trailing slash
        // GNU tar and bsdtar run as root restore set-user-ID and set-group-ID bits: a bundle file
        // must never become a privileged program because someone unpacked it.
        guard kind == .directory || header.mode & 0o6000 == 0 else {
            throw ArchiveError(
                code: .archiveUnsupportedEntry, reason: "a file with the set-user-ID or set-group-ID bit (mode \(String(header.mode, radix: 8)))",
                path: Printable.escape(normalized.path), offset: header.offset)
        }
        // Tar tools do not skip the "data" of a directory: they read it as the next headers. So a
        // directory that declares data could hide entries that only they would see.
        guard kind == .file || header.size == 0 else { throw Self.dataOnNonFile(header, path: normalized.path) }
        entryCount += 1
        guard entryCount + rootEntries <= limits.entryCount else {
            throw ArchiveError.limitExceeded(
                "entryCount", limitValue: Int64(limits.entryCount), actual: Int64(entryCount), path: Printable.escape(normalized.path))
        }
        guard header.size <= limits.decompressedBytes else {
            throw ArchiveError.limitExceeded(
                "decompressedBytes", limitValue: limits.decompressedBytes, actual: header.size, path: Printable.escape(normalized.path))
        }
        try names.record(normalized.path, isFile: kind == .file, offset: header.offset)
        forwarding = true
        forwardingData = kind == .file
        try visitor.visitEntry(
            ArchiveEntry(
                path: normalized.path, kind: kind, size: kind == .file ? header.size : 0, mode: header.mode, mtime: header.mtime))
    }

    /// Forwards a file's data.
    public func tarData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        if forwardingData { try visitor.visitData(chunk) }
    }

    /// Forwards the end of an entry.
    public func tarEntryEnd() throws(ArchiveError) {
        if forwarding { try visitor.visitEntryEnd() }
        forwarding = false
        forwardingData = false
    }

    private static func dataOnNonFile(_ header: TarHeader, path: String) -> ArchiveError {
        ArchiveError(
            code: .archiveUnsupportedEntry,
            reason: "a \(header.kind == .regular ? "directory (a name ending in '/')" : header.kind.description) entry declares \(header.size) bytes of data; tar tools would read them as further entries",
            path: Printable.escape(path), actual: header.size, offset: header.offset)
    }
}

/// The name rules of bundle entries, shared by the reader (``ArchiveWalker``) and the packer
/// (``BundlePacker``), so `pack` never writes a name that reading refuses. They work on the
/// name's bytes.
public enum EntryPathRules {
    /// The longest path segment, in bytes (`NAME_MAX` of Linux and macOS file systems).
    public static let maxSegmentBytes = 255

    /// A name after the rules: its text and whether it named a directory (a trailing `/`).
    public struct Normalized: Sendable, Equatable {
        /// The relative path: no leading `./`, no trailing `/`.
        public var path: String
        /// The raw name ended with `/`.
        public var isDirectory: Bool
    }

    /// Checks a raw entry name and normalises it; nil for the archive root itself (`./`, `.`).
    /// - Throws: `ARCHIVE_UNSAFE_PATH` (absolute, `..`) or `ARCHIVE_INVALID_PATH` (empty, NUL or
    ///   control bytes, invalid UTF-8, empty or `.` segments, a segment over 255 bytes).
    public static func normalize(_ raw: [UInt8], offset: Int64? = nil) throws(ArchiveError) -> Normalized? {
        // Made only for an error: escaping every accepted name cost more than reading it.
        var display: String { Printable.escape(bytes: raw) }
        func invalid(_ why: String) -> ArchiveError {
            ArchiveError(code: .archiveInvalidPath, reason: why, path: display, offset: offset)
        }
        guard !raw.isEmpty else {
            throw ArchiveError(code: .archiveInvalidPath, reason: "entry has an empty name", offset: offset)
        }
        guard !raw.contains(0) else { throw invalid("entry name contains a NUL byte") }
        guard !BytePath.containsControl(raw) else {
            throw invalid("entry name contains a control character (a byte below 0x20 or 0x7F)")
        }
        guard String(validating: raw, as: UTF8.self) != nil else { throw invalid("entry name is not valid UTF-8") }
        var bytes = raw[...]
        while bytes.starts(with: [BytePath.dot, BytePath.slash]) { bytes = bytes.dropFirst(2) }
        if bytes.isEmpty || bytes.elementsEqual([BytePath.dot]) { return nil }
        if bytes.first == BytePath.slash {
            throw ArchiveError(code: .archiveUnsafePath, reason: "absolute paths are not allowed", path: display, offset: offset)
        }
        var isDirectory = false
        if bytes.last == BytePath.slash {
            bytes = bytes.dropLast()
            isDirectory = true
        }
        for segment in BytePath.segments(bytes) {
            if BytePath.isParentSegment(segment) {
                throw ArchiveError(
                    code: .archiveUnsafePath, reason: "'..' path segments are not allowed", path: display, offset: offset)
            }
            if segment.isEmpty || BytePath.isDotSegment(segment) { throw invalid("empty or '.' path segments are not allowed") }
            if segment.count > maxSegmentBytes {
                throw invalid("a path segment is longer than \(maxSegmentBytes) bytes (no file system can create it)")
            }
        }
        return Normalized(path: String(decoding: bytes, as: UTF8.self), isDirectory: isDirectory)
    }

    /// The names of one archive: each path once, by its exact bytes; no two names equal after
    /// Unicode NFC normalisation (they are one name on macOS); no file where a directory is
    /// needed. Parent directories a path implies are recorded too, at most
    /// ``ArchiveLimits/entryCount`` of them, so memory stays bounded.
    public struct Names: Sendable {
        private enum Kind { case file, directory, impliedDirectory }

        private var kinds: [[UInt8]: Kind] = [:]
        private var normalized: [[UInt8]: [UInt8]] = [:]
        private var implied = 0
        private let maxImplied: Int

        /// Creates an empty set of names.
        public init(limits: ArchiveLimits) { maxImplied = limits.entryCount }

        /// Records a normalised path; throws `ARCHIVE_DUPLICATE_ENTRY` or `ARCHIVE_LIMIT_EXCEEDED`.
        public mutating func record(_ path: String, isFile: Bool, offset: Int64? = nil) throws(ArchiveError) {
            var display: String { Printable.escape(path) }  // only for an error
            func duplicate(_ why: String) -> ArchiveError {
                ArchiveError(code: .archiveDuplicateEntry, reason: why, path: display, offset: offset)
            }
            let key = BytePath.key(path)
            switch (kinds[key], isFile) {
            case (nil, _), (.impliedDirectory?, false): break
            case (.file?, _), (.directory?, false): throw duplicate("the path appears twice in the archive")
            case (.impliedDirectory?, true), (.directory?, true): throw duplicate("a file and a directory share this path")
            }
            if kinds[key] == nil { try claimNormalized(key, duplicate) }
            kinds[key] = isFile ? .file : .directory
            // Parents, deepest first, until one is known (its own parents were recorded with it).
            var end = key.count
            while let slash = key[..<end].lastIndex(of: BytePath.slash) {
                let parent = Array(key[..<slash])
                switch kinds[parent] {
                case .file?:
                    throw duplicate("a parent of this entry is a file ('\(Printable.escape(bytes: parent))')")
                case .directory?, .impliedDirectory?:
                    return
                case nil:
                    implied += 1
                    guard implied <= maxImplied else {
                        throw ArchiveError.limitExceeded(
                            "entryCount", limitValue: Int64(maxImplied), actual: Int64(implied), path: display)
                    }
                    try claimNormalized(parent, duplicate)
                    kinds[parent] = .impliedDirectory
                }
                end = slash
            }
        }

        private mutating func claimNormalized(_ key: [UInt8], _ duplicate: (String) -> ArchiveError) throws(ArchiveError) {
            let nfc = BytePath.nfcKey(String(decoding: key, as: UTF8.self))
            if let other = normalized[nfc], other != key {
                throw duplicate(
                    "'\(Printable.escape(bytes: key))' and '\(Printable.escape(bytes: other))' are the same name after Unicode normalisation (NFC); they collide on macOS")
            }
            normalized[nfc] = key
        }
    }
}
