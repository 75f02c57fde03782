import Foundation

/// A single-pass asynchronous stream of byte chunks: the body type of every object read or
/// written through the stores.
///
/// Streams are pull-based: nothing is read until the consumer asks for the next chunk, so a slow
/// consumer never makes a producer buffer without bound. Iterate it once.
public struct ByteStream: AsyncSequence, Sendable {
    /// One chunk of bytes.
    public typealias Element = [UInt8]

    private let base: AsyncThrowingStream<[UInt8], any Error>

    /// A stream that calls `next` for each chunk until it returns nil.
    public init(unfolding next: @escaping @Sendable () async throws -> [UInt8]?) {
        base = AsyncThrowingStream(unfolding: next)
    }

    /// A stream over any sendable async sequence of byte arrays.
    public init<Source: AsyncSequence & Sendable>(_ source: Source) where Source.Element == [UInt8] {
        let box = IteratorBox(source.makeAsyncIterator())
        self.init(unfolding: { try await box.next() })
    }

    /// The chunk sizes streams use: a requested size is clamped into `1...16 MiB`.
    public static let chunkSizes = 1...(16 << 20)

    /// A stream over bytes already in memory, in chunks of `chunkSize` (clamped to ``chunkSizes``).
    public static func bytes(_ bytes: [UInt8], chunkSize: Int = 1 << 20) -> ByteStream {
        let chunkSize = chunkSize.clamped(to: chunkSizes)
        let state = LockedValue(0)
        return ByteStream(unfolding: {
            let range = state.withLock { offset -> Range<Int> in
                let start = offset
                offset += Swift.min(chunkSize, bytes.count - offset)
                return start..<offset
            }
            guard !range.isEmpty else { return nil }
            return Array(bytes[range])
        })
    }

    /// A stream reading the file at `path` from `offset`, `length` bytes (to the end if nil), in
    /// chunks of `chunkSize` (clamped to ``chunkSizes``). The file is opened on the first read; a missing file (or a folder)
    /// is a ``FileError`` then. Reads run on ``BlockingIO/shared``, never on the calling task's
    /// thread.
    public static func file(
        at path: String, offset: Int64 = 0, length: Int64? = nil, chunkSize: Int = 1 << 20
    ) -> ByteStream {
        let reader = FileChunkReader(path: path, offset: offset, length: length, chunkSize: chunkSize)
        return ByteStream(unfolding: { try await BlockingIO.shared.run { try reader.next() } })
    }

    /// The iterator.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator

        /// The next chunk, or nil at the end.
        public mutating func next() async throws -> [UInt8]? { try await base.next() }
    }

    /// Starts the single pass.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }

    /// Reads the whole stream into memory, refusing more than `limit` bytes.
    public func collect(upTo limit: Int) async throws -> [UInt8] {
        var out: [UInt8] = []
        for try await chunk in self {
            guard out.count + chunk.count <= limit else { throw StreamLimitExceeded(limit: limit) }
            out += chunk
        }
        return out
    }

    /// A stream that passes every chunk to `observe` on its way through (to hash or count it).
    public func observing(_ observe: @escaping @Sendable ([UInt8]) throws -> Void) -> ByteStream {
        let box = IteratorBox(makeAsyncIterator())
        return ByteStream(unfolding: {
            guard let chunk = try await box.next() else { return nil }
            try observe(chunk)
            return chunk
        })
    }

    /// A stream that holds back its last chunk until the source has ended, then calls `check`:
    /// if `check` throws, the stream fails instead of delivering the last chunk, so a consumer
    /// that commits only a complete body (a PUT with a known length, a multipart upload, a
    /// temporary file) never commits bytes that failed the check.
    public func checkingBeforeEnd(_ check: @escaping @Sendable () throws -> Void) -> ByteStream {
        let state = HoldBack(IteratorBox(makeAsyncIterator()))
        return ByteStream(unfolding: { try await state.next(check) })
    }

    /// Reads the first non-empty chunk now and returns a stream of the same bytes: a body that
    /// fails before its first byte fails here, before a request is started for it (some S3
    /// servers store an empty object for a PUT whose connection closes before any body byte).
    /// Nil when the stream is empty.
    public func startingWithFirstChunk() async throws -> ByteStream? {
        let source = IteratorBox(makeAsyncIterator())
        var first: [UInt8]?
        repeat { first = try await source.next() } while first?.isEmpty == true
        guard let first else { return nil }
        let pending = LockedValue<[UInt8]?>(first)
        return ByteStream(unfolding: {
            if let chunk = pending.withLock({ value -> [UInt8]? in defer { value = nil }; return value }) { return chunk }
            return try await source.next()
        })
    }

    /// The streams one after the other.
    public static func concatenating(_ streams: [ByteStream]) -> ByteStream {
        let state = LockedValue((index: 0, iterator: streams.first.map { IteratorBox($0.makeAsyncIterator()) }))
        return ByteStream(unfolding: {
            while true {
                guard let iterator = state.withLock({ $0.iterator }) else { return nil }
                if let chunk = try await iterator.next() { return chunk }
                state.withLock { value in
                    value.index += 1
                    value.iterator = value.index < streams.count
                        ? IteratorBox(streams[value.index].makeAsyncIterator()) : nil
                }
            }
        })
    }
}

/// A stream held more bytes than the caller allowed.
public struct StreamLimitExceeded: ExtBundlesError {
    /// The limit in bytes.
    public var limit: Int
    /// Creates the error.
    public init(limit: Int) { self.limit = limit }
    /// Always `STREAM_LIMIT_EXCEEDED`.
    public var code: ErrorCode { "STREAM_LIMIT_EXCEEDED" }
    /// A short line.
    public var description: String { "the stream is longer than \(limit) bytes" }
    /// The same, with the type name.
    public var debugDescription: String { "StreamLimitExceeded(limit: \(limit))" }
}

/// Holds an iterator that is only ever advanced by one consumer at a time (the unfolding
/// closure of a single-pass stream), so it may be shared across the closure's isolation.
final class IteratorBox<Iterator: AsyncIteratorProtocol>: @unchecked Sendable {
    private var iterator: Iterator

    init(_ iterator: Iterator) { self.iterator = iterator }

    func next() async throws -> Iterator.Element? { try await iterator.next() }
}

/// The state of ``ByteStream/checkingBeforeEnd(_:)``; used by its single consumer only.
final class HoldBack: @unchecked Sendable {
    private let source: IteratorBox<ByteStream.AsyncIterator>
    private var held: [UInt8]?
    private var started = false
    private var finished = false

    init(_ source: IteratorBox<ByteStream.AsyncIterator>) { self.source = source }

    func next(_ check: () throws -> Void) async throws -> [UInt8]? {
        if finished { return nil }
        if !started {
            started = true
            held = try await source.next()
        }
        let following = held == nil ? nil : try await source.next()
        guard following != nil else {
            finished = true
            try check()
            return held
        }
        defer { held = following }
        return held
    }
}

/// A value behind a lock.
public final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    /// Wraps `value`.
    public init(_ value: Value) { self.value = value }

    /// Runs `body` with exclusive access to the value.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Reads a file (or a FIFO) sequentially in chunks; used by ``ByteStream/file(at:offset:length:chunkSize:)``.
final class FileChunkReader: @unchecked Sendable {
    private let path: String
    private let chunkSize: Int
    private let lock = NSLock()
    private var fd: Int32 = -1
    private var position: Int64
    private var remaining: Int64?

    init(path: String, offset: Int64, length: Int64?, chunkSize: Int) {
        self.path = path
        self.position = offset
        self.remaining = length
        self.chunkSize = chunkSize.clamped(to: ByteStream.chunkSizes)
    }

    deinit { if fd >= 0 { close(fd) } }

    func next() throws -> [UInt8]? {
        lock.lock()
        defer { lock.unlock() }
        if fd < 0 {
            fd = FileIO.openForReading(path)
            guard fd >= 0 else { throw FileError("open", path: path, errno: errno) }
            var info = stat()
            if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { throw FileError("read", path: path, errno: EISDIR) }
            // Seek once, then read sequentially, so pipes and FIFOs work too (without an offset).
            if position > 0, lseek(fd, off_t(position), SEEK_SET) < 0 {
                throw FileError("seek", path: path, errno: errno)
            }
        }
        let want = Int(min(Int64(chunkSize), remaining ?? Int64(chunkSize)))
        guard want > 0 else { return nil }
        var failure: Int32 = 0
        // Read straight into uninitialised capacity: no zero-filling of every chunk.
        let chunk = [UInt8](unsafeUninitializedCapacity: want) { buffer, count in
            var filled = 0
            while filled < want {
                let n = read(fd, buffer.baseAddress! + filled, want - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if n == 0 { break }
                filled += n
            }
            count = filled
        }
        if failure != 0 { throw FileError("read", path: path, errno: failure) }
        position += Int64(chunk.count)
        if let left = remaining { remaining = left - Int64(chunk.count) }
        return chunk.isEmpty ? nil : chunk
    }
}

extension Comparable {
    /// The value, moved into `range` if it lies outside.
    func clamped(to range: ClosedRange<Self>) -> Self { Swift.min(Swift.max(self, range.lowerBound), range.upperBound) }
}
