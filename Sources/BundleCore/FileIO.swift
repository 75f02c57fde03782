import Foundation

/// Low-level file helpers shared by the libraries.
public enum FileIO {
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
