import BundleArchive
import BundleCore
import Foundation
import Testing
import TestSupport

@Suite struct ReaderTests {
    @Test(arguments: [1, 7, 511, 512, 513, 65_536, 1 << 22])
    func chunkSizeDoesNotChangeTheResult(chunkSize: Int) throws {
        let tar = ArchiveFixtures.tar([
            ("manifest.json", Array("{}".utf8)),
            ("ui/", []),
            ("ui/a.txt", TestSupport.randomBytes(1_500, seed: 1)),
            ("ui/" + String(repeating: "x", count: 250) + "/" + String(repeating: "y", count: 250), Array("long".utf8)),
            ("ui/b.bin", TestSupport.randomBytes(70_000, seed: 2)),
        ])
        let compressed = try ArchiveFixtures.compress(tar)
        let (visitor, summary) = try ArchiveFixtures.read(compressed, chunkSize: chunkSize)
        #expect(visitor.entries.map(\.path) == [
            "manifest.json", "ui", "ui/a.txt", "ui/" + String(repeating: "x", count: 250) + "/" + String(repeating: "y", count: 250), "ui/b.bin",
        ])
        #expect(visitor.files["ui/a.txt"] == TestSupport.randomBytes(1_500, seed: 1))
        #expect(visitor.files["ui/b.bin"] == TestSupport.randomBytes(70_000, seed: 2))
        #expect(summary.compressedBytes == Int64(compressed.count))
        #expect(summary.decompressedBytes == Int64(tar.count))
        #expect(summary.entryCount == 5)
        #expect(summary.contentHash == ContentHash.of(compressed))
    }

    @Test func acceptsSeveralFramesAndAMissingEndMarker() throws {
        let tar = ArchiveFixtures.tar(
            [("a.txt", Array("first".utf8)), ("b.txt", TestSupport.randomBytes(3_000, seed: 9))], endMarker: false)
        let split = 700  // inside b.txt's header/data: frames need not align with entries
        let compressed = try ArchiveFixtures.compress(Array(tar[..<split])) + ArchiveFixtures.compress(Array(tar[split...]))
        let (visitor, _) = try ArchiveFixtures.read(compressed, chunkSize: 333)
        #expect(visitor.files == ["a.txt": Array("first".utf8), "b.txt": TestSupport.randomBytes(3_000, seed: 9)])
    }

    @Test func normalisesLeadingDotSlashAndSkipsTheRootEntry() throws {
        let tar = ArchiveFixtures.tar([("./", []), ("./ui/", []), ("././ui/x.txt", Array("x".utf8))])
        let (visitor, summary) = try ArchiveFixtures.read(try ArchiveFixtures.compress(tar))
        #expect(visitor.entries.map(\.path) == ["ui", "ui/x.txt"])
        #expect(summary.entryCount == 2)
    }

    @Test func acceptsAnExplicitDirectoryAfterItWasImplied() throws {
        let tar = ArchiveFixtures.tar([("ui/x.txt", Array("x".utf8)), ("ui/", [])])
        let (visitor, _) = try ArchiveFixtures.read(try ArchiveFixtures.compress(tar))
        #expect(visitor.entries.map(\.kind) == [.file, .directory])
    }

    @Test(arguments: [
        ("a//b.txt", ErrorCode.archiveInvalidPath),
        ("a/./b.txt", ErrorCode.archiveInvalidPath),
        ("../b.txt", ErrorCode.archiveUnsafePath),
        ("a/../../b.txt", ErrorCode.archiveUnsafePath),
        ("/etc/passwd", ErrorCode.archiveUnsafePath),
        ("./../x", ErrorCode.archiveUnsafePath),
    ])
    func refusesUnsafeOrNonCanonicalPaths(path: String, code: ErrorCode) throws {
        let tar = ArchiveFixtures.tar([("ok.txt", []), (path, Array("evil".utf8))])
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
        #expect(error?.code == code)
        #expect(error?.path == path)
    }

    @Test func refusesANulByteInAPaxPath() throws {
        // A pax path may carry any byte; a NUL would silently cut the C path short.
        // No '/' after the first, so the path cannot be split into ustar prefix + name: pax it is.
        let path = Array("ui/".utf8) + [UInt8](repeating: 0x61, count: 120) + [0] + Array("evil".utf8)
        var tar = TarWriter.header(path: path, isDirectory: false, size: 1, mode: 0o644, mtime: 0)
        tar += [1] + [UInt8](repeating: 0, count: 511) + TarWriter.endOfArchive
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
        #expect(error?.code == .archiveInvalidPath)
        #expect(error?.reason.contains("NUL") == true)
    }

    @Test func refusesDataRecordedForADirectory() throws {
        // Tar tools read a directory's "data" as further headers, so it is refused, not skipped.
        var tar = TarWriter.header(path: Array("d/".utf8), isDirectory: true, size: 3, mode: 0o755, mtime: 0)
        tar += [7, 7, 7] + [UInt8](repeating: 0, count: 509)
        tar += ArchiveFixtures.tar([("d/f", [1, 2])])
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
        #expect(error?.code == .archiveUnsupportedEntry)
        #expect(error?.path == "d")
        #expect(error?.actual == 3)
    }

    @Test func refusesADirectoryListedTwice() throws {
        let tar = ArchiveFixtures.tar([("ui/", []), ("ui/", [])])
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
        #expect(error?.code == .archiveDuplicateEntry)
        #expect(error?.path == "ui")
    }

    @Test func refusesABadHeaderChecksum() throws {
        var tar = ArchiveFixtures.tar([("a.txt", Array("a".utf8)), ("b.txt", Array("b".utf8))])
        tar[1024 + 1] ^= 0x01  // the second header's name: "b.txt" -> "bzt..."
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
        #expect(error?.code == .tarChecksum)
        #expect(error?.offset == 1024)
    }

    @Test func refusesAStreamEndingInsideAHeaderOrData() throws {
        let tar = ArchiveFixtures.tar([("a.txt", TestSupport.randomBytes(2_000, seed: 5))], endMarker: false)
        let insideHeader = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(try ArchiveFixtures.compress(Array(tar[..<300])))
        }
        #expect(insideHeader?.code == .tarTruncated)
        let insideData = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(try ArchiveFixtures.compress(Array(tar[..<1_000])))
        }
        #expect(insideData?.code == .tarTruncated)
        #expect(insideData?.path == "a.txt")
        #expect(insideData?.actual == 488)
    }

    @Test func refusesAStreamEndingInsideAZstdFrame() throws {
        let compressed = try ArchiveFixtures.compress(ArchiveFixtures.tar([("a", TestSupport.randomBytes(50_000, seed: 1))]))
        let error = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(Array(compressed[..<(compressed.count / 2)]))
        }
        #expect(error?.code == .zstdTruncated)
        let empty = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read([]) }
        #expect(empty?.code == .zstdTruncated)
    }

    @Test func refusesCorruptZstd() throws {
        var compressed = try ArchiveFixtures.compress(ArchiveFixtures.tar([("a", Array(repeating: 65, count: 50_000))]))
        for index in stride(from: compressed.count / 2, to: compressed.count / 2 + 8, by: 1) { compressed[index] ^= 0x5a }
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(compressed) }
        #expect(error?.code == .zstdCorrupt)
        let garbage = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(Array("not zstd at all".utf8)) }
        #expect(garbage?.code == .zstdCorrupt)
    }

    @Test func enforcesTheWindowLimit() throws {
        let compressed = try ArchiveFixtures.compress(
            ArchiveFixtures.tar([("a", TestSupport.randomBytes(1 << 20, seed: 1))]), level: 19)
        let error = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(compressed, limits: ArchiveLimits(windowLogMax: 12))
        }
        #expect(error?.code == .zstdWindowTooLarge)
        #expect(error?.limit == "windowLogMax")
        #expect(error?.limitValue == 12)
    }

    @Test func enforcesTheDecompressedLimitExactly() throws {
        let tar = ArchiveFixtures.tar([("a", [UInt8](repeating: 0, count: 20_000))])  // 21,504 bytes
        let compressed = try ArchiveFixtures.compress(tar)
        _ = try ArchiveFixtures.read(compressed, limits: ArchiveLimits(decompressedBytes: Int64(tar.count)))
        let error = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(compressed, limits: ArchiveLimits(decompressedBytes: Int64(tar.count) - 1))
        }
        #expect(error?.code == .archiveLimitExceeded)
        #expect(error?.limit == "decompressedBytes")
    }

    @Test func enforcesTheCompressedLimit() throws {
        let compressed = try ArchiveFixtures.compress(ArchiveFixtures.tar([("a", TestSupport.randomBytes(10_000, seed: 1))]))
        let error = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(compressed, chunkSize: 1_000, limits: ArchiveLimits(compressedBytes: 5_000))
        }
        #expect(error?.limit == "compressedBytes")
        #expect(error?.limitValue == 5_000)
    }

    @Test func refusesAnEntryLargerThanTheDecompressedLimitAtItsHeader() throws {
        // Only the header is present: the size alone must be refused before any data.
        let header = TarWriter.header(path: Array("big".utf8), isDirectory: false, size: 5 << 30, mode: 0o644, mtime: 0)
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(header)) }
        #expect(error?.code == .archiveLimitExceeded)
        #expect(error?.path == "big")
        #expect(error?.actual == 5 << 30)
    }

    @Test func readsPaxSizeAndMtimeRecords() throws {
        // A size above the 8 GiB ustar field forces a pax `size` record; mtime < 0 a pax `mtime`.
        let header = TarWriter.header(path: Array("huge".utf8), isDirectory: false, size: 9 << 30, mode: 0o644, mtime: -5)
        let visitor = CollectingVisitor()
        let parserDelegate = ArchiveWalker(visitor: visitor, limits: ArchiveLimits(decompressedBytes: 10 << 30))
        let parser = TarParser(delegate: parserDelegate)
        try header.withUnsafeBytes { raw in try parser.consume(raw) }
        #expect(visitor.entries.first?.size == 9 << 30)
        #expect(visitor.entries.first?.mtime == -5)
        #expect(throws: ArchiveError.self) { try parser.finish() }
    }
}
