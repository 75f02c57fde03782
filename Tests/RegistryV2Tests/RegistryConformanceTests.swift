import BundleCore
import Foundation
import ManifestV2
import RegistryV2
import RegistryV2SQLite
import Testing
import TestSupport
import StoreTestSupport

func sampleHash(_ seed: Int) -> ContentHash { ContentHash.of(Array("bundle-\(seed)".utf8)) }

func sampleVersion(_ extensionID: String, _ version: String, seed: Int = 0, at time: TimeInterval = 1_800_000_000) -> (VersionRecord, BundleRecord) {
    let record = VersionRecord(
        extensionID: extensionID, version: version, runtime: "wasm-js@1",
        ui: UIRecord(type: "iframe", entry: "ui/index.html", appMenuLabel: "Menu"),
        endpoints: [EndpointRecord(method: "GET", path: "/api/status", handler: "dist/main")], capabilities: ["cap:log.emit"],
        contentHash: sampleHash(seed), size: 1_000 + Int64(seed), signerKeyIDs: ["sha256:" + String(repeating: "a", count: 64)],
        publishedAt: Date(timeIntervalSince1970: time + 0.123456))
    let bundle = BundleRecord(
        versionID: record.id, contentHash: record.contentHash, size: record.size, storageKey: "sha256/\(record.contentHash.hex)/bundle.tar.zst",
        createdAt: record.publishedAt)
    return (record, bundle)
}

@Suite struct RegistryConformanceTests {
    @Test(arguments: RegistryFixture.all)
    func extensionsAreUniqueByPublisherAndName(fixture: RegistryFixture) async throws {
        let (registry, _, cleanup) = try fixture.make()
        defer { cleanup() }
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

    @Test(arguments: RegistryFixture.all)
    func versionsAreImmutableAndRoundTrip(fixture: RegistryFixture) async throws {
        let (registry, reopen, cleanup) = try fixture.make()
        defer { cleanup() }
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "x", now: Date())
        let (v1, b1) = sampleVersion(ext.id, "1.0.0", seed: 1)
        try await registry.insertVersion(v1, bundle: b1)
        // The same version again, with other bytes or the same bytes: a conflict, nothing written.
        for seed in [2, 1] {
            let (again, bundle) = sampleVersion(ext.id, "1.0.0", seed: seed)
            let error = await #expect(throws: RegistryError.self) { try await registry.insertVersion(again, bundle: bundle) }
            #expect(error?.code == .registryConflict)
            #expect(error?.constraint == "version")
            #expect(try await registry.version(id: again.id) == nil)
        }
        #expect(try await registry.bundles(versionID: v1.id) == [b1])
        // A version of an unknown extension is refused.
        let (orphan, orphanBundle) = sampleVersion(RegistryID.make(), "1.0.0")
        let missing = await #expect(throws: RegistryError.self) { try await registry.insertVersion(orphan, bundle: orphanBundle) }
        #expect(missing?.code == .registryNotFound)

        let (v2, b2) = sampleVersion(ext.id, "1.1.0", seed: 3, at: 1_800_000_100)
        let (v0, b0) = sampleVersion(ext.id, "0.9.0", seed: 4, at: 1_700_000_000)
        try await registry.insertVersion(v2, bundle: b2)
        try await registry.insertVersion(v0, bundle: b0)
        // Persistence: a fresh instance over the same state reads back equal records.
        let reopened = try reopen()
        #expect(try await reopened.version(id: v1.id) == v1)
        #expect(try await reopened.version(extensionID: ext.id, version: "1.1.0") == v2)
        #expect(try await reopened.versionStrings(extensionID: ext.id) == ["1.1.0", "1.0.0", "0.9.0"])
        #expect(try await reopened.latestBundle(versionID: v2.id) == b2)
        #expect(try await reopened.extensionRecord(id: ext.id) == ext)
    }

    @Test(arguments: RegistryFixture.all)
    func concurrentInsertsOfOneVersionGiveOneSuccess(fixture: RegistryFixture) async throws {
        let (registry, _, cleanup) = try fixture.make()
        defer { cleanup() }
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "race", now: Date())
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for seed in 0..<16 {
                group.addTask {
                    let (version, bundle) = sampleVersion(ext.id, "2.0.0", seed: seed)
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

    @Test(arguments: RegistryFixture.all)
    func latestBundleIsNewestThenHighestHash(fixture: RegistryFixture) async throws {
        let (registry, _, cleanup) = try fixture.make()
        defer { cleanup() }
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "b", now: Date())
        let (version, bundle) = sampleVersion(ext.id, "1.0.0", seed: 7)
        try await registry.insertVersion(version, bundle: bundle)
        // One version, one bundle: the bundle's version id must name the version.
        let (_, stray) = sampleVersion(ext.id, "1.0.1", seed: 8)
        let (v101, _) = sampleVersion(ext.id, "1.0.1", seed: 8)
        let mismatch = await #expect(throws: RegistryError.self) { try await registry.insertVersion(v101, bundle: stray) }
        #expect(mismatch != nil)
        #expect(try await registry.latestBundle(versionID: version.id)?.contentHash == sampleHash(7))
    }

    @Test(arguments: RegistryFixture.all)
    func installsAreOnePerTenantAndExtension(fixture: RegistryFixture) async throws {
        let (registry, reopen, cleanup) = try fixture.make()
        defer { cleanup() }
        let ext = try await registry.ensureExtension(publisher: "Acme", name: "i", now: Date())
        let (v1, b1) = sampleVersion(ext.id, "1.0.0", seed: 1)
        let (v2, b2) = sampleVersion(ext.id, "1.1.0", seed: 2, at: 1_800_000_500)
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
        let reopened = try reopen()
        #expect(try await reopened.installs(tenantID: nil).map(\.tenantID) == ["t0", "t1"])
        #expect(try await reopened.install(tenantID: "t1", extensionID: ext.id)?.isEnabled == false)

        #expect(try await reopened.deleteInstall(tenantID: "t1", extensionID: ext.id))
        #expect(try await reopened.deleteInstall(tenantID: "t1", extensionID: ext.id) == false)
        #expect(try await reopened.installConfig(installID: install.id) == nil)
        #expect(try await reopened.installs(tenantID: "t1").isEmpty)
        // Versions survive an uninstall.
        #expect(try await reopened.version(id: v2.id) == v2)
    }
}

@Suite struct SQLiteRegistryTests {
    @Test func aFreshFileIsMigratedInWALModeAndAnUnwritableOneIsATypedError() async throws {
        let folder = try TestSupport.makeTemporaryDirectory("sqlite")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/nested/registry.sqlite"
        let backend = try SQLiteRegistryBackend(path: path)
        _ = try await backend.ensureExtension(publisher: "p", name: "n", now: Date())
        try backend.close()
        let mode = try TestSupport.sh("sqlite3 '\(path)' 'PRAGMA journal_mode;' 2>/dev/null || python3 -c \"import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode').fetchone()[0])\" '\(path)'")
        #expect(mode.trimmingCharacters(in: .whitespacesAndNewlines) == "wal")
        let tables = try TestSupport.sh("python3 -c \"import sqlite3,sys; print(sorted(r[0] for r in sqlite3.connect(sys.argv[1]).execute(\\\"select name from sqlite_master where type='table'\\\")))\" '\(path)'")
        #expect(tables.contains("extension_version") && tables.contains("tenant_extension_install_config"))

        try Data("not a database, just text".utf8).write(to: URL(fileURLWithPath: folder + "/garbage.sqlite"))
        let error = #expect(throws: RegistryError.self) { try SQLiteRegistryBackend(path: folder + "/garbage.sqlite") }
        #expect(error?.code == .registryBackend)
    }
}
