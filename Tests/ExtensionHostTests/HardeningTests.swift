import BundleArchive
import BundleCore
import BundleStore
import BundleVerify
import ExtensionHost
import Foundation
import ManifestV2
import RegistryV2
import RegistryV2SQLite
import RunnerCache
import StoreTestSupport
import Testing
import TestSupport

/// The host-side defects of issue 10: numbers that trapped, squatted slugs, publishers bound to
/// keys, capped upload sessions, Alga's texts, and signatures that reach the runner.
@Suite struct HostHardeningTests {
    @Test(arguments: ["9223372036854775807", "9223372036854775808", "1e300", "1.7976931348623157e308", "18446744073709551616"])
    func hugeFinalizeSizesAreRefusedByTheCap(size: String) async throws {
        let request = try FinalizeRequest.parse(Array(#"{"key":"sha256/_staging/x/bundle.tar.zst","size":\#(size)}"#.utf8))
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        await expectHostError(.badRequest, 400, "size exceeds maximum of 209715200 bytes") { _ = try await fixture.host.finalize(request) }
        // The upload route's size and content-length parameters likewise.
        await expectHostError(.badRequest, 400, "size exceeds maximum of 209715200 bytes") {
            _ = try await fixture.host.upload(UploadRequest(filename: "b", size: size), body: .bytes([1]))
        }
        await expectHostError(.badRequest, 400, "content-length header does not match size param") {
            _ = try await fixture.host.upload(UploadRequest(filename: "b", size: "10", contentLength: size), body: .bytes([1]))
        }
    }

    @Test func finalizeBodiesAreReadAsJSONParseReadsThem() throws {
        for (body, message) in [
            (#"{"key":"k","size":true}"#, "size must be a positive number"),
            (#"{"key":"k","size":"12"}"#, "size must be a positive number"),
            (#"{"key":"k","size":-0}"#, "size must be a positive number"),
            (#"{"key":"k","declaredHash":12}"#, "declaredHash must be 64-char lowercase hex sha256"),
            ("[]", "Body must be a JSON object"),
            ("{", "Invalid JSON body"),
        ] {
            #expect(throws: HostError.self, "\(body)") { try FinalizeRequest.parse(Array(body.utf8)) }
            #expect((try? FinalizeRequest.parse(Array(body.utf8))) == nil)
            do { _ = try FinalizeRequest.parse(Array(body.utf8)) } catch { #expect(error.message == message, "\(body)") }
        }
        // A repeated key: the last one, as in JavaScript.
        #expect(try FinalizeRequest.parse(Array(#"{"key":"a","key":"b"}"#.utf8)).key == "b")
    }

    @Test func aWildcardAfterAHugePatchResolvesToTheNextOne() async throws {
        let fixture = try HostFixture(registry: .sqlite)
        defer { fixture.cleanup() }
        _ = try await fixture.publish(try makeBundle(version: "1.2.9223372036854775807", seed: 1))
        let next = try await fixture.publish(try makeBundle(version: "1.2.*", seed: 2))
        #expect(next.version.version == "1.2.9223372036854775808")
        let again = try await fixture.publish(try makeBundle(version: "1.2.*", seed: 3))
        #expect(again.version.version == "1.2.9223372036854775809")
    }

    @Test func anInvalidManifestSaysWhatAlgaSays() async throws {
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        let error = await expectHostError(.invalidManifest, 400, "Invalid manifest") {
            _ = try await fixture.publish(try makeBundle(manifest: #"{"name":"","version":"x","runtime":"wasm-js@1"}"#))
        }
        #expect(error?.issues.map(\.path) == ["name", "version"])
        let envelope = try JSONSerialization.jsonObject(with: Data(error?.envelope() ?? [])) as? [String: Any]
        #expect(envelope?["error"] as? String == "Invalid manifest")
        #expect(((envelope?["details"] as? [String: Any])?["issues"] as? [Any])?.count == 2)
    }

    @Test(arguments: RegistryFixture.all)
    func aSlugBelongsToItsFirstPublisher(registry: RegistryFixture) async throws {
        let fixture = try HostFixture(registry: registry)
        defer { fixture.cleanup() }
        let first = try await fixture.publish(try makeBundle(name: "pay", publisher: "ACME", seed: 1))
        for (publisher, name) in [("acme", "pay"), ("Acme", "PAY"), ("ACME.pay", "")] where !name.isEmpty {
            let error = await expectHostError(.extensionSlugConflict, 409) {
                _ = try await fixture.publish(try makeBundle(name: name, publisher: publisher, seed: 2))
            }
            #expect(error?.details["slug"] == "acme.pay")
        }
        // The owner publishes on, and `acme.pay` keeps naming its extension.
        _ = try await fixture.publish(try makeBundle(name: "pay", publisher: "ACME", version: "1.0.1", seed: 3))
        #expect(try await fixture.host.findExtension("acme.pay").id == first.extension.id)
        #expect(try await fixture.host.findExtension("ACME/pay").id == first.extension.id)
        #expect(try await fixture.canonicalKeys().filter { $0.hasSuffix("/bundle.tar.zst") }.count == 2)

        // Spellings that look the same are one slug: `é` as one code point, then as e + U+0301.
        let composed = try await fixture.publish(try makeBundle(name: "pay", publisher: "Acm\u{E9}", seed: 4))
        for (publisher, name) in [("acme\u{301}", "pay"), ("ACME\u{301}", "pay"), ("acm\u{E9}", "pay")] {
            let error = await expectHostError(.extensionSlugConflict, 409) {
                _ = try await fixture.publish(try makeBundle(name: name, publisher: publisher, seed: 5))
            }
            #expect(error?.details["slug"].map { Array($0.utf8) } == Array("acm\u{E9}.pay".utf8))
        }
        #expect(try await fixture.host.findExtension("acme\u{301}.pay").id == composed.extension.id)

        // Dots: `acme.pay2` + `x` would share the slug `acme.pay2.x` with `acme` + `pay2.x`. A
        // publisher owns the slugs under its own: a new publisher inside its namespace is refused.
        for publisher in ["acme.pay2", "ACME.deep.er", "Acm\u{E9}.x"] {
            let error = await expectHostError(.extensionSlugConflict, 409) {
                _ = try await fixture.publish(try makeBundle(name: "x", publisher: publisher, seed: 6))
            }
            #expect(error?.details["owner"] != nil, "\(publisher)")
        }
        #expect(try await fixture.registry.extensions().count == 2)
        // Its owner may use it, and names that merely start alike are other publishers.
        _ = try await fixture.publish(try makeBundle(name: "pay2.x", publisher: "acme", seed: 7))
        _ = try await fixture.publish(try makeBundle(name: "x", publisher: "acmex.pay", seed: 8))
        #expect(try await fixture.host.findExtension("acme.pay2.x").publisher == "acme")
    }

    @Test func anAmbiguousSlugNamesItsCandidates() async throws {
        // A registry written before slugs were unique: two extensions share one.
        let folder = try TestSupport.makeTemporaryDirectory("legacy")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/registry.sqlite"
        try SQLiteRegistryBackend(path: path).close()
        try TestSupport.sh(
            """
            python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
            c.execute(\\"insert into extension_registry (id,publisher,name,slug,created_at,updated_at) values ('00000000-0000-0000-0000-000000000001','ACME','pay','acme.pay',1,1)\\"); \
            c.execute(\\"insert into extension_registry (id,publisher,name,slug,created_at,updated_at) values ('00000000-0000-0000-0000-000000000002','acme','pay','acme.pay',2,2)\\"); c.commit()" '\(path)'
            """)
        let host = ExtensionHost(store: try BundleStore(objects: InMemoryObjectStore()), registry: try SQLiteRegistryBackend(path: path))
        let error = await expectHostError(.extensionAmbiguous, 409) { _ = try await host.findExtension("acme.pay") }
        #expect(error?.details["candidates"]?.contains("ACME/pay") == true && error?.details["candidates"]?.contains("acme/pay") == true)
        #expect(try await host.findExtension("acme/pay").id == "00000000-0000-0000-0000-000000000002")
        #expect(try await host.findExtension("00000000-0000-0000-0000-000000000001").publisher == "ACME")
    }

    /// A permissive host lets an override register Mallory's archive as acme's; a runner under a
    /// trust bundle judges the publisher it was registered under too (the stored manifest.json),
    /// so Mallory's key does not vouch for it there.
    @Test func aRunnerJudgesThePublisherTheBundleWasRegisteredUnder() async throws {
        let key = SigningKey(generating: .ed25519)
        let fixture = try HostFixture()  // permissive: no trust bundle
        defer { fixture.cleanup() }
        func publish(_ seed: UInt64, manifestJson: String?) async throws -> ContentHash {
            let bytes = try makeBundle(name: "com.x.pay", publisher: "Mallory", version: "1.0.\(seed)", seed: seed)
            var hasher = ContentHasher()
            hasher.update(bytes)
            let signature = try key.sign(digest: hasher.digest256, hash: hasher.finalize())
            let staged = try await fixture.upload(bytes)
            _ = try await fixture.host.finalize(FinalizeRequest(key: staged, manifestJson: manifestJson, signatures: [signature]))
            return ContentHash.of(bytes)
        }
        let own = try await publish(1, manifestJson: nil)
        let overridden = try await publish(
            2, manifestJson: #"{"name":"com.x.pay2","publisher":"acme","version":"1.0.2","runtime":"wasm-js@1","capabilities":[]}"#)
        let folder = try TestSupport.makeTemporaryDirectory("runner-publisher")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trust = try TrustBundle(material: #"{"keys":[{"publicKey":\#(String(reflecting: key.publicKey.pem)),"publishers":["mallory"]}]}"#)
        let cache = try DiskModuleCache(
            root: folder + "/cache", store: try BundleStore(objects: fixture.objects), verifier: StreamingBundleVerifier(trust: trust))
        #expect(try await cache.ensureUiCached(own).hasIndex)
        let refused = await #expect(throws: CacheError.self) { _ = try await cache.ensureUiCached(overridden) }
        #expect(refused?.underlyingCode == "SIGNATURE_PUBLISHER_MISMATCH", "\(String(describing: refused))")
        #expect(TestSupport.listing(folder + "/cache") == [".extbundles-cache", own.hex])
    }

    @Test(arguments: RegistryFixture.all)
    func controlCharactersNeverEnterAnIdentity(registry: RegistryFixture) async throws {
        let fixture = try HostFixture(registry: registry)
        defer { fixture.cleanup() }
        _ = try await fixture.publish(try makeBundle(name: "pay", publisher: "acme", seed: 1))
        // As JSON escapes in manifest.json (the text makeBundle writes is JSON).
        for (publisher, name, path) in [(#"acme\u0000evil"#, "pay", "publisher"), ("acme", #"pay\u0000x"#, "name"), (#"ac\u001b[2Kme"#, "pay", "publisher"), ("acme", #"p\nay"#, "name")] {
            let error = await expectHostError(.invalidManifest, 400, "Invalid manifest") {
                _ = try await fixture.publish(try makeBundle(name: name, publisher: publisher, version: "2.0.0", seed: 2))
            }
            #expect(error?.issues.map(\.path) == [path], "\(publisher.debugDescription) \(name.debugDescription)")
        }
        #expect(try await fixture.registry.extensions().map(\.slug) == ["acme.pay"])
        #expect(try await fixture.host.findExtension("acme.pay").id == (try await fixture.registry.extensions()[0].id))
    }

    @Test func aKeyBoundToAPublisherCannotPublishForAnother() async throws {
        let key = SigningKey(generating: .ed25519)
        let trust = try TrustBundle(material: #"{"keys":[{"publicKey":\#(String(reflecting: key.publicKey.pem)),"publishers":["acme"]}]}"#)
        let fixture = try HostFixture(trust: trust)
        defer { fixture.cleanup() }
        for publisher in ["Mallory", "acme"] {
            let bytes = try makeBundle(name: "com.x.\(publisher.lowercased())", publisher: publisher, seed: 5)
            var hasher = ContentHasher()
            hasher.update(bytes)
            let signature = try key.sign(digest: hasher.digest256, hash: hasher.finalize())
            let staged = try await fixture.upload(bytes)
            if publisher == "Mallory" {
                let error = await expectHostError(.signaturePublisherMismatch, 400) {
                    _ = try await fixture.host.finalize(FinalizeRequest(key: staged, signatures: [signature]))
                }
                #expect(error?.details["keyId"] == key.publicKey.keyID)
                // A manifestJson naming acme does not launder an archive whose own manifest (what
                // runners judge) names Mallory: the key must allow both publishers.
                let acmeManifest = #"{"name":"com.x.mallory","publisher":"acme","version":"1.0.0","runtime":"wasm-js@1","capabilities":[]}"#
                let laundered = await expectHostError(.signaturePublisherMismatch, 400) {
                    _ = try await fixture.host.finalize(FinalizeRequest(key: staged, manifestJson: acmeManifest, signatures: [signature]))
                }
                #expect(laundered?.details["expected"]?.contains("'Mallory'") == true)
                #expect(try await fixture.canonicalKeys().isEmpty)
                // The other way round: an acme archive registered as Mallory's.
                let acmeBytes = try makeBundle(name: "com.x.other", publisher: "acme", seed: 6)
                var acmeHasher = ContentHasher()
                acmeHasher.update(acmeBytes)
                let acmeSignature = try key.sign(digest: acmeHasher.digest256, hash: acmeHasher.finalize())
                let malloryManifest = #"{"name":"com.x.other","publisher":"Mallory","version":"1.0.0","runtime":"wasm-js@1","capabilities":[]}"#
                let stagedAcme = try await fixture.upload(acmeBytes)
                await expectHostError(.signaturePublisherMismatch, 400) {
                    _ = try await fixture.host.finalize(FinalizeRequest(key: stagedAcme, manifestJson: malloryManifest, signatures: [acmeSignature]))
                }
                #expect(try await fixture.canonicalKeys().isEmpty)
            } else {
                let result = try await fixture.host.finalize(FinalizeRequest(key: staged, signatures: [signature]))
                #expect(try await fixture.registry.version(id: result.version.id)?.signerKeyIDs == [key.publicKey.keyID])
            }
        }
    }

    @Test(arguments: Backend.available)
    func uploadSessionsAreCappedLikeEveryUpload(store backend: Backend) async throws {
        let fixture = try HostFixture(store: backend, configuration: .init(maxBundleBytes: 1_000))
        defer { fixture.cleanup() }
        let host = ExtensionHost(
            store: try BundleStore(objects: fixture.objects, configuration: .init(maxBundleBytes: 1_000)), registry: fixture.registry,
            configuration: .init(maxBundleBytes: 1_000))
        // Growing past the cap piece by piece: 413, and the whole session is gone.
        let session = try await host.createUpload()
        #expect(try await host.appendUpload(session.uploadId, offset: 0, body: .bytes([UInt8](repeating: 1, count: 600))).offset == 600)
        await expectHostError(.bundleTooLarge, 413) {
            _ = try await host.appendUpload(session.uploadId, offset: 600, body: .bytes([UInt8](repeating: 2, count: 600)))
        }
        #expect(try await fixture.stagingKeys().isEmpty)
        await expectHostError(.uploadNotFound, 404) { _ = try await host.uploadStatus(session.uploadId) }
        // A declared length past the cap is refused before any byte is read; unknown lengths as they stream.
        for length in [Int64(1_001), nil] {
            let other = try await host.createUpload()
            await expectHostError(.bundleTooLarge, 413) {
                _ = try await host.appendUpload(other.uploadId, offset: 0, body: .bytes([UInt8](repeating: 3, count: 1_001), chunkSize: 100), length: length)
            }
            #expect(try await fixture.stagingKeys().isEmpty)
        }
        // Within the cap a session commits to a staging key that finalize takes.
        let bytes = try makeBundle(seed: 9)
        let big = ExtensionHost(store: try BundleStore(objects: fixture.objects), registry: fixture.registry)
        let good = try await big.createUpload()
        let half = bytes.count / 2
        _ = try await big.appendUpload(good.uploadId, offset: 0, body: .bytes(Array(bytes[..<half])))
        await expectHostError(.uploadOffsetMismatch, 409) { _ = try await big.appendUpload(good.uploadId, offset: 1, body: .bytes([0])) }
        _ = try await big.appendUpload(good.uploadId, offset: Int64(half), body: .bytes(Array(bytes[half...])))
        let committed = try await big.commitUpload(good.uploadId, filename: "b.tar.zst", size: Int64(bytes.count), declaredHash: ContentHash.of(bytes).hex)
        _ = try await big.finalize(FinalizeRequest(key: committed.upload.key, size: Int64(bytes.count)))
    }

    @Test(arguments: Backend.available)
    func uploadSessionsAreCappedByTheHostsLimitToo(store backend: Backend) async throws {
        // The store has no cap of its own (or a larger one): the host's 1,000 bytes still hold.
        for storeCap in [Int64?.none, 5_000] {
            let fixture = try HostFixture(store: backend)
            defer { fixture.cleanup() }
            let host = ExtensionHost(
                store: try BundleStore(objects: fixture.objects, configuration: .init(maxBundleBytes: storeCap)), registry: fixture.registry,
                configuration: .init(maxBundleBytes: 1_000))
            for length in [Int64(1_200), nil] {
                let session = try await host.createUpload()
                #expect(try await host.appendUpload(session.uploadId, offset: 0, body: .bytes([UInt8](repeating: 1, count: 600))).offset == 600)
                await expectHostError(.bundleTooLarge, 413) {
                    _ = try await host.appendUpload(
                        session.uploadId, offset: 600, body: .bytes([UInt8](repeating: 2, count: 600), chunkSize: 100),
                        length: length.map { $0 - 600 })
                }
                #expect(try await fixture.stagingKeys().isEmpty)
            }
        }
    }

    @Test func aCommitRetriedThroughTheHostKeepsTheStagedBundle() async throws {
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        let bytes = try makeBundle(seed: 12)
        let session = try await fixture.host.createUpload()
        _ = try await fixture.host.appendUpload(session.uploadId, offset: 0, body: .bytes(bytes))
        let first = try await fixture.host.commitUpload(session.uploadId, filename: "b.tar.zst", size: Int64(bytes.count))
        let again = try await fixture.host.commitUpload(session.uploadId, filename: "b.tar.zst")
        #expect(again.upload.key == first.upload.key)
        _ = try await fixture.host.finalize(FinalizeRequest(key: again.upload.key, size: Int64(bytes.count)))
    }

    @Test func aWildcardRetryDoesNotCopyOrHashTheBundleAgain() async throws {
        // Another publisher takes the resolved version between resolution and the insert.
        let copies = LockedValue(0)
        let gets = LockedValue(0)
        let fixture = try HostFixture(
            wrapStore: { CountingCopies(base: $0, copies: copies, gets: gets) },
            wrapRegistry: { base in
                InterruptedRegistry(base, failures: 0) { taken in
                    let rival = VersionRecord(
                        extensionID: taken.extensionID, version: taken.version, runtime: "wasm-js@1", contentHash: ContentHash.of([9]), size: 1)
                    try await base.insertVersion(rival, bundle: BundleRecord(versionID: rival.id, contentHash: rival.contentHash, size: 1))
                }
            })
        defer { fixture.cleanup() }
        let result = try await fixture.publish(try makeBundle(version: "2.0.*", seed: 4))
        #expect(result.version.version == "2.0.1", "re-resolved past the version the rival took")
        #expect(copies.withLock { $0 } == 1, "the canonical copy happened once")
        #expect(gets.withLock { $0 } == 1, "the staged bytes were read once (no re-hash of the canonical object)")
    }

    @Test func resolvingAContentHashIsCachedBrieflyAndClearedByLocalChanges() async throws {
        let clock = LockedValue(Date(timeIntervalSince1970: 1_800_000_000))
        let fixture = try HostFixture(registry: .sqlite)
        defer { fixture.cleanup() }
        let host = ExtensionHost(
            store: fixture.host.store, registry: fixture.registry, configuration: .init(resolveCacheTTL: 0.25), now: { clock.withLock { $0 } })
        // Another process (another host on the same registry) changes installs behind it.
        let other = ExtensionHost(store: fixture.host.store, registry: fixture.registry)
        let published = try await fixture.publish(try makeBundle(seed: 12))
        let id = published.extension.id
        await expectHostError(.installNotFound, 404) { _ = try await host.resolveContentHash(id, tenant: "t") }
        try await other.install(id, tenant: "t")
        // A refusal is remembered for the TTL too, then read again.
        await expectHostError(.installNotFound, 404) { _ = try await host.resolveContentHash(id, tenant: "t") }
        clock.withLock { $0 += 0.3 }
        let hash = try await host.resolveContentHash(id, tenant: "t")
        #expect(hash.hex == published.contentHash)
        try await other.setEnabled(id, tenant: "t", false)
        #expect(try await host.resolveContentHash(id, tenant: "t") == hash, "within the TTL the answer may be stale")
        clock.withLock { $0 += 0.3 }
        await expectHostError(.installDisabled, 403) { _ = try await host.resolveContentHash(id, tenant: "t") }
        // This host's own changes apply at once.
        try await host.setEnabled(id, tenant: "t", true)
        #expect(try await host.resolveContentHash(id, tenant: "t") == hash)
        try await host.uninstall(id, tenant: "t")
        await expectHostError(.installNotFound, 404) { _ = try await host.resolveContentHash(id, tenant: "t") }
        // The same answers without the cache, by slug and by id.
        try await host.install(id, tenant: "t")
        #expect(try await host.resolveContentHashUncached("acme.com.acme.demo", tenant: "t") == hash)
        #expect(try await host.resolve(id, tenant: "t").contentHash == hash)
    }

    @Test func theHostNeverCallsTheObjectStore() throws {
        let folder = TestSupport.repositoryRoot.appendingPathComponent("Sources/ExtensionHost").path
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) where name.hasSuffix(".swift") {
            let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
            #expect(!text.contains(".objects"), "\(name) reaches through BundleStore to its ObjectStore")
            #expect(!text.contains("ObjectStore"), "\(name) names ObjectStore")
        }
    }
}

/// Signatures accepted at finalize reach the runner: `bundle.sig` beside the bundle, read by a
/// cache fill under a trust bundle, on every store backend.
@Suite struct SignaturesReachTheRunnerTests {
    @Test(arguments: Backend.available)
    func aFillUnderATrustBundleChecksThePublishedSignatures(store backend: Backend) async throws {
        let key = SigningKey(generating: .ecdsaP256SHA256)
        let stranger = SigningKey(generating: .ed25519)
        let fixture = try HostFixture(store: backend)  // a permissive publisher host
        defer { fixture.cleanup() }
        func sign(_ bytes: [UInt8], _ keys: [SigningKey]) throws -> [DetachedSignature] {
            var hasher = ContentHasher()
            hasher.update(bytes)
            return try keys.map { try $0.sign(digest: hasher.digest256, hash: hasher.finalize()) }
        }
        func publish(_ seed: UInt64, _ keys: [SigningKey]) async throws -> ContentHash {
            let bytes = try makeBundle(version: "1.0.\(seed)", seed: seed)
            let staged = try await fixture.upload(bytes)
            _ = try await fixture.host.finalize(FinalizeRequest(key: staged, signatures: try sign(bytes, keys)))
            return ContentHash.of(bytes)
        }
        let signed = try await publish(1, [key])
        let unsigned = try await publish(2, [])
        let foreign = try await publish(3, [stranger])
        let store = try BundleStore(objects: fixture.objects)
        #expect(try await store.sideObject(.signatures, of: signed, limit: 1 << 20) != nil)
        #expect(try await store.sideObject(.signatures, of: unsigned, limit: 1 << 20) == nil)

        let folder = try TestSupport.makeTemporaryDirectory("runner-trust")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trusted = StreamingBundleVerifier(trust: TrustBundle(keys: [TrustedKey(key: key.publicKey)]))
        let cache = try DiskModuleCache(root: folder + "/cache", store: store, verifier: trusted)
        #expect(try await cache.ensureUiCached(signed).hasIndex)
        for (hash, code) in [(unsigned, "SIGNATURE_MISSING"), (foreign, "SIGNATURE_UNKNOWN_KEY")] {
            let error = await #expect(throws: CacheError.self) { try await cache.ensureUiCached(hash) }
            #expect(error?.code == .cacheSignatureRefused)
            #expect(error?.underlyingCode == code)
        }
        #expect(TestSupport.listing(folder + "/cache") == [".extbundles-cache", signed.hex])
        // Revoked after publishing: a fresh runner refuses the bundle it once served.
        let revoked = StreamingBundleVerifier(trust: TrustBundle(keys: [TrustedKey(key: key.publicKey, status: .revoked)]))
        let later = try DiskModuleCache(root: folder + "/later", store: store, verifier: revoked)
        let error = await #expect(throws: CacheError.self) { try await later.ensureModuleCached(signed) }
        #expect(error?.underlyingCode == "SIGNATURE_KEY_REVOKED")
        #expect(TestSupport.listing(folder + "/later") == [".extbundles-cache"])
        // The UI answer for it is a 502 that is never cached.
        let response = await UIAssetResponder(cache: later).respond(to: AssetRequest(extensionID: "x", contentHash: signed.prefixed, path: ""))
        #expect(response.status == 502)
        #expect(response.header("Cache-Control") == "no-store")

        // Validity windows are judged at the publish time (when `bundle.sig` was written), not at
        // the fill: a key retired after publishing still vouches for what it signed while valid,
        // and one that only became valid later never does. (S3 dates have whole seconds.)
        try await Task.sleep(for: .milliseconds(1_500))
        let afterPublishing = Date().addingTimeInterval(-0.2)
        let retired = StreamingBundleVerifier(trust: TrustBundle(keys: [TrustedKey(key: key.publicKey, notAfter: afterPublishing)]))
        let retiredCache = try DiskModuleCache(root: folder + "/retired", store: store, verifier: retired)
        #expect(try await retiredCache.ensureUiCached(signed).hasIndex)
        let early = StreamingBundleVerifier(trust: TrustBundle(keys: [TrustedKey(key: key.publicKey, notBefore: afterPublishing)]))
        let earlyCache = try DiskModuleCache(root: folder + "/early", store: store, verifier: early)
        let notYet = await #expect(throws: CacheError.self) { try await earlyCache.ensureModuleCached(signed) }
        #expect(notYet?.underlyingCode == "SIGNATURE_KEY_EXPIRED")
        #expect(TestSupport.listing(folder + "/early") == [".extbundles-cache"])
    }
}

/// Counts canonical copies and reads of bundles.
struct CountingCopies: ForwardingObjectStore {
    let base: any ObjectStore
    let copies: LockedValue<Int>
    let gets: LockedValue<Int>

    func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo {
        copies.withLock { $0 += 1 }
        return try await base.copy(from: source, to: destination, condition: condition, sourceETag: sourceETag)
    }

    func get(_ key: String, range: ByteRange?) async throws -> ObjectBody {
        if key.hasSuffix("/bundle.tar.zst") { gets.withLock { $0 += 1 } }
        return try await base.get(key, range: range)
    }
}
