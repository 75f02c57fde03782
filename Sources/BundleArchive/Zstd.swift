import BundleCore
import CZstd
import Foundation

/// A streaming zstd decoder over libzstd.
///
/// Feed compressed bytes with ``decode(_:into:)``; decoded bytes are handed to the sink in chunks
/// of at most ``outputCapacity`` bytes. Several frames in a row (and skippable frames) are
/// accepted. Call ``finish()`` after the last input: it fails if the stream stopped inside a frame.
/// Not thread-safe: use one decoder per stream.
public final class ZstdDecoder {
    private let context: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer
    private let windowLogMax: Int
    private var lastHint = 0
    private var sawInput = false
    /// Decompressed bytes produced so far.
    public private(set) var decodedBytes: Int64 = 0

    /// The size of the chunks handed to sinks.
    public var outputCapacity: Int { output.count }

    /// Creates a decoder.
    /// - Parameters:
    ///   - windowLogMax: the largest window accepted, as a power of two (27 = 128 MiB).
    ///   - outputCapacity: the chunk size for decoded output.
    public init(windowLogMax: Int = ArchiveLimits.default.windowLogMax, outputCapacity: Int = 1 << 20) throws(ArchiveError) {
        // Checked before anything is allocated: a refused value must not reach Int32(...) or leave
        // a half-built decoder whose deinit would free what an error path already freed.
        let bounds = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax)
        guard windowLogMax >= Int(bounds.lowerBound), windowLogMax <= Int(bounds.upperBound) else {
            throw ArchiveError(
                code: .archiveInvalidLimit,
                reason: "windowLogMax \(windowLogMax) is outside \(bounds.lowerBound)...\(bounds.upperBound)",
                limit: "windowLogMax", actual: Int64(clamping: windowLogMax))
        }
        guard outputCapacity > 0 else {
            throw ArchiveError(code: .archiveInvalidLimit, reason: "the output capacity must be positive")
        }
        guard let context = ZSTD_createDCtx() else {
            throw ArchiveError(code: .zstdCorrupt, reason: "could not allocate a zstd decoder")
        }
        let result = ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, Int32(windowLogMax))
        if ZSTD_isError(result) != 0 {
            ZSTD_freeDCtx(context)
            throw ArchiveError(
                code: .archiveInvalidLimit, reason: "invalid windowLogMax \(windowLogMax): \(Self.errorName(result))",
                limit: "windowLogMax")
        }
        self.context = context
        self.windowLogMax = windowLogMax
        self.output = .allocate(byteCount: outputCapacity, alignment: 64)
    }

    deinit {
        ZSTD_freeDCtx(context)
        output.deallocate()
    }

    /// Decodes `input`, handing each full (or final) output chunk to `sink`.
    /// - Parameter maxOutput: stop and throw once more than this many bytes in total were decoded;
    ///   the check is exact because no chunk is decoded past `maxOutput + 1`.
    public func decode(
        _ input: UnsafeRawBufferPointer, maxOutput: Int64 = .max,
        into sink: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void
    ) throws(ArchiveError) {
        var position = 0
        while true {
            let produced = try decode(input, position: &position, into: output, maxOutput: maxOutput)
            if produced > 0 { try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: produced)) }
            // Done once the input is consumed and the decoder did not fill the buffer
            // (a full buffer may mean more output is pending).
            if position == input.count && produced < output.count { return }
        }
    }

    /// Decodes from `input[position...]` into `destination` until the destination is full or the
    /// input is consumed, advancing `position`; returns the number of bytes written.
    /// - Parameter maxOutput: throw `ARCHIVE_LIMIT_EXCEEDED` (`decompressedBytes`) once more than
    ///   this many bytes in total were decoded; never decodes past `maxOutput + 1`.
    public func decode(
        _ input: UnsafeRawBufferPointer, position: inout Int, into destination: UnsafeMutableRawBufferPointer,
        maxOutput: Int64 = .max
    ) throws(ArchiveError) -> Int {
        if input.count > position { sawInput = true }
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: position)
        let room = maxOutput == .max
            ? destination.count : Int(min(Int64(destination.count), max(1, maxOutput - decodedBytes + 1)))
        var outBuffer = ZSTD_outBuffer(dst: destination.baseAddress, size: room, pos: 0)
        repeat {
            let before = (inBuffer.pos, outBuffer.pos)
            let result = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
            if ZSTD_isError(result) != 0 { throw mapError(result) }
            // A call that made no progress after a frame ended reports the next frame's header
            // size; only calls that moved data say where we are in a frame.
            if result == 0 || (inBuffer.pos, outBuffer.pos) != before { lastHint = result }
            // Stop when the output is full, the input is consumed, or no progress is possible.
        } while outBuffer.pos < outBuffer.size && inBuffer.pos < inBuffer.size
        position = inBuffer.pos
        decodedBytes += Int64(outBuffer.pos)
        if decodedBytes > maxOutput {
            throw ArchiveError.limitExceeded("decompressedBytes", limitValue: maxOutput, actual: decodedBytes)
        }
        return outBuffer.pos
    }

    /// Confirms the stream ended at a frame boundary.
    /// - Throws: `ARCHIVE_ZSTD_TRUNCATED` when the input stopped inside a frame or was empty.
    public func finish() throws(ArchiveError) {
        if !sawInput {
            throw ArchiveError(code: .zstdTruncated, reason: "empty input: no zstd frame")
        }
        if lastHint != 0 {
            throw ArchiveError(
                code: .zstdTruncated, reason: "compressed stream ends inside a zstd frame (truncated)",
                offset: decodedBytes)
        }
    }

    private func mapError(_ result: Int) -> ArchiveError {
        let code = ZSTD_getErrorCode(result)
        if code == ZSTD_error_frameParameter_windowTooLarge {
            return ArchiveError(
                code: .zstdWindowTooLarge,
                reason: "zstd frame needs a window larger than 2^\(windowLogMax) bytes",
                limit: "windowLogMax", limitValue: Int64(windowLogMax))
        }
        return ArchiveError(
            code: .zstdCorrupt, reason: "corrupt zstd stream: \(Self.errorName(result))", offset: decodedBytes)
    }

    static func errorName(_ result: Int) -> String { String(cString: ZSTD_getErrorName(result)) }
}

/// A streaming zstd encoder over libzstd.
///
/// With `workers >= 1` libzstd compresses on that many background threads while the caller keeps
/// feeding input. The output for a given input, level and checksum setting is the same whatever
/// the number of workers (libzstd's multi-threaded format does not depend on it), so a bundle's
/// content hash does not depend on the machine's core count.
public final class ZstdEncoder {
    /// Encoder settings.
    public struct Configuration: Sendable, Equatable {
        /// Compression level, 1...19 (up to 22 with ultra levels). Default 19, as `alga pack` uses.
        public var level: Int
        /// Background compression threads; 0 means one per core. Default 0.
        public var workers: Int
        /// Append a 32-bit checksum of the content to each frame. Default true.
        public var checksum: Bool

        /// Creates a configuration.
        public init(level: Int = 19, workers: Int = 0, checksum: Bool = true) {
            self.level = level
            self.workers = workers
            self.checksum = checksum
        }

        /// Checks the level and the worker count against libzstd's bounds.
        public func validate() throws(ArchiveError) {
            let bounds = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel)
            guard level >= Int(bounds.lowerBound), level <= Int(bounds.upperBound) else {
                throw ArchiveError(
                    code: .zstdEncoder, reason: "compression level \(level) is outside \(bounds.lowerBound)...\(bounds.upperBound)")
            }
            let workerBounds = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers)
            guard workers >= 0, workers <= Int(workerBounds.upperBound) else {
                throw ArchiveError(
                    code: .zstdEncoder, reason: "worker count \(workers) is outside 0...\(workerBounds.upperBound)")
            }
        }
    }

    private let context: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer

    /// Creates an encoder.
    /// - Parameter pledgedSize: the exact number of input bytes, when known; it is written into
    ///   the frame header and lets libzstd size its tables.
    public init(configuration: Configuration = .init(), pledgedSize: UInt64? = nil) throws(ArchiveError) {
        // Everything is checked and set before the stored properties are, so an error path frees
        // the context once and deinit (which runs only for a fully built encoder) never again.
        try configuration.validate()
        guard let context = ZSTD_createCCtx() else {
            throw ArchiveError(code: .zstdEncoder, reason: "could not allocate a zstd encoder")
        }
        let workers = configuration.workers > 0 ? configuration.workers : Self.coreCount
        let settings: [(ZSTD_cParameter, Int32)] = [
            (ZSTD_c_compressionLevel, Int32(configuration.level)),
            (ZSTD_c_checksumFlag, configuration.checksum ? 1 : 0),
            (ZSTD_c_nbWorkers, Int32(clamping: workers)),
        ]
        for (parameter, value) in settings {
            let result = ZSTD_CCtx_setParameter(context, parameter, value)
            if ZSTD_isError(result) != 0 {
                ZSTD_freeCCtx(context)
                throw ArchiveError(
                    code: .zstdEncoder, reason: "zstd parameter refused: \(ZstdDecoder.errorName(result))")
            }
        }
        if let pledgedSize {
            ZSTD_CCtx_setPledgedSrcSize(context, pledgedSize)
        }
        self.context = context
        self.output = .allocate(byteCount: ZSTD_CStreamOutSize() * 8, alignment: 64)
    }

    deinit {
        ZSTD_freeCCtx(context)
        output.deallocate()
    }

    /// The number of online cores, used when `workers` is 0.
    public static var coreCount: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Compresses `input`, handing compressed chunks to `sink` as they become available.
    public func encode(
        _ input: UnsafeRawBufferPointer, into sink: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void
    ) throws(ArchiveError) {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while inBuffer.pos < inBuffer.size {
            try step(&inBuffer, ZSTD_e_continue, sink)
        }
    }

    /// Ends the frame, flushing everything to `sink`.
    public func finish(into sink: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void) throws(ArchiveError) {
        var inBuffer = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try step(&inBuffer, ZSTD_e_end, sink) != 0 {}
    }

    @discardableResult
    private func step(
        _ inBuffer: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective,
        _ sink: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void
    ) throws(ArchiveError) -> Int {
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let remaining = ZSTD_compressStream2(context, &outBuffer, &inBuffer, directive)
        if ZSTD_isError(remaining) != 0 {
            throw ArchiveError(code: .zstdEncoder, reason: "zstd compression failed: \(ZstdDecoder.errorName(remaining))")
        }
        if outBuffer.pos > 0 {
            try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: outBuffer.pos))
        }
        return remaining
    }
}
