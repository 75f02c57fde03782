public import BundleCore
public import Foundation

/// An ``ObjectStore`` in a local folder: the key `a/b/c` is the file `<root>/a/b/c`.
///
/// Writes go to a temporary file beside the target (`.<name>.extbundles-tmp-<random>`), which is
/// fsynced and then linked into place without replacing (create-only) or renamed over the target
/// (unconditional); the folder is fsynced after. A crash at any point leaves, at worst, a
/// temporary file that no read or listing shows and that ``removeTemporaryFiles(olderThan:)``
/// deletes. Keys are validated on their bytes, so no key reaches outside the root; the root
/// belongs to the store.
///
/// Every file-system call runs on ``BundleCore/BlockingIO/shared``, never on the calling task's
/// thread.
public struct FileSystemObjectStore: ObjectStore {
    /// The marker in temporary file names; keys containing it are refused.
    static let temporaryMarker = ".extbundles-tmp-"

    /// The root folder.
    public let root: String

    /// Opens (and creates, if needed) the store at `root`.
    /// - Throws: `STORE_IO` naming the folder when it cannot be created or is not a folder.
    public init(root: String) throws {
        let path = BytePath.trimmingTrailingSlashes(root)
        if let failure = FileIO.makeDirectories(path) {
            throw StoreError(
                code: .storeIO, reason: "cannot create the store folder: \(String(cString: strerror(failure.errno)))",
                key: Printable.escape(failure.folder))
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw StoreError(code: .storeIO, reason: "the store root is not a folder", key: Printable.escape(path))
        }
        self.root = path
    }

    /// The file path of a key (after validation).
    public func path(for key: String) throws(StoreError) -> String {
        try ObjectKey.validate(key)
        guard !BytePath.contains(key, Self.temporaryMarker) else {
            throw .invalidKey(key, "'\(Self.temporaryMarker)' is reserved for temporary files")
        }
        return root + "/" + key
    }

    /// The object's info from `stat`.
    public func head(_ key: String) async throws -> ObjectInfo? {
        let path = try path(for: key)
        let root = self.root
        return try await BlockingIO.shared.run { try Self.statInfo(path, key: key, root: root) }
    }

    /// Streams the file (or a range) in 1 MiB chunks.
    public func get(_ key: String, range: ByteRange?) async throws -> ObjectBody {
        guard let info = try await head(key) else { throw StoreError.notFound(key) }
        let path = try path(for: key)
        guard let range else { return ObjectBody(info: info, range: nil, stream: .file(at: path)) }
        guard let resolved = range.resolve(size: info.size) else {
            throw StoreError(code: .storeRangeNotSatisfiable, reason: "range \(range.headerValue) is outside the object", key: key)
        }
        let stream = ByteStream.file(at: path, offset: resolved.lowerBound, length: resolved.upperBound - resolved.lowerBound + 1)
        return ObjectBody(info: info, range: resolved, stream: stream)
    }

    /// Writes a temporary file, fsyncs it, then links (create-only) or renames it into place.
    @discardableResult
    public func put(_ key: String, body: ByteStream, length: Int64?, condition: WriteCondition) async throws -> ObjectInfo {
        let path = try path(for: key)
        if condition == .createOnly, try await head(key) != nil { throw StoreError.alreadyExists(key) }
        let store = self
        let (temporary, fd) = try await BlockingIO.shared.run { try store.makeTemporaryFile(besides: path, key: key) }
        do {
            var written: Int64 = 0
            var kicked: Int64 = 0
            for try await chunk in body {
                let (start, end) = (kicked, written + Int64(chunk.count))
                // Every 8 MiB, start writing out what is written so far, so the fsync at the end
                // waits for the last few MiB only instead of the whole object.
                let kick = end - start >= 8 << 20
                try await BlockingIO.shared.run {
                    try chunk.withUnsafeBytes { raw in try Self.writeAll(fd, raw, key: key) }
                    if kick { FileIO.startWriteback(fd, offset: start, length: end - start) }
                }
                written = end
                if kick { kicked = end }
            }
            if let length, written != length {
                throw StoreError(
                    code: .storeSizeMismatch, reason: "the body does not have the declared length", key: key,
                    expected: String(length), actual: String(written))
            }
            try await BlockingIO.shared.run {
                guard fsync(fd) == 0 else { throw Self.io("fsync", key: key) }
                guard close(fd) == 0 else { throw Self.io("close", key: key) }
            }
        } catch {
            await BlockingIO.shared.run {
                close(fd)
                unlink(temporary)
                store.pruneEmptyFolders(above: temporary)
            }
            throw error
        }
        return try await BlockingIO.shared.run {
            try store.publish(temporary, at: path, key: key, condition: condition)
            guard let info = try Self.statInfo(path, key: key, root: store.root) else { throw StoreError.notFound(key) }
            return info
        }
    }

    /// Hard-links the source's file (create-only) or links and renames it (unconditional).
    @discardableResult
    public func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo {
        let sourcePath = try path(for: source)
        let destinationPath = try path(for: destination)
        let store = self
        return try await BlockingIO.shared.run {
            try store.copyBlocking(
                source: source, sourcePath: sourcePath, destination: destination, destinationPath: destinationPath,
                condition: condition, sourceETag: sourceETag)
        }
    }

    private func copyBlocking(
        source: String, sourcePath: String, destination: String, destinationPath: String, condition: WriteCondition,
        sourceETag: String?
    ) throws -> ObjectInfo {
        // With an ETag, link the very file that was checked (through its descriptor), so a
        // replacement between the check and the link cannot slip in.
        var linkSource = sourcePath
        var sourceFD: Int32 = -1
        defer { if sourceFD >= 0 { close(sourceFD) } }
        guard Self.foldersAreReal(of: source, root: root) else { throw StoreError.notFound(source) }
        if let sourceETag {
            sourceFD = open(sourcePath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard sourceFD >= 0 else { throw StoreError.sourceChanged(source, expected: sourceETag, actual: nil) }
            var info = stat()
            guard fstat(sourceFD, &info) == 0 else { throw Self.io("stat", key: source) }
            let actual = Self.objectInfo(key: source, info).etag
            guard actual == sourceETag else { throw StoreError.sourceChanged(source, expected: sourceETag, actual: actual) }
            linkSource = "/proc/self/fd/\(sourceFD)"
        } else {
            guard try Self.statInfo(sourcePath, key: source, root: root) != nil else { throw StoreError.notFound(source) }
        }
        let temporary = Self.temporaryName(besides: destinationPath)
        var attempts = 0
        while true {
            try makeParent(of: destinationPath, key: destination)
            if linkat(AT_FDCWD, linkSource, AT_FDCWD, temporary, sourceFD >= 0 ? AT_SYMLINK_FOLLOW : 0) == 0 { break }
            attempts += 1
            // ENOENT: the source is gone, or a concurrent delete pruned the new folder: retry.
            if errno == ENOENT && attempts < 16 && (sourceFD >= 0 || access(sourcePath, F_OK) == 0) { continue }
            if errno == ENOENT { throw StoreError.notFound(source) }
            throw Self.io("link", key: destination)
        }
        try publish(temporary, at: destinationPath, key: destination, condition: condition)
        guard let info = try Self.statInfo(destinationPath, key: destination, root: root) else { throw StoreError.notFound(destination) }
        return info
    }

    /// Unlinks the file (a missing file is fine), then removes the folders it leaves empty.
    public func delete(_ key: String) async throws {
        let path = try path(for: key)
        let store = self
        try await BlockingIO.shared.run {
            // Never through a symlinked folder: that would delete outside the root.
            guard Self.foldersAreReal(of: key, root: store.root) else { return }
            guard unlink(path) == 0 || errno == ENOENT || errno == ENOTDIR else { throw Self.io("unlink", key: key) }
            store.pruneEmptyFolders(above: path)
        }
    }

    /// Removes the folders above `path` that are empty, up to the root.
    private func pruneEmptyFolders(above path: String) {
        var folder = BytePath.parent(path)
        while let current = folder, current.utf8.count > root.utf8.count, BytePath.hasPrefix(current, root + "/"), rmdir(current) == 0 {
            folder = BytePath.parent(current)
        }
    }

    /// Walks the folders under the prefix; keys sorted by byte order.
    public func list(prefix: String, continuation: String?, limit: Int) async throws -> ObjectListing {
        try ObjectKey.validatePrefix(prefix)
        let store = self
        return await BlockingIO.shared.run {
            // The folder part of the prefix (up to its last `/` byte) is where the walk starts.
            let directory = BytePath.parent(prefix).map { $0 + "/" } ?? ""
            var keys: [(String, stat)] = []
            // The walk meets folders with lstat; the folder it starts in is checked the same way.
            if Self.foldersAreReal(of: directory + "x", root: store.root) {
                store.walk(relative: directory, prefix: prefix, into: &keys)
            }
            var infos: [[UInt8]: (String, stat)] = [:]
            for (key, info) in keys where infos[BytePath.key(key)] == nil { infos[BytePath.key(key)] = (key, info) }
            let page = ObjectKey.page(infos.values.map(\.0), after: continuation, limit: limit)
            return ObjectListing(
                objects: page.keys.map { Self.objectInfo(key: $0, infos[BytePath.key($0)]!.1) }, continuation: page.continuation)
        }
    }

    /// Deletes temporary files left by crashed writers: those whose process (the pid in their
    /// name) is gone, and any older than `age` seconds; returns how many were removed. Safe to
    /// run while writers are active when `age` exceeds the longest write. Blocks: from async
    /// code, run it on ``BundleCore/BlockingIO/shared``.
    @discardableResult
    public func removeTemporaryFiles(olderThan age: TimeInterval) -> Int {
        var removed = 0
        let cutoff = Date().timeIntervalSince1970 - age
        guard let walker = FileManager.default.enumerator(atPath: root) else { return 0 }
        while let relative = walker.nextObject() as? String {
            let name = BytePath.lastSegment(relative)
            guard let marker = name.utf8.firstRange(of: Self.temporaryMarker.utf8) else { continue }
            let ownerGone = FileIO.temporaryOwnerIsAlive(name.utf8[marker.upperBound...]) == false
            let path = root + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if (ownerGone || Double(info.st_mtim.tv_sec) < cutoff), unlink(path) == 0 { removed += 1 }
        }
        return removed
    }

    // MARK: - Helpers

    /// The object at `path` (the file of `key`): a regular file reached through real folders only.
    /// A symlink, as the object or as any folder above it, is not an object of this store: it
    /// would lead outside the root.
    private static func statInfo(_ path: String, key: String, root: String) throws(StoreError) -> ObjectInfo? {
        guard foldersAreReal(of: key, root: root) else { return nil }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw io("stat", key: key)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return objectInfo(key: key, info)
    }

    /// Whether every folder above `key` that exists is a real folder (not a symlink or a file).
    static func foldersAreReal(of key: String, root: String) -> Bool {
        var folder = root
        for component in BytePath.segments(key.utf8).dropLast() {
            folder += "/" + String(decoding: component, as: UTF8.self)
            var info = stat()
            guard lstat(folder, &info) == 0 else { return true }  // missing: nothing to follow below
            guard (info.st_mode & S_IFMT) == S_IFDIR else { return false }
        }
        return true
    }

    private func walk(relative: String, prefix: String, into keys: inout [(String, stat)]) {
        let directory = relative.isEmpty ? root : root + "/" + String(decoding: relative.utf8.dropLast(), as: UTF8.self)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where !BytePath.contains(name, Self.temporaryMarker) {
            let key = relative + name
            var info = stat()
            guard lstat(root + "/" + key, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                let folder = key + "/"
                if BytePath.hasPrefix(folder, prefix) || BytePath.hasPrefix(prefix, folder) {
                    walk(relative: folder, prefix: prefix, into: &keys)
                }
            case S_IFREG:
                // Only what this store could have written: a file a foreign writer left under a
                // name that breaks the key rules (control characters, `..`) is not listed.
                if BytePath.hasPrefix(key, prefix), (try? ObjectKey.validate(key)) != nil { keys.append((key, info)) }
            default:
                continue
            }
        }
    }

    /// Creates the folders above `path`, one by one from the root. A concurrent delete may prune
    /// a folder this just created (it was empty); then the walk starts again, a few times.
    private func makeParent(of path: String, key: String) throws(StoreError) {
        guard let parent = BytePath.parent(path), parent.utf8.count > root.utf8.count else { return }
        let components = BytePath.segments(parent.utf8.dropFirst(root.utf8.count + 1))
        for _ in 0..<16 {
            var folder = root
            var pruned = false
            for component in components {
                folder += "/" + String(decoding: component, as: UTF8.self)
                if mkdir(folder, 0o755) == 0 { continue }
                if errno == EEXIST {
                    var info = stat()
                    if lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { continue }
                    if errno == ENOENT { pruned = true; break }
                    throw StoreError(code: .storeIO, reason: "cannot create the folder for the key (a file is in the way)", key: key)
                }
                if errno == ENOENT { pruned = true; break }
                throw Self.io("create folder", key: key)
            }
            if !pruned { return }
        }
        throw StoreError(code: .storeIO, reason: "cannot create the folder for the key (it keeps being removed)", key: key)
    }

    static func temporaryName(besides path: String) -> String { FileIO.temporaryName(besides: path, marker: temporaryMarker) }

    private func makeTemporaryFile(besides path: String, key: String) throws(StoreError) -> (String, Int32) {
        let temporary = Self.temporaryName(besides: path)
        for _ in 0..<16 {
            try makeParent(of: path, key: key)
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 { return (temporary, fd) }
            guard errno == ENOENT else { break }  // ENOENT: a concurrent delete pruned the folder
        }
        throw Self.io("create temporary file", key: key)
    }

    /// Moves a finished temporary file to `path`: `link` never replaces, `rename` does.
    private func publish(_ temporary: String, at path: String, key: String, condition: WriteCondition) throws(StoreError) {
        defer { unlink(temporary) }
        switch condition {
        case .createOnly:
            guard link(temporary, path) == 0 else {
                if errno == EEXIST { throw StoreError.alreadyExists(key) }
                throw Self.io("link", key: key)
            }
            // The temporary file still names the same inode; the deferred unlink removes it.
        case .unconditional:
            guard rename(temporary, path) == 0 else { throw Self.io("rename", key: key) }
        }
        if let folder = BytePath.parent(path) { FileIO.syncDirectory(folder) }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, key: String) throws(StoreError) {
        let failure = FileIO.writeAll(fd, bytes)
        if failure != 0 {
            errno = failure
            throw io("write", key: key)
        }
    }

    static func io(_ operation: String, key: String) -> StoreError {
        StoreError(code: .storeIO, reason: "\(operation) failed: \(String(cString: strerror(errno)))", key: key)
    }

    /// The info of a file: its ETag is `<inode>-<mtime in ns>` in hex, which changes whenever
    /// the file is replaced. Times far from now wrap instead of trapping.
    static func objectInfo(key: String, _ info: stat) -> ObjectInfo {
        let nanoseconds = Int64(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_mtim.tv_nsec)
        return ObjectInfo(
            key: key, size: Int64(info.st_size),
            etag: String(UInt64(info.st_ino), radix: 16) + "-" + String(UInt64(bitPattern: nanoseconds), radix: 16),
            lastModified: Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9))
    }
}
