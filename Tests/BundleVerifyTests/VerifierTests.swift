import BundleArchive
import BundleCore
import BundleVerify
import Foundation
import Testing
import TestSupport

/// A packed sample bundle on disk, with its hash.
struct SampleBundle {
    let scratch: String
    let path: String
    let bytes: [UInt8]
    var hash: ContentHash { ContentHash.of(bytes) }

    init(_ label: String = "verify", seed: UInt64 = 1) throws {
        scratch = try TestSupport.makeTemporaryDirectory(label)
        try TestSupport.write(Array(#"{"name":"com.example.v","version":"1.0.0","runtime":"wasm-js@1"}"#.utf8), to: "src/manifest.json", in: scratch)
        try TestSupport.write(TestSupport.randomBytes(200_000, seed: seed), to: "src/dist/main.wasm", in: scratch)
        try TestSupport.write(Array("<html></html>".utf8), to: "src/ui/index.html", in: scratch)
        path = scratch + "/bundle.tar.zst"
        _ = try BundlePacker.pack(directory: scratch + "/src", to: path, configuration: .init(zstd: .init(level: 3)))
        bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func remove() { try? FileManager.default.removeItem(atPath: scratch) }
}

/// The two ways in: an async byte stream, and a file read by the threaded pipeline.
enum EntryPoint: CaseIterable, Sendable { case stream, file }

func verify(
    _ bytes: [UInt8], trust: TrustBundle? = nil, _ request: VerificationRequest = .init(), via entry: EntryPoint = .stream
) async throws -> VerifiedBundle {
    let verifier = StreamingBundleVerifier(trust: trust)
    switch entry {
    case .stream:
        return try await verifier.verify(.bytes(bytes, chunkSize: 50_000), request: request)
    case .file:
        let scratch = try TestSupport.makeTemporaryDirectory("verify-file")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try TestSupport.write(bytes, to: "bundle.tar.zst", in: scratch)
        return try await verifier.verify(fileAt: scratch + "/bundle.tar.zst", request: request)
    }
}

func signatures(_ bytes: [UInt8], _ keys: [SigningKey]) throws -> [DetachedSignature] {
    var hasher = ContentHasher()
    hasher.update(bytes)
    return try keys.map { try $0.sign(digest: hasher.digest256, hash: hasher.finalize()) }
}

@Suite struct VerifierTests {
    @Test(arguments: EntryPoint.allCases)
    func onePassFindsHashSizeManifestAndEntries(entry: EntryPoint) async throws {
        let sample = try SampleBundle()
        defer { sample.remove() }
        let result = try await verify(sample.bytes, .init(expectedHash: sample.hash, declaredSize: Int64(sample.bytes.count)), via: entry)
        #expect(result.hash == sample.hash)
        #expect(result.size == Int64(sample.bytes.count))
        #expect(result.manifestPath == "manifest.json")
        #expect(result.module?.path == "dist/main.wasm" && result.hasUIIndex)
        #expect(result.layout == BundleLayout(manifestPath: "manifest.json"))
        #expect(result.signature == .unverified)
        #expect(result.entries.count == 5)
    }

    @Test(arguments: EntryPoint.allCases)
    func aFlippedByteATruncationAndAWrongSizeAreTold(entry: EntryPoint) async throws {
        let sample = try SampleBundle()
        defer { sample.remove() }
        var flipped = sample.bytes
        flipped[flipped.count / 2] ^= 0x01
        let tampered = await #expect(throws: VerifyError.self) {
            try await verify(flipped, .init(expectedHash: sample.hash, declaredSize: Int64(sample.bytes.count)), via: entry)
        }
        #expect(tampered?.code == .verifyHashMismatch)
        #expect(tampered?.expected == sample.hash.prefixed)
        #expect(tampered?.actual == ContentHash.of(flipped).prefixed)
        let truncated = await #expect(throws: VerifyError.self) {
            try await verify(Array(sample.bytes.prefix(1_000)), .init(expectedHash: sample.hash, declaredSize: Int64(sample.bytes.count)), via: entry)
        }
        #expect(truncated?.code == .verifyTruncated)
        // Without an expected hash, the archive itself refuses the damage.
        await #expect(throws: ArchiveError.self) { try await verify(flipped, via: entry) }
        let size = await #expect(throws: VerifyError.self) { try await verify(sample.bytes, .init(declaredSize: 5), via: entry) }
        #expect(size?.code == .verifySizeMismatch)
        let cap = await #expect(throws: ArchiveError.self) { try await verify(sample.bytes, .init(limits: ArchiveLimits(compressedBytes: 1_000)), via: entry) }
        #expect(cap?.limit == "compressedBytes")
    }

    @Test func aBundleWithoutAManifestIsRefused() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("nomanifest")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try TestSupport.write([1], to: "src/ui/index.html", in: scratch)
        var bytes: [UInt8] = []
        _ = try BundlePacker.pack(directory: scratch + "/src", configuration: .init(zstd: .init(level: 1))) { bytes.append(contentsOf: $0) }
        let error = await #expect(throws: VerifyError.self) { try await verify(bytes) }
        #expect(error?.code == .verifyManifestMissing)
        #expect(try await verify(bytes, .init(requireManifest: false)).manifestPath == nil)
    }

    @Test(arguments: [SignatureAlgorithm.ed25519, .ecdsaP256SHA256], EntryPoint.allCases)
    func strictPolicy(algorithm: SignatureAlgorithm, entry: EntryPoint) async throws {
        let sample = try SampleBundle()
        defer { sample.remove() }
        let other = try SampleBundle("other", seed: 2)
        defer { other.remove() }
        let key = SigningKey(generating: algorithm)
        let trust = TrustBundle(keys: [TrustedKey(key: key.publicKey)])
        let good = try signatures(sample.bytes, [key])
        let verified = try await verify(sample.bytes, trust: trust, .init(signatures: good), via: entry)
        #expect(verified.signature == .verified(keyIDs: [key.publicKey.keyID]))

        func refusal(_ request: VerificationRequest, trust: TrustBundle = trust) async -> VerifyError? {
            await #expect(throws: VerifyError.self) { try await verify(sample.bytes, trust: trust, request, via: entry) }
        }
        #expect(await refusal(.init())?.code == .signatureMissing)
        let wrongKey = SigningKey(generating: algorithm)
        #expect(await refusal(.init(signatures: try signatures(sample.bytes, [wrongKey])))?.code == .signatureUnknownKey)
        let otherBundle = try signatures(other.bytes, [key])
        #expect(await refusal(.init(signatures: otherBundle))?.code == .signatureInvalid)
        let revoked = TrustBundle(keys: [TrustedKey(key: key.publicKey, status: .revoked)])
        #expect(await refusal(.init(signatures: good), trust: revoked)?.code == .signatureKeyRevoked)
        let expired = TrustBundle(keys: [TrustedKey(key: key.publicKey, notAfter: Date(timeIntervalSince1970: 1_700_000_000))])
        #expect(await refusal(.init(signatures: good), trust: expired)?.code == .signatureKeyExpired)
        // Judged at the publish time: before expiry it verifies, retired keys included.
        let retired = TrustBundle(keys: [TrustedKey(key: key.publicKey, notAfter: Date(timeIntervalSince1970: 1_700_000_000), status: .retired)])
        #expect(try await verify(sample.bytes, trust: retired, .init(signatures: good, publishTime: Date(timeIntervalSince1970: 1_600_000_000))).signature
            == .verified(keyIDs: [key.publicKey.keyID]))
        // Several signatures: matched by key id, never by position.
        let both = try signatures(sample.bytes, [wrongKey, key])
        #expect(try await verify(sample.bytes, trust: trust, .init(signatures: both)).signature == .verified(keyIDs: [key.publicKey.keyID]))
    }

    @Test func permissivePolicyAcceptsUnsignedButNotMalformed() async throws {
        let sample = try SampleBundle()
        defer { sample.remove() }
        #expect(try await verify(sample.bytes).signature == .unverified)
        let malformed = DetachedSignature(algorithm: .ecdsaP256SHA256, keyID: nil, signature: [1, 2, 3])
        let error = await #expect(throws: VerifyError.self) { try await verify(sample.bytes, .init(signatures: [malformed])) }
        #expect(error?.code == .signatureMalformed)
        let short = DetachedSignature(algorithm: .ed25519, keyID: nil, signature: [1])
        #expect(await #expect(throws: VerifyError.self) { try await verify(sample.bytes, .init(signatures: [short])) }?.code == .signatureMalformed)
    }
}

@Suite struct SignatureFormatTests {
    @Test func signatureFilesRoundTripAndRefuseGarbage() throws {
        let key = SigningKey(generating: .ed25519)
        let signed = try signatures([1, 2, 3], [key, SigningKey(generating: .ecdsaP256SHA256)])
        #expect(try SignatureFile.parse(SignatureFile.encode(signed)) == signed)
        for (text, code) in [
            ("{\"signatures\":[{\"algorithm\":\"rsa\",\"signature\":\"AAAA\"}]}", ErrorCode.signatureUnsupported),
            ("{\"signatures\":[{\"algorithm\":\"ed25519\",\"signature\":\"%%%\"}]}", .signatureMalformed),
            ("{\"nope\":1}", .signatureMalformed),
            ("not base64 !!", .signatureMalformed),
        ] {
            let error = #expect(throws: VerifyError.self) { try SignatureFile.parse(Array(text.utf8)) }
            #expect(error?.code == code, "\(text)")
        }
        #expect(try SignatureFile.fromAlgaField(text: "MEUCIQ==", algorithm: "cosign").first?.algorithm == .ecdsaP256SHA256)
        #expect(#expect(throws: VerifyError.self) { try SignatureFile.fromAlgaField(text: "x", algorithm: "pgp") }?.code == .signatureUnsupported)
    }

    @Test func trustBundleForms() throws {
        let a = SigningKey(generating: .ed25519).publicKey
        let b = SigningKey(generating: .ecdsaP256SHA256).publicKey
        let pem = try TrustBundle(material: a.pem + "\n" + b.pem)
        #expect(Set(pem.keys.keys) == [a.keyID, b.keyID])
        let json = #"{"keys":[{"publicKey":"\#(a.pem.replacingOccurrences(of: "\n", with: "\\n"))","notBefore":"2024-01-01T00:00:00Z","status":"retired"}]}"#
        let parsed = try TrustBundle.load(json)
        #expect(parsed.keys[a.keyID]?.status == .retired)
        #expect(parsed.keys[a.keyID]?.notBefore == ISO8601DateFormatter().date(from: "2024-01-01T00:00:00Z"))
        #expect(try TrustBundle.fromEnvironment([:]) == nil)
        #expect(try TrustBundle.fromEnvironment(["SIGNING_TRUST_BUNDLE": a.pem])?.keys.count == 1)
        for bad in ["-----BEGIN PUBLIC KEY-----\n%%%\n-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\nAAAA", "{\"keys\":[{\"publicKey\":\"x\"}]}", "/no/such/file.pem",
                    "-----BEGIN PUBLIC KEY-----\nAAAAAAAA\n-----END PUBLIC KEY-----", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                    "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"] {
            let error = #expect(throws: VerifyError.self, "\(bad)") { try TrustBundle.load(bad) }
            #expect(error?.code == .trustBundleInvalid, "\(bad)")
        }
    }
}

/// X.509 certificates made by openssl: their key is trusted within their validity window.
@Suite struct CertificateTrustTests {
    @Test(arguments: ["ed25519", "EC -pkeyopt ec_paramgen_curve:P-256"])
    func aCertificatesKeyVerifiesWithinItsValidity(_ algorithm: String) async throws {
        let sample = try SampleBundle("cert")
        defer { sample.remove() }
        try TestSupport.sh(
            "openssl genpkey -algorithm \(algorithm) -out key.pem && openssl req -x509 -key key.pem -out cert.pem -days 30 -subj /CN=publisher",
            cwd: sample.scratch)
        let trust = try TrustBundle.load(sample.scratch + "/cert.pem")
        let key = try SigningKey(pem: try String(contentsOfFile: sample.scratch + "/key.pem", encoding: .utf8))
        let trusted = try #require(trust.keys[key.publicKey.keyID])
        #expect(trusted.notBefore != nil && trusted.notAfter != nil)
        let signed = try signatures(sample.bytes, [key])
        #expect(try await verify(sample.bytes, trust: trust, .init(signatures: signed)).signature == .verified(keyIDs: [key.publicKey.keyID]))
        for (year, label) in [(2000, "before notBefore"), (2100, "after notAfter")] {
            let time = ISO8601DateFormatter().date(from: "\(year)-01-01T00:00:00Z")!
            let error = await #expect(throws: VerifyError.self, "\(label)") {
                try await verify(sample.bytes, trust: trust, .init(signatures: signed, publishTime: time))
            }
            #expect(error?.code == .signatureKeyExpired, "\(label)")
        }
    }
}

/// Keys and signatures made by openssl verify with us; ours verify with openssl.
@Suite struct OpenSSLInteropTests {
    @Test(arguments: ["ed25519", "p256"])
    func bothWays(_ kind: String) async throws {
        let sample = try SampleBundle("openssl")
        defer { sample.remove() }
        let dir = sample.scratch
        let genpkey = kind == "ed25519" ? "openssl genpkey -algorithm ed25519 -out key.pem" : "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem"
        try TestSupport.sh("\(genpkey) && openssl pkey -in key.pem -pubout -out pub.pem", cwd: dir)
        printf(sample.hash.prefixed, to: dir + "/hash.txt")
        if kind == "ed25519" {
            try TestSupport.sh("openssl pkeyutl -sign -inkey key.pem -rawin -in hash.txt -out sig.bin", cwd: dir)
        } else {
            try TestSupport.sh("openssl dgst -sha256 -sign key.pem -out sig.bin bundle.tar.zst", cwd: dir)
        }
        let pub = try PublicKey(pem: try String(contentsOfFile: dir + "/pub.pem", encoding: .utf8))
        let theirs = DetachedSignature(
            algorithm: kind == "ed25519" ? .ed25519 : .ecdsaP256SHA256, keyID: pub.keyID,
            signature: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/sig.bin"))))
        let trust = try TrustBundle.load(dir + "/pub.pem")
        #expect(try await verify(sample.bytes, trust: trust, .init(signatures: [theirs])).signature == .verified(keyIDs: [pub.keyID]))
        // The key id is the SHA-256 of the SPKI DER, as openssl computes it.
        let der = try TestSupport.sh("openssl pkey -pubin -in pub.pem -outform DER | sha256sum | cut -d' ' -f1", cwd: dir)
        #expect(pub.keyID == "sha256:" + der.trimmingCharacters(in: .whitespacesAndNewlines))

        // Ours, with openssl's private key, verified by openssl.
        let key = try SigningKey(pem: try String(contentsOfFile: dir + "/key.pem", encoding: .utf8))
        #expect(key.publicKey.keyID == pub.keyID)
        let ours = try signatures(sample.bytes, [key])[0]
        try Data(ours.signature).write(to: URL(fileURLWithPath: dir + "/ours.bin"))
        if kind == "ed25519" {
            try TestSupport.sh("openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in hash.txt -sigfile ours.bin", cwd: dir)
        } else {
            try TestSupport.sh("openssl dgst -sha256 -verify pub.pem -signature ours.bin bundle.tar.zst", cwd: dir)
        }
        // A key we generate is readable by openssl.
        let generated = SigningKey(generating: kind == "ed25519" ? .ed25519 : .ecdsaP256SHA256)
        try Data(generated.pem.utf8).write(to: URL(fileURLWithPath: dir + "/gen.pem"))
        let derived = try TestSupport.sh("openssl pkey -in gen.pem -pubout", cwd: dir)
        #expect(derived == generated.publicKey.pem)
    }
}

func printf(_ text: String, to path: String) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
}
