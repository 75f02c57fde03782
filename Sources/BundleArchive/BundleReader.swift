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
    /// The hasher's final state, when hashing was requested (its ``BundleCore/ContentHasher/digest256``
    /// is what ECDSA signatures are checked against).
    public var hasher: ContentHasher?

    /// Equal when the counts and the content hash are equal (the hasher state follows from them).
    public static func == (lhs: BundleReadSummary, rhs: BundleReadSummary) -> Bool {
        lhs.compressedBytes == rhs.compressedBytes && lhs.decompressedBytes == rhs.decompressedBytes
            && lhs.entryCount == rhs.entryCount && lhs.contentHash == rhs.contentHash
    }
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
        self.parser = TarParser(delegate: walker, metadataLimit: limits.metadataBytes, archiveMetadataLimit: limits.archiveMetadataBytes)
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
            contentHash: hasher?.finalize(), hasher: hasher)
    }
}

extension BundleReader {
    /// Reads a bundle file in three stages on three threads (the calling thread and two of
    /// ``BundleCore/BlockingIO/shared``): one reads (and optionally hashes)
    /// the compressed bytes, one decodes zstd, and the calling thread parses the tar stream and
    /// runs `visitor`. Hashing, decompression and the visitor's work (writing files, for
    /// extraction) overlap. Memory: eight 1 MiB chunks plus the zstd window.
    ///
    /// - Parameter lightVisitor: the visitor does little work per byte (inspection, verification):
    ///   read, decode and walk on the calling thread, with hashing behind it on another, so two
    ///   threads share two cores instead of three and the decoder never waits for the hash.
    public static func read(
        fileAt path: String, visitor: any ArchiveVisitor, limits: ArchiveLimits = .default, computeHash: Bool = false,
        lightVisitor: Bool = false
    ) throws(ArchiveError) -> BundleReadSummary {
        let fd = FileIO.openForReading(path)
        guard fd >= 0 else { throw ArchiveError.io("open", path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ArchiveError.io("stat", path: path, errno: errno) }
        guard Int64(info.st_size) <= limits.compressedBytes else {
            throw ArchiveError.limitExceeded(
                "compressedBytes", limitValue: limits.compressedBytes, actual: Int64(info.st_size))
        }
        if lightVisitor {
            return try readOnCallingThread(fd: fd, path: path, visitor: visitor, limits: limits, computeHash: computeHash)
        }
        let decoder = try ZstdDecoder(windowLogMax: limits.windowLogMax)
        let compressed = ChunkQueue()
        let decoded = ChunkQueue()
        let stages = FileStages(fd: fd, path: path, limits: limits, computeHash: computeHash, decoder: decoder)
        let group = DispatchGroup()
        let work: [@Sendable () -> Void] = [
            { stages.readStage(into: compressed) }, { stages.decodeStage(from: compressed, into: decoded) },
        ]
        for stage in work {
            group.enter()
            // Pipeline stages this thread waits for: they always get a thread of their own.
            BlockingIO.shared.spawn {
                stage()
                group.leave()
            }
        }
        let walker = ArchiveWalker(visitor: visitor, limits: limits)
        let parser = TarParser(delegate: walker, metadataLimit: limits.metadataBytes, archiveMetadataLimit: limits.archiveMetadataBytes)
        var failure: ArchiveError?
        do throws(ArchiveError) {
            while let (index, count) = try decoded.next() {
                defer { decoded.recycle(index) }
                try parser.consume(UnsafeRawBufferPointer(start: decoded.buffers[index].baseAddress, count: count))
            }
            try parser.finish()
        } catch {
            failure = error
        }
        decoded.stop()
        compressed.stop()
        group.wait()
        if let failure { throw failure }
        return BundleReadSummary(
            compressedBytes: stages.compressedBytes, decompressedBytes: decoder.decodedBytes,
            entryCount: walker.entryCount, contentHash: stages.contentHash, hasher: stages.hasher)
    }
}

extension BundleReader {
    /// The light-visitor path of ``read(fileAt:visitor:limits:computeHash:lightVisitor:)``: the
    /// calling thread reads, decodes and walks, and never waits for hashing, which a thread of
    /// ``BundleCore/BlockingIO/shared`` does behind it on the same chunks (the calling thread
    /// hands each chunk over once decoded and takes it back once hashed; hashing is faster than
    /// decoding, so eight chunks keep them apart). As `openssl dgst & zstd -dc` run side by side,
    /// but reading the file once.
    static func readOnCallingThread(
        fd: Int32, path: String, visitor: any ArchiveVisitor, limits: ArchiveLimits, computeHash: Bool
    ) throws(ArchiveError) -> BundleReadSummary {
        // A chunk that stays in the core's cache (zstd's own 128 KiB) on its way to the parser
        // is faster than a 1 MiB one.
        let decoder = try ZstdDecoder(windowLogMax: limits.windowLogMax, outputCapacity: 128 << 10)
        let chunks = ChunkQueue(chunkCount: 8)
        let hashing = HashStage(queue: chunks)
        let done = DispatchGroup()
        if computeHash {
            done.enter()
            BlockingIO.shared.spawn {
                hashing.run()
                done.leave()
            }
        }
        let walker = ArchiveWalker(visitor: visitor, limits: limits)
        let parser = TarParser(delegate: walker, metadataLimit: limits.metadataBytes, archiveMetadataLimit: limits.archiveMetadataBytes)
        var compressedBytes: Int64 = 0
        var failure: ArchiveError?
        do throws(ArchiveError) {
            while true {
                guard let index = chunks.takeFree() else { break }
                let buffer = chunks.buffers[index]
                let n: Int
                do throws(ArchiveError) {
                    n = try readChunk(fd, into: buffer, path: path, limits: limits, total: &compressedBytes)
                } catch {
                    chunks.recycle(index)
                    throw error
                }
                if n == 0 {
                    chunks.recycle(index)
                    break
                }
                do throws(ArchiveError) {
                    try decoder.decode(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n), maxOutput: limits.decompressedBytes) {
                        chunk throws(ArchiveError) in try parser.consume(chunk)
                    }
                } catch {
                    chunks.recycle(index)
                    throw error
                }
                if computeHash { chunks.publish(index, count: n) } else { chunks.recycle(index) }
            }
            try decoder.finish()
            try parser.finish()
        } catch {
            failure = error
        }
        chunks.finish(nil)
        done.wait()
        if let failure { throw failure }
        return BundleReadSummary(
            compressedBytes: compressedBytes, decompressedBytes: decoder.decodedBytes, entryCount: walker.entryCount,
            contentHash: computeHash ? hashing.hasher.finalize() : nil, hasher: computeHash ? hashing.hasher : nil)
    }
}

/// Reads the next bytes of a bundle file into `buffer`, retrying `EINTR`, and adds them to
/// `total`, which may not pass the `compressedBytes` limit; 0 at the end of the file.
private func readChunk(
    _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, path: String, limits: ArchiveLimits, total: inout Int64
) throws(ArchiveError) -> Int {
    while true {
        let n = read(fd, buffer.baseAddress, buffer.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw ArchiveError.io("read", path: path, errno: errno)
        }
        total += Int64(n)
        guard total <= limits.compressedBytes else {
            throw ArchiveError.limitExceeded("compressedBytes", limitValue: limits.compressedBytes, actual: total)
        }
        return n
    }
}

/// Hashes the chunks published to `queue`, in order, and hands them back.
private final class HashStage: @unchecked Sendable {
    let queue: ChunkQueue
    /// Written by the hashing thread only; read after it left.
    var hasher = ContentHasher()

    init(queue: ChunkQueue) { self.queue = queue }

    func run() {
        // The producer never finishes with an error, so next() never throws here.
        while let (index, count) = try? queue.next() {
            hasher.update(UnsafeRawBufferPointer(start: queue.buffers[index].baseAddress, count: count))
            queue.recycle(index)
        }
    }
}

/// The two producer stages of ``BundleReader/read(fileAt:visitor:limits:computeHash:)``. Each
/// property is written by one stage only and read by the caller after both stages have left.
private final class FileStages: @unchecked Sendable {
    let fd: Int32
    let path: String
    let limits: ArchiveLimits
    let decoder: ZstdDecoder
    var hasher: ContentHasher?
    var compressedBytes: Int64 = 0
    var contentHash: ContentHash?

    init(fd: Int32, path: String, limits: ArchiveLimits, computeHash: Bool, decoder: ZstdDecoder) {
        self.fd = fd
        self.path = path
        self.limits = limits
        self.decoder = decoder
        self.hasher = computeHash ? ContentHasher() : nil
    }

    /// Reads and hashes the file into `queue`.
    func readStage(into queue: ChunkQueue) {
        do throws(ArchiveError) {
            while let index = queue.takeFree() {
                let buffer = queue.buffers[index]
                let n = try readChunk(fd, into: buffer, path: path, limits: limits, total: &compressedBytes)
                if n == 0 {
                    queue.recycle(index)
                    contentHash = hasher?.finalize()
                    queue.finish(nil)
                    return
                }
                hasher?.update(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
                queue.publish(index, count: n)
            }
        } catch {
            queue.finish(error)
        }
    }

    /// Decodes chunks from `input` into full chunks of `output`.
    func decodeStage(from input: ChunkQueue, into output: ChunkQueue) {
        do throws(ArchiveError) {
            var pending: (index: Int, count: Int, position: Int)?
            var inputDone = false
            while let index = output.takeFree() {
                let buffer = output.buffers[index]
                var fill = 0
                var drained = false
                while fill < buffer.count {
                    if pending == nil && !inputDone {
                        if let (next, count) = try input.next() {
                            pending = (next, count, 0)
                        } else {
                            inputDone = true
                        }
                    }
                    var produced = 0
                    if var chunk = pending {
                        let view = UnsafeRawBufferPointer(start: input.buffers[chunk.index].baseAddress, count: chunk.count)
                        produced = try decoder.decode(
                            view, position: &chunk.position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[fill...]),
                            maxOutput: limits.decompressedBytes)
                        if chunk.position == chunk.count {
                            input.recycle(chunk.index)
                            pending = nil
                        } else {
                            pending = chunk
                        }
                    } else {
                        // No input left: flush whatever the decoder still holds.
                        var none = 0
                        produced = try decoder.decode(
                            UnsafeRawBufferPointer(start: nil, count: 0), position: &none,
                            into: UnsafeMutableRawBufferPointer(rebasing: buffer[fill...]), maxOutput: limits.decompressedBytes)
                    }
                    fill += produced
                    // At the end of the input, a chunk that is not full means nothing is pending.
                    if inputDone && pending == nil && fill < buffer.count && produced == 0 {
                        drained = true
                        break
                    }
                }
                if fill > 0 { output.publish(index, count: fill) } else { output.recycle(index) }
                if drained {
                    try decoder.finish()
                    output.finish(nil)
                    return
                }
            }
            input.stop()  // the consumer stopped early
        } catch {
            input.stop()
            output.finish(error)
        }
    }
}

/// A bounded single-producer, single-consumer queue of 1 MiB chunks from a fixed pool. The
/// producer takes a free chunk, fills it and publishes it; the consumer takes published chunks in
/// order and recycles them. All state is guarded by `condition`.
final class ChunkQueue: @unchecked Sendable {
    static let chunkCount = 4
    let chunkCount: Int
    static let chunkSize = 1 << 20

    let buffers: [UnsafeMutableRawBufferPointer]
    private let condition = NSCondition()
    private var free: [Int]
    private var published: [(Int, Int)] = []
    private var finished = false
    private var stopped = false
    private var error: ArchiveError?

    init(chunkCount: Int = ChunkQueue.chunkCount) {
        self.chunkCount = chunkCount
        buffers = (0..<chunkCount).map { _ in .allocate(byteCount: Self.chunkSize, alignment: 64) }
        free = Array(0..<chunkCount)
    }

    deinit { buffers.forEach { $0.deallocate() } }

    /// A free chunk for the producer, or nil once the consumer stopped.
    func takeFree() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while free.isEmpty && !stopped { condition.wait() }
        return stopped ? nil : free.removeLast()
    }

    /// Hands a filled chunk to the consumer.
    func publish(_ index: Int, count: Int) {
        condition.lock()
        published.append((index, count))
        condition.signal()
        condition.unlock()
    }

    /// The producer is done; `error`, if any, reaches the consumer after the chunks before it.
    func finish(_ error: ArchiveError?) {
        condition.lock()
        finished = true
        self.error = error
        condition.broadcast()
        condition.unlock()
    }

    /// The next chunk, or nil at the end; throws the producer's error once the chunks published
    /// before it were taken.
    func next() throws(ArchiveError) -> (Int, Int)? {
        condition.lock()
        defer { condition.unlock() }
        while published.isEmpty && !finished && !stopped { condition.wait() }
        if !published.isEmpty { return published.removeFirst() }
        if let error { throw error }
        return nil
    }

    /// Returns a chunk to the pool.
    func recycle(_ index: Int) {
        condition.lock()
        free.append(index)
        condition.signal()
        condition.unlock()
    }

    /// The consumer gives up: the producer's next `takeFree` returns nil.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
