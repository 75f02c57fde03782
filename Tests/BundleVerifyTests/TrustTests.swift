import BundleArchive
import BundleCore
import BundleVerify
import Foundation
import Testing
import TestSupport

/// Trust bundles with repeated keys, dates as JavaScript writes them, keys bound to publishers,
/// and the bounds on what a signature check may cost.
@Suite struct TrustTests {
    static let time = Date(timeIntervalSince1970: 1_800_000_000)

    static func entry(_ key: SigningKey, status: String? = nil, notBefore: String? = nil, notAfter: String? = nil, publishers: [String]? = nil) -> String {
        var fields = [#""publicKey":\#(String(reflecting: key.publicKey.pem))"#]
        if let status { fields.append(#""status":"\#(status)""#) }
        if let notBefore { fields.append(#""notBefore":"\#(notBefore)""#) }
        if let notAfter { fields.append(#""notAfter":"\#(notAfter)""#) }
        if let publishers { fields.append(#""publishers":[\#(publishers.map { "\"\($0)\"" }.joined(separator: ","))]"#) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func bundle(_ entries: [String]) throws -> TrustBundle {
        try TrustBundle(material: #"{"keys":["# + entries.joined(separator: ",") + "]}")
    }

    @Test func aKeyListedTwiceGetsTheMostRestrictiveCombination() async throws {
        let sample = try SampleBundle("trust-merge")
        defer { sample.remove() }
        let key = SigningKey(generating: .ed25519)
        let signed = try signatures(sample.bytes, [key])
        // A revocation appended after the original entry wins (it used to be ignored).
        for entries in [[Self.entry(key), Self.entry(key, status: "revoked")], [Self.entry(key, status: "revoked"), Self.entry(key)]] {
            let error = await #expect(throws: VerifyError.self) {
                try await verify(sample.bytes, trust: try Self.bundle(entries), .init(signatures: signed, publishTime: Self.time))
            }
            #expect(error?.code == .signatureKeyRevoked)
        }
        // Two windows: valid only inside both.
        let windows = try Self.bundle([
            Self.entry(key, notBefore: "2020-01-01T00:00:00Z", notAfter: "2030-01-01T00:00:00Z"),
            Self.entry(key, notBefore: "2026-01-01T00:00:00Z", notAfter: "2040-01-01T00:00:00Z"),
        ])
        let merged = try #require(windows.keys[key.publicKey.keyID])
        #expect(merged.notBefore == ISO8601DateFormatter().date(from: "2026-01-01T00:00:00Z"))
        #expect(merged.notAfter == ISO8601DateFormatter().date(from: "2030-01-01T00:00:00Z"))
        let early = await #expect(throws: VerifyError.self) {
            try await verify(sample.bytes, trust: windows, .init(signatures: signed, publishTime: Date(timeIntervalSince1970: 1_700_000_000)))
        }
        #expect(early?.code == .signatureKeyExpired)
        // Publishers: only those both entries allow.
        let narrowed = try Self.bundle([Self.entry(key, publishers: ["acme", "beta"]), Self.entry(key, publishers: ["Beta", "gamma"])])
        #expect(narrowed.keys[key.publicKey.keyID]?.publishers == ["beta"])
    }

    @Test func aBarePublicKeyBeforeACertificateKeepsTheCertificatesWindow() throws {
        let scratch = try TestSupport.makeTemporaryDirectory("cert-merge")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try TestSupport.sh(
            """
            openssl ecparam -name prime256v1 -genkey -noout -out k.pem 2>/dev/null
            openssl req -new -x509 -key k.pem -subj /CN=x -days 30 -out c.pem 2>/dev/null
            openssl pkey -in k.pem -pubout -out p.pem 2>/dev/null
            cat p.pem c.pem > both.pem
            """, cwd: scratch)
        let trust = try TrustBundle.load(scratch + "/both.pem")
        #expect(trust.keys.count == 1)
        let key = try #require(trust.keys.values.first)
        #expect(key.notBefore != nil && key.notAfter != nil)
    }

    @Test func aKeyHasOneIdWhateverItsEncoding() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("key-encodings")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // One P-256 key: named curve, explicit curve parameters, and inside a certificate.
        try TestSupport.sh(
            """
            openssl ecparam -name prime256v1 -genkey -noout -out k.pem 2>/dev/null
            openssl pkey -in k.pem -pubout -out named.pem 2>/dev/null
            openssl ec -in k.pem -pubout -param_enc explicit -out explicit.pem 2>/dev/null
            openssl req -new -x509 -key k.pem -subj /CN=x -days 30 -out cert.pem 2>/dev/null
            """, cwd: scratch)
        func read(_ name: String) throws -> String { try String(contentsOfFile: scratch + "/" + name, encoding: .utf8) }
        let named = try PublicKey(pem: try read("named.pem"))
        let explicit = try PublicKey(pem: try read("explicit.pem"))
        #expect(named.keyID == explicit.keyID)
        #expect(named.spki == explicit.spki)
        #expect(try TrustBundle.load(scratch + "/cert.pem").keys.keys.first == named.keyID)
        // Revoked under one encoding, active under the other: revoked, whichever id the signature names.
        let sample = try SampleBundle("key-encodings-bundle")
        defer { sample.remove() }
        let key = try SigningKey(pem: try read("k.pem"))
        let signed = try signatures(sample.bytes, [key])
        let explicitID = "sha256:" + (try TestSupport.sh("openssl pkey -pubin -in explicit.pem -outform DER | sha256sum | cut -c1-64", cwd: scratch))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(explicitID != named.keyID)
        func json(_ pem: String, _ status: String) -> String { #"{"publicKey":\#(String(reflecting: pem)),"status":"\#(status)"}"# }
        for entries in [[json(try read("explicit.pem"), "active"), json(try read("named.pem"), "revoked")],
                        [json(try read("named.pem"), "active"), json(try read("explicit.pem"), "revoked")]] {
            let trust = try Self.bundle(entries)
            #expect(trust.keys.count == 1)
            for keyID in [named.keyID, explicitID, nil] {
                let renamed = signed.map { DetachedSignature(algorithm: $0.algorithm, keyID: keyID, signature: $0.signature) }
                await #expect(throws: VerifyError.self) {
                    try await verify(sample.bytes, trust: trust, .init(signatures: renamed, publishTime: Self.time))
                }
            }
        }
    }

    @Test(arguments: ["2027-01-01T00:00:00.123Z", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00.5+02:00"])
    func datesAsJavaScriptWritesThemAreRead(date: String) throws {
        let key = SigningKey(generating: .ed25519)
        let trust = try Self.bundle([Self.entry(key, notAfter: date)])
        #expect(trust.keys[key.publicKey.keyID]?.notAfter != nil)
    }

    @Test func keysBoundToPublishersOnlyVerifyTheirPublishers() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("publishers")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        func pack(publisher: String?) throws -> [UInt8] {
            let field = publisher.map { #","publisher":"\#($0)""# } ?? ""
            try? FileManager.default.removeItem(atPath: scratch + "/src")
            try TestSupport.write(Array(#"{"name":"com.x.y","version":"1.0.0","runtime":"wasm-js@1"\#(field)}"#.utf8), to: "src/manifest.json", in: scratch)
            var out: [UInt8] = []
            _ = try BundlePacker.pack(directory: scratch + "/src", configuration: .init(zstd: .init(level: 1))) { out.append(contentsOf: $0) }
            return out
        }
        let acmeKey = SigningKey(generating: .ed25519)
        let anyKey = SigningKey(generating: .ecdsaP256SHA256)
        let trust = try Self.bundle([Self.entry(acmeKey, publishers: ["acme"]), Self.entry(anyKey)])
        // The publisher named in the manifest (case-insensitively, as slugs are).
        let acme = try pack(publisher: "ACME")
        let verified = try await verify(acme, trust: trust, .init(signatures: try signatures(acme, [acmeKey])))
        #expect(verified.signature == .verified(keyIDs: [acmeKey.publicKey.keyID]))
        #expect(verified.publisher == "ACME")
        for bytes in [try pack(publisher: "Mallory"), try pack(publisher: nil)] {
            let error = await #expect(throws: VerifyError.self) {
                try await verify(bytes, trust: trust, .init(signatures: try signatures(bytes, [acmeKey])))
            }
            #expect(error?.code == .signaturePublisherMismatch)
            #expect(error?.keyID == acmeKey.publicKey.keyID)
            // An unrestricted key also signing: verified by that one only.
            let both = try await verify(bytes, trust: trust, .init(signatures: try signatures(bytes, [acmeKey, anyKey])))
            #expect(both.signature == .verified(keyIDs: [anyKey.publicKey.keyID]))
        }
        // The caller's publisher (finalize's manifestJson) wins over the archive's.
        let overridden = await #expect(throws: VerifyError.self) {
            try await verify(acme, trust: trust, .init(signatures: try signatures(acme, [acmeKey]), publisher: "mallory"))
        }
        #expect(overridden?.code == .signaturePublisherMismatch)
    }

    @Test func whatASignatureCheckMayCostIsBounded() async throws {
        let sample = try SampleBundle("checks")
        defer { sample.remove() }
        // 21 P-256 keys and 64 signatures without key ids (each checked against every key).
        let keys = (0..<21).map { _ in SigningKey(generating: .ecdsaP256SHA256) }
        let trust = TrustBundle(keys: keys.map { TrustedKey(key: $0.publicKey) })
        let stranger = SigningKey(generating: .ecdsaP256SHA256)
        var keyless = try signatures(sample.bytes, [stranger])[0]
        keyless.keyID = nil
        let error = await #expect(throws: VerifyError.self) {
            try await verify(sample.bytes, trust: trust, .init(signatures: Array(repeating: keyless, count: 64)))
        }
        #expect(error?.code == .signatureMalformed)
        #expect(error?.reason.contains("more than 256 key checks") == true)
        let tooMany = await #expect(throws: VerifyError.self) {
            try await verify(sample.bytes, trust: trust, .init(signatures: Array(repeating: keyless, count: 65)))
        }
        #expect(tooMany?.code == .signatureMalformed)
        // Files: by size, then by count.
        #expect(throws: VerifyError.self) { try SignatureFile.parse([UInt8](repeating: 0x20, count: SignatureFile.maxBytes + 1)) }
        #expect(throws: VerifyError.self) { try TrustBundle(material: String(repeating: " ", count: TrustBundle.maxBytes + 1)) }
    }
}
