import Foundation
import Testing
import TestSupport

/// What `extctl pack` writes, GNU tar and bsdtar read; what they (and `tar | zstd`) write,
/// `extctl unpack` reads, byte for byte.
@Suite struct InteropTests {
    @Test func gnuTarAndBsdtarExtractWhatPackWrites() throws {
        let scratch = try Scratch("interop-pack")
        let files = try TestSupport.makeSampleTree(at: scratch("src"))
        let result = try extctl("pack", scratch("src"), "-o", scratch("bundle.tar.zst"), "--level", "9")
        #expect(result.status == 0, "\(result.stderr)")
        for (tool, command) in [
            ("gnu", "mkdir gnu && tar --zstd -xf bundle.tar.zst -C gnu"),
            ("bsd", "mkdir bsd && bsdtar -xf bundle.tar.zst -C bsd"),
        ] {
            try TestSupport.sh(command, cwd: scratch.path)
            #expect(try TestSupport.files(scratch(tool)) == files, "\(tool) tar extracted different files")
            #expect(FileManager.default.fileExists(atPath: scratch(tool) + "/ui/empty-dir"))
            #expect(FileManager.default.isExecutableFile(atPath: scratch(tool) + "/bin/tool"))
        }
        // Both tools agree on the listing, and the zstd CLI checks the frame checksum.
        let listing = try TestSupport.sh("tar --zstd -tf bundle.tar.zst | sort", cwd: scratch.path)
        #expect(listing == (try TestSupport.sh("bsdtar -tf bundle.tar.zst | sort", cwd: scratch.path)))
        try TestSupport.sh("zstd -t -q bundle.tar.zst", cwd: scratch.path)
        // GNU tar reports owner 0/0 and mtime 0 for every entry.
        let verbose = try TestSupport.sh("tar --zstd -tvf bundle.tar.zst --numeric-owner", cwd: scratch.path)
        for line in verbose.split(separator: "\n") {
            #expect(line.contains(" 0/0 "), "\(line)")
            #expect(line.contains("1970-01-01 00:00"), "\(line)")
        }
    }

    /// Archives written by other tools, each unpacked and compared with the source tree.
    @Test(arguments: [
        ("GNU tar, gnu format, long names", "tar --format=gnu -C src -cf - . | zstd -q -3 -o in.tar.zst"),
        ("GNU tar, default format", "tar -C src -cf - manifest.json ui dist bin | zstd -q -o in.tar.zst"),
        ("bsdtar pax", "bsdtar --format=pax -C src -cf - . | zstd -q -o in.tar.zst"),
        ("bsdtar --zstd", "bsdtar --zstd -C src -cf in.tar.zst manifest.json ui dist bin"),
        ("./ prefixes", "tar -C src -cf - ./manifest.json ./ui ./dist ./bin | zstd -q -o in.tar.zst"),
        ("alga pack: tar | zstd -19 -T0", "tar -C src -cf - manifest.json ui dist bin | zstd -19 -T0 -q -o in.tar.zst"),
        ("GNU tar --zstd", "tar --zstd -C src -cf in.tar.zst ."),
        (
            "two zstd frames, split inside an entry",
            "tar -C src -cf t.tar . && head -c 300000 t.tar | zstd -q -c > in.tar.zst && tail -c +300001 t.tar | zstd -q -c >> in.tar.zst"
        ),
    ])
    func unpackReadsWhatOtherToolsWrite(label: String, command: String) throws {
        let scratch = try Scratch("interop-unpack")
        let files = try TestSupport.makeSampleTree(at: scratch("src"))
        try TestSupport.sh(command, cwd: scratch.path)
        let result = try extctl("unpack", scratch("in.tar.zst"), scratch("out"))
        #expect(result.status == 0, "\(label): \(result.stderr)")
        #expect(try TestSupport.files(scratch("out")) == files, "\(label)")
        #expect(FileManager.default.isExecutableFile(atPath: scratch("out/bin/tool")), "\(label)")
        // inspect agrees with sha256sum on the content hash.
        let inspect = try extctl("inspect", scratch("in.tar.zst"), "--json")
        let sha = try TestSupport.sh("sha256sum in.tar.zst | cut -d' ' -f1", cwd: scratch.path)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(inspect.stdout.contains("\"contentHash\" : \"sha256:\(sha)\""), "\(label)")
    }

    @Test func theTwoFrameFixtureReallyHasTwoFrames() throws {
        let scratch = try Scratch("frames")
        _ = try TestSupport.makeSampleTree(at: scratch("src"))
        try TestSupport.sh(
            "tar -C src -cf t.tar . && head -c 300000 t.tar | zstd -q -c > in.tar.zst && tail -c +300001 t.tar | zstd -q -c >> in.tar.zst",
            cwd: scratch.path)
        let listing = try TestSupport.sh("zstd -l in.tar.zst | awk 'NR == 2 { print $1 }'", cwd: scratch.path)
        #expect(listing == "2\n", "\(listing)")
    }
}
