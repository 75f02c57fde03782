import ArgumentParser
import BundleArchive
import BundleCore
import Foundation

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack a folder into a deterministic bundle.tar.zst.",
        discussion: """
            Entries are sorted, owners are 0:0, modes are 0644/0755, and every mtime is 0 or \
            SOURCE_DATE_EPOCH, so the same tree gives the same content hash on any machine. Prints \
            `sha256:<hex>  <file>` and writes `<file>.sha256`.
            """
    )

    @Argument(help: "The extension folder.")
    var directory: String

    @Option(name: .shortAndLong, help: "Output file (default: DIR/dist/bundle.tar.zst).")
    var output: String?

    @Option(help: "zstd compression level (1-19, 20-22 ultra).")
    var level: Int = 19

    @Option(help: "zstd worker threads (0: one per core). The output does not depend on it.")
    var threads: Int = 0

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be 0 or more") }
    }

    func run() throws {
        let output = self.output ?? (directory as NSString).appendingPathComponent(BundlePacker.defaultOutput)
        var mtime: Int64 = 0
        if let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], !epoch.isEmpty {
            guard let value = Int64(epoch), value >= 0 else {
                throw RefusedInput(message: "SOURCE_DATE_EPOCH must be a non-negative integer, got '\(epoch)'")
            }
            mtime = value
        }
        var configuration = BundlePacker.Configuration(
            zstd: .init(level: level, workers: threads, checksum: true), mtime: mtime)
        // The default output and its sidecars stay out even when -o writes elsewhere: an old
        // bundle in dist/ is never packed into the new one.
        configuration.leaveOut(output: (directory as NSString).appendingPathComponent(BundlePacker.defaultOutput))
        let result = try BundlePacker.pack(directory: directory, to: output, configuration: configuration)
        Console.out("\(result.contentHash.prefixed)  \(output)")
    }
}

struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpack",
        abstract: "Safely extract a bundle into a new folder.",
        discussion: """
            The archive is checked entry by entry (paths, types, duplicates, limits) and written \
            into a temporary folder that becomes DIR only when the whole archive was accepted. DIR \
            must not exist or be empty.
            """
    )

    @Argument(help: "The bundle.tar.zst file.")
    var bundle: String

    @Argument(help: "The folder to create.")
    var directory: String

    @OptionGroup var limits: LimitOptions

    func run() throws {
        let configuration = ArchiveExtractor.Configuration(limits: limits.archiveLimits)
        let summary = try ArchiveExtractor.extract(archive: bundle, to: directory, configuration: configuration)
        Console.out("unpacked \(summary.read.entryCount) entries (\(summary.bytesWritten) bytes) into \(summary.target)")
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a bundle's content hash, size, entries and manifest.")

    @Argument(help: "The bundle.tar.zst file.")
    var bundle: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var limits: LimitOptions

    struct Report: Encodable {
        struct Entry: Encodable {
            var path: String
            var kind: String
            var size: Int64
            var mode: String
        }

        var contentHash: String
        var size: Int64
        var decompressedSize: Int64
        var entries: [Entry]
        var manifestPath: String?
        var manifest: String?
    }

    func run() throws {
        let inspection = try BundleInspector.inspect(fileAt: bundle, limits: limits.archiveLimits)
        let manifestText = inspection.manifest.map { String(decoding: $0, as: UTF8.self) }
        if json {
            let report = Report(
                contentHash: inspection.contentHash.prefixed, size: inspection.size,
                decompressedSize: inspection.decompressedSize,
                entries: inspection.entries.map {
                    .init(path: $0.path, kind: $0.kind.rawValue, size: $0.size, mode: String($0.mode, radix: 8))
                },
                manifestPath: inspection.manifestPath, manifest: manifestText)
            try Console.json(report)
            return
        }
        Console.out("content hash: \(inspection.contentHash.prefixed)")
        Console.out("size:         \(inspection.size) bytes (\(inspection.decompressedSize) bytes of tar)")
        Console.out("entries:      \(inspection.entries.count)")
        for entry in inspection.entries {
            let mode = String(entry.mode, radix: 8)
            let size = entry.kind == .directory ? "-" : String(entry.size)
            let name = entry.kind == .directory ? entry.path + "/" : entry.path
            Console.out("  \(String(repeating: " ", count: max(0, 4 - mode.count)))\(mode) \(String(repeating: " ", count: max(0, 10 - size.count)))\(size)  \(name)")
        }
        if let path = inspection.manifestPath {
            if let manifestText {
                Console.out("manifest (\(path)):")
                Console.block(manifestText)
            } else {
                Console.out("manifest (\(path)): \(inspection.manifestSize ?? 0) bytes, too large to show")
            }
        } else {
            Console.out("manifest:     none (no manifest.json at the root or one folder down)")
        }
    }
}

struct Hash: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hash", abstract: "Print a file's content hash as sha256:<hex>.")

    @Argument(help: "The file to hash.")
    var file: String

    func run() throws {
        Console.out(try FileHashing.hash(fileAt: file).prefixed)
    }
}

struct LimitOptions: ParsableArguments {
    @Option(help: "Largest compressed bundle, in bytes.")
    var maxCompressedBytes: Int64 = ArchiveLimits.default.compressedBytes

    @Option(help: "Largest decompressed tar stream, in bytes.")
    var maxDecompressedBytes: Int64 = ArchiveLimits.default.decompressedBytes

    @Option(help: "Most entries.")
    var maxEntries: Int = ArchiveLimits.default.entryCount

    @Option(help: "Largest zstd window, as a power of two.")
    var windowLogMax: Int = ArchiveLimits.default.windowLogMax

    func validate() throws {
        guard maxCompressedBytes > 0, maxDecompressedBytes > 0, maxEntries > 0 else {
            throw ValidationError("--max-compressed-bytes, --max-decompressed-bytes and --max-entries must be positive")
        }
    }

    var archiveLimits: ArchiveLimits {
        ArchiveLimits(
            compressedBytes: maxCompressedBytes, decompressedBytes: maxDecompressedBytes, entryCount: maxEntries,
            windowLogMax: windowLogMax)
    }
}
