import BundleCore
import BundleStore
import BundleVerify
import ExtensionHost
import Foundation
import ManifestV2
import RegistryV2
import StoreTestSupport
import Testing
import TestSupport

/// Every error case of reference 4.5-4.8: the code, the status and (where Alga has one) the message.
@Suite struct UploadErrorTests {
    @Test func parameterChecksUseAlgasMessagesAndDiagnostics() async throws {
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        let host = fixture.host
        let body = ByteStream.bytes([1, 2, 3])
        let cases: [(UploadRequest, String, String)] = [
            (UploadRequest(filename: nil, size: "3"), "filename is required", "filename_required"),
            (UploadRequest(filename: "  ", size: "3"), "filename is required", "filename_required"),
            (UploadRequest(filename: "b.tar.zst", size: nil), "size is required", "size_required"),
            (UploadRequest(filename: "b.tar.zst", size: "abc"), "size must be a positive number", "size_invalid"),
            (UploadRequest(filename: "b.tar.zst", size: "-4"), "size must be a positive number", "size_invalid"),
            (UploadRequest(filename: "b.tar.zst", size: "0"), "size must be a positive number", "size_invalid"),
            (UploadRequest(filename: "b.tar.zst", size: "209715201"), "size exceeds maximum of 209715200 bytes", "size_exceeds_cap"),
            (UploadRequest(filename: "b.tar.zst", size: "3", declaredHash: String(repeating: "A", count: 64)),
             "declaredHash must be 64-char lowercase hex sha256", "declared_hash_invalid"),
            (UploadRequest(filename: "b.tar.zst", size: "3", declaredHash: "abc"), "declaredHash must be 64-char lowercase hex sha256", "declared_hash_invalid"),
            (UploadRequest(filename: "b.tar.zst", size: "3", contentLength: "4"), "content-length header does not match size param", "content_length_mismatch"),
            // JavaScript's trim() and Number(): U+FEFF is blank, U+0085 is not a space, hex floats are NaN.
            (UploadRequest(filename: "\u{FEFF}\u{2028}", size: "3"), "filename is required", "filename_required"),
            (UploadRequest(filename: "b.tar.zst", size: "\u{85}3"), "size must be a positive number", "size_invalid"),
            (UploadRequest(filename: "b.tar.zst", size: "0x1p2"), "size must be a positive number", "size_invalid"),
            (UploadRequest(filename: "b.tar.zst", size: "3px"), "size must be a positive number", "size_invalid"),
            (UploadRequest(filename: "b.tar.zst", size: "0b11", contentLength: "0x4"), "content-length header does not match size param", "content_length_mismatch"),
        ]
        for (request, message, why) in cases {
            let error = await expectHostError(.badRequest, 400, message) { _ = try await host.upload(request, body: body) }
            #expect(error?.why == why)
        }
        let missing = await expectHostError(.badRequest, 400, "Missing request body") {
            _ = try await host.upload(UploadRequest(filename: "b", size: "3"), body: nil)
        }
        #expect(missing?.why == "missing_body")
        // What Number() reads as 3 is 3: JavaScript whitespace around it, hex, binary, exponent.
        for size in ["\u{FEFF}3\n", "0x3", "0b11", "3e0", "3.", " 0o3 "] {
            #expect(try host.validate(UploadRequest(filename: "b", size: size, contentLength: "\u{3000}3")).size == 3, "\(size)")
        }
        #expect(try await fixture.stagingKeys().isEmpty)
    }

    @Test(arguments: Backend.available)
    func aBodyOfTheWrongSizeOrHashLeavesNoStagingObject(store: Backend) async throws {
        let fixture = try HostFixture(store: store)
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        let longer = await expectHostError(.badRequest, 400) {
            _ = try await fixture.host.upload(UploadRequest(filename: "b", size: Int64(bytes.count - 10)), body: .bytes(bytes))
        }
        #expect(longer?.why == "body_size_mismatch")
        await expectHostError(.badRequest, 400) {
            _ = try await fixture.host.upload(UploadRequest(filename: "b", size: Int64(bytes.count + 10)), body: .bytes(bytes))
        }
        let wrongHash = ContentHash.of([9])
        let mismatch = await expectHostError(.hashMismatch, 400, "Declared hash does not match computed content hash") {
            _ = try await fixture.host.upload(UploadRequest(filename: "b", size: Int64(bytes.count), declaredHash: wrongHash), body: .bytes(bytes))
        }
        #expect(mismatch?.details == ["declared": wrongHash.hex, "computed": ContentHash.of(bytes).hex])
        #expect(try await fixture.stagingKeys().isEmpty)
    }

    @Test func storeFailuresAreS3PutFailed() async throws {
        let fixture = try HostFixture(wrapStore: { FaultyStore(base: $0, faults: [.put]) })
        defer { fixture.cleanup() }
        let error = await expectHostError(.s3PutFailed, 500, "Failed to store upload") {
            _ = try await fixture.host.upload(UploadRequest(filename: "b", size: "3"), body: .bytes([1, 2, 3]))
        }
        #expect(error?.why == "s3_put_failed")
    }

    @Test func aMissingBucketIsBucketNotFound() async throws {
        // SeaweedFS creates a missing bucket on PUT, so the S3 answer is injected here.
        let fixture = try HostFixture(wrapStore: { FaultyStore(base: $0, faults: [.putNoSuchBucket]) })
        defer { fixture.cleanup() }
        let error = await expectHostError(.bucketNotFound, 500, "Storage bucket not found") {
            _ = try await fixture.host.upload(UploadRequest(filename: "b", size: "3"), body: .bytes([1, 2, 3]))
        }
        #expect(error?.why == "s3_put_failed")
    }
}

@Suite struct FinalizeErrorTests {
    @Test func routeChecksUseAlgasMessages() async throws {
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        let host = fixture.host
        for (body, message) in [
            ("{not json", "Invalid JSON body"), ("[1,2]", "Body must be a JSON object"), ("\"text\"", "Body must be a JSON object"),
            (#"{"key":"sha256/_staging/x/bundle.tar.zst","size":0}"#, "size must be a positive number"),
            (#"{"key":"sha256/_staging/x/bundle.tar.zst","size":"12"}"#, "size must be a positive number"),
        ] {
            await expectHostError(.badRequest, 400, message) { _ = try await host.finalize(try FinalizeRequest.parse(Array(body.utf8))) }
        }
        let parsed = try FinalizeRequest.parse(Array(#"{"key":"k","size":12,"declaredHash":"ab","manifestJson":"{}","signature":{"text":"t","algorithm":"cosign"}}"#.utf8))
        #expect(parsed == FinalizeRequest(key: "k", size: 12, declaredHash: "ab", manifestJson: "{}", signature: .init(text: "t", algorithm: "cosign")))

        let staging = "sha256/_staging/\(UUID().uuidString.lowercased())/bundle.tar.zst"
        let cases: [(FinalizeRequest, String)] = [
            (FinalizeRequest(key: nil), "key is required"),
            (FinalizeRequest(key: ""), "key is required"),
            (FinalizeRequest(key: "tenants/t/_staging/x/bundle.tar.zst"), "key must start with \"sha256/\""),
            (FinalizeRequest(key: "sha256/abc/bundle.tar.zst"), "invalid staging key (expected tenants/<tenant>/_staging/<id>/bundle.tar.zst)"),
            (FinalizeRequest(key: "sha256/_staging/x/manifest.json"), "invalid staging key (expected tenants/<tenant>/_staging/<id>/bundle.tar.zst)"),
            (FinalizeRequest(key: "sha256/_staging/../x/bundle.tar.zst"), "invalid staging key (expected tenants/<tenant>/_staging/<id>/bundle.tar.zst)"),
            (FinalizeRequest(key: staging, size: -1), "size must be a positive number"),
            (FinalizeRequest(key: staging, size: 209_715_201), "size exceeds maximum of 209715200 bytes"),
            (FinalizeRequest(key: staging, declaredHash: "XYZ"), "declaredHash must be 64-char lowercase hex sha256"),
        ]
        for (request, message) in cases {
            await expectHostError(.badRequest, 400, message) { _ = try await host.finalize(request) }
        }
        await expectHostError(.stagingNotFound, 400, "Uploaded staging object not found in storage") {
            _ = try await host.finalize(FinalizeRequest(key: staging))
        }
    }

    @Test func hashSizeArchiveAndManifestRefusals() async throws {
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        let host = fixture.host
        let bytes = try makeBundle()
        let key = try await fixture.upload(bytes)
        let other = ContentHash.of([7])
        let mismatch = await expectHostError(.hashMismatch, 400, "Declared hash does not match computed content hash") {
            _ = try await host.finalize(FinalizeRequest(key: key, declaredHash: other.hex))
        }
        #expect(mismatch?.details == ["declared": other.hex, "computed": ContentHash.of(bytes).hex])
        await expectHostError(.sizeMismatch, 400) { _ = try await host.finalize(FinalizeRequest(key: key, size: Int64(bytes.count + 1))) }

        // No manifest in the archive; a supplied manifestJson replaces it.
        let bare = try makeBundle(seed: 3, includeManifest: false)
        let bareKey = try await fixture.upload(bare)
        await expectHostError(.manifestNotFound, 400, "manifest.json not found in bundle") { _ = try await host.finalize(FinalizeRequest(key: bareKey)) }
        let invalid = await expectHostError(.invalidManifest, 400) {
            _ = try await host.finalize(FinalizeRequest(key: bareKey, manifestJson: #"{"name":"","version":"x","runtime":"wasm-js@1"}"#))
        }
        #expect(invalid?.issues.isEmpty == false)
        let envelope = try JSONSerialization.jsonObject(with: Data(invalid?.envelope() ?? [])) as? [String: Any]
        #expect(envelope?["code"] as? String == "INVALID_MANIFEST")
        #expect(((envelope?["details"] as? [String: Any])?["issues"] as? [Any])?.isEmpty == false)
        // Alga's validator allows a missing publisher, then its database fails; we refuse it clearly.
        let anonymous = try await fixture.upload(try makeBundle(publisher: nil, seed: 4))
        let noPublisher = await expectHostError(.invalidManifest, 400) { _ = try await host.finalize(FinalizeRequest(key: anonymous)) }
        #expect(noPublisher?.issues.map(\.path) == ["publisher"])
        // The manifest in the archive is checked with the exact validator.
        let badManifest = try await fixture.upload(try makeBundle(manifest: "[1,2]", seed: 5))
        await expectHostError(.invalidManifest, 400) { _ = try await host.finalize(FinalizeRequest(key: badManifest)) }

        // Not a zstd archive at all.
        let garbage = try await fixture.upload(TestSupport.randomBytes(4_000, seed: 9))
        await expectHostError(.manifestExtractionFailed, 400) { _ = try await host.finalize(FinalizeRequest(key: garbage)) }
        #expect(try await fixture.canonicalKeys().isEmpty)
    }

    @Test func aBundleOverTheCapIs413NotA500() async throws {
        let fixture = try HostFixture(configuration: .init(maxBundleBytes: 10_000))
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        #expect(bytes.count > 10_000)
        // Staged by other means (a presigned upload), so the upload's own size check never ran.
        let key = "sha256/_staging/\(UUID().uuidString.lowercased())/bundle.tar.zst"
        try await fixture.objects.put(key, bytes: bytes)
        let error = await expectHostError(.bundleTooLarge, 413, "Bundle size exceeds maximum allowed") {
            _ = try await fixture.host.finalize(FinalizeRequest(key: key))
        }
        #expect(error?.details["limit"] == "10000")
        // Discovered while hashing (the HEAD reported a small size): still 413.
        let lying = try HostFixture(configuration: .init(maxBundleBytes: 10_000), wrapStore: { LyingHeadStore(base: $0) })
        defer { lying.cleanup() }
        try await lying.objects.put(key, bytes: bytes)
        await expectHostError(.bundleTooLarge, 413) { _ = try await lying.host.finalize(FinalizeRequest(key: key)) }
    }

    @Test func duplicateVersionsAre409EvenWithIdenticalBytes() async throws {
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        _ = try await fixture.publish(bytes)
        let message = "Version \"1.0.0\" already exists for this extension. Publish a new version and try again."
        let same = await expectHostError(.extensionVersionAlreadyExists, 409, message) { _ = try await fixture.publish(bytes) }
        await expectHostError(.extensionVersionAlreadyExists, 409, message) { _ = try await fixture.publish(try makeBundle(seed: 2)) }
        let envelope = try JSONSerialization.jsonObject(with: Data(same?.envelope() ?? [])) as? [String: Any]
        #expect(envelope?["success"] as? Bool == false)
        let error = envelope?["error"] as? [String: Any]
        #expect(error?["code"] as? String == "EXTENSION_VERSION_ALREADY_EXISTS")
        #expect(error?["message"] as? String == message)
    }

    @Test func signatureRefusalsHaveTheirOwnCodes() async throws {
        let key = SigningKey(generating: .ed25519)
        let fixture = try HostFixture(trust: TrustBundle(keys: [TrustedKey(key: key.publicKey)]))
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        let staged = try await fixture.upload(bytes)
        await expectHostError(.signatureMissing, 400) { _ = try await fixture.host.finalize(FinalizeRequest(key: staged)) }
        await expectHostError(.signatureUnsupported, 400) {
            _ = try await fixture.host.finalize(FinalizeRequest(key: staged, signature: .init(text: "abc", algorithm: "x509")))
        }
        await expectHostError(.signatureMalformed, 400) {
            _ = try await fixture.host.finalize(FinalizeRequest(key: staged, signature: .init(text: "%%%", algorithm: "cosign")))
        }
        let stranger = SigningKey(generating: .ed25519)
        var hasher = ContentHasher()
        hasher.update(bytes)
        let foreign = try stranger.sign(digest: hasher.digest256, hash: hasher.finalize())
        let unknown = await expectHostError(.signatureUnknownKey, 400) {
            _ = try await fixture.host.finalize(FinalizeRequest(key: staged, signatures: [foreign]))
        }
        #expect(unknown?.details["keyId"] == stranger.publicKey.keyID)
        var forged = try key.sign(digest: hasher.digest256, hash: hasher.finalize())
        forged.signature[0] ^= 1
        await expectHostError(.signatureInvalid, 400) { _ = try await fixture.host.finalize(FinalizeRequest(key: staged, signatures: [forged])) }
        #expect(try await fixture.canonicalKeys().isEmpty)
        // The staging object survives refusals; a good signature then publishes it.
        let good = try key.sign(digest: hasher.digest256, hash: hasher.finalize())
        let result = try await fixture.host.finalize(FinalizeRequest(key: staged, signatures: [good]))
        #expect(try await fixture.registry.version(id: result.version.id)?.signerKeyIDs == [key.publicKey.keyID])
    }

    @Test func storeFailuresMapToAlgasServerErrors() async throws {
        let bytes = try makeBundle()
        for (fault, code): (FaultyStore.Fault, ErrorCode) in [
            (.head, .s3HeadFailed), (.get, .s3GetFailed), (.getNotFound, .objectNotFound), (.putManifest, .manifestStoreFailed),
        ] {
            let fixture = try HostFixture(wrapStore: { FaultyStore(base: $0, faults: [fault]) })
            defer { fixture.cleanup() }
            let key = "sha256/_staging/\(UUID().uuidString.lowercased())/bundle.tar.zst"
            try await fixture.objects.put(key, bytes: bytes)
            let error = await expectHostError(code, 500) { _ = try await fixture.host.finalize(FinalizeRequest(key: key)) }
            // At 500 and above the client sees a generic message and no details.
            let envelope = try JSONSerialization.jsonObject(with: Data(error?.envelope() ?? [])) as? [String: Any]
            #expect(envelope?["error"] as? String == "Failed to finalize extension bundle.")
            #expect(envelope?["details"] == nil)
            for ext in try await fixture.registry.extensions() { #expect(try await fixture.registry.versions(extensionID: ext.id).isEmpty) }
        }
    }
}

@Suite struct AbortTests {
    @Test func abortDeletesStagingOnlyWithAlgasResults() async throws {
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        let host = fixture.host
        await expectHostError(.badRequest, 400, "Missing or invalid 'key' (string required)") { _ = try await host.abort(key: nil) }
        await expectHostError(.badRequest, 400, "Invalid key: must start with 'sha256/'") { _ = try await host.abort(key: "tenants/t/_staging/x/bundle.tar.zst") }
        let result = try await fixture.publish(try makeBundle())
        #expect(try await host.abort(key: result.canonicalKey) == AbortResult(status: "noop", key: result.canonicalKey, area: "canonical"))
        #expect(try await fixture.objects.head(result.canonicalKey) != nil)
        let staged = try await fixture.upload(try makeBundle(seed: 2))
        #expect(try await host.abort(key: staged, reason: "cancelled") == AbortResult(status: "deleted", key: staged, area: "staging"))
        #expect(try await fixture.stagingKeys().isEmpty)
        // A missing staging object counts as deleted.
        #expect(try await host.abort(key: staged).status == "deleted")

        let failing = try HostFixture(wrapStore: { FaultyStore(base: $0, faults: [.delete]) })
        defer { failing.cleanup() }
        await expectHostError(.internalError, 500, "Failed to abort extension bundle upload.") { _ = try await failing.host.abort(key: staged) }
    }
}

/// A store whose HEAD under-reports sizes, so the cap is only discovered while hashing.
struct LyingHeadStore: ForwardingObjectStore {
    let base: any ObjectStore
    func head(_ key: String) async throws -> ObjectInfo? {
        try await base.head(key).map { ObjectInfo(key: $0.key, size: 1, etag: $0.etag, lastModified: $0.lastModified) }
    }
}
