import BundleCore
import Foundation
import Testing
import TestSupport

/// Writes an extension tree with this manifest and packs it; returns the bundle's path.
func packExtension(_ scratch: Scratch, _ label: String, version: String = "1.0.0", seed: UInt64 = 1) throws -> String {
    let manifest = """
        {"name":"com.acme.cli","publisher":"Acme","version":"\(version)","runtime":"wasm-js@1",
         "capabilities":["cap:storage.kv","not.a.cap"],"ui":{"type":"iframe","entry":"ui/index.html"}}
        """
    try TestSupport.write(Array(manifest.utf8), to: "\(label)/manifest.json", in: scratch.path)
    try TestSupport.write(TestSupport.randomBytes(30_000, seed: seed), to: "\(label)/dist/main.wasm", in: scratch.path)
    try TestSupport.write(Array("<p>\(seed)</p>".utf8), to: "\(label)/ui/index.html", in: scratch.path)
    let packed = try extctl("pack", scratch(label), "-o", scratch("\(label).tar.zst"), "--level", "3")
    #expect(packed.status == 0, "\(packed.stderr)")
    return scratch("\(label).tar.zst")
}

/// Runs several `extctl` invocations at the same moment, each in its own process.
func concurrently(_ invocations: [[String]]) -> [ProcessResult] {
    let results = LockedValue([Int: ProcessResult]())
    DispatchQueue.concurrentPerform(iterations: invocations.count) { index in
        if let result = try? TestSupport.run([TestSupport.extctl] + invocations[index], environment: ["EXTCTL_DEBUG": "1"]) { results.withLock { $0[index] = result } }
    }
    return results.withLock { values in (0..<invocations.count).compactMap { values[$0] } }
}

@Suite struct PublishCommandTests {
    @Test func publishInstallToggleResolveAndUninstall() throws {
        let scratch = try Scratch("cli-publish")
        let data = scratch("data")
        let bundle = try packExtension(scratch, "ext")
        let hash = ContentHash.of(Array(try Data(contentsOf: URL(fileURLWithPath: bundle))))

        let published = try extctl("publish", bundle, "--data", data)
        #expect(published.status == 0, "\(published.stderr)")
        let result = try JSONSerialization.jsonObject(with: Data(published.stdout.utf8)) as? [String: Any]
        #expect(result?["contentHash"] as? String == hash.hex)
        #expect(result?["canonicalKey"] as? String == "sha256/\(hash.hex)/bundle.tar.zst")
        #expect((result?["version"] as? [String: Any])?["version"] as? String == "1.0.0")
        let extensionID = try #require((result?["extension"] as? [String: Any])?["id"] as? String)
        #expect(FileManager.default.fileExists(atPath: data + "/store/sha256/\(hash.hex)/bundle.tar.zst"))
        #expect(FileManager.default.fileExists(atPath: data + "/registry.sqlite"))

        let again = try extctl("publish", bundle, "--data", data)
        #expect(again.status == 1)
        #expect(again.stderr.contains("EXTENSION_VERSION_ALREADY_EXISTS: Version \"1.0.0\" already exists for this extension."))

        // A manifest override with a wildcard gets the next patch version.
        try TestSupport.write(
            Array(#"{"name":"com.acme.cli","publisher":"Acme","version":"1.0.*","runtime":"wasm-js@1"}"#.utf8), to: "m.json", in: scratch.path)
        let wildcard = try extctl("publish", bundle, "--data", data, "--manifest", scratch("m.json"))
        #expect(wildcard.status == 0, "\(wildcard.stderr)")
        #expect(wildcard.stdout.contains("\"version\" : \"1.0.1\""))

        let install = try extctl("install", "acme.com.acme.cli", "--tenant", "t1", "--version", "1.0.0", "--data", data)
        #expect(install.status == 0, "\(install.stderr)")
        #expect(install.stdout.contains("capabilities: cap:context.read, cap:storage.kv, cap:log.emit, cap:user.read"))
        #expect(try extctl("resolve", extensionID, "--tenant", "t1", "--data", data).stdout == hash.prefixed + "\n")

        #expect(try extctl("disable", extensionID, "--tenant", "t1", "--data", data).status == 0)
        let disabled = try extctl("resolve", extensionID, "--tenant", "t1", "--data", data)
        #expect(disabled.status == 1 && disabled.stderr.contains("INSTALL_DISABLED"))
        #expect(try extctl("enable", extensionID, "--tenant", "t1", "--data", data).status == 0)
        #expect(try extctl("resolve", extensionID, "--tenant", "t1", "--data", data).status == 0)

        let listing = try extctl("ls", "--json", "--data", data)
        let rows = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.compactMap { $0["version"] as? String } == ["1.0.1", "1.0.0"])
        let installs = try extctl("ls", "--tenant", "t1", "--data", data)
        #expect(installs.stdout == "acme.com.acme.cli  1.0.0  enabled  \(hash.prefixed)\n")

        #expect(try extctl("uninstall", extensionID, "--tenant", "t1", "--data", data).status == 0)
        let gone = try extctl("resolve", extensionID, "--tenant", "t1", "--data", data)
        #expect(gone.status == 1 && gone.stderr.contains("INSTALL_NOT_FOUND"))
        let unknown = try extctl("install", "nobody.none", "--tenant", "t1", "--data", data)
        #expect(unknown.status == 1 && unknown.stderr.contains("EXTENSION_NOT_FOUND"))
        // The bundle stays: it is content-addressed.
        #expect(FileManager.default.fileExists(atPath: data + "/store/sha256/\(hash.hex)/bundle.tar.zst"))
    }

    @Test func signaturePolicyAndRefusedBundlesLeaveNothing() throws {
        let scratch = try Scratch("cli-publish-signed")
        let data = scratch("data")
        let bundle = try packExtension(scratch, "ext", version: "2.0.0")
        #expect(try extctl("keygen", "--algorithm", "p256", "-o", scratch("k.pem")).status == 0)
        let unsigned = try extctl("publish", bundle, "--data", data, "--trust-bundle", scratch("k.pub.pem"))
        #expect(unsigned.status == 1 && unsigned.stderr.contains("SIGNATURE_MISSING"), "\(unsigned.stderr)")
        #expect(try extctl("sign", bundle, "--key", scratch("k.pem")).status == 0)
        let signed = try extctl("publish", bundle, "--data", data, "--trust-bundle", scratch("k.pub.pem"))
        #expect(signed.status == 0, "\(signed.stderr)")

        // Not an archive: refused with Alga's code, and no staging object is left behind.
        try TestSupport.write(TestSupport.randomBytes(5_000, seed: 3), to: "junk.tar.zst", in: scratch.path)
        let junk = try extctl("publish", scratch("junk.tar.zst"), "--data", data)
        #expect(junk.status == 1 && junk.stderr.contains("MANIFEST_EXTRACTION_FAILED"), "\(junk.stderr)")
        let staging = (try? FileManager.default.contentsOfDirectory(atPath: data + "/store/sha256/_staging")) ?? []
        #expect(staging.isEmpty)
    }

    @Test func twoProcessesPublishingOneVersionGiveOneSuccess() throws {
        let scratch = try Scratch("cli-publish-race")
        for round in 0..<3 {
            // A fresh data folder each round: the two processes also race to create and migrate the database.
            let data = scratch("data-\(round)")
            let first = try packExtension(scratch, "a\(round)", version: "5.\(round).0", seed: UInt64(10 + round))
            let second = try packExtension(scratch, "b\(round)", version: "5.\(round).0", seed: UInt64(20 + round))
            let results = concurrently([["publish", first, "--data", data], ["publish", second, "--data", data]])
            #expect(results.map(\.status).sorted() == [0, 1], "\(results.map(\.stderr))")
            #expect(results.contains { $0.status == 1 && $0.stderr.contains("EXTENSION_VERSION_ALREADY_EXISTS") }, "\(results.map(\.stderr))")
            let listing = try extctl("ls", "--json", "--data", data)
            let rows = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]]
            #expect(rows?.count == 1)
        }
    }
}
