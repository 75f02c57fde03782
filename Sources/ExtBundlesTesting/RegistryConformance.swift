public import BundleCore
import Foundation
import ManifestV2
public import RegistryV2
public import Testing

/// The ``RegistryV2/RegistryBackend`` contract as checks any backend can run: ours run it against
/// the in-memory and SQLite backends, and a backend of yours proves itself the same way.
///
/// Each check gets a fresh, empty backend from `make`, and a way to open a new instance over
/// the same state (`reopen`: a new connection to the same database), so persistence is
/// checked too. Failures are recorded with `#expect`; call it from a `@Test`:
///
/// ```swift
/// @Test(arguments: RegistryConformance.Check.allCases)
/// func conformance(_ check: RegistryConformance.Check) async throws {
///     try await RegistryConformance { let db = try MyBackend(); return (db, { try MyBackend(reopening: db) }) }.run(check)
/// }
/// ```
public struct RegistryConformance: Sendable {
    /// A fresh backend and a way to reopen its state.
    public typealias Factory = @Sendable () async throws -> (backend: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend)

    /// The checks, one per rule of the contract.
    public enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case extensionsAreUniqueByPublisherAndName
        case slugsAreUnique
        case identityIsBytes
        case versionsAreImmutableAndRoundTrip
        case concurrentInsertsOfOneVersionGiveOneSuccess
        case latestBundleIsNewestThenHighestHash
        case installsAreOnePerTenantAndExtension
        case resolveInstallReadsTheWholeChain
        case installedBundleReadsStateAndHash

        /// The name in test output.
        public var testDescription: String { rawValue }
    }

    /// Makes the backend of each check.
    public let make: Factory

    /// Creates the suite.
    public init(make: @escaping Factory) { self.make = make }

    /// Runs every check.
    public func runAll() async throws {
        for check in Check.allCases { try await run(check) }
    }

    /// Runs one check on a fresh backend.
    public func run(_ check: Check) async throws {
        let (registry, reopen) = try await make()
        switch check {
        case .extensionsAreUniqueByPublisherAndName: try await extensionsAreUniqueByPublisherAndName(registry, reopen: reopen)
        case .slugsAreUnique: try await slugsAreUnique(registry, reopen: reopen)
        case .identityIsBytes: try await identityIsBytes(registry, reopen: reopen)
        case .versionsAreImmutableAndRoundTrip: try await versionsAreImmutableAndRoundTrip(registry, reopen: reopen)
        case .concurrentInsertsOfOneVersionGiveOneSuccess: try await concurrentInsertsOfOneVersionGiveOneSuccess(registry, reopen: reopen)
        case .latestBundleIsNewestThenHighestHash: try await latestBundleIsNewestThenHighestHash(registry, reopen: reopen)
        case .installsAreOnePerTenantAndExtension: try await installsAreOnePerTenantAndExtension(registry, reopen: reopen)
        case .resolveInstallReadsTheWholeChain: try await resolveInstallReadsTheWholeChain(registry, reopen: reopen)
        case .installedBundleReadsStateAndHash: try await installedBundleReadsStateAndHash(registry, reopen: reopen)
        }
    }

    /// A content hash for test data.
    public static func sampleHash(_ seed: Int) -> ContentHash { ContentHash.of(Array("bundle-\(seed)".utf8)) }

    /// A version and its bundle for test data.
    public static func sampleVersion(
        _ extensionID: String, _ version: String, seed: Int = 0, at time: TimeInterval = 1_800_000_000
    ) -> (VersionRecord, BundleRecord) {
        let record = VersionRecord(
            extensionID: extensionID, version: version, runtime: "wasm-js@1",
            ui: UIRecord(type: "iframe", entry: "ui/index.html", appMenuLabel: "Menu"),
            endpoints: [EndpointRecord(method: "GET", path: "/api/status", handler: "dist/main")], capabilities: ["cap:log.emit"],
            contentHash: sampleHash(seed), size: 1_000 + Int64(seed), signerKeyIDs: ["sha256:" + String(repeating: "a", count: 64)],
            publishedAt: Date(timeIntervalSince1970: time + 0.123456))
        let bundle = BundleRecord(
            versionID: record.id, contentHash: record.contentHash, size: record.size,
            storageKey: "sha256/\(record.contentHash.hex)/bundle.tar.zst", createdAt: record.publishedAt)
        return (record, bundle)
    }
    func extensionsAreUniqueByPublisherAndName(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        // 32 concurrent find-or-create calls make one record.
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<32 { group.addTask { try await registry.ensureExtension(publisher: "Acme", name: "com.acme.x", now: now).id } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        let other = try await registry.ensureExtension(publisher: "Other", name: "com.acme.x", now: now)
        #expect(!ids.contains(other.id))
        let found = try await registry.extensionRecord(publisher: "Acme", name: "com.acme.x")
        #expect(found?.id == ids.first)
        #expect(try await registry.extensionRecord(id: ids.first!)?.slug == "acme.com.acme.x")
        #expect(try await registry.extensions(slug: "acme.com.acme.x").map(\.id) == [ids.first!])
        #expect(try await registry.extensions().map(\.publisher) == ["Acme", "Other"])
        #expect(try await registry.extensionRecord(publisher: "acme", name: "com.acme.x") == nil)
    }

    func versionsAreImmutableAndRoundTrip(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "x", now: Date())
        let (v1, b1) = Self.sampleVersion(ext.id, "1.0.0", seed: 1)
        try await registry.insertVersion(v1, bundle: b1)
        // The same version again, with other bytes or the same bytes: a conflict, nothing written.
        for seed in [2, 1] {
            let (again, bundle) = Self.sampleVersion(ext.id, "1.0.0", seed: seed)
            let error = await #expect(throws: RegistryError.self) { try await registry.insertVersion(again, bundle: bundle) }
            #expect(error?.code == .registryConflict)
            #expect(error?.constraint == "version")
            #expect(try await registry.version(id: again.id) == nil)
        }
        #expect(try await registry.bundles(versionID: v1.id) == [b1])
        // A version of an unknown extension is refused.
        let (orphan, orphanBundle) = Self.sampleVersion(RegistryID.make(), "1.0.0")
        let missing = await #expect(throws: RegistryError.self) { try await registry.insertVersion(orphan, bundle: orphanBundle) }
        #expect(missing?.code == .registryNotFound)

        let (v2, b2) = Self.sampleVersion(ext.id, "1.1.0", seed: 3, at: 1_800_000_100)
        let (v0, b0) = Self.sampleVersion(ext.id, "0.9.0", seed: 4, at: 1_700_000_000)
        try await registry.insertVersion(v2, bundle: b2)
        try await registry.insertVersion(v0, bundle: b0)
        // Persistence: a fresh instance over the same state reads back equal records.
        let reopened = try await reopen()
        #expect(try await reopened.version(id: v1.id) == v1)
        #expect(try await reopened.version(extensionID: ext.id, version: "1.1.0") == v2)
        #expect(try await reopened.versionStrings(extensionID: ext.id) == ["1.1.0", "1.0.0", "0.9.0"])
        #expect(try await reopened.latestBundle(versionID: v2.id) == b2)
        #expect(try await reopened.extensionRecord(id: ext.id) == ext)
    }

    func concurrentInsertsOfOneVersionGiveOneSuccess(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "race", now: Date())
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for seed in 0..<16 {
                group.addTask {
                    let (version, bundle) = Self.sampleVersion(ext.id, "2.0.0", seed: seed)
                    do {
                        try await registry.insertVersion(version, bundle: bundle)
                        return true
                    } catch let error as RegistryError where error.code == .registryConflict {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        #expect(try await registry.versions(extensionID: ext.id).count == 1)
    }

    func latestBundleIsNewestThenHighestHash(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "b", now: Date())
        let (version, bundle) = Self.sampleVersion(ext.id, "1.0.0", seed: 7)
        try await registry.insertVersion(version, bundle: bundle)
        // One version, one bundle: the bundle's version id must name the version.
        let (_, stray) = Self.sampleVersion(ext.id, "1.0.1", seed: 8)
        let (v101, _) = Self.sampleVersion(ext.id, "1.0.1", seed: 8)
        let mismatch = await #expect(throws: RegistryError.self) { try await registry.insertVersion(v101, bundle: stray) }
        #expect(mismatch != nil)
        #expect(try await registry.latestBundle(versionID: version.id)?.contentHash == Self.sampleHash(7))
    }

    func installsAreOnePerTenantAndExtension(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "i", now: Date())
        let (v1, b1) = Self.sampleVersion(ext.id, "1.0.0", seed: 1)
        let (v2, b2) = Self.sampleVersion(ext.id, "1.1.0", seed: 2, at: 1_800_000_500)
        try await registry.insertVersion(v1, bundle: b1)
        try await registry.insertVersion(v2, bundle: b2)
        let created = Date(timeIntervalSince1970: 1_800_001_000)
        let install = InstallRecord(
            tenantID: "t1", extensionID: ext.id, versionID: v1.id, grantedCapabilities: ["cap:log.emit"], config: ["a": "1"], createdAt: created)
        let config = InstallConfigRecord(installID: install.id, tenantID: "t1", providers: ["cap:log.emit"], updatedAt: created)
        let stored = try await registry.saveInstall(install, config: config)
        #expect(stored == install)
        #expect(try await registry.installConfig(installID: install.id) == config)

        // Replacing keeps the id and creation time, and rotates the config version.
        var update = InstallRecord(tenantID: "t1", extensionID: ext.id, versionID: v2.id, createdAt: created.addingTimeInterval(60))
        let newConfig = InstallConfigRecord(installID: update.id, tenantID: "t1", providers: ["cap:user.read"], updatedAt: update.createdAt)
        let replaced = try await registry.saveInstall(update, config: newConfig)
        update.id = install.id
        update.createdAt = created
        #expect(replaced == update)
        #expect(try await registry.installs(tenantID: "t1").count == 1)
        #expect(try await registry.installConfig(installID: install.id)?.version == newConfig.version)
        #expect(try await registry.installConfig(installID: install.id)?.providers == ["cap:user.read"])

        // A version of another extension, or an unknown one, is refused.
        let other = try await registry.ensureExtension(publisher: "Acme", name: "other", now: Date())
        let wrong = InstallRecord(tenantID: "t1", extensionID: other.id, versionID: v1.id)
        let error = await #expect(throws: RegistryError.self) {
            try await registry.saveInstall(wrong, config: InstallConfigRecord(installID: wrong.id, tenantID: "t1"))
        }
        #expect(error?.code == .registryNotFound)

        // Enable/disable flips isEnabled only.
        let later = created.addingTimeInterval(120)
        let disabled = try await registry.setEnabled(tenantID: "t1", extensionID: ext.id, false, now: later)
        #expect(disabled?.isEnabled == false)
        #expect(disabled?.status == .enabled)
        #expect(disabled?.versionID == v2.id)
        #expect(disabled?.updatedAt == later)
        #expect(try await registry.setEnabled(tenantID: "t2", extensionID: ext.id, false, now: later) == nil)

        // Listing order: tenant, then extension id.
        let second = InstallRecord(tenantID: "t0", extensionID: ext.id, versionID: v1.id, createdAt: created)
        try await registry.saveInstall(second, config: InstallConfigRecord(installID: second.id, tenantID: "t0", updatedAt: created))
        let reopened = try await reopen()
        #expect(try await reopened.installs(tenantID: nil).map(\.tenantID) == ["t0", "t1"])
        #expect(try await reopened.install(tenantID: "t1", extensionID: ext.id)?.isEnabled == false)

        #expect(try await reopened.deleteInstall(tenantID: "t1", extensionID: ext.id))
        #expect(try await reopened.deleteInstall(tenantID: "t1", extensionID: ext.id) == false)
        #expect(try await reopened.installConfig(installID: install.id) == nil)
        #expect(try await reopened.installs(tenantID: "t1").isEmpty)
        // Versions survive an uninstall.
        #expect(try await reopened.version(id: v2.id) == v2)
    }

    func slugsAreUnique(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let first = try await registry.ensureExtension(publisher: "acme", name: "pay.app", now: now)
        // Another publisher (or another spelling) whose slug is the same is refused.
        for (publisher, name) in [("ACME", "pay.app"), ("Acme", "PAY.APP"), ("acme.pay", "app"), ("Acme.Pay", "App")] {
            let error = await #expect(throws: RegistryError.self, "\(publisher)/\(name)") {
                try await registry.ensureExtension(publisher: publisher, name: name, now: now)
            }
            #expect(error?.code == .registryConflict, "\(publisher)/\(name)")
            #expect(error?.constraint == "slug", "\(publisher)/\(name)")
        }
        #expect(try await registry.extensions().count == 1)
        // The owner still finds its record.
        #expect(try await registry.ensureExtension(publisher: "acme", name: "pay.app", now: now).id == first.id)
        // Concurrent creations of colliding slugs: exactly one wins.
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for variant in ["Race", "RACE", "race", "rAce", "raCe", "racE", "RAce", "rACE"] {
                group.addTask { (try? await registry.ensureExtension(publisher: variant, name: "x", now: now)) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        let reopened = try await reopen()
        #expect(try await reopened.extensions(slug: "race.x").count == 1)
    }

    func identityIsBytes(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        // NFC and NFD spellings are different publishers, as in a database; but slugs are NFC, so
        // a look-alike extension is refused by the slug rule, and found by either spelling.
        let composed = try await registry.ensureExtension(publisher: "caf\u{E9}", name: "x", now: now)
        let lookAlike = await #expect(throws: RegistryError.self) {
            _ = try await registry.ensureExtension(publisher: "cafe\u{301}", name: "x", now: now)
        }
        #expect(lookAlike?.code == .registryConflict && lookAlike?.constraint == "slug")
        #expect(try await registry.extensionRecord(publisher: "caf\u{E9}", name: "x")?.id == composed.id)
        #expect(try await registry.extensionRecord(publisher: "cafe\u{301}", name: "x") == nil)
        #expect(try await registry.extensions(slug: ExtensionRecord.normalizeSlug("CAFE\u{301}.X")).map(\.id) == [composed.id])
        let decomposed = try await registry.ensureExtension(publisher: "cafe\u{301}", name: "y", now: now)
        #expect(decomposed.publisher.utf8.elementsEqual("cafe\u{301}".utf8) && decomposed.id != composed.id)
        let (version, bundle) = Self.sampleVersion(composed.id, "1.0.0", seed: 40)
        try await registry.insertVersion(version, bundle: bundle)
        let install = InstallRecord(tenantID: "t\u{E9}", extensionID: composed.id, versionID: version.id)
        try await registry.saveInstall(install, config: InstallConfigRecord(installID: install.id, tenantID: install.tenantID))
        #expect(try await registry.install(tenantID: "te\u{301}", extensionID: composed.id) == nil)
        #expect(try await registry.install(tenantID: "t\u{E9}", extensionID: composed.id)?.id == install.id)
        #expect(try await registry.installs(tenantID: "te\u{301}").isEmpty)
    }

    func resolveInstallReadsTheWholeChain(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "resolve", now: Date())
        let (version, bundle) = Self.sampleVersion(ext.id, "3.0.0", seed: 30)
        try await registry.insertVersion(version, bundle: bundle)
        #expect(try await registry.resolveInstall(tenantID: "t", extensionID: ext.id) == nil)
        let install = InstallRecord(tenantID: "t", extensionID: ext.id, versionID: version.id, createdAt: Date(timeIntervalSince1970: 1_800_000_000))
        try await registry.saveInstall(install, config: InstallConfigRecord(installID: install.id, tenantID: "t"))
        let reopened = try await reopen()
        let resolved = try await reopened.resolveInstall(tenantID: "t", extensionID: ext.id)
        #expect(resolved?.extension == ext)
        #expect(resolved?.install == install)
        #expect(resolved?.version == version)
        #expect(resolved?.bundle == bundle)
        #expect(try await reopened.resolveInstall(tenantID: "other", extensionID: ext.id) == nil)
        #expect(try await reopened.resolveInstall(tenantID: "t", extensionID: RegistryID.make()) == nil)
    }

    func installedBundleReadsStateAndHash(_ registry: any RegistryBackend, reopen: @Sendable () async throws -> any RegistryBackend) async throws {
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "hot", now: Date())
        let (version, bundle) = Self.sampleVersion(ext.id, "4.0.0", seed: 44)
        try await registry.insertVersion(version, bundle: bundle)
        #expect(try await registry.installedBundle(tenantID: "t", extensionID: ext.id) == nil)
        let install = InstallRecord(tenantID: "t", extensionID: ext.id, versionID: version.id)
        try await registry.saveInstall(install, config: InstallConfigRecord(installID: install.id, tenantID: "t"))
        let found = try await registry.installedBundle(tenantID: "t", extensionID: ext.id)
        #expect(found == InstalledBundle(isEnabled: true, status: .enabled, versionID: version.id, contentHash: bundle.contentHash))
        #expect(found?.isActive == true)
        _ = try await registry.setEnabled(tenantID: "t", extensionID: ext.id, false, now: Date())
        // Read through a new instance too: what another process sees.
        let reopened = try await reopen()
        #expect(try await reopened.installedBundle(tenantID: "t", extensionID: ext.id)?.isActive == false)
        #expect(try await reopened.installedBundle(tenantID: "t\u{0301}", extensionID: ext.id) == nil)
        #expect(try await reopened.installedBundle(tenantID: "t", extensionID: RegistryID.make()) == nil)
    }
}
