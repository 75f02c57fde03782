public import BundleCore
import Foundation

/// The result of packing a folder.
public struct PackResult: Sendable, Equatable {
    /// SHA-256 of the compressed bytes written.
    public var contentHash: ContentHash
    /// Compressed size.
    public var size: Int64
    /// Size of the tar stream.
    public var tarSize: Int64
    /// Entries written (files and directories).
    public var entryCount: Int
    /// Where the bundle was written (nil when packed to a sink).
    public var output: String?
}

/// Deterministic packing of a folder into a `bundle.tar.zst`.
///
/// The same tree gives the same bytes, so the same content hash, on any machine: entries are
/// sorted bytewise by path; every header has mtime 0 (or ``Configuration/mtime``, for
/// `SOURCE_DATE_EPOCH`), owner 0:0 and empty owner names; modes are 0755 for directories and
/// executables and 0644 for other files; headers are ustar with a pax record only where a name does
/// not fit; the zstd frame records the exact content size and does not depend on the number of
/// worker threads. Symlinks, devices, fifos and sockets in the tree are refused with their path.
/// Nothing is written that ``BundleReader`` would refuse under the same ``ArchiveLimits``.
public enum BundlePacker {
    /// Packing settings.
    public struct Configuration: Sendable, Equatable {
        /// zstd settings. Default level 19, one worker per core, frame checksum on.
        public var zstd: ZstdEncoder.Configuration
        /// The mtime written in every header. Default 0.
        public var mtime: Int64
        /// Limits the packed tree must respect (entry count, path length, sizes).
        public var limits: ArchiveLimits
        /// Absolute paths to leave out (for example the output file when it lies inside the tree).
        public var excluding: Set<String>
        /// Absolute path prefixes to leave out (the temporary files of an interrupted pack).
        var excludingPrefixes: [[UInt8]] = []

        /// Creates a configuration.
        public init(
            zstd: ZstdEncoder.Configuration = .init(), mtime: Int64 = 0, limits: ArchiveLimits = .default,
            excluding: Set<String> = []
        ) {
            self.zstd = zstd
            self.mtime = mtime
            self.limits = limits
            self.excluding = excluding
        }

        /// Leaves out a bundle file and everything packing or signing writes beside it: its
        /// `.sha256` and `.sig` sidecars and the temporary files of an interrupted pack. ``pack``
        /// does this for its own output; a tool adds its default output too, so an old bundle
        /// there is never packed into a new one written elsewhere.
        public mutating func leaveOut(output path: String) {
            let resolved = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
            excluding.formUnion([resolved.path] + BundlePacker.sidecarSuffixes.map { resolved.path + $0 })
            excludingPrefixes.append(BytePath.key(resolved.deletingLastPathComponent().path + "/." + resolved.lastPathComponent + ".tmp-"))
        }
    }

    struct SourceEntry {
        var tarPath: [UInt8]
        var relativePath: String
        var isDirectory: Bool
        var size: Int64
        var executable: Bool
    }

    /// Packs `directory` into the file `output`, written through a temporary file in the same
    /// folder and renamed into place only when complete. Also writes `<output>.sha256` holding
    /// `<hex>\n`, as `alga pack` does.
    public static func pack(
        directory: String, to output: String, configuration: Configuration = .init()
    ) throws(ArchiveError) -> PackResult {
        try configuration.zstd.validate()
        if let kind = FileIO.nonFileAt(output) {
            throw ArchiveError(code: .archiveIO, reason: "the output is a \(kind), not a file; it is never replaced", path: Printable.escape(output))
        }
        let outputURL = URL(fileURLWithPath: output).standardizedFileURL
        let outputDirectory = outputURL.deletingLastPathComponent().path
        var configuration = configuration
        // The output and every file pack or sign writes beside it (the `.sha256` and `.sig`
        // sidecars, the temporary file of an interrupted pack) stay out of the bundle, so packing
        // again after signing gives the same bytes.
        configuration.leaveOut(output: outputURL.path)
        // The tree is read before the output folder is made, so a new `dist/` is not in it (and
        // a missing tree is refused before anything is created).
        let entries = try scan(directory, configuration: configuration)
        if let failure = FileIO.makeDirectories(outputDirectory) {
            throw ArchiveError.io("create output folder", path: failure.folder, errno: failure.errno)
        }

        // `.<name>.tmp-<pid>-<random>`: the prefix packing leaves out.
        let (temporary, fd): (String, Int32)
        switch FileIO.createTemporaryFile(besides: outputURL.path, marker: ".tmp-") {
        case .success(let created): (temporary, fd) = created
        case .failure(let error): throw ArchiveError.io("create output file", path: output, errno: error.errno)
        }
        do throws(ArchiveError) {
            // Hashing and writing the compressed bytes happen on a thread of their own, so the
            // thread feeding zstd's workers hands them the next job without waiting (as zstd's
            // own command line writes asynchronously).
            let writer = OutputStage(fd: fd, path: output)
            var result: PackResult
            do throws(ArchiveError) {
                result = try write(entries: entries, root: directory, configuration: configuration, hashing: false) { chunk throws(ArchiveError) in
                    try writer.append(chunk)
                }
            } catch {
                _ = try? writer.finish()
                throw error
            }
            result.contentHash = try writer.finish()
            guard fchmod(fd, 0o644) == 0, close(fd) == 0 else { throw ArchiveError.io("close", path: output, errno: errno) }
            let moved = FileIO.moveIntoPlace(temporary, outputURL.path)
            guard moved == 0 else { throw ArchiveError.io("rename into place", path: output, errno: moved) }
            let sidecar = outputURL.path + ".sha256"
            let text = Array((result.contentHash.hex + "\n").utf8)
            // Its temporary file has the output's temporary prefix, which packing leaves out.
            let failure = FileIO.replaceFile(sidecar, with: text, temporaryBesides: outputURL.path)
            guard failure == 0 else { throw ArchiveError.io("write", path: sidecar, errno: failure) }
            result.output = outputURL.path
            return result
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
    }

    /// Packs `directory`, handing the compressed bytes to `sink` as they are produced.
    public static func pack(
        directory: String, configuration: Configuration = .init(),
        into sink: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void
    ) throws(ArchiveError) -> PackResult {
        let entries = try scan(directory, configuration: configuration)
        return try write(entries: entries, root: directory, configuration: configuration, hashing: true, sink: sink)
    }

    /// The files `pack` and `sign` write beside a bundle: `<bundle>.sha256` and `<bundle>.sig`.
    public static let sidecarSuffixes = [".sha256", ".sig"]
    /// Where `alga pack` and `extctl pack` write by default, inside the folder packed.
    public static let defaultOutput = "dist/bundle.tar.zst"

    // MARK: - Scanning

    static func scan(_ root: String, configuration: Configuration) throws(ArchiveError) -> [SourceEntry] {
        try configuration.zstd.validate()
        // Outside the ustar range the time needs a pax record, which not every tar reads alike.
        guard (0...TarWriter.maxOctal11).contains(configuration.mtime) else {
            throw ArchiveError(
                code: .packInvalidOption,
                reason: "the mtime \(configuration.mtime) (SOURCE_DATE_EPOCH) is outside 0...\(TarWriter.maxOctal11), what a tar header can hold",
                actual: configuration.mtime)
        }
        var info = stat()
        guard stat(root, &info) == 0 else { throw ArchiveError.io("stat", path: root, errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ArchiveError(code: .archiveIO, reason: "not a directory", path: root)
        }
        let absoluteRoot = URL(fileURLWithPath: root).standardizedFileURL.resolvingSymlinksInPath().path
        var entries: [SourceEntry] = []
        try scanDirectory(absoluteRoot, relative: [], into: &entries, configuration: configuration)
        entries.sort { $0.tarPath.lexicographicallyPrecedes($1.tarPath) }
        let limits = configuration.limits
        if entries.count > limits.entryCount {
            throw ArchiveError.limitExceeded("entryCount", limitValue: Int64(limits.entryCount), actual: Int64(entries.count))
        }
        // The reader's name rules, in the reader's order: what pack writes, reading accepts.
        var names = EntryPathRules.Names(limits: limits)
        for entry in entries {
            guard let normalized = try EntryPathRules.normalize(entry.tarPath) else { continue }
            try names.record(normalized.path, isFile: !entry.isDirectory)
        }
        return entries
    }

    /// Adds the entries under `absolute`; returns whether something in it was left out. A
    /// folder that holds nothing but what is left out (`dist/` with only the old bundle and its
    /// sidecars) is left out too, so packing gives the same bytes whether or not it exists.
    @discardableResult
    private static func scanDirectory(
        _ absolute: String, relative: [UInt8], into entries: inout [SourceEntry], configuration: Configuration
    ) throws(ArchiveError) -> Bool {
        var leftOut = false
        guard let dir = opendir(absolute) else { throw ArchiveError.io("open directory", path: absolute, errno: errno) }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let item = readdir(dir) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            names.append(name)
        }
        let excluded = Set(configuration.excluding.map(BytePath.key))
        for name in names {
            let relativePath = relative.isEmpty ? name : relative + [UInt8(ascii: "/")] + name
            let display = Printable.escape(bytes: relativePath)
            let absoluteBytes = BytePath.key(absolute) + [BytePath.slash] + name
            guard String(validating: relativePath, as: UTF8.self) != nil else {
                throw ArchiveError(code: .archiveInvalidPath, reason: "file name is not valid UTF-8", path: display)
            }
            let childAbsolute = String(decoding: absoluteBytes, as: UTF8.self)
            if excluded.contains(absoluteBytes) || configuration.excludingPrefixes.contains(where: { absoluteBytes.starts(with: $0) }) {
                leftOut = true
                continue
            }
            var info = stat()
            guard lstat(childAbsolute, &info) == 0 else { throw ArchiveError.io("stat", path: display, errno: errno) }
            let type = info.st_mode & S_IFMT
            let isDirectory = type == S_IFDIR
            guard isDirectory || type == S_IFREG else {
                let what = FileIO.typeName(info.st_mode)
                throw ArchiveError(
                    code: .packUnsupportedFile, reason: "cannot pack a \(what): only regular files and folders",
                    path: display)
            }
            if !isDirectory, Int64(info.st_size) > configuration.limits.decompressedBytes {
                throw ArchiveError.limitExceeded(
                    "decompressedBytes", limitValue: configuration.limits.decompressedBytes, actual: Int64(info.st_size), path: display)
            }
            let tarPath = isDirectory ? relativePath + [UInt8(ascii: "/")] : relativePath
            guard tarPath.count <= configuration.limits.pathLength else {
                throw ArchiveError.limitExceeded(
                    "pathLength", limitValue: Int64(configuration.limits.pathLength),
                    actual: Int64(tarPath.count), path: display)
            }
            entries.append(
                SourceEntry(
                    tarPath: tarPath, relativePath: childAbsolute, isDirectory: isDirectory,
                    size: isDirectory ? 0 : Int64(info.st_size), executable: info.st_mode & 0o111 != 0))
            if entries.count > configuration.limits.entryCount {
                throw ArchiveError.limitExceeded(
                    "entryCount", limitValue: Int64(configuration.limits.entryCount), actual: Int64(entries.count))
            }
            if isDirectory {
                let folderIndex = entries.count - 1
                if try scanDirectory(childAbsolute, relative: relativePath, into: &entries, configuration: configuration),
                    entries.count == folderIndex + 1
                {
                    entries.removeLast()
                    leftOut = true
                }
            }
        }
        return leftOut
    }

    // MARK: - Writing

    /// Writes the tar stream of `entries` through zstd into `sink`; with `hashing` false the
    /// result's `contentHash` is left for the caller to fill in.
    ///
    /// A thread of ``BundleCore/BlockingIO/shared`` reads the files and lays out the tar stream
    /// in 1 MiB chunks while the calling thread hands them to zstd (whose workers compress), so
    /// reading never holds up the workers (as zstd's own command line reads ahead).
    private static func write(
        entries: [SourceEntry], root: String, configuration: Configuration, hashing: Bool,
        sink: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void
    ) throws(ArchiveError) -> PackResult {
        let mtime = configuration.mtime
        let headers = entries.map {
            TarWriter.header(
                path: $0.tarPath, isDirectory: $0.isDirectory, size: $0.size,
                mode: $0.isDirectory || $0.executable ? 0o755 : 0o644, mtime: mtime)
        }
        var tarSize = Int64(TarWriter.endOfArchive.count)
        for (entry, header) in zip(entries, headers) {
            tarSize += Int64(header.count) + entry.size + TarWriter.padding(entry.size)
        }
        let limits = configuration.limits
        guard tarSize <= limits.decompressedBytes else {
            throw ArchiveError.limitExceeded("decompressedBytes", limitValue: limits.decompressedBytes, actual: tarSize)
        }
        let encoder = try ZstdEncoder(configuration: configuration.zstd, pledgedSize: UInt64(tarSize))
        var hasher = ContentHasher()
        var compressed: Int64 = 0
        func emit(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
            compressed += Int64(chunk.count)
            guard compressed <= limits.compressedBytes else {
                throw ArchiveError.limitExceeded("compressedBytes", limitValue: limits.compressedBytes, actual: compressed)
            }
            if hashing { hasher.update(chunk) }
            try sink(chunk)
        }
        let tar = ChunkQueue()
        let reader = TarStage(entries: entries, headers: headers, queue: tar)
        let done = DispatchGroup()
        done.enter()
        BlockingIO.shared.spawn {
            reader.run()
            done.leave()
        }
        do throws(ArchiveError) {
            while let (index, count) = try tar.next() {
                defer { tar.recycle(index) }
                try encoder.encode(UnsafeRawBufferPointer(start: tar.buffers[index].baseAddress, count: count), into: emit)
            }
            try encoder.finish(into: emit)
        } catch {
            tar.stop()
            done.wait()
            throw error
        }
        done.wait()
        return PackResult(
            contentHash: hasher.finalize(), size: compressed, tarSize: tarSize, entryCount: entries.count, output: nil)
    }
}

/// The reading end of the packer: lays out the tar stream of the entries (headers, file bytes
/// read straight into the chunks, padding, end of archive) in the chunks of `queue`.
private final class TarStage: @unchecked Sendable {
    let entries: [BundlePacker.SourceEntry]
    let headers: [[UInt8]]
    let queue: ChunkQueue
    private var current: (index: Int, fill: Int)?

    init(entries: [BundlePacker.SourceEntry], headers: [[UInt8]], queue: ChunkQueue) {
        self.entries = entries
        self.headers = headers
        self.queue = queue
    }

    /// Produces the whole stream, or stops at the first error (handed to the consumer) or when
    /// the consumer stops.
    func run() {
        do throws(ArchiveError) {
            for (entry, header) in zip(entries, headers) {
                guard try append(header) else { return }
                guard !entry.isDirectory else { continue }
                guard try copy(entry) else { return }
                guard try append([UInt8](repeating: 0, count: Int(TarWriter.padding(entry.size)))) else { return }
            }
            guard try append(TarWriter.endOfArchive) else { return }
            if let (index, fill) = current, fill > 0 { queue.publish(index, count: fill) }
            current = nil
            queue.finish(nil)
        } catch {
            queue.finish(error)
        }
    }

    /// The chunk being filled, taking a free one when needed; nil once the consumer stopped.
    private func chunk() -> (index: Int, fill: Int)? {
        if current == nil, let index = queue.takeFree() { current = (index, 0) }
        return current
    }

    /// Hands the current chunk over once it is full.
    private func advance(by count: Int) {
        guard let (index, fill) = current else { return }
        current = (index, fill + count)
        if fill + count == queue.buffers[index].count {
            queue.publish(index, count: fill + count)
            current = nil
        }
    }

    private func append(_ bytes: [UInt8]) throws(ArchiveError) -> Bool {
        var offset = 0
        while offset < bytes.count {
            guard let (index, fill) = chunk() else { return false }
            let buffer = queue.buffers[index]
            let take = min(bytes.count - offset, buffer.count - fill)
            bytes.withUnsafeBytes { source in
                (buffer.baseAddress! + fill).copyMemory(from: source.baseAddress! + offset, byteCount: take)
            }
            offset += take
            advance(by: take)
        }
        return true
    }

    /// Reads the entry's file straight into the chunks; refuses a file whose size changed since
    /// the scan.
    private func copy(_ entry: BundlePacker.SourceEntry) throws(ArchiveError) -> Bool {
        var display: String { Printable.escape(bytes: entry.tarPath) }
        let fd = open(entry.relativePath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw ArchiveError.io("open", path: display, errno: errno) }
        defer { close(fd) }
        var copied: Int64 = 0
        while true {
            guard let (index, fill) = chunk() else { return false }
            let buffer = queue.buffers[index]
            // Never more than the scanned size (plus one byte, to notice growth).
            let room = Int(min(Int64(buffer.count - fill), entry.size - copied + 1))
            let n = read(fd, buffer.baseAddress! + fill, room)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.io("read", path: display, errno: errno)
            }
            if n == 0 { break }
            copied += Int64(n)
            guard copied <= entry.size else { break }
            advance(by: n)
        }
        guard copied == entry.size else {
            throw ArchiveError(
                code: .packSourceChanged, reason: "file changed size while packing (expected \(entry.size) bytes)",
                path: display, actual: copied)
        }
        return true
    }
}

/// The writing end of ``BundlePacker/pack(directory:to:configuration:)``: compressed bytes are
/// gathered into 1 MiB chunks, then hashed and written to `fd` by a thread of
/// ``BundleCore/BlockingIO/shared``.
private final class OutputStage: @unchecked Sendable {
    private let queue = ChunkQueue()
    private let done = DispatchGroup()
    private let fd: Int32
    private let path: String
    /// Written by the writer thread only; read after `done`.
    private var hasher = ContentHasher()
    private var failure: ArchiveError?
    /// The chunk being filled by the producer.
    private var current: (index: Int, fill: Int)?

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        done.enter()
        BlockingIO.shared.spawn { [self] in
            defer { done.leave() }
            do throws(ArchiveError) {
                while let (index, count) = try queue.next() {
                    defer { queue.recycle(index) }
                    let bytes = UnsafeRawBufferPointer(start: queue.buffers[index].baseAddress, count: count)
                    hasher.update(bytes)
                    try FileHashing.writeAll(fd, bytes, path: path)
                }
            } catch {
                failure = error
                queue.stop()
            }
        }
    }

    /// Copies `bytes` into the chunks, handing each full one to the writer.
    func append(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        var offset = 0
        while offset < bytes.count {
            if current == nil {
                guard let index = queue.takeFree() else { throw writerFailure() }
                current = (index, 0)
            }
            let (index, fill) = current!
            let buffer = queue.buffers[index]
            let take = min(bytes.count - offset, buffer.count - fill)
            (buffer.baseAddress! + fill).copyMemory(from: bytes.baseAddress! + offset, byteCount: take)
            offset += take
            current = (index, fill + take)
            if fill + take == buffer.count {
                queue.publish(index, count: buffer.count)
                current = nil
            }
        }
    }

    /// Hands over the last chunk, waits for the writer and returns the hash of everything written.
    func finish() throws(ArchiveError) -> ContentHash {
        if let (index, fill) = current {
            queue.publish(index, count: fill)
            current = nil
        }
        queue.finish(nil)
        done.wait()
        if let failure { throw failure }
        return hasher.finalize()
    }

    private func writerFailure() -> ArchiveError {
        done.wait()
        return failure ?? ArchiveError.io("write", path: path, errno: EIO)
    }
}
