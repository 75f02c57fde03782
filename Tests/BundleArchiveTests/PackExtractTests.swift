import BundleArchive
import BundleCore
import Foundation
import Testing
import TestSupport

@Suite struct PackTests {
    @Test func packedTreeReadsBackIdentically() throws {
        let root = try TestSupport.makeTemporaryDirectory("pack")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = try TestSupport.makeSampleTree(at: root + "/src")
        let (bytes, result) = try ArchiveFixtures.pack(root + "/src")
        #expect(result.contentHash == ContentHash.of(bytes))
        #expect(result.size == Int64(bytes.count))
        let (visitor, summary) = try ArchiveFixtures.read(bytes)
        #expect(visitor.files == files)
        #expect(summary.decompressedBytes == result.tarSize)
        #expect(visitor.entries.contains(ArchiveEntry(path: "ui/empty-dir", kind: .directory, size: 0, mode: 0o755, mtime: 0)))
        #expect(visitor.entries.first { $0.path == "bin/tool" }?.mode == 0o755)
        #expect(visitor.entries.first { $0.path == "ui/index.html" }?.mode == 0o644)
        #expect(visitor.entries.allSatisfy { $0.mtime == 0 })
    }

    @Test func entriesAreSortedBytewiseWithParentsFirst() throws {
        let root = try TestSupport.makeTemporaryDirectory("sort")
        defer { try? FileManager.default.removeItem(atPath: root) }
        for name in ["b", "a-b", "a.txt", "a/z", "a/b/c", "B", "é"] { try TestSupport.write([1], to: name, in: root) }
        let (bytes, _) = try ArchiveFixtures.pack(root)
        let (visitor, _) = try ArchiveFixtures.read(bytes)
        // Bytewise order of the tar paths, where directories end in '/': 'a-b' and 'a.txt' sort before 'a/'.
        #expect(visitor.entries.map(\.path) == ["B", "a-b", "a.txt", "a", "a/b", "a/b/c", "a/z", "b", "é"])
    }

    @Test func mtimeIsConfigurable() throws {
        let root = try TestSupport.makeTemporaryDirectory("mtime")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try TestSupport.write([1, 2, 3], to: "f", in: root)
        let (zero, _) = try ArchiveFixtures.pack(root)
        let (epoch, _) = try ArchiveFixtures.pack(root, configuration: .init(mtime: 1_700_000_000))
        #expect(zero != epoch)
        #expect(try ArchiveFixtures.read(epoch).0.entries.first?.mtime == 1_700_000_000)
    }

    @Test func workerCountDoesNotChangeTheBytes() throws {
        let root = try TestSupport.makeTemporaryDirectory("workers")
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Several MiB so that multi-threaded libzstd splits the input into several jobs.
        try TestSupport.write(TestSupport.randomBytes(3 << 20, seed: 1), to: "random.bin", in: root)
        try TestSupport.write(Array(String(repeating: "compressible text line\n", count: 400_000).utf8), to: "text.txt", in: root)
        var hashes: Set<ContentHash> = []
        for workers in [1, 2, 3] {
            let (_, result) = try ArchiveFixtures.pack(root, configuration: .init(zstd: .init(level: 1, workers: workers)))
            hashes.insert(result.contentHash)
        }
        #expect(hashes.count == 1)
    }

    @Test func refusesSymlinksAndFifosNamingThePath() throws {
        let root = try TestSupport.makeTemporaryDirectory("special")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try TestSupport.write([1], to: "ui/index.html", in: root)
        symlink("/etc/passwd", root + "/ui/link")
        let link = #expect(throws: ArchiveError.self) { try ArchiveFixtures.pack(root) }
        #expect(link?.code == .packUnsupportedFile)
        #expect(link?.path == "ui/link")
        #expect(link?.reason.contains("symlink") == true)
        unlink(root + "/ui/link")
        mkfifo(root + "/ui/pipe", 0o644)
        let fifo = #expect(throws: ArchiveError.self) { try ArchiveFixtures.pack(root) }
        #expect(fifo?.path == "ui/pipe")
        #expect(fifo?.reason.contains("fifo") == true)
    }

    @Test func refusesATreeOverTheLimits() throws {
        let root = try TestSupport.makeTemporaryDirectory("limits")
        defer { try? FileManager.default.removeItem(atPath: root) }
        for index in 0..<5 { try TestSupport.write([1], to: "f\(index)", in: root) }
        let count = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.pack(root, configuration: .init(limits: ArchiveLimits(entryCount: 4)))
        }
        #expect(count?.limit == "entryCount")
        let size = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.pack(root, configuration: .init(limits: ArchiveLimits(decompressedBytes: 2_048)))
        }
        #expect(size?.limit == "decompressedBytes")
    }

    @Test func writesTheOutputAtomicallyWithItsSidecarAndLeavesItOutOfTheNextPack() throws {
        let root = try TestSupport.makeTemporaryDirectory("output")
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try TestSupport.makeSampleTree(at: root)
        let output = root + "/dist/bundle.tar.zst"
        let first = try BundlePacker.pack(directory: root, to: output)
        #expect(first.output == output)
        #expect(try String(contentsOfFile: output + ".sha256", encoding: .utf8) == first.contentHash.hex + "\n")
        #expect(try FileHashing.hash(fileAt: output) == first.contentHash)
        let second = try BundlePacker.pack(directory: root, to: output)
        #expect(second.contentHash == first.contentHash)
        #expect(TestSupport.listing(root + "/dist") == ["bundle.tar.zst", "bundle.tar.zst.sha256", "main.wasm"])
        // A failed pack leaves neither a temporary file nor a new output.
        symlink("/etc", root + "/ui/bad")
        #expect(throws: ArchiveError.self) { try BundlePacker.pack(directory: root, to: root + "/dist/other.tar.zst") }
        #expect(TestSupport.listing(root + "/dist") == ["bundle.tar.zst", "bundle.tar.zst.sha256", "main.wasm"])
    }
}

@Suite struct ExtractTests {
    @Test func extractsIntoANewFolderOrAnEmptyOne() throws {
        let root = try TestSupport.makeTemporaryDirectory("extract")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = try TestSupport.makeSampleTree(at: root + "/src")
        let bundle = root + "/b.tar.zst"
        _ = try BundlePacker.pack(directory: root + "/src", to: bundle)
        let summary = try ArchiveExtractor.extract(archive: bundle, to: root + "/out")
        #expect(try TestSupport.files(root + "/out") == files)
        #expect(summary.bytesWritten == Int64(files.values.map(\.count).reduce(0, +)))
        #expect(FileManager.default.isExecutableFile(atPath: root + "/out/bin/tool"))
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: false)
        _ = try ArchiveExtractor.extract(archive: bundle, to: root + "/empty/")
        #expect(try TestSupport.files(root + "/empty") == files)
        #expect(TestSupport.listing(root) == ["b.tar.zst", "b.tar.zst.sha256", "empty", "out", "src"])
    }

    @Test func refusesANonEmptyTargetAndLeavesItAlone() throws {
        let root = try TestSupport.makeTemporaryDirectory("target")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try TestSupport.write([1], to: "src/a.txt", in: root)
        try TestSupport.write([9], to: "out/keep.txt", in: root)
        _ = try BundlePacker.pack(directory: root + "/src", to: root + "/b.tar.zst")
        let error = #expect(throws: ArchiveError.self) {
            try ArchiveExtractor.extract(archive: root + "/b.tar.zst", to: root + "/out")
        }
        #expect(error?.code == .archiveTargetExists)
        #expect(try TestSupport.files(root + "/out") == ["keep.txt": [9]])
        #expect(TestSupport.listing(root) == ["b.tar.zst", "b.tar.zst.sha256", "out", "src"])
    }

    @Test func aRefusedArchiveLeavesNothing() throws {
        let root = try TestSupport.makeTemporaryDirectory("refused")
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Good entries first, so files were already written when the bad one is seen.
        let tar = ArchiveFixtures.tar([
            ("ui/", []), ("ui/a.txt", TestSupport.randomBytes(300_000, seed: 1)), ("ui/../../escape.txt", [1]),
        ])
        try Data(try ArchiveFixtures.compress(tar)).write(to: URL(fileURLWithPath: root + "/bad.tar.zst"))
        let error = #expect(throws: ArchiveError.self) {
            try ArchiveExtractor.extract(archive: root + "/bad.tar.zst", to: root + "/out/")
        }
        #expect(error?.code == .archiveUnsafePath)
        #expect(TestSupport.listing(root) == ["bad.tar.zst"])
    }

    @Test func durableExtractionProducesTheSameTree() throws {
        let root = try TestSupport.makeTemporaryDirectory("durable")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = try TestSupport.makeSampleTree(at: root + "/src")
        _ = try BundlePacker.pack(directory: root + "/src", to: root + "/b.tar.zst")
        let summary = try ArchiveExtractor.extract(
            archive: root + "/b.tar.zst", to: root + "/out", configuration: .init(durable: true, computeHash: true))
        #expect(try TestSupport.files(root + "/out") == files)
        #expect(summary.read.contentHash == (try FileHashing.hash(fileAt: root + "/b.tar.zst")))
    }
}

@Suite struct InspectTests {
    @Test func findsTheManifestAtTheRootOrOneFolderDown() throws {
        for (path, found) in [("manifest.json", true), ("pkg/manifest.json", true), ("a/b/manifest.json", false)] {
            let tar = ArchiveFixtures.tar([("ui/x", [1]), (path, Array("{\"n\":1}".utf8))])
            let root = try TestSupport.makeTemporaryDirectory("inspect")
            defer { try? FileManager.default.removeItem(atPath: root) }
            try Data(try ArchiveFixtures.compress(tar)).write(to: URL(fileURLWithPath: root + "/b.tar.zst"))
            let inspection = try BundleInspector.inspect(fileAt: root + "/b.tar.zst")
            #expect(inspection.manifestPath == (found ? path : nil))
            #expect(inspection.manifest == (found ? Array("{\"n\":1}".utf8) : nil))
            #expect(inspection.entries.count == 2)
            #expect(inspection.contentHash == (try FileHashing.hash(fileAt: root + "/b.tar.zst")))
        }
    }

    @Test func reportsButDoesNotCaptureAHugeManifest() throws {
        let big = [UInt8](repeating: 0x20, count: Int(BundleInspector.maxManifestBytes) + 1)
        let (visitor, _) = try ArchiveFixtures.read(try ArchiveFixtures.compress(ArchiveFixtures.tar([("manifest.json", big)])))
        #expect(visitor.files["manifest.json"]?.count == big.count)
        let inspector = BundleInspector()
        let reader = try BundleReader(visitor: inspector)
        try ArchiveFixtures.compress(ArchiveFixtures.tar([("manifest.json", big)])).withUnsafeBytes { raw in
            try reader.consume(raw)
        }
        _ = try reader.finish()
        #expect(inspector.manifestPath == "manifest.json")
        #expect(inspector.manifest == nil)
        #expect(inspector.manifestSize == Int64(big.count))
    }
}
