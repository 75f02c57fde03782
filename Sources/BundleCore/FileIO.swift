import Foundation

/// Low-level file helpers shared by the libraries.
public enum FileIO {
    /// `fsync`s a folder (so a rename or link in it survives a power loss); errors are ignored,
    /// as a folder that cannot be opened cannot be synced either.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// `fsync`s the folder `relative` below the open folder `root` (`""`: `root` itself), never
    /// following a symlink.
    /// - Returns: 0, or the `errno` of the open or the `fsync` that failed.
    public static func syncDirectory(_ relative: String, in root: Int32) -> Int32 {
        let fd = relative.isEmpty ? dup(root) : openat(root, relative, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return fsync(fd) == 0 ? 0 : errno
    }

    /// Creates a new file named by ``temporaryName(besides:marker:)`` (`O_EXCL`, never an
    /// existing file or a symlink's target) with `mode`.
    /// - Returns: its path and descriptor, or the `errno` of the failed `open`.
    public static func createTemporaryFile(besides path: String, marker: String, mode: mode_t = 0o600) -> Result<(path: String, fd: Int32), FileError> {
        let temporary = temporaryName(besides: path, marker: marker)
        let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { return .failure(FileError("create", path: temporary, errno: errno)) }
        return .success((temporary, fd))
    }

    /// A name for a temporary file or folder beside `path`, unique to this process:
    /// `<folder>/.<name><marker><pid>-<16 random hex digits>`. The pid lets a later process tell
    /// the leftovers of a dead one.
    public static func temporaryName(besides path: String, marker: String) -> String {
        let folder = BytePath.parent(path) ?? "."
        return folder + "/." + BytePath.lastSegment(path) + marker + uniqueSuffix()
    }

    /// Creates a new file at `path` with `mode` (`O_EXCL`: never over an existing file, never
    /// through a symlink) holding `bytes`, `fsync`ed when `sync` is set. On failure nothing is
    /// left at `path` (unless it existed before, `EEXIST`).
    /// - Returns: 0, or the `errno` of the step that failed.
    public static func writeNewFile(_ path: String, _ bytes: [UInt8], mode: mode_t, sync: Bool) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { return errno }
        var failure = bytes.withUnsafeBytes { writeAll(fd, $0) }
        if sync, failure == 0, fsync(fd) != 0 { failure = errno }
        if close(fd) != 0, failure == 0 { failure = errno }
        if failure != 0 { unlink(path) }
        return failure
    }

    /// Whether the process that made a temporary name (its `<pid>-...` part, as
    /// ``uniqueSuffix()`` and the extraction folders write it) is still running: nil when the
    /// text does not start with a pid, true for this process, for a live one, and for one that
    /// cannot be signalled (`EPERM`). Only what a dead process left may be removed.
    public static func temporaryOwnerIsAlive<Bytes: Collection>(_ pidAndSuffix: Bytes) -> Bool? where Bytes.Element == UInt8 {
        let digits = pidAndSuffix.prefix { $0 != UInt8(ascii: "-") }
        guard digits.count < pidAndSuffix.count, let pid = Int32(String(decoding: digits, as: UTF8.self)), pid > 0 else { return nil }
        return pid == getpid() || kill(pid, 0) == 0 || errno == EPERM
    }

    /// `mkdir -p`: creates `path` and the folders above it (mode 0755), one at a time, so a
    /// failure names its cause.
    /// - Returns: nil, or the folder that could not be made and the `errno` (`ENOTDIR` when it
    ///   exists but is not a folder).
    public static func makeDirectories(_ path: String) -> (folder: String, errno: Int32)? {
        var folder = path.utf8.first == BytePath.slash ? "" : "."
        for component in BytePath.segments(path.utf8) where !component.isEmpty {
            folder += "/" + String(decoding: component, as: UTF8.self)
            if mkdir(folder, 0o755) == 0 { continue }
            let code = errno
            var info = stat()
            if code == EEXIST, stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { continue }
            return (folder, code == EEXIST ? ENOTDIR : code)
        }
        return nil
    }

    /// Whether `path`, when something is there, is a regular file or a link; nil when it is
    /// free, else the kind of what is there (`character device`, `folder`...). Outputs check this
    /// first, so that they never replace a device or a FIFO.
    public static func nonFileAt(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, ![S_IFREG, S_IFLNK].contains(info.st_mode & S_IFMT) else { return nil }
        return typeName(info.st_mode)
    }

    /// Opens `path` for reading without waiting for a writer: a FIFO that nobody writes to then
    /// reads as empty instead of blocking the open forever; the descriptor is made blocking again,
    /// so a pipe with a writer (`<(...)`) is read whole. Returns the descriptor, or -1 with `errno`.
    public static func openForReading(_ path: String) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return -1 }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return fd
    }

    /// What kind of file a `st_mode` describes, in words: `regular file`, `folder`, `symlink`,
    /// `fifo`, `socket`, `character device`, `block device`, or `special file`.
    public static func typeName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: "regular file"
        case S_IFDIR: "folder"
        case S_IFLNK: "symlink"
        case S_IFIFO: "fifo"
        case S_IFSOCK: "socket"
        case S_IFCHR: "character device"
        case S_IFBLK: "block device"
        default: "special file"
        }
    }

    /// `<pid>-<16 random hex digits>`.
    public static func uniqueSuffix() -> String { "\(getpid())-" + Hex.encode(withUnsafeBytes(of: UInt64.random(in: 0...UInt64.max)) { Array($0) }) }

    /// Replaces the file at `path` with `bytes` in one step: they are written to a new file named
    /// by ``temporaryName(besides:marker:)`` beside `temporaryBesides` (default: `path`), mode
    /// 0644, which is then renamed over `path`. A reader sees the old file or the new one, never a
    /// part. No `fsync` unless `sync` is set: durability is the caller's choice, and syncing here
    /// waits for every dirty byte of the file system (on ext4, a whole freshly written bundle).
    /// - Returns: 0, or the `errno` of the step that failed (the temporary file is removed).
    public static func replaceFile(_ path: String, with bytes: [UInt8], temporaryBesides: String? = nil, sync: Bool = false) -> Int32 {
        let (temporary, fd): (String, Int32)
        switch createTemporaryFile(besides: temporaryBesides ?? path, marker: ".tmp-", mode: 0o644) {
        case .success(let created): (temporary, fd) = created
        case .failure(let error): return error.errno
        }
        var failure = bytes.withUnsafeBytes { writeAll(fd, $0) }
        if sync, failure == 0, fsync(fd) != 0 { failure = errno }
        if close(fd) != 0, failure == 0 { failure = errno }
        if failure == 0 { failure = moveIntoPlace(temporary, path) }
        if failure != 0 { unlink(temporary) }
        return failure
    }

    /// Moves the complete file `temporary` to `path` in one step, as `rename` does, but when a
    /// file is already at `path` the two are exchanged (`renameat2(RENAME_EXCHANGE)`) and the old
    /// one is then removed: ext4 forces out every block of the new file when a rename replaces
    /// one (its `auto_da_alloc` heuristic, 120 ms for a 128 MB bundle), not when two are
    /// exchanged. Readers see the old file or the new one at `path`, never a part.
    /// - Returns: 0, or the `errno` of the rename that failed.
    public static func moveIntoPlace(_ temporary: String, _ path: String) -> Int32 {
        // Only a file (or a link, which is replaced, not followed) is ever replaced: a device,
        // a FIFO or a socket at `path` (`-o /dev/null` run as root) stays what it is.
        var target = stat()
        if lstat(path, &target) == 0, ![S_IFREG, S_IFLNK].contains(target.st_mode & S_IFMT) {
            return (target.st_mode & S_IFMT) == S_IFDIR ? EISDIR : EEXIST
        }
        #if os(Linux)
        // RENAME_EXCHANGE is 2; ENOENT when nothing is at `path` yet, EINVAL where the file
        // system cannot exchange.
        // Only a regular file is exchanged (rename refuses to put a file over a folder; an
        // exchange would not), and should a folder appear there meanwhile it is put back.
        var existing = stat()
        if let exchange = renameExchange, lstat(path, &existing) == 0, existing.st_mode & S_IFMT == S_IFREG {
            if exchange(AT_FDCWD, temporary, AT_FDCWD, path, 2) == 0 {
                guard unlink(temporary) == 0 || errno == ENOENT else {
                    let failure = errno
                    _ = exchange(AT_FDCWD, temporary, AT_FDCWD, path, 2)
                    return failure
                }
                return 0
            }
            if errno != ENOENT && errno != EINVAL && errno != ENOSYS { return errno }
        }
        #endif
        return rename(temporary, path) == 0 ? 0 : errno
    }

    /// Asks the kernel to start writing `length` bytes of `fd` from `offset` to disk now, without
    /// waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux; nothing elsewhere). A writer
    /// that will `fsync` at the end calls it as it goes, so the disk works while it writes and
    /// the final `fsync` has little left to wait for. Not a durability guarantee by itself.
    public static func startWriteback(_ fd: Int32, offset: Int64, length: Int64) {
        #if os(Linux)
        _ = syncFileRange?(fd, offset, length, 2)  // SYNC_FILE_RANGE_WRITE
        #endif
    }

    #if os(Linux)
    /// glibc's `sync_file_range`, which Swift's Glibc module does not declare.
    private static let syncFileRange: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
    }()

    /// glibc's `renameat2` (2.28 and later), which Swift's Glibc module does not declare.
    private static let renameExchange: (@convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32).self)
    }()
    #endif

    /// Writes all of `bytes` to `fd`, retrying short writes and `EINTR`.
    /// - Returns: 0, or the `errno` of the write that failed.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return 0
    }
}

/// Reads small files (keys, signatures, trust bundles, manifests) whole, but never more than a
/// limit: the size is checked before reading, and the read stops one byte past the limit, so a
/// huge or endless file (a FIFO, `/dev/zero`) costs at most `limit + 1` bytes of memory.
public enum BoundedFile {
    /// The file is larger than the limit.
    public struct TooLarge: ExtBundlesError, Equatable {
        /// The path.
        public var path: String
        /// The limit in bytes.
        public var limit: Int
        /// The size found (at least `limit + 1`).
        public var size: Int64

        /// Always `FILE_TOO_LARGE`.
        public var code: ErrorCode { .fileTooLarge }
        /// A short line.
        public var description: String { "the file is larger than \(limit) bytes (file '\(Printable.escape(path))')" }
        /// Every field.
        public var debugDescription: String { "BoundedFile.TooLarge(path: \"\(path)\", limit: \(limit), size: \(size))" }
    }

    /// The bytes of the file at `path`, at most `limit` of them.
    /// - Throws: ``TooLarge`` past the limit, ``FileError`` when it cannot be read (a folder, a
    ///   missing file).
    public static func read(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = FileIO.openForReading(path)
        guard fd >= 0 else { throw FileError("open", path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError("stat", path: path, errno: errno) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw FileError("read", path: path, errno: EISDIR) }
        if (info.st_mode & S_IFMT) == S_IFREG, Int64(info.st_size) > Int64(limit) {
            throw TooLarge(path: path, limit: limit, size: Int64(info.st_size))
        }
        var bytes: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = Foundation.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError("read", path: path, errno: errno)
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            if bytes.count > limit { throw TooLarge(path: path, limit: limit, size: Int64(bytes.count)) }
        }
    }
}

extension ErrorCode {
    /// A file is larger than the limit for its kind.
    public static let fileTooLarge: ErrorCode = "FILE_TOO_LARGE"
}

/// Lowercase hexadecimal, the one encoder of the libraries (hashes, ETags, random names).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Two lowercase hex digits per byte.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
