import BundleCore
import Foundation

/// Writes accepted archive entries under a directory it owns.
///
/// Files are created with `O_CREAT | O_EXCL | O_NOFOLLOW` relative to the root's descriptor, and
/// the walker has already refused absolute paths, `..`, links and duplicates, so nothing can be
/// written outside the root. Modes are normalised: 0755 for directories and executables, 0644
/// otherwise (then the process umask applies).
public final class DirectoryWriter: ArchiveVisitor {
    private let rootFD: Int32
    private let rootPath: String
    private let syncFiles: Bool
    private var createdDirectories: Set<[UInt8]> = [[]]
    private var fileFD: Int32 = -1
    private var currentPath = ""
    /// Bytes of file data written.
    public private(set) var bytesWritten: Int64 = 0

    /// Opens `root`, an existing empty directory.
    /// - Parameter syncFiles: `fsync` every file before closing it (for crash-safe caches).
    public init(root: String, syncFiles: Bool = false) throws(ArchiveError) {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw ArchiveError.io("open directory", path: root, errno: errno) }
        self.rootFD = fd
        self.rootPath = root
        self.syncFiles = syncFiles
    }

    deinit {
        if fileFD >= 0 { close(fileFD) }
        close(rootFD)
    }

    /// Creates the directory or opens the file.
    public func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError) {
        currentPath = entry.path
        switch entry.kind {
        case .directory:
            try makeDirectory(entry.path)
        case .file:
            if let parent = BytePath.parent(entry.path) { try makeDirectory(parent) }
            let mode: mode_t = entry.isExecutable ? 0o755 : 0o644
            let fd = openat(rootFD, entry.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            guard fd >= 0 else { throw ArchiveError.io("create file", path: entry.path, errno: errno) }
            fileFD = fd
        }
    }

    /// Writes a piece of the current file.
    public func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        guard fileFD >= 0 else { return }
        try FileHashing.writeAll(fileFD, chunk, path: currentPath)
        bytesWritten += Int64(chunk.count)
    }

    /// Closes the current file.
    public func visitEntryEnd() throws(ArchiveError) {
        guard fileFD >= 0 else { return }
        let fd = fileFD
        fileFD = -1
        if syncFiles, fsync(fd) != 0 {
            let code = errno
            close(fd)
            throw ArchiveError.io("fsync", path: currentPath, errno: code)
        }
        guard close(fd) == 0 else { throw ArchiveError.io("close", path: currentPath, errno: errno) }
    }

    /// `fsync`s every directory that was created, deepest first, then the root.
    public func syncDirectories() throws(ArchiveError) {
        for bytes in createdDirectories.sorted(by: { $0.count > $1.count }) {
            let directory = String(decoding: bytes, as: UTF8.self)
            let failure = FileIO.syncDirectory(directory, in: rootFD)
            guard failure == 0 else { throw ArchiveError.io("fsync", path: directory, errno: failure) }
        }
    }

    /// Creates `path` and its missing parents, keyed by their exact bytes.
    private func makeDirectory(_ path: String) throws(ArchiveError) {
        if createdDirectories.contains(BytePath.key(path)) { return }
        if let parent = BytePath.parent(path) { try makeDirectory(parent) }
        if mkdirat(rootFD, path, 0o755) != 0 {
            let code = errno
            // An existing name must be a real directory (never a symlink or a file).
            var info = stat()
            guard code == EEXIST, fstatat(rootFD, path, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw ArchiveError.io("create directory", path: path, errno: code)
            }
        }
        createdDirectories.insert(BytePath.key(path))
    }
}

/// What an extraction did.
public struct ExtractionSummary: Sendable, Equatable {
    /// The folder the archive was extracted into.
    public var target: String
    /// What was read.
    public var read: BundleReadSummary
    /// Bytes of file data written.
    public var bytesWritten: Int64
}

/// Safe, all-or-nothing extraction of a `bundle.tar.zst`.
public enum ArchiveExtractor {
    /// Extraction settings.
    public struct Configuration: Sendable, Equatable {
        /// The limits applied while reading.
        public var limits: ArchiveLimits
        /// `fsync` files and directories before the final rename. Default false.
        public var durable: Bool
        /// Also compute the content hash of the compressed bytes. Default false.
        public var computeHash: Bool

        /// Creates a configuration.
        public init(limits: ArchiveLimits = .default, durable: Bool = false, computeHash: Bool = false) {
            self.limits = limits
            self.durable = durable
            self.computeHash = computeHash
        }
    }

    /// Extracts the bundle at `archive` into the folder `target`.
    ///
    /// Entries are written into a new temporary folder beside `target`, which is renamed to
    /// `target` only when the whole archive was read and accepted; on any error it is removed, so a
    /// refused archive leaves nothing. `target` must not exist, or be an empty directory.
    public static func extract(
        archive: String, to target: String, configuration: Configuration = .init()
    ) throws(ArchiveError) -> ExtractionSummary {
        let targetPath = BytePath.trimmingTrailingSlashes(target)
        try checkTarget(targetPath)
        removeStaleStagingDirectories(besides: targetPath)
        let staging = try makeStagingDirectory(besides: targetPath)
        do throws(ArchiveError) {
            let writer = try DirectoryWriter(root: staging, syncFiles: configuration.durable)
            let read = try BundleReader.read(
                fileAt: archive, visitor: writer, limits: configuration.limits, computeHash: configuration.computeHash)
            if configuration.durable { try writer.syncDirectories() }
            guard rename(staging, targetPath) == 0 else {
                let code = errno
                if code == ENOTEMPTY || code == EEXIST || code == ENOTDIR || code == EISDIR {
                    throw ArchiveError(
                        code: .archiveTargetExists, reason: "the target exists and is not an empty directory",
                        path: targetPath)
                }
                throw ArchiveError.io("rename into place", path: targetPath, errno: code)
            }
            if configuration.durable { FileIO.syncDirectory(BytePath.parent(targetPath) ?? ".") }
            return ExtractionSummary(target: targetPath, read: read, bytesWritten: writer.bytesWritten)
        } catch {
            removeTree(staging)
            throw error
        }
    }

    private static func checkTarget(_ target: String) throws(ArchiveError) {
        var info = stat()
        guard lstat(target, &info) == 0 else { return }
        let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
        let isEmpty = isDirectory && ((try? FileManager.default.contentsOfDirectory(atPath: target).isEmpty) ?? false)
        if !isEmpty {
            throw ArchiveError(
                code: .archiveTargetExists, reason: "the target exists and is not an empty directory", path: target)
        }
    }

    /// The marker in the names of staging folders: `.<name>.extract-<pid>-XXXXXX`.
    static let stagingMarker = ".extract-"

    static func makeStagingDirectory(besides target: String) throws(ArchiveError) -> String {
        let url = URL(fileURLWithPath: target)
        let parent = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        var template = Array("\(parent)/.\(name)\(stagingMarker)\(getpid())-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard created != nil else { throw ArchiveError.io("create staging directory", path: parent, errno: errno) }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(path, 0o755)
        return path
    }

    /// Removes the staging folders in the target's parent that a killed extraction left behind:
    /// those whose process (the pid in the name) is gone.
    static func removeStaleStagingDirectories(besides target: String) {
        let url = URL(fileURLWithPath: target)
        let parent = url.deletingLastPathComponent().path
        let ours = Array(("." + url.lastPathComponent + stagingMarker).utf8)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in names where name.utf8.starts(with: ours) {
            // `<pid>-XXXXXX` after the marker.
            let rest = name.utf8.dropFirst(ours.count)
            let parts = rest.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
            guard parts.count == 2, parts[1].count == 6, FileIO.temporaryOwnerIsAlive(rest) == false else { continue }
            var info = stat()
            guard lstat(parent + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            removeTree(parent + "/" + name)
        }
    }

    /// Removes a folder tree, ignoring errors (used for cleanup only).
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

}
