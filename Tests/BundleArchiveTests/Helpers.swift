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

/// Raw tar pieces written by hand (not by `TarWriter`), for hostile archives.
enum RawTar {
    /// One ustar header block with exactly these fields and a correct checksum.
    static func header(
        name: [UInt8], typeflag: UInt8 = UInt8(ascii: "0"), size: Int64, linkName: [UInt8] = [], prefix: [UInt8] = [], mode: Int = 0o644,
        magic: [UInt8] = Array("ustar\u{0}00".utf8), extra: [(Int, [UInt8])] = []
    ) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], _ offset: Int) { for (index, byte) in bytes.enumerated() { block[offset + index] = byte } }
        func octal(_ value: Int64, _ width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(Array(name.prefix(100)), 0)
        put(octal(Int64(mode), 8), 100)
        put(octal(0, 8), 108)
        put(octal(0, 8), 116)
        put(octal(size, 12), 124)
        put(octal(0, 12), 136)
        block[156] = typeflag
        put(Array(linkName.prefix(100)), 157)
        put(magic, 257)
        put(Array(prefix.prefix(155)), 345)
        for (offset, bytes) in extra { put(bytes, offset) }
        put([UInt8](repeating: 0x20, count: 8), 148)
        let sum = block.reduce(0) { $0 + Int64($1) }
        put(octal(sum, 7) + [0x20], 148)
        return block
    }

    /// A data area: the bytes and zero padding to a whole block.
    static func data(_ bytes: [UInt8]) -> [UInt8] { bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512) }

    /// A file entry: header and data.
    static func file(_ name: String, _ bytes: [UInt8] = Array("payload\n".utf8)) -> [UInt8] {
        header(name: Array(name.utf8), size: Int64(bytes.count)) + data(bytes)
    }

    /// A pax extended header (`x`, or `g` for global) carrying `records` verbatim.
    static func pax(_ records: [UInt8], global: Bool = false) -> [UInt8] {
        header(name: Array("././@PaxHeader".utf8), typeflag: UInt8(ascii: global ? "g" : "x"), size: Int64(records.count)) + data(records)
    }

    /// `"<len> key=value\n"` records.
    static func records(_ pairs: [(String, [UInt8])]) -> [UInt8] {
        pairs.flatMap { key, value -> [UInt8] in
            let body = 1 + key.utf8.count + 1 + value.count + 1
            var length = body + 1
            while String(length).utf8.count + body != length { length = String(length).utf8.count + body }
            return Array("\(length) \(key)=".utf8) + value + [0x0a]
        }
    }

    /// The end-of-archive blocks.
    static let end = [UInt8](repeating: 0, count: 1024)
}
