import BundleCore
import Foundation
import Testing
import TestSupport

@Suite struct CommandTests {
    @Test func packDefaultsToDistAndWritesTheSidecar() throws {
        let scratch = try Scratch("cli-pack")
        _ = try TestSupport.makeSampleTree(at: scratch("ext"))
        let result = try extctl("pack", scratch("ext"))
        #expect(result.status == 0, "\(result.stderr)")
        let sha = try TestSupport.sh("sha256sum ext/dist/bundle.tar.zst | cut -d' ' -f1", cwd: scratch.path)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(result.stdout == "sha256:\(sha)  \(scratch("ext"))/dist/bundle.tar.zst\n")
        #expect(try String(contentsOfFile: scratch("ext/dist/bundle.tar.zst.sha256"), encoding: .utf8) == sha + "\n")
        // Packing again ignores the previous output and gives the same bytes.
        let again = try extctl("pack", scratch("ext"))
        #expect(again.stdout == result.stdout)
        // The default level is 19, as alga pack uses: the frame says so through its size.
        let level1 = try extctl("pack", scratch("ext"), "-o", scratch("l1.tar.zst"), "--level", "1")
        #expect(level1.status == 0)
        let size19 = try FileManager.default.attributesOfItem(atPath: scratch("ext/dist/bundle.tar.zst"))[.size] as? Int
        let size1 = try FileManager.default.attributesOfItem(atPath: scratch("l1.tar.zst"))[.size] as? Int
        #expect(size19! < size1!)
    }

    @Test func hashPrintsThePrefixedSha256() throws {
        let scratch = try Scratch("cli-hash")
        try TestSupport.write(TestSupport.randomBytes(2_500_000, seed: 5), to: "f.bin", in: scratch.path)
        let result = try extctl("hash", scratch("f.bin"))
        let sha = try TestSupport.sh("sha256sum f.bin | cut -d' ' -f1", cwd: scratch.path)
        #expect(result.stdout == "sha256:" + sha)
        let missing = try extctl("hash", scratch("missing"))
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("ARCHIVE_IO"))
        #expect(missing.stderr.contains("missing"))
    }

    @Test func inspectShowsEntriesAndTheManifest() throws {
        let scratch = try Scratch("cli-inspect")
        let files = try TestSupport.makeSampleTree(at: scratch("ext"))
        _ = try extctl("pack", scratch("ext"), "-o", scratch("b.tar.zst"))
        let text = try extctl("inspect", scratch("b.tar.zst"))
        #expect(text.status == 0)
        #expect(text.stdout.contains("manifest (manifest.json):\n" + String(decoding: files["manifest.json"]!, as: UTF8.self)))
        #expect(text.stdout.contains("  755          -  ui/empty-dir/"))
        #expect(text.stdout.contains("  644     400000  ui/assets/blob.bin"))
        let json = try extctl("inspect", scratch("b.tar.zst"), "--json")
        struct Report: Decodable {
            struct Entry: Decodable { var path: String; var kind: String; var size: Int64; var mode: String }
            var contentHash: String
            var size: Int64
            var entries: [Entry]
            var manifestPath: String?
            var manifest: String?
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(json.stdout.utf8))
        #expect(report.contentHash == (try FileHashingCLI.sha256(scratch("b.tar.zst"))))
        #expect(report.manifestPath == "manifest.json")
        #expect(report.manifest.map { Array($0.utf8) } == files["manifest.json"])
        #expect(Set(report.entries.filter { $0.kind == "file" }.map(\.path)) == Set(files.keys))
        #expect(report.entries.first { $0.path == "bin/tool" }?.mode == "755")
    }

    @Test func exitStatusesFollowTheContract() throws {
        let scratch = try Scratch("cli-status")
        try TestSupport.write([1], to: "ext/manifest.json", in: scratch.path)
        #expect(try extctl("--help").status == 0)
        #expect(try extctl("pack", "--help").status == 0)
        let unknown = try extctl("frobnicate")
        #expect(unknown.status == 2)
        let missingArgument = try extctl("unpack", "only-one")
        #expect(missingArgument.status == 2)
        let badOption = try extctl("pack", scratch("ext"), "--threads", "-1")
        #expect(badOption.status == 2)
        let badLevel = try extctl("pack", scratch("ext"), "-o", scratch("never.tar.zst"), "--level", "99")
        #expect(badLevel.status == 1)
        #expect(badLevel.stderr.contains("ARCHIVE_ZSTD_ENCODER"))
        #expect(TestSupport.listing(scratch.path) == ["ext"])
    }

    @Test func packRefusesASymlinkNamingIt() throws {
        let scratch = try Scratch("cli-symlink")
        try TestSupport.write([1], to: "ext/ui/index.html", in: scratch.path)
        symlink("/etc/passwd", scratch("ext/ui/passwd"))
        let result = try extctl("pack", scratch("ext"), "-o", scratch("b.tar.zst"))
        #expect(result.status == 1)
        #expect(result.stderr.contains("PACK_UNSUPPORTED_FILE"))
        #expect(result.stderr.contains("ui/passwd"))
        #expect(TestSupport.listing(scratch.path) == ["ext"])
    }

    @Test func unpackRefusesANonEmptyTarget() throws {
        let scratch = try Scratch("cli-target")
        _ = try TestSupport.makeSampleTree(at: scratch("ext"))
        _ = try extctl("pack", scratch("ext"), "-o", scratch("b.tar.zst"))
        let result = try extctl("unpack", scratch("b.tar.zst"), scratch("ext"))
        #expect(result.status == 1)
        #expect(result.stderr.contains("ARCHIVE_TARGET_EXISTS"))
    }
}

enum FileHashingCLI {
    static func sha256(_ path: String) throws -> String {
        "sha256:" + (try TestSupport.sh("sha256sum '\(path)' | cut -d' ' -f1")).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
