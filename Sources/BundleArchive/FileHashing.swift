public import BundleCore
import Foundation

/// Hashing of whole files.
public enum FileHashing {
    /// The SHA-256 of the file at `path`, read in 1 MiB chunks.
    public static func hash(fileAt path: String) throws(ArchiveError) -> ContentHash {
        try hasher(fileAt: path).finalize()
    }

    /// A hasher that has read the whole file at `path` (for its ``BundleCore/ContentHasher/digest256``
    /// as well as its hash).
    public static func hasher(fileAt path: String) throws(ArchiveError) -> ContentHasher {
        let fd = FileIO.openForReading(path)
        guard fd >= 0 else { throw ArchiveError.io("open", path: path, errno: errno) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        var hasher = ContentHasher()
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.io("read", path: path, errno: errno)
            }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
        }
        return hasher
    }

    /// Writes all of `chunk` to `fd`; a failure is `ARCHIVE_IO` naming `path`.
    static func writeAll(_ fd: Int32, _ chunk: UnsafeRawBufferPointer, path: String) throws(ArchiveError) {
        let failure = FileIO.writeAll(fd, chunk)
        if failure != 0 { throw ArchiveError.io("write", path: path, errno: failure) }
    }
}
