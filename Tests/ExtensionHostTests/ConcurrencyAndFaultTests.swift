import BundleCore
import BundleStore
import ExtensionHost
import Foundation
import RegistryV2
import StoreTestSupport
import Testing
import TestSupport

@Suite struct ConcurrencyTests {
    @Test(arguments: Backend.available, RegistryFixture.all)
    func twoFinalizesOfOneVersionWithDifferentBytesGiveOneSuccess(store: Backend, registry: RegistryFixture) async throws {
        let fixture = try HostFixture(store: store, registry: registry)
        defer { fixture.cleanup() }
        let first = try makeBundle(version: "3.0.0", seed: 11)
        let second = try makeBundle(version: "3.0.0", seed: 12)
        #expect(first != second)
        let keys = [try await fixture.upload(first), try await fixture.upload(second)]
        let outcomes = await withTaskGroup(of: Result<FinalizeResult, HostError>.self) { group in
            for key in keys {
                group.addTask {
                    do {
                        return .success(try await fixture.host.finalize(FinalizeRequest(key: key)))
                    } catch let error as HostError {
                        return .failure(error)
                    } catch {
                        return .failure(HostError(.internalError, status: 0, "\(error)"))
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let successes = outcomes.compactMap { try? $0.get() }
        let failures = outcomes.compactMap { outcome -> HostError? in
            if case .failure(let error) = outcome { return error }
            return nil
        }
        #expect(successes.count == 1)
        #expect(failures.map(\.code) == [.extensionVersionAlreadyExists])
        #expect(failures.map(\.status) == [409])
        let ext = try #require(successes.first?.extension.id)
        #expect(try await fixture.registry.versions(extensionID: ext).count == 1)
    }

    @Test(arguments: Backend.available)
    func sixtyFourFinalizesOfIdenticalBytesMakeOneCanonicalObject(store: Backend) async throws {
        let fixture = try HostFixture(store: store, registry: .sqlite)
        defer { fixture.cleanup() }
        let bytes = try makeBundle(seed: 21)
        var keys: [String] = []
        for _ in 0..<64 { keys.append(try await fixture.upload(bytes)) }
        let results = try await withThrowingTaskGroup(of: FinalizeResult.self) { group in
            for (index, key) in keys.enumerated() {
                group.addTask {
                    let manifest = #"{"name":"com.acme.same","publisher":"Acme","version":"1.0.\#(index)","runtime":"wasm-js@1"}"#
                    return try await fixture.host.finalize(FinalizeRequest(key: key, manifestJson: manifest))
                }
            }
            return try await group.reduce(into: [FinalizeResult]()) { $0.append($1) }
        }
        #expect(results.count == 64)
        #expect(Set(results.map(\.version.version)).count == 64)
        #expect(Set(results.map(\.canonicalKey)).count == 1)
        let bundles = try await fixture.canonicalKeys().filter { $0.hasSuffix("/bundle.tar.zst") }
        #expect(bundles == ["sha256/\(ContentHash.of(bytes).hex)/bundle.tar.zst"])
        #expect(try await fixture.stagingKeys().isEmpty)
        #expect(try await fixture.objects.bytes(bundles[0]) == bytes)
    }
}

@Suite struct FaultTests {
    @Test(arguments: RegistryFixture.all)
    func aFailedCanonicalCopyLeavesNoVersion(registry: RegistryFixture) async throws {
        let fixture = try HostFixture(registry: registry, wrapStore: { FaultyStore(base: $0, faults: [.copy]) })
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        let key = try await fixture.upload(bytes)
        await expectHostError(.canonicalCopyFailed, 500) { _ = try await fixture.host.finalize(FinalizeRequest(key: key)) }
        let ext = try await fixture.registry.extensionRecord(publisher: "Acme", name: "com.acme.demo")
        if let ext { #expect(try await fixture.registry.versions(extensionID: ext.id).isEmpty) }
        #expect(try await fixture.canonicalKeys().isEmpty)
        // The staging object is kept, so the publisher can retry.
        #expect(try await fixture.stagingKeys() == [key])
    }

    @Test(arguments: RegistryFixture.all)
    func aCopyThatReportsSuccessButLeavesNothingIsCaught(registry: RegistryFixture) async throws {
        let fixture = try HostFixture(registry: registry, wrapStore: { FaultyStore(base: $0, faults: [.copyDoesNothing]) })
        defer { fixture.cleanup() }
        let key = try await fixture.upload(try makeBundle())
        await expectHostError(.canonicalMissing, 500) { _ = try await fixture.host.finalize(FinalizeRequest(key: key)) }
        #expect(try await fixture.registry.extensions().count <= 1)
        for ext in try await fixture.registry.extensions() { #expect(try await fixture.registry.versions(extensionID: ext.id).isEmpty) }
    }

    @Test(arguments: Backend.available, RegistryFixture.all)
    func aFinalizeInterruptedBetweenCopyAndRegistryWriteCompletesOnRetry(store: Backend, registry: RegistryFixture) async throws {
        let fixture = try HostFixture(store: store, registry: registry, wrapRegistry: { InterruptedRegistry($0) })
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        let key = try await fixture.upload(bytes)
        await expectHostError(.registryFailed, 500) { _ = try await fixture.host.finalize(FinalizeRequest(key: key)) }
        // The canonical object was written, the version was not; staging is still there.
        let canonical = "sha256/\(ContentHash.of(bytes).hex)/bundle.tar.zst"
        #expect(try await fixture.objects.head(canonical) != nil)
        #expect(try await fixture.stagingKeys() == [key])
        let result = try await fixture.host.finalize(FinalizeRequest(key: key))
        #expect(result.canonicalKey == canonical)
        #expect(try await fixture.registry.versions(extensionID: result.extension.id).map(\.version) == ["1.0.0"])
        #expect(try await fixture.stagingKeys().isEmpty)
        // Retrying once more: the staging object is gone, a clean 400.
        await expectHostError(.stagingNotFound, 400) { _ = try await fixture.host.finalize(FinalizeRequest(key: key)) }
    }

    @Test(arguments: Backend.available)
    func aStagingObjectReplacedAfterVerificationIsNeverCopied(store: Backend) async throws {
        let replacement = try makeBundle(seed: 99)
        let fixture = try HostFixture(store: store, wrapStore: { SwappingStore(base: $0, replacement: replacement) })
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        let key = try await fixture.upload(bytes)
        await expectHostError(.stagingChanged, 409) { _ = try await fixture.host.finalize(FinalizeRequest(key: key)) }
        #expect(try await fixture.canonicalKeys().isEmpty)
        for ext in try await fixture.registry.extensions() { #expect(try await fixture.registry.versions(extensionID: ext.id).isEmpty) }
    }

    @Test func aCanonicalObjectWithOtherBytesIsNeverAccepted() async throws {
        let fixture = try HostFixture()
        defer { fixture.cleanup() }
        let bytes = try makeBundle()
        // Someone with bucket access wrote garbage at the canonical key of these bytes.
        try await fixture.objects.put("sha256/\(ContentHash.of(bytes).hex)/bundle.tar.zst", bytes: [1, 2, 3])
        let key = try await fixture.upload(bytes)
        await expectHostError(.canonicalMissing, 500) { _ = try await fixture.host.finalize(FinalizeRequest(key: key)) }
        for ext in try await fixture.registry.extensions() { #expect(try await fixture.registry.versions(extensionID: ext.id).isEmpty) }
    }
}

/// A store that replaces a staging object with other bytes as soon as it has been read (while the
/// reader still streams the original): what an attacker with bucket access could do.
struct SwappingStore: ForwardingObjectStore {
    let base: any ObjectStore
    let replacement: [UInt8]

    func get(_ key: String, range: ByteRange?) async throws -> ObjectBody {
        let body = try await base.get(key, range: range)
        guard key.contains("/_staging/") else { return body }
        let original = try await collectAll(body.stream)
        try await base.put(key, bytes: replacement, condition: .unconditional)
        return ObjectBody(info: body.info, range: body.range, stream: .bytes(original))
    }

    private func collectAll(_ stream: ByteStream) async throws -> [UInt8] {
        var out: [UInt8] = []
        for try await chunk in stream { out += chunk }
        return out
    }
}
