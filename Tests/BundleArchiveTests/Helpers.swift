import BundleArchive
import BundleCore
import Foundation
import TestSupport

/// Collects every entry and its bytes.
final class CollectingVisitor: ArchiveVisitor {
    var entries: [ArchiveEntry] = []
    var files: [String: [UInt8]] = [:]
    /// Bytes delivered while no file was open (for a directory): must stay 0.
    var strayBytes = 0
    private var current: String?

    func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError) {
        entries.append(entry)
        current = entry.kind == .file ? entry.path : nil
        if let current { files[current] = [] }
    }

    func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        if let current { files[current]!.append(contentsOf: chunk) } else { strayBytes += chunk.count }
    }

    func visitEntryEnd() throws(ArchiveError) { current = nil }
}

enum ArchiveFixtures {
    /// zstd-compresses `tar` in one frame.
    static func compress(_ tar: [UInt8], level: Int = 3, workers: Int = 1) throws -> [UInt8] {
        let encoder = try ZstdEncoder(configuration: .init(level: level, workers: workers, checksum: true))
        var out: [UInt8] = []
        try tar.withUnsafeBytes { raw in
            try encoder.encode(raw) { out.append(contentsOf: $0) }
        }
        try encoder.finish { out.append(contentsOf: $0) }
        return out
    }

    /// A tar stream of the given entries (a trailing `/` makes a directory), with or without the
    /// end-of-archive blocks.
    static func tar(_ entries: [(String, [UInt8])], endMarker: Bool = true) -> [UInt8] {
        var out: [UInt8] = []
        for (path, data) in entries {
            let isDirectory = path.hasSuffix("/")
            out += TarWriter.header(
                path: Array(path.utf8), isDirectory: isDirectory, size: Int64(data.count), mode: 0o644, mtime: 0)
            out += data
            out += [UInt8](repeating: 0, count: Int(TarWriter.padding(Int64(data.count))))
        }
        if endMarker { out += TarWriter.endOfArchive }
        return out
    }

    /// Reads `compressed` through a ``BundleReader`` in chunks of `chunkSize`.
    static func read(
        _ compressed: [UInt8], chunkSize: Int = 65_536, limits: ArchiveLimits = .default
    ) throws -> (CollectingVisitor, BundleReadSummary) {
        let visitor = CollectingVisitor()
        let reader = try BundleReader(visitor: visitor, limits: limits, computeHash: true)
        var offset = 0
        while offset < compressed.count {
            let end = min(offset + chunkSize, compressed.count)
            try compressed[offset..<end].withUnsafeBytes { raw in try reader.consume(raw) }
            offset = end
        }
        return (visitor, try reader.finish())
    }

    /// Packs `root` into memory.
    static func pack(_ root: String, configuration: BundlePacker.Configuration = .init()) throws -> ([UInt8], PackResult) {
        var out: [UInt8] = []
        let result = try BundlePacker.pack(directory: root, configuration: configuration) { out.append(contentsOf: $0) }
        return (out, result)
    }
}
