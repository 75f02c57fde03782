import Foundation
import Testing
import TestSupport

@Suite struct DeterminismTests {
    /// Creates the same content twice with different mtimes, owners, umask and creation order.
    @Test func sameTreeGivesTheSameHash() throws {
        let scratch = try Scratch("determinism")
        let files = try TestSupport.makeSampleTree(at: scratch("a"))
        // Tree b: reverse creation order, under umask 077, other owners, other times.
        let previous = umask(0o077)
        for (path, data) in files.sorted(by: { $0.key > $1.key }) { try TestSupport.write(data, to: path, in: scratch("b")) }
        try FileManager.default.createDirectory(atPath: scratch("b/ui/empty-dir"), withIntermediateDirectories: true)
        umask(previous)
        chmod(scratch("b/bin/tool"), 0o700)
        try TestSupport.sh("find b -exec touch -d '2001-02-03 04:05:06' {} + && chown -R 1234:5678 b", cwd: scratch.path)
        try TestSupport.sh("find a -exec touch -d '2024-12-31 23:59:59' {} +", cwd: scratch.path)
        let packA = try extctl("pack", scratch("a"), "-o", scratch("a.tar.zst"), "--level", "3", "--threads", "1")
        let packB = try extctl("pack", scratch("b"), "-o", scratch("b.tar.zst"), "--level", "3", "--threads", "2")
        #expect(packA.status == 0 && packB.status == 0, "\(packA.stderr) \(packB.stderr)")
        let hashA = packA.stdout.split(separator: " ").first.map(String.init)
        let hashB = packB.stdout.split(separator: " ").first.map(String.init)
        #expect(hashA != nil && hashA == hashB)
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch("a.tar.zst"))) == Data(contentsOf: URL(fileURLWithPath: scratch("b.tar.zst"))))
        // The trees really differ in metadata.
        let statA = try TestSupport.sh("stat -c '%u %a %Y' a/ui/index.html", cwd: scratch.path)
        let statB = try TestSupport.sh("stat -c '%u %a %Y' b/ui/index.html", cwd: scratch.path)
        #expect(statA != statB)
    }

    @Test func sourceDateEpochSetsTheMtime() throws {
        let scratch = try Scratch("epoch")
        try TestSupport.write(Array("x".utf8), to: "src/manifest.json", in: scratch.path)
        let plain = try extctl("pack", scratch("src"), "-o", scratch("plain.tar.zst"))
        let epoch = try extctl(
            "pack", scratch("src"), "-o", scratch("epoch.tar.zst"), environment: ["SOURCE_DATE_EPOCH": "1700000000"])
        #expect(plain.status == 0 && epoch.status == 0)
        #expect(plain.stdout.prefix(71) != epoch.stdout.prefix(71))
        let listing = try TestSupport.sh("TZ=UTC tar --zstd -tvf epoch.tar.zst", cwd: scratch.path)
        #expect(listing.contains("2023-11-14 22:13"), "\(listing)")
        let bad = try extctl("pack", scratch("src"), "-o", scratch("bad.tar.zst"), environment: ["SOURCE_DATE_EPOCH": "yesterday"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("SOURCE_DATE_EPOCH"))
    }
}
