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

@Suite struct PipelineTests {
    @Test(arguments: Backend.available, RegistryFixture.all)
    func publishInstallResolveAndUninstall(store: Backend, registry: RegistryFixture) async throws {
        let fixture = try HostFixture(store: store, registry: registry)
        defer { fixture.cleanup() }
        let host = fixture.host
        let bytes = try makeBundle()
        let hash = ContentHash.of(bytes)

        let upload = try await host.upload(
            UploadRequest(filename: "demo.tar.zst", size: Int64(bytes.count), declaredHash: hash), body: .bytes(bytes, chunkSize: 10_000))
        #expect(upload.upload.strategy == "staging")
        #expect(upload.upload.key.hasPrefix("sha256/_staging/") && upload.upload.key.hasSuffix("/bundle.tar.zst"))
        #expect(upload.size == Int64(bytes.count) && upload.declaredHash == hash.hex && upload.contentHash == hash)

        let result = try await host.finalize(FinalizeRequest(key: upload.upload.key, size: Int64(bytes.count), declaredHash: hash.hex))
        #expect(result.extension.name == "com.acme.demo" && result.extension.publisher == "Acme")
        #expect(result.version.version == "1.0.0")
        #expect(result.contentHash == hash.hex)
        #expect(result.canonicalKey == "sha256/\(hash.hex)/bundle.tar.zst")
        // Alga's JSON shape, exactly these keys.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(result)) as? [String: Any]
        #expect(Set(json?.keys ?? [:].keys) == ["extension", "version", "contentHash", "canonicalKey"])

        // The store: the canonical bytes, the manifest beside them, and no staging object left.
        #expect(try await fixture.objects.bytes(result.canonicalKey) == bytes)
        let manifest = try await fixture.objects.bytes("sha256/\(hash.hex)/manifest.json")
        #expect(String(decoding: manifest, as: UTF8.self).contains("com.acme.demo"))
        #expect(try await fixture.stagingKeys().isEmpty)

        // The registry: a normalised, immutable version.
        let version = try #require(try await fixture.registry.version(id: result.version.id))
        #expect(version.contentHash == hash && version.size == Int64(bytes.count))
        #expect(version.endpoints == [EndpointRecord(method: "GET", path: "/api/status", handler: "dist/main")])
        #expect(version.ui == UIRecord(type: "iframe", entry: "ui/index.html", appMenuLabel: "Demo"))
        #expect(version.mainEntry == "ui/index.html")
        #expect(version.signerKeyIDs.isEmpty)
        #expect(try await fixture.registry.latestBundle(versionID: version.id)?.storageKey == result.canonicalKey)

        // Install by slug: capabilities normalised, unknown dropped, defaults added.
        let install = try await host.install("acme.com.acme.demo", tenant: "t1")
        #expect(install.grantedCapabilities == ["cap:context.read", "cap:http.fetch", "cap:log.emit", "cap:user.read"])
        #expect(install.isEnabled && install.status == .enabled)
        #expect(try await fixture.registry.installConfig(installID: install.id)?.providers == install.grantedCapabilities)
        #expect(try await host.resolve(result.extension.id, tenant: "t1").contentHash == hash)
        #expect(try await host.validateInstall(tenant: "t1", extension: result.extension.id, hash: hash.prefixed.uppercased().replacingOccurrences(of: "SHA256:", with: "sha256:")))
        #expect(try await host.validateInstall(tenant: "t1", extension: result.extension.id, hash: hash.hex))
        #expect(try await host.validateInstall(tenant: "t1", extension: result.extension.id, hash: ContentHash.of([1]).hex) == false)
        #expect(try await host.validateInstall(tenant: "t2", extension: result.extension.id, hash: hash.hex) == false)

        // Disable flips isEnabled only; a disabled install does not resolve or validate.
        let disabled = try await host.setEnabled(result.extension.id, tenant: "t1", false)
        #expect(!disabled.isEnabled && disabled.status == .enabled && disabled.versionID == install.versionID)
        await expectHostError(.installDisabled, 403) { _ = try await host.resolve(result.extension.id, tenant: "t1") }
        #expect(try await host.validateInstall(tenant: "t1", extension: result.extension.id, hash: hash.hex) == false)
        try await host.setEnabled(result.extension.id, tenant: "t1", true)

        // A second version; update switches the install, keeping its flags.
        let next = try await fixture.publish(try makeBundle(version: "1.1.0", capabilities: ["cap:storage.kv"], seed: 2))
        let updated = try await host.update(result.extension.id, tenant: "t1")
        #expect(updated.id == install.id && updated.versionID == next.version.id)
        #expect(updated.grantedCapabilities == ["cap:context.read", "cap:storage.kv", "cap:log.emit", "cap:user.read"])
        #expect(try await host.resolve("ACME.com.acme.demo", tenant: "t1").contentHash.hex == next.contentHash)
        let listing = try await host.listVersions(result.extension.id, tenant: "t1")
        #expect(listing.map(\.version) == ["1.1.0", "1.0.0"])
        #expect(listing.map(\.installed) == [true, false])
        #expect(listing.last?.contentHash == hash.prefixed)

        // Uninstall removes the install, never the content-addressed objects.
        try await host.uninstall(result.extension.id, tenant: "t1")
        await expectHostError(.installNotFound, 404) { _ = try await host.resolve(result.extension.id, tenant: "t1") }
        await expectHostError(.installNotFound, 404) { try await host.uninstall(result.extension.id, tenant: "t1") }
        #expect(try await fixture.objects.head(result.canonicalKey) != nil)
        await expectHostError(.extensionNotFound, 404) { _ = try await host.install("nobody.nothing", tenant: "t1") }
        await expectHostError(.versionNotFound, 404, "Version not found") { _ = try await host.install(result.extension.id, tenant: "t1", version: "9.9.9") }
    }

    @Test(arguments: RegistryFixture.all)
    func wildcardVersionsResolveAgainstTheRegistry(registry: RegistryFixture) async throws {
        let fixture = try HostFixture(registry: registry)
        defer { fixture.cleanup() }
        #expect(try await fixture.publish(try makeBundle(version: "1.2.*", seed: 1)).version.version == "1.2.0")
        #expect(try await fixture.publish(try makeBundle(version: "1.2.*", seed: 2)).version.version == "1.2.1")
        _ = try await fixture.publish(try makeBundle(version: "1.2.4", seed: 3))
        _ = try await fixture.publish(try makeBundle(version: "1.2.10-beta", seed: 4))
        _ = try await fixture.publish(try makeBundle(version: "1.3.0", seed: 5))
        #expect(try await fixture.publish(try makeBundle(version: "1.2.*", seed: 6)).version.version == "1.2.5")
        #expect(try await fixture.publish(try makeBundle(version: "2.0.*", seed: 7)).version.version == "2.0.0")
        // The same bytes under a wildcard get a new version (their object is stored once).
        let again = try await fixture.publish(try makeBundle(version: "1.2.*", seed: 6))
        #expect(again.version.version == "1.2.6")
        #expect(try await fixture.canonicalKeys().filter { $0.hasSuffix("bundle.tar.zst") }.count == 7)
    }

    @Test(arguments: RegistryFixture.all)
    func signedBundlesRecordTheirSigners(registry: RegistryFixture) async throws {
        let key = SigningKey(generating: .ecdsaP256SHA256)
        let fixture = try HostFixture(registry: registry, trust: TrustBundle(keys: [TrustedKey(key: key.publicKey)]))
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        var hasher = ContentHasher()
        hasher.update(bytes)
        let signature = try key.sign(digest: hasher.digest256, hash: hasher.finalize())
        // cosign's form: bare base64 DER.
        let result = try await fixture.publish(
            bytes, signature: .init(text: Data(signature.signature).base64EncodedString(), algorithm: "cosign"))
        let version = try await fixture.registry.version(id: result.version.id)
        #expect(version?.signerKeyIDs == [key.publicKey.keyID])
        #expect(try await fixture.registry.latestBundle(versionID: result.version.id)?.signature?.contains("ecdsa-p256-sha256") == true)
    }
}
