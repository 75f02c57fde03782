import BundleArchive
import BundleCore
import Foundation
import Testing
import TestSupport

/// One hostile or broken bundle and what must be said about it.
struct BadInput: CustomTestStringConvertible, Sendable {
    var name: String
    /// Shell commands run in an empty work folder; they must leave `bad.tar.zst` there.
    var make: String
    var code: ErrorCode
    var path: String? = nil
    var limit: String? = nil

    var testDescription: String { name }

    static let craft = "python3 '\(craftScript)'"

    static let all: [BadInput] = [
        BadInput(
            name: "truncated zstd",
            make: "head -c 300000 /dev/urandom > r && tar -cf - r | zstd -q -c > full && head -c 150000 full > bad.tar.zst",
            code: .zstdTruncated),
        BadInput(
            name: "corrupted frame (content checksum)",
            make: """
                head -c 300000 /dev/urandom > r && tar -cf - r | zstd -q -c > bad.tar.zst && \
                printf '\\377\\377\\377\\377' | dd of=bad.tar.zst bs=1 seek=150000 conv=notrunc status=none
                """,
            code: .zstdCorrupt),
        BadInput(
            name: "corrupted frame header",
            make: "\(craft) valid | zstd -q -c > bad.tar.zst && printf '\\000' | dd of=bad.tar.zst bs=1 seek=0 conv=notrunc status=none",
            code: .zstdCorrupt),
        BadInput(
            name: "bad tar header checksum",
            make: "\(craft) valid > t.tar && printf 'X' | dd of=t.tar bs=1 seek=0 conv=notrunc status=none && zstd -q -c t.tar > bad.tar.zst",
            code: .tarChecksum),
        BadInput(name: "../ path", make: "\(craft) dotdot | zstd -q -c > bad.tar.zst", code: .archiveUnsafePath, path: "ui/../../evil.txt"),
        BadInput(
            name: "absolute path", make: "\(craft) absolute | zstd -q -c > bad.tar.zst", code: .archiveUnsafePath,
            path: "/tmp/extbundles-absolute-evil.txt"),
        BadInput(name: "symlink", make: "\(craft) symlink | zstd -q -c > bad.tar.zst", code: .archiveUnsupportedEntry, path: "ui/link"),
        BadInput(name: "hardlink", make: "\(craft) hardlink | zstd -q -c > bad.tar.zst", code: .archiveUnsupportedEntry, path: "ui/hard"),
        BadInput(name: "character device", make: "\(craft) chardev | zstd -q -c > bad.tar.zst", code: .archiveUnsupportedEntry, path: "ui/null"),
        BadInput(name: "block device", make: "\(craft) blockdev | zstd -q -c > bad.tar.zst", code: .archiveUnsupportedEntry, path: "ui/disk"),
        BadInput(name: "fifo", make: "\(craft) fifo | zstd -q -c > bad.tar.zst", code: .archiveUnsupportedEntry, path: "ui/pipe"),
        BadInput(name: "duplicate entry", make: "\(craft) duplicate | zstd -q -c > bad.tar.zst", code: .archiveDuplicateEntry, path: "ui/index.html"),
        BadInput(
            name: "file where a folder is needed", make: "\(craft) file-dir-conflict | zstd -q -c > bad.tar.zst",
            code: .archiveDuplicateEntry, path: "ui/index.html"),
        BadInput(
            name: "entry size beyond the data",
            make: "head -c 300000 /dev/urandom > r && tar -cf t.tar r && head -c 100000 t.tar | zstd -q -c > bad.tar.zst",
            code: .tarTruncated, path: "r"),
        BadInput(
            name: "decompression bomb over 1 GiB",
            make: "truncate -s 600M z1 z2 && tar -cf - z1 z2 | zstd -q -1 -T0 -c > bad.tar.zst && rm z1 z2",
            code: .archiveLimitExceeded, limit: "decompressedBytes"),
        BadInput(
            name: "zstd window over 128 MiB (--long=30)",
            make: "head -c 1000000 /dev/urandom > r && tar -cf - r | zstd --long=30 -q -c > bad.tar.zst",
            code: .zstdWindowTooLarge, limit: "windowLogMax"),
        BadInput(
            name: "too many entries", make: "\(craft) many 10000 | zstd -q -c > bad.tar.zst", code: .archiveLimitExceeded,
            limit: "entryCount"),
        BadInput(
            name: "over-long path", make: "\(craft) longpath 1030 | zstd -q -c > bad.tar.zst", code: .archiveLimitExceeded,
            limit: "pathLength"),
        BadInput(name: "invalid UTF-8 name", make: "\(craft) bad-utf8 | zstd -q -c > bad.tar.zst", code: .archiveInvalidPath),
        BadInput(name: "not zstd at all", make: "echo 'hello' > bad.tar.zst", code: .zstdCorrupt),
        BadInput(name: "empty file", make: ": > bad.tar.zst", code: .zstdTruncated),
    ]
}

@Suite struct BadInputTests {
    /// Each bad bundle: a typed error from the library with the right code, path and limit; exit
    /// status 1 from `extctl unpack` and `extctl inspect` with the code on stderr; no target folder
    /// and no file anywhere but the bundle itself.
    @Test(arguments: BadInput.all)
    func refused(_ input: BadInput) throws {
        let scratch = try Scratch("bad")
        try FileManager.default.createDirectory(atPath: scratch("work"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch("case/deep"), withIntermediateDirectories: true)
        try TestSupport.sh(input.make, cwd: scratch("work"))
        try FileManager.default.moveItem(atPath: scratch("work/bad.tar.zst"), toPath: scratch("case/deep/bad.tar.zst"))
        try FileManager.default.removeItem(atPath: scratch("work"))
        let bundle = scratch("case/deep/bad.tar.zst")

        let error = #expect(throws: ArchiveError.self) {
            try ArchiveExtractor.extract(archive: bundle, to: scratch("case/deep/out"))
        }
        #expect(error?.code == input.code, "\(String(reflecting: error))")
        if let path = input.path { #expect(error?.path == path) }
        if let limit = input.limit { #expect(error?.limit == limit) }

        for arguments in [["unpack", bundle, scratch("case/deep/cli-out")], ["inspect", bundle]] {
            let result = try TestSupport.run([TestSupport.extctl] + arguments)
            #expect(result.status == 1, "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.contains("error: \(input.code.rawValue):"), "\(result.stderr)")
        }
        // Nothing but the bundle, anywhere in the scratch folder.
        #expect(try TestSupport.snapshot(scratch.path).keys.sorted() == ["case", "case/deep", "case/deep/bad.tar.zst"])
        #expect(!FileManager.default.fileExists(atPath: "/tmp/extbundles-absolute-evil.txt"))
    }
}
