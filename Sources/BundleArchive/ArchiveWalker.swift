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
/// Refused, each with a typed ``ArchiveError`` naming the entry: absolute paths and `..` segments
/// (`ARCHIVE_UNSAFE_PATH`); invalid UTF-8, NUL bytes, empty names, empty or `.` segments
/// (`ARCHIVE_INVALID_PATH`); symlinks, hardlinks, devices, fifos, sparse and unknown types
/// (`ARCHIVE_UNSUPPORTED_ENTRY`); a path seen twice or a file where a directory is needed
/// (`ARCHIVE_DUPLICATE_ENTRY`); more than ``ArchiveLimits/entryCount`` entries, a path longer than
/// ``ArchiveLimits/pathLength``, a size over ``ArchiveLimits/decompressedBytes``
/// (`ARCHIVE_LIMIT_EXCEEDED`). Leading `./` is removed; an entry that is only `./` (the root of
/// `tar -C dir .`) is skipped.
public final class ArchiveWalker: TarParserDelegate {
    private let visitor: any ArchiveVisitor
    private let limits: ArchiveLimits
    private var seen: [String: Seen] = [:]
    private var forwarding = false
    private var forwardingData = false
    /// Entries accepted so far (files and directories).
    public private(set) var entryCount = 0

    private enum Seen { case file, directory, impliedDirectory }

    /// Creates a walker that forwards to `visitor` (held strongly).
    public init(visitor: any ArchiveVisitor, limits: ArchiveLimits = .default) {
        self.visitor = visitor
        self.limits = limits
    }

    /// Checks a header and forwards it.
    public func tarHeader(_ header: TarHeader) throws(ArchiveError) {
        let display = header.displayPath
        guard header.rawPath.count <= limits.pathLength else {
            throw ArchiveError.limitExceeded(
                "pathLength", limitValue: Int64(limits.pathLength), actual: Int64(header.rawPath.count),
                path: String(display.prefix(120)) + "…")
        }
        var kind: ArchiveEntry.Kind
        switch header.kind {
        case .regular: kind = .file
        case .directory: kind = .directory
        default:
            throw ArchiveError(
                code: .archiveUnsupportedEntry, reason: "\(header.kind) entries are not allowed in a bundle",
                path: display, offset: header.offset)
        }
        guard !header.rawPath.contains(0) else {
            throw ArchiveError(
                code: .archiveInvalidPath, reason: "entry name contains a NUL byte", path: display, offset: header.offset)
        }
        guard var path = String(validating: header.rawPath, as: UTF8.self) else {
            throw ArchiveError(
                code: .archiveInvalidPath, reason: "entry name is not valid UTF-8", path: display, offset: header.offset)
        }
        while path.hasPrefix("./") { path.removeFirst(2) }
        if path == "." || path.isEmpty {
            if header.rawPath.isEmpty {
                throw ArchiveError(code: .archiveInvalidPath, reason: "entry has an empty name", offset: header.offset)
            }
            forwarding = false  // the archive root itself (`./`): nothing to create
            forwardingData = false
            return
        }
        if path.hasPrefix("/") {
            throw ArchiveError(
                code: .archiveUnsafePath, reason: "absolute paths are not allowed", path: display, offset: header.offset)
        }
        if path.hasSuffix("/") {
            path.removeLast()
            kind = .directory  // old tars mark directories only with a trailing slash
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for segment in segments {
            if segment == ".." {
                throw ArchiveError(
                    code: .archiveUnsafePath, reason: "'..' path segments are not allowed", path: display,
                    offset: header.offset)
            }
            if segment.isEmpty || segment == "." {
                throw ArchiveError(
                    code: .archiveInvalidPath, reason: "empty or '.' path segments are not allowed", path: display,
                    offset: header.offset)
            }
        }
        entryCount += 1
        guard entryCount <= limits.entryCount else {
            throw ArchiveError.limitExceeded(
                "entryCount", limitValue: Int64(limits.entryCount), actual: Int64(entryCount), path: path)
        }
        guard header.size <= limits.decompressedBytes else {
            throw ArchiveError.limitExceeded(
                "decompressedBytes", limitValue: limits.decompressedBytes, actual: header.size, path: path)
        }
        try record(path: path, segments: segments, kind: kind, offset: header.offset)
        forwarding = true
        forwardingData = kind == .file
        try visitor.visitEntry(
            ArchiveEntry(
                path: path, kind: kind, size: kind == .file ? header.size : 0, mode: header.mode, mtime: header.mtime))
    }

    /// Forwards a file's data (a directory's data, if any, is dropped).
    public func tarData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        if forwardingData { try visitor.visitData(chunk) }
    }

    /// Forwards the end of an entry.
    public func tarEntryEnd() throws(ArchiveError) {
        if forwarding { try visitor.visitEntryEnd() }
        forwarding = false
        forwardingData = false
    }

    private func record(path: String, segments: [Substring], kind: ArchiveEntry.Kind, offset: Int64) throws(ArchiveError) {
        func duplicate(_ why: String) -> ArchiveError {
            ArchiveError(code: .archiveDuplicateEntry, reason: why, path: path, offset: offset)
        }
        switch (seen[path], kind) {
        case (nil, _): break
        case (.impliedDirectory, .directory): break
        case (.file, _), (.directory, .directory): throw duplicate("the path appears twice in the archive")
        default: throw duplicate("a file and a directory share this path")
        }
        seen[path] = kind == .file ? .file : .directory
        var ancestor = ""
        for segment in segments.dropLast() {
            ancestor += ancestor.isEmpty ? String(segment) : "/" + segment
            switch seen[ancestor] {
            case .file: throw duplicate("a parent of this entry is a file ('\(ancestor)')")
            case nil: seen[ancestor] = .impliedDirectory
            default: break
            }
        }
    }
}
