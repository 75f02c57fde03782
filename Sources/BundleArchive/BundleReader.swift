public import BundleCore
import Foundation

/// What reading a whole bundle stream found.
public struct BundleReadSummary: Sendable, Equatable {
    /// Compressed bytes read.
    public var compressedBytes: Int64
    /// Bytes of the decompressed tar stream.
    public var decompressedBytes: Int64
    /// Entries accepted (files and directories).
    public var entryCount: Int
    /// SHA-256 of the compressed bytes, when hashing was requested.
    public var contentHash: ContentHash?
}

/// Reads a `bundle.tar.zst` pushed to it in chunks of any size: counts and optionally hashes the
/// compressed bytes, decodes zstd, parses tar and applies the ``ArchiveWalker`` rules and the
/// ``ArchiveLimits``, forwarding accepted entries to a visitor. Memory use is constant: one
/// decoder window plus one 1 MiB output chunk.
///
/// Use it for streams that arrive in pieces (a network body, an object store); for files,
/// ``BundleReader/read(fileAt:visitor:limits:computeHash:)`` decodes on a second thread.
public final class BundleReader {
    private let decoder: ZstdDecoder
    private let parser: TarParser
    private let walker: ArchiveWalker
    private let limits: ArchiveLimits
    private var hasher: ContentHasher?
    private var compressedBytes: Int64 = 0

    /// Creates a reader forwarding to `visitor`.
    /// - Parameter computeHash: also compute the SHA-256 of the compressed bytes.
    public init(visitor: any ArchiveVisitor, limits: ArchiveLimits = .default, computeHash: Bool = false) throws(ArchiveError) {
        self.decoder = try ZstdDecoder(windowLogMax: limits.windowLogMax)
        self.walker = ArchiveWalker(visitor: visitor, limits: limits)
        self.parser = TarParser(delegate: walker, metadataLimit: limits.metadataBytes)
        self.limits = limits
        self.hasher = computeHash ? ContentHasher() : nil
    }

    /// Consumes the next piece of the compressed stream.
    public func consume(_ compressed: UnsafeRawBufferPointer) throws(ArchiveError) {
        compressedBytes += Int64(compressed.count)
        guard compressedBytes <= limits.compressedBytes else {
            throw ArchiveError.limitExceeded(
                "compressedBytes", limitValue: limits.compressedBytes, actual: compressedBytes)
        }
        hasher?.update(compressed)
        let parser = self.parser
        try decoder.decode(compressed, maxOutput: limits.decompressedBytes) { chunk throws(ArchiveError) in
            try parser.consume(chunk)
        }
    }

    /// Ends the stream: fails if it stopped inside a zstd frame, a tar header or an entry.
    public func finish() throws(ArchiveError) -> BundleReadSummary {
        try decoder.finish()
        try parser.finish()
        return BundleReadSummary(
            compressedBytes: compressedBytes, decompressedBytes: decoder.decodedBytes, entryCount: walker.entryCount,
            contentHash: hasher?.finalize())
    }
}

extension BundleReader {
    /// Reads a bundle file: one thread reads, hashes (optionally) and decodes, while the calling
    /// thread parses the tar stream and runs `visitor`, so decoding overlaps with what the visitor
    /// does (writing files, for extraction). Memory: four 1 MiB chunks plus the zstd window.
    public static func read(
        fileAt path: String, visitor: any ArchiveVisitor, limits: ArchiveLimits = .default, computeHash: Bool = false
    ) throws(ArchiveError) -> BundleReadSummary {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.io("open", path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ArchiveError.io("stat", path: path, errno: errno) }
        guard Int64(info.st_size) <= limits.compressedBytes else {
            throw ArchiveError.limitExceeded(
                "compressedBytes", limitValue: limits.compressedBytes, actual: Int64(info.st_size))
        }
        let pipe = DecodePipe(fd: fd, limits: limits, computeHash: computeHash)
        let walker = ArchiveWalker(visitor: visitor, limits: limits)
        let parser = TarParser(delegate: walker, metadataLimit: limits.metadataBytes)
        let producer = Thread { pipe.produce() }
        producer.stackSize = 1 << 20
        producer.start()
        var failure: ArchiveError?
        do {
            while let (index, count) = try pipe.next() {
                defer { pipe.recycle(index) }
                try parser.consume(UnsafeRawBufferPointer(start: pipe.buffers[index].baseAddress, count: count))
            }
            try parser.finish()
        } catch {
            failure = error
        }
        pipe.stopAndWait()
        if let failure { throw failure }
        return BundleReadSummary(
            compressedBytes: pipe.compressedBytes, decompressedBytes: pipe.decodedBytes,
            entryCount: walker.entryCount, contentHash: pipe.contentHash)
    }
}

/// A bounded single-producer, single-consumer hand-off of decoded chunks between the decoding
/// thread and the parsing thread. All mutable state is guarded by `condition`.
private final class DecodePipe: @unchecked Sendable {
    static let chunkCount = 4
    static let chunkSize = 1 << 20

    let buffers: [UnsafeMutableRawBufferPointer]
    private let fd: Int32
    private let limits: ArchiveLimits
    private let condition = NSCondition()
    private var free: [Int]
    private var filled: [(Int, Int)] = []
    private var finished = false
    private var stopped = false
    private var producerDone = false
    private var error: ArchiveError?
    private var hasher: ContentHasher?
    private(set) var compressedBytes: Int64 = 0
    private(set) var decodedBytes: Int64 = 0
    private(set) var contentHash: ContentHash?

    init(fd: Int32, limits: ArchiveLimits, computeHash: Bool) {
        self.fd = fd
        self.limits = limits
        self.hasher = computeHash ? ContentHasher() : nil
        self.buffers = (0..<Self.chunkCount).map { _ in .allocate(byteCount: Self.chunkSize, alignment: 64) }
        self.free = Array(0..<Self.chunkCount)
    }

    deinit { buffers.forEach { $0.deallocate() } }

    /// Runs on the producer thread.
    func produce() {
        do {
            try decodeAll()
        } catch {
            condition.lock()
            self.error = error
            condition.unlock()
        }
        condition.lock()
        finished = true
        producerDone = true
        condition.broadcast()
        condition.unlock()
    }

    private func decodeAll() throws(ArchiveError) {
        let decoder = try ZstdDecoder(windowLogMax: limits.windowLogMax)
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 64)
        defer { input.deallocate() }
        var inputCount = 0
        var position = 0
        var eof = false
        while true {
            guard let index = takeFree() else { return }  // stopped by the consumer
            var fill = 0
            var drained = false
            let buffer = buffers[index]
            while fill < buffer.count {
                if position == inputCount && !eof {
                    let n = read(fd, input.baseAddress, input.count)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw ArchiveError.io("read", path: nil, errno: errno)
                    }
                    if n == 0 {
                        eof = true
                    } else {
                        compressedBytes += Int64(n)
                        guard compressedBytes <= limits.compressedBytes else {
                            throw ArchiveError.limitExceeded(
                                "compressedBytes", limitValue: limits.compressedBytes, actual: compressedBytes)
                        }
                        hasher?.update(UnsafeRawBufferPointer(start: input.baseAddress, count: n))
                        inputCount = n
                        position = 0
                    }
                }
                let view = UnsafeRawBufferPointer(start: input.baseAddress, count: inputCount)
                let target = UnsafeMutableRawBufferPointer(rebasing: buffer[fill...])
                fill += try decoder.decode(view, position: &position, into: target, maxOutput: limits.decompressedBytes)
                // At the end of the input, a chunk that is not full means nothing is pending.
                if eof && position == inputCount && fill < buffer.count {
                    drained = true
                    break
                }
            }
            decodedBytes = decoder.decodedBytes
            if fill > 0 { hand(index, fill) } else { recycle(index) }
            if drained {
                try decoder.finish()
                contentHash = hasher?.finalize()
                return
            }
        }
    }

    private func takeFree() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while free.isEmpty && !stopped { condition.wait() }
        return stopped ? nil : free.removeLast()
    }

    private func hand(_ index: Int, _ count: Int) {
        condition.lock()
        filled.append((index, count))
        condition.broadcast()
        condition.unlock()
    }

    /// The next decoded chunk, or nil at the end; rethrows the producer's error after the chunks
    /// decoded before it were consumed.
    func next() throws(ArchiveError) -> (Int, Int)? {
        condition.lock()
        defer { condition.unlock() }
        while filled.isEmpty && !finished { condition.wait() }
        if !filled.isEmpty { return filled.removeFirst() }
        if let error { throw error }
        return nil
    }

    func recycle(_ index: Int) {
        condition.lock()
        free.append(index)
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the producer (if still running) and waits for it to leave.
    func stopAndWait() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !producerDone { condition.wait() }
        condition.unlock()
    }
}
