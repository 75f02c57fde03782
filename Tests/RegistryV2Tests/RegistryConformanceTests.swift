import BundleCore
import ExtBundlesTesting
import Foundation
import ManifestV2
import RegistryV2
import RegistryV2SQLite
import Testing
import TestSupport
import StoreTestSupport

/// The `RegistryBackend` contract (ExtBundlesTesting's `RegistryConformance`), run against the
/// in-memory backend and SQLite on a real file (reopened through a new connection).
@Suite struct RegistryConformanceTests {
    @Test(arguments: RegistryFixture.all, RegistryConformance.Check.allCases)
    func conformance(fixture: RegistryFixture, _ check: RegistryConformance.Check) async throws {
        let cleanups = LockedValue<[@Sendable () -> Void]>([])
        defer { cleanups.withLock { $0.forEach { $0() } } }
        try await RegistryConformance {
            let (backend, reopen, cleanup) = try fixture.make()
            cleanups.withLock { $0.append(cleanup) }
            return (backend, { try reopen() })
        }.run(check)
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

    @Test(arguments: [Double.nan, .infinity, -.infinity, -5, 1e300, 0, 0.0005])
    func anyBusyTimeoutOpensTheRegistry(seconds: Double) async throws {
        let folder = try TestSupport.makeTemporaryDirectory("sqlite-timeout")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for readers in [Int.min, -1, 0, Int.max] {
            let backend = try SQLiteRegistryBackend(
                path: folder + "/registry-\(readers).sqlite", configuration: .init(busyTimeout: seconds, maximumReaderCount: readers))
            let record = try await backend.ensureExtension(publisher: "p", name: "n", now: Date())
            #expect(try await backend.extensionRecord(id: record.id) != nil)
            #expect(try await backend.installedBundle(tenantID: "t", extensionID: record.id) == nil)
            try backend.close()
        }
    }
}
