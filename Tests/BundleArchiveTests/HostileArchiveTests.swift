import BundleArchive
import BundleCore
import Foundation
import Testing
import TestSupport

/// The classes of hostile archives of issue 10: names checked on bytes, parser differentials,
/// names that cannot round-trip, and inputs that would take unbounded memory or crash.
@Suite struct HostileArchiveTests {
    /// Names whose `/` is hidden in a grapheme cluster (a combining mark or U+200D after it, a
    /// prepend character U+0600 before it): as `Character`s they have no `..` segment and no
    /// leading `/`; as bytes (what the file system sees) they do.
    static let graphemeEscapes = [
        "../\u{301}x.txt", "../\u{200D}x.txt", "/\u{301}x/y.txt", "/\u{200D}tmp/x.txt", "ui/\u{600}/../../x.txt",
        "a/..\u{600}/../../x.txt", "\u{600}/../x.txt", "./../\u{301}x.txt", "ui/../\u{20DD}../x.txt",
    ]

    @Test(arguments: graphemeEscapes)
    func slashesHiddenInGraphemeClustersAreSeen(name: String) throws {
        let scratch = try TestSupport.makeTemporaryDirectory("hostile")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let tar = RawTar.file("manifest.json", Array("{}".utf8)) + RawTar.file(name) + RawTar.end
        let bundle = scratch + "/b.tar.zst"
        try Data(try ArchiveFixtures.compress(tar)).write(to: URL(fileURLWithPath: bundle))
        try FileManager.default.createDirectory(atPath: scratch + "/inner/deeper", withIntermediateDirectories: true)
        let before = TestSupport.rawTree(scratch)
        let error = #expect(throws: ArchiveError.self) {
            try ArchiveExtractor.extract(archive: bundle, to: scratch + "/inner/deeper/out")
        }
        #expect(error?.code == .archiveUnsafePath, "\(name.debugDescription): \(String(describing: error))")
        // Nothing written anywhere: not outside, not a partial target.
        #expect(TestSupport.rawTree(scratch) == before)
        #expect(!FileManager.default.fileExists(atPath: "/\u{301}x"))
        // The streaming reader (the verifier's and the cache's path) refuses it the same way.
        #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
    }

    /// Property: over random byte strings and Unicode, every name the rules accept has no empty,
    /// `.` or `..` segment and no leading `/` in its bytes, so resolving it never leaves the
    /// root; and for a sample, extracting it really writes inside the target only.
    @Test func noAcceptedNameResolvesOutsideItsRoot() throws {
        var generator = SplitMix(seed: 2026)
        let pieces: [[UInt8]] = [
            Array("/".utf8), Array(".".utf8), Array("..".utf8), Array("a".utf8), Array("ui".utf8), Array("\u{301}".utf8),
            Array("\u{200D}".utf8), Array("\u{600}".utf8), Array("\u{20DD}".utf8), Array("é".utf8), Array("e\u{301}".utf8),
            Array("\\".utf8), [0], [0x1b], [0x7f], [0xff], [0xc3], [0x80], Array("\u{202E}".utf8), Array("K".utf8), Array("\u{212A}".utf8),
        ]
        var accepted: [String] = []
        for _ in 0..<30_000 {
            var raw: [UInt8] = []
            for _ in 0..<Int(generator.next() % 12 + 1) {
                // Pieces chosen to hide a `/` in grapheme clusters, and now and then any byte at all.
                if generator.next() % 5 == 0 {
                    raw.append(UInt8(truncatingIfNeeded: generator.next()))
                } else {
                    raw += pieces[Int(generator.next() % UInt64(pieces.count))]
                }
            }
            guard let normalized = try? EntryPathRules.normalize(raw) else { continue }
            let bytes = Array(normalized.path.utf8)
            #expect(bytes.first != BytePath.slash, "\(Printable.escape(bytes: raw))")
            var depth = 0
            for segment in BytePath.segments(bytes) {
                #expect(!segment.isEmpty && !BytePath.isDotSegment(segment), "\(Printable.escape(bytes: raw))")
                depth += BytePath.isParentSegment(segment) ? -1 : 1
                #expect(depth > 0, "\(Printable.escape(bytes: raw))")
            }
            #expect(!BytePath.containsControl(bytes))
            accepted.append(normalized.path)
        }
        #expect(accepted.count > 1_000, "the generator must produce accepted names too")
        // Extract a sample for real: every file lands under the target.
        let scratch = try TestSupport.makeTemporaryDirectory("property")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for (index, name) in accepted.prefix(150).enumerated() {
            let tar = RawTar.header(name: Array(name.utf8), size: 1) + RawTar.data([1]) + RawTar.end
            let bundle = scratch + "/b\(index).tar.zst"
            try Data(try ArchiveFixtures.compress(tar)).write(to: URL(fileURLWithPath: bundle))
            let target = scratch + "/t\(index)"
            if (try? ArchiveExtractor.extract(archive: bundle, to: target)) != nil {
                // Exactly the name's file (and its folders) under the target, byte for byte.
                let written = TestSupport.rawTree(target).filter { $0.last != 0x2f }
                #expect(written == [Array(name.utf8)], "\(Printable.escape(name))")
            }
            try? FileManager.default.removeItem(atPath: bundle)
        }
        // Nothing but the bundles' targets was created beside them.
        #expect(TestSupport.listing(scratch).allSatisfy { $0.hasPrefix("t") })
    }

    /// E2: a directory (or a name ending in `/`, or a link) that declares data. GNU tar and bsdtar
    /// read that data as more headers, so it can hide a symlink and files we would never see.
    @Test(arguments: [UInt8(ascii: "5"), UInt8(ascii: "0"), UInt8(ascii: "2"), UInt8(ascii: "1")])
    func anEntryOtherThanAFileWithDataIsRefused(typeflag: UInt8) throws {
        let hidden = RawTar.header(name: Array("ui/evil".utf8), typeflag: UInt8(ascii: "2"), size: 0, linkName: Array("/etc/passwd".utf8))
            + RawTar.file("ui/hidden.js", Array("alert(1)".utf8))
        let name = typeflag == UInt8(ascii: "5") || typeflag == UInt8(ascii: "0") ? "ui/" : "ui/link"
        let tar = RawTar.file("manifest.json", Array("{}".utf8))
            + RawTar.header(name: Array(name.utf8), typeflag: typeflag, size: Int64(hidden.count), linkName: Array("x".utf8)) + hidden
            + RawTar.end
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
        #expect(error?.code == .archiveUnsupportedEntry)
        if typeflag == UInt8(ascii: "5") {
            #expect(error?.actual == Int64(hidden.count))
            // The differential is real: the tar tools list the hidden entries.
            let scratch = try TestSupport.makeTemporaryDirectory("differential")
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            try Data(tar).write(to: URL(fileURLWithPath: scratch + "/x.tar"))
            for tool in ["tar", "bsdtar"] {
                let listing = try TestSupport.run([tool, "-tf", scratch + "/x.tar"])
                #expect(listing.stdout.contains("ui/evil") && listing.stdout.contains("ui/hidden.js"), "\(tool): \(listing.stdout)")
            }
        }
    }

    @Test func paxRecordsThatToolsReadDifferentlyAreRefused() throws {
        let global = RawTar.pax(RawTar.records([("path", Array("manifest.json".utf8))]), global: true)
        let both = RawTar.header(name: Array("././@LongLink".utf8), typeflag: UInt8(ascii: "L"), size: 9) + RawTar.data(Array("long.txt\0".utf8))
            + RawTar.pax(RawTar.records([("path", Array("other.txt".utf8))])) + RawTar.file("short.txt")
        for tar in [global + RawTar.file("ui/a.js") + RawTar.end, both + RawTar.end] {
            let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
            #expect(error?.code == .tarMalformed)
        }
        // A global record that sets nothing that matters (git archive's comment) is fine.
        let comment = RawTar.pax(RawTar.records([("comment", Array("0123abcd".utf8))]), global: true)
        let (visitor, _) = try ArchiveFixtures.read(try ArchiveFixtures.compress(comment + RawTar.file("a.txt") + RawTar.end))
        #expect(visitor.entries.map(\.path) == ["a.txt"])
    }

    /// Records tar tools apply differently: several `x` (or `L`) records before one entry (they
    /// keep the last), global or local records with keys they read differently, a long name
    /// without its NUL, pax padding inside the record's size.
    @Test func recordsThatToolsReadDifferentlyAreRefused() throws {
        let hidden = RawTar.file("hidden.js", Array("alert(1)".utf8))
        let cases: [(String, [UInt8])] = [
            ("two x records", RawTar.pax(RawTar.records([("size", Array(String(hidden.count).utf8))]))
                + RawTar.pax(RawTar.records([("mtime", Array("1".utf8))])) + RawTar.header(name: Array("ui/app.bin".utf8), size: 0) + hidden),
            ("two L records", RawTar.header(name: Array("././@LongLink".utf8), typeflag: UInt8(ascii: "L"), size: 6) + RawTar.data(Array("a.txt\0".utf8))
                + RawTar.header(name: Array("././@LongLink".utf8), typeflag: UInt8(ascii: "L"), size: 6) + RawTar.data(Array("b.txt\0".utf8))
                + RawTar.file("c.txt")),
            ("global GNU.sparse.name", RawTar.pax(RawTar.records([("GNU.sparse.name", Array("renamed.txt".utf8))]), global: true) + RawTar.file("b.txt")),
            ("global GNU.sparse.size", RawTar.pax(RawTar.records([("GNU.sparse.size", Array("0".utf8))]), global: true) + RawTar.file("b.txt")),
            ("local SCHILY.realsize", RawTar.pax(RawTar.records([("SCHILY.realsize", Array("3".utf8))])) + RawTar.file("b.txt")),
            ("local unknown key", RawTar.pax(RawTar.records([("VENDOR.rename", Array("x".utf8))])) + RawTar.file("b.txt")),
            ("long name without NUL", RawTar.header(name: Array("././@LongLink".utf8), typeflag: UInt8(ascii: "L"), size: 13)
                + RawTar.data(Array("manifest.json.disabled\0".utf8)) + RawTar.file("short", Array(#"{"evil":1}"#.utf8))),
            ("pax padding inside the size", RawTar.pax(RawTar.records([("path", Array("x.txt".utf8))]) + [0, 0, 0, 0]) + RawTar.file("b.txt")),
        ]
        for (name, body) in cases {
            let tar = RawTar.file("manifest.json", Array("{}".utf8)) + body + RawTar.end
            let error = #expect(throws: ArchiveError.self, "\(name)") { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
            #expect(error?.code == .tarMalformed, "\(name): \(String(describing: error))")
        }
        // Keys that every tool reads alike (or ignores) stay accepted: bsdtar's xattrs, GNU tar's times.
        let fine = RawTar.pax(RawTar.records([("LIBARCHIVE.xattr.user.k", Array("dg==".utf8)), ("atime", Array("1.5".utf8)), ("path", Array("a.txt".utf8))]))
            + RawTar.file("placeholder") + RawTar.end
        #expect(try ArchiveFixtures.read(try ArchiveFixtures.compress(fine)).0.entries.map(\.path) == ["a.txt"])
    }

    @Test func headerFormatsToolsGuessDifferentlyAreRefused() throws {
        var sum = [UInt8](repeating: 0, count: 8)
        sum[0] = 0x80
        let cases: [(String, [UInt8])] = [
            ("magic ustarX00", RawTar.header(name: Array("manifest.json".utf8), size: 2, prefix: Array("sub".utf8), magic: Array("ustarX00".utf8))),
            ("magic 'ustar 00'", RawTar.header(name: Array("x.js".utf8), size: 2, prefix: Array("ui".utf8), magic: Array("ustar 00".utf8))),
            ("GNU sparse fields", RawTar.header(name: Array("a.bin".utf8), size: 2, magic: Array("ustar  \u{0}".utf8), extra: [(386, Array("00000000000".utf8)), (482, [1])])),
            ("GNU realsize", RawTar.header(name: Array("a.bin".utf8), size: 2, magic: Array("ustar  \u{0}".utf8), extra: [(483, Array("00000000144".utf8))])),
            ("v7 with trailing bytes", RawTar.header(name: Array("a.bin".utf8), size: 2, magic: [UInt8](repeating: 0, count: 8), extra: [(400, [7])])),
        ]
        for (name, header) in cases {
            let tar = header + RawTar.data([0x7b, 0x7d]) + RawTar.end
            let error = #expect(throws: ArchiveError.self, "\(name)") { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
            #expect(error?.code == .tarMalformed, "\(name): \(String(describing: error))")
        }
        // A base-256 checksum (tar tools read checksums as octal only).
        var header = RawTar.header(name: Array("a.txt".utf8), size: 1)
        let total = header.enumerated().reduce(0) { $0 + (148..<156 ~= $1.offset ? 0x20 : Int($1.element)) }
        header.replaceSubrange(148..<156, with: [0x80, 0, 0, 0, 0, 0, UInt8(total >> 8), UInt8(total & 0xff)])
        let base256 = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(header + RawTar.data([1]) + RawTar.end)) }
        #expect(base256?.code == .tarMalformed || base256?.code == .tarChecksum)
        // GNU and v7 headers as tar tools write them are read.
        for magic in [Array("ustar  \u{0}".utf8), [UInt8](repeating: 0, count: 8)] {
            let tar = RawTar.header(name: Array("a.txt".utf8), size: 1, magic: magic) + RawTar.data([1]) + RawTar.end
            #expect(try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)).0.entries.map(\.path) == ["a.txt"])
        }
        // No tar data at all (an empty frame) is not an empty bundle.
        let empty = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress([])) }
        #expect(empty?.code == .tarTruncated)
    }

    @Test func aStreamEndingInsideAnEntrysPaddingIsRefused() throws {
        let scratch = try TestSupport.makeTemporaryDirectory("padding")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let full = RawTar.file("a.txt", Array("hello".utf8))
        for cut in [512 + 5, 512 + 100, 512 + 511] {
            let tar = Array(full.prefix(cut))
            let error = #expect(throws: ArchiveError.self, "\(cut)") { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
            #expect(error?.code == .tarTruncated, "\(cut)")
            try Data(tar).write(to: URL(fileURLWithPath: scratch + "/cut.tar"))
            #expect(try TestSupport.run(["tar", "-xf", scratch + "/cut.tar", "-C", scratch]).status != 0, "GNU tar refuses it too")
        }
        // Ending exactly after the padding, without the end marker, is tolerated (as before).
        #expect(try ArchiveFixtures.read(try ArchiveFixtures.compress(full)).0.entries.count == 1)
    }

    @Test(arguments: ["line\nbreak.txt", "esc\u{1B}[31mred.txt", "bell\u{7}.txt", "del\u{7F}.txt", "tab\t.txt", "cr\r.txt", "ui/\u{1B}]0;title\u{7}.js"])
    func controlCharactersInNamesAreRefused(name: String) throws {
        let tar = RawTar.file(name) + RawTar.end
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
        #expect(error?.code == .archiveInvalidPath)
        // The name in the error is printable.
        #expect(error?.path?.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7f } == true)
    }

    @Test func segmentsOverTwoHundredFiftyFiveBytesAreRefused() throws {
        let long = "ui/" + String(repeating: "s", count: 256) + ".js"
        let tar = RawTar.pax(RawTar.records([("path", Array(long.utf8))])) + RawTar.file("placeholder") + RawTar.end
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
        #expect(error?.code == .archiveInvalidPath)
        // 255 is fine.
        let fits = "ui/" + String(repeating: "s", count: 252) + ".js"
        let ok = RawTar.pax(RawTar.records([("path", Array(fits.utf8))])) + RawTar.file("placeholder") + RawTar.end
        #expect(try ArchiveFixtures.read(try ArchiveFixtures.compress(ok)).0.entries.map(\.path) == [fits])
    }

    @Test(arguments: [
        ["caf\u{E9}.txt", "cafe\u{301}.txt"],
        ["caf\u{E9}/", "cafe\u{301}/x.txt"],
        ["d/caf\u{E9}/a.txt", "d/cafe\u{301}/b.txt"],
        ["\u{212A}.txt", "K.txt"],
        ["\u{212B}", "\u{C5}/x"],
    ])
    func namesEqualAfterNFCAreRefused(names: [String]) throws {
        var tar: [UInt8] = []
        for name in names {
            tar += name.hasSuffix("/") ? RawTar.header(name: Array(name.utf8), typeflag: UInt8(ascii: "5"), size: 0) : RawTar.file(name)
        }
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar + RawTar.end)) }
        #expect(error?.code == .archiveDuplicateEntry)
        #expect(error?.reason.contains("normalisation") == true)
    }

    @Test func impliedDirectoriesAreBounded() throws {
        // Each entry implies 200 new parent folders: without a bound, 10,000 entries would
        // record two million of them.
        var tar: [UInt8] = []
        let depth = Array(repeating: "a", count: 200).joined(separator: "/")
        for index in 0..<60 { tar += RawTar.pax(RawTar.records([("path", Array("u\(index)/\(depth)/f".utf8))])) + RawTar.file("x\(index)") }
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar + RawTar.end)) }
        #expect(error?.code == .archiveLimitExceeded)
        #expect(error?.limit == "entryCount")
        #expect(error?.actual == 10_001, "refused at the first implied folder past the bound")
    }

    @Test func metadataRecordsCountTogetherAndHugeLengthsAreMalformed() throws {
        // Several pax records before one entry: their sizes add up against metadataBytes.
        let chunk = RawTar.records([("comment", [UInt8](repeating: 0x61, count: 600_000))])
        let piled = RawTar.pax(chunk) + RawTar.pax(RawTar.records([("mtime", Array("1".utf8))] + [("comment2", [UInt8](repeating: 0x62, count: 600_000))]))
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(piled + RawTar.file("a") + RawTar.end)) }
        #expect(error?.limit == "metadataBytes")
        // A pax record length of Int64.max, and a size field of Int64.max in base-256.
        for records in [Array("6 a=b\n9223372036854775807 a=b\n".utf8), Array("99999999999999999999 a=b\n".utf8)] {
            let malformed = #expect(throws: ArchiveError.self) {
                try ArchiveFixtures.read(try ArchiveFixtures.compress(RawTar.pax(records) + RawTar.file("a") + RawTar.end))
            }
            #expect(malformed?.code == .tarMalformed)
        }
        var huge = RawTar.header(name: Array("big".utf8), typeflag: UInt8(ascii: "x"), size: 0)
        huge.replaceSubrange(124..<136, with: [0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        huge.replaceSubrange(148..<156, with: [UInt8](repeating: 0x20, count: 8))
        let sum = huge.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        huge.replaceSubrange(148..<156, with: Array((String(repeating: "0", count: 6 - digits.count) + digits).utf8) + [0, 0x20])
        let limited = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(try ArchiveFixtures.compress(RawTar.file("a") + huge + RawTar.end))
        }
        #expect(limited?.code == .archiveLimitExceeded || limited?.code == .tarMalformed)
    }

    /// A run of entries, each with a megabyte of pax records: every record is parsed, so the
    /// records of the whole archive are bounded too (they were bounded per entry only).
    @Test func theRecordsOfTheWholeArchiveAreBounded() throws {
        let records = RawTar.records([("comment", [UInt8](repeating: 0x61, count: 900_000))])
        var tar: [UInt8] = []
        for index in 0..<20 { tar += RawTar.pax(records) + RawTar.file("f\(index).txt") }
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar + RawTar.end)) }
        #expect(error?.limit == "archiveMetadataBytes")
        // Global records between entries count as well (they are parsed and dropped).
        var globals: [UInt8] = []
        for _ in 0..<20 { globals += RawTar.pax(records, global: true) }
        let global = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(try ArchiveFixtures.compress(globals + RawTar.file("a.txt") + RawTar.end))
        }
        #expect(global?.limit == "archiveMetadataBytes")
        // The limit is a setting; 10,000 entries with a pax header each stay far below it.
        let small = ArchiveLimits(archiveMetadataBytes: 1_000)
        let tight = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(try ArchiveFixtures.compress(RawTar.pax(RawTar.records([("comment", [UInt8](repeating: 0x61, count: 2_000))])) + RawTar.file("a") + RawTar.end), limits: small)
        }
        #expect(tight?.limit == "archiveMetadataBytes")
    }

    /// Headers that carry nothing (empty global records, repeated `./` roots) still cost a read
    /// each: they are bounded like entries and records, and 32 special headers in a row are
    /// refused as bsdtar refuses them.
    @Test func floodsOfEmptyHeadersAreBounded() throws {
        let empty = RawTar.header(name: Array("././@PaxHeader".utf8), typeflag: UInt8(ascii: "g"), size: 0)
        let flood = [UInt8](Array(repeating: empty, count: 40).joined())
        let error = #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(flood + RawTar.file("a.txt") + RawTar.end)) }
        #expect(error?.code == .tarMalformed)
        let scratch = try TestSupport.makeTemporaryDirectory("flood")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Data(flood + RawTar.file("a.txt") + RawTar.end).write(to: URL(fileURLWithPath: scratch + "/flood.tar"))
        #expect(try TestSupport.run(["bsdtar", "-tf", scratch + "/flood.tar"]).status != 0, "bsdtar refuses it too")
        // 31 in a row, then an entry, is what tools accept: so do we.
        let fine = [UInt8](Array(repeating: empty, count: 31).joined()) + RawTar.file("a.txt") + RawTar.end
        #expect(try ArchiveFixtures.read(try ArchiveFixtures.compress(fine)).0.entries.map(\.path) == ["a.txt"])
        // Empty global records between entries count against the archive's record budget.
        var spaced: [UInt8] = []
        for index in 0..<40 { spaced += [UInt8](Array(repeating: empty, count: 30).joined()) + RawTar.file("f\(index)") }
        let budget = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(try ArchiveFixtures.compress(spaced + RawTar.end), limits: ArchiveLimits(archiveMetadataBytes: 512 * 600))
        }
        #expect(budget?.limit == "archiveMetadataBytes")
        // Root entries are entries.
        let root = RawTar.header(name: Array("./".utf8), typeflag: UInt8(ascii: "5"), size: 0)
        let roots = [UInt8](Array(repeating: root, count: 20).joined()) + RawTar.end
        let counted = #expect(throws: ArchiveError.self) {
            try ArchiveFixtures.read(try ArchiveFixtures.compress(roots), limits: ArchiveLimits(entryCount: 10))
        }
        #expect(counted?.limit == "entryCount")
    }

    /// Each of these is accepted by one tar tool and refused (or read differently) by the other;
    /// a bundle must read the same everywhere, so we refuse them all.
    @Test func inputsOneTarToolRefusesAreRefused() throws {
        let scratch = try TestSupport.makeTemporaryDirectory("tool-refusals")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        func blank(_ offset: Int, _ width: Int) -> [(Int, [UInt8])] { [(offset, [UInt8](repeating: 0x20, count: width))] }
        let body = RawTar.data(Array("payload\n".utf8))
        let cases: [(String, [UInt8], ErrorCode?)] = [
            ("blank size", RawTar.header(name: Array("a.txt".utf8), size: 0, extra: blank(124, 12)), nil),
            ("blank mode", RawTar.header(name: Array("a.txt".utf8), size: 8, extra: blank(100, 8)) + body, nil),
            ("blank mtime", RawTar.header(name: Array("a.txt".utf8), size: 8, extra: blank(136, 12)) + body, nil),
            ("blank uid", RawTar.header(name: Array("a.txt".utf8), size: 8, extra: blank(108, 8)) + body, nil),
            ("NUL then blanks in gid", RawTar.header(name: Array("a.txt".utf8), size: 8, extra: [(116, [0] + [UInt8](repeating: 0x20, count: 7))]) + body, nil),
            ("pax atime abc", RawTar.pax(RawTar.records([("atime", Array("abc".utf8))])) + RawTar.file("a.txt"), nil),
            ("pax ctime x.5", RawTar.pax(RawTar.records([("ctime", Array("x.5".utf8))])) + RawTar.file("a.txt"), nil),
            ("pax uid abc", RawTar.pax(RawTar.records([("uid", Array("abc".utf8))])) + RawTar.file("a.txt"), nil),
            ("pax gid -1", RawTar.pax(RawTar.records([("gid", Array("-1".utf8))])) + RawTar.file("a.txt"), nil),
            ("a file named .", RawTar.header(name: Array(".".utf8), size: 0), .archiveUnsafePath),
            ("a file named ./.", RawTar.header(name: Array("./.".utf8), size: 0), .archiveUnsafePath),
            ("a pax record and no entry", RawTar.pax(RawTar.records([("path", Array("b.txt".utf8))])), nil),
            ("a long name and no entry", RawTar.header(name: Array("././@LongLink".utf8), typeflag: UInt8(ascii: "L"), size: 6) + RawTar.data(Array("b.txt\0".utf8)), nil),
        ]
        for (name, body, code) in cases {
            let tar = RawTar.file("manifest.json", Array("{}".utf8)) + body + RawTar.end
            let error = #expect(throws: ArchiveError.self, "\(name)") { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
            #expect(error?.code == (code ?? .tarMalformed), "\(name): \(String(describing: error))")
            // And at least one of the tar tools does refuse it (exit status not 0).
            let path = scratch + "/case.tar"
            try Data(tar).write(to: URL(fileURLWithPath: path))
            let target = scratch + "/out"
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            let gnu = try TestSupport.run(["tar", "-xf", path, "-C", target]).status
            let bsd = try TestSupport.run(["bsdtar", "-xf", path, "-C", target]).status
            #expect(gnu != 0 || bsd != 0, "\(name): both tools accept it")
        }
        // What tools write stays readable: zero-filled (not blank) numbers, pax times with fractions.
        let fine = RawTar.header(name: Array("a.txt".utf8), size: 8, extra: [(108, [UInt8](repeating: 0, count: 8))]) + body
            + RawTar.pax(RawTar.records([("mtime", Array("1700000000.123456789".utf8)), ("atime", Array("-5".utf8)), ("uid", Array("1000".utf8))]))
            + RawTar.file("b.txt") + RawTar.header(name: Array("./".utf8), typeflag: UInt8(ascii: "5"), size: 0) + RawTar.end
        #expect(try ArchiveFixtures.read(try ArchiveFixtures.compress(fine)).0.entries.map(\.path) == ["a.txt", "b.txt"])
    }

    /// Metadata that bsdtar run as root applies and GNU tar does not, or that both apply in a
    /// way that changes what a file may do: capabilities, ACLs, file flags, set-ID bits.
    @Test func privilegesAndAttributesThatToolsApplyAreRefused() throws {
        let cases: [(String, [UInt8], ErrorCode)] = [
            ("security.capability", RawTar.pax(RawTar.records([("SCHILY.xattr.security.capability", [1, 0, 0, 2])])) + RawTar.file("ui/tool"), .tarMalformed),
            ("trusted xattr", RawTar.pax(RawTar.records([("SCHILY.xattr.trusted.x", [1])])) + RawTar.file("ui/tool"), .tarMalformed),
            ("system ACL xattr", RawTar.pax(RawTar.records([("LIBARCHIVE.xattr.system.posix_acl_access", Array("AgAAAA==".utf8))])) + RawTar.file("a"), .tarMalformed),
            ("percent-encoded security", RawTar.pax(RawTar.records([("LIBARCHIVE.xattr.%73ecurity%2Ecapability", Array("AQAAAg==".utf8))])) + RawTar.file("a"), .tarMalformed),
            ("SCHILY.acl.access", RawTar.pax(RawTar.records([("SCHILY.acl.access", Array("user::rwx,user:65534:rwx".utf8))])) + RawTar.file("a"), .tarMalformed),
            ("SCHILY.fflags", RawTar.pax(RawTar.records([("SCHILY.fflags", Array("schg".utf8))])) + RawTar.file("a"), .tarMalformed),
            ("setuid file", RawTar.header(name: Array("ui/tool".utf8), size: 0, mode: 0o4755), .archiveUnsupportedEntry),
            ("setgid file", RawTar.header(name: Array("ui/tool".utf8), size: 0, mode: 0o2755), .archiveUnsupportedEntry),
            ("both on a file", RawTar.header(name: Array("ui/tool".utf8), size: 0, mode: 0o6777), .archiveUnsupportedEntry),
        ]
        for (name, body, code) in cases {
            let tar = RawTar.file("manifest.json", Array("{}".utf8)) + body + RawTar.end
            let error = #expect(throws: ArchiveError.self, "\(name)") { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
            #expect(error?.code == code, "\(name): \(String(describing: error))")
        }
        // Namespaces bsdtar cannot set on Linux (it fails as root), and over-long names, too.
        for key in ["SCHILY.xattr.foo.bar", "SCHILY.xattr.x", "LIBARCHIVE.xattr.com.apple.provenance", "SCHILY.xattr.user." + String(repeating: "n", count: 251)] {
            let tar = RawTar.file("manifest.json", Array("{}".utf8)) + RawTar.pax(RawTar.records([(key, [1])])) + RawTar.file("a") + RawTar.end
            let error = #expect(throws: ArchiveError.self, "\(key.prefix(40))") { try ArchiveFixtures.read(try ArchiveFixtures.compress(tar)) }
            #expect(error?.code == .tarMalformed)
        }
        // Owners GNU tar cannot hold.
        let bigUID = RawTar.pax(RawTar.records([("uid", Array("4294967296".utf8))])) + RawTar.file("a") + RawTar.end
        #expect(throws: ArchiveError.self) { try ArchiveFixtures.read(try ArchiveFixtures.compress(bigUID)) }
        // User attributes and set-group-ID folders stay accepted.
        let fine = RawTar.pax(RawTar.records([("LIBARCHIVE.xattr.user.provenance", Array("AQ==".utf8)), ("SCHILY.xattr.user.k", [1])]))
            + RawTar.file("a.txt") + RawTar.header(name: Array("ui/".utf8), typeflag: UInt8(ascii: "5"), size: 0, mode: 0o2755) + RawTar.end
        let paths = try ArchiveFixtures.read(try ArchiveFixtures.compress(fine)).0.entries.map(\.path)
        #expect(paths.first == "a.txt" && paths.count == 2)
    }

    @Test(arguments: [9, 32, -1, 100, 99_999_999_999, Int.min, Int.max])
    func windowLogOutsideItsRangeIsATypedError(windowLog: Int) throws {
        let error = #expect(throws: ArchiveError.self) { try ZstdDecoder(windowLogMax: windowLog) }
        #expect(error?.code == .archiveInvalidLimit)
        #expect(error?.limit == "windowLogMax")
        let scratch = try TestSupport.makeTemporaryDirectory("window")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let bundle = scratch + "/b.tar.zst"
        try Data(try ArchiveFixtures.compress(RawTar.file("a") + RawTar.end)).write(to: URL(fileURLWithPath: bundle))
        var limits = ArchiveLimits.default
        limits.windowLogMax = windowLog
        let extract = #expect(throws: ArchiveError.self) {
            try ArchiveExtractor.extract(archive: bundle, to: scratch + "/out", configuration: .init(limits: limits))
        }
        #expect(extract?.code == .archiveInvalidLimit)
        #expect(TestSupport.listing(scratch) == ["b.tar.zst"], "no staging folder is left")
    }

    @Test(arguments: [-1, 99_999_999_999, Int.max, Int.min])
    func encoderSettingsOutsideTheirRangeAreTypedErrors(workers: Int) throws {
        let error = #expect(throws: ArchiveError.self) { try ZstdEncoder(configuration: .init(level: 3, workers: workers)) }
        #expect(error?.code == .zstdEncoder)
        for level in [99_999_999_999, Int.min, 23] {
            #expect(throws: ArchiveError.self) { try ZstdEncoder(configuration: .init(level: level, workers: 1)) }
        }
    }
}

/// Deterministic 64-bit generator for property tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
