public import Foundation
import BundleCore
import GRDB
public import RegistryV2

/// A ``RegistryV2/RegistryBackend`` in an SQLite file, on GRDB.
///
/// The file is opened in WAL mode with a busy timeout, and every write is one `BEGIN IMMEDIATE`
/// transaction, so several processes may share the file: writers queue for the lock instead of
/// failing, and uniqueness is enforced by the database's own UNIQUE constraints, so two
/// processes inserting the same version at once get one success and one `REGISTRY_CONFLICT`.
/// The schema is created and upgraded by migrations from an empty file.
public final class SQLiteRegistryBackend: RegistryBackend, Sendable {
    /// Settings.
    public struct Configuration: Sendable, Equatable {
        /// How long a write waits for another connection's lock before failing. Default 30 s.
        public var busyTimeout: TimeInterval
        /// How many read connections to keep. Default 4.
        public var maximumReaderCount: Int

        /// Creates a configuration.
        public init(busyTimeout: TimeInterval = 30, maximumReaderCount: Int = 4) {
            self.busyTimeout = busyTimeout
            self.maximumReaderCount = maximumReaderCount
        }

        /// `seconds` as SQLite's busy timeout in whole milliseconds, within `0...Int32.max`
        /// (NaN and negative values are 0; infinity and huge values the largest).
        static func milliseconds(_ seconds: TimeInterval) -> Int32 {
            let value = seconds * 1_000
            guard value > 0 else { return 0 }
            return value >= Double(Int32.max) ? .max : Int32(value)
        }
    }

    /// The database file.
    public let path: String
    private let pool: DatabasePool
    private let hot: HotReader

    /// Opens (creating if needed) the registry at `path` and runs the migrations.
    /// - Throws: ``RegistryV2/RegistryError`` `REGISTRY_BACKEND_ERROR` when the file cannot be
    ///   opened or migrated.
    public init(path: String, configuration: Configuration = .init()) throws {
        self.path = path
        var configuration = configuration
        configuration.busyTimeout = TimeInterval(Configuration.milliseconds(configuration.busyTimeout)) / 1_000
        configuration.maximumReaderCount = min(max(configuration.maximumReaderCount, 1), 64)
        var config = GRDB.Configuration()
        config.busyMode = .timeout(configuration.busyTimeout)
        config.maximumReaderCount = configuration.maximumReaderCount
        config.foreignKeysEnabled = true
        let directory = (path as NSString).deletingLastPathComponent
        do {
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        } catch {
            throw Self.backendError(error, "cannot create the registry's folder")
        }
        // Opening switches the file to WAL and migrates it. Both need the write lock, and when
        // another process opens a fresh file at the same moment, the migrator's read-then-write
        // can fail at once (SQLITE_BUSY) or find the other process's tables ("already exists")
        // instead of waiting. So an open that fails like that is retried, with jitter, until the
        // busy timeout: the next attempt reads the migrations the other process applied.
        let deadline = Date().addingTimeInterval(configuration.busyTimeout)
        var attempts = 0
        while true {
            attempts += 1
            do {
                let pool = try DatabasePool(path: path, configuration: config)
                do {
                    try Self.migrator.migrate(pool)
                } catch {
                    try? pool.close()
                    throw error
                }
                self.pool = pool
                self.hot = HotReader(path: path, busyTimeout: configuration.busyTimeout, maxIdle: max(4, configuration.maximumReaderCount))
                return
            } catch let error as DatabaseError where Date() < deadline && (Self.isContention(error) || attempts < 5) {
                usleep(UInt32.random(in: 5_000...50_000))
            } catch {
                throw Self.backendError(error, "cannot open the registry database")
            }
        }
    }

    private static func isContention(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
    }

    /// The schema's migrations, in order. Tables and columns follow Alga's registry (reference 5.1).
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-registry") { db in
            try db.execute(
                sql: """
                    CREATE TABLE extension_registry (
                        id TEXT PRIMARY KEY NOT NULL,
                        publisher TEXT NOT NULL,
                        name TEXT NOT NULL,
                        slug TEXT NOT NULL,
                        display_name TEXT,
                        description TEXT,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        UNIQUE (publisher, name)
                    );
                    CREATE INDEX extension_registry_slug ON extension_registry (slug);
                    CREATE TABLE extension_version (
                        id TEXT PRIMARY KEY NOT NULL,
                        registry_id TEXT NOT NULL REFERENCES extension_registry (id) ON DELETE CASCADE,
                        version TEXT NOT NULL,
                        runtime TEXT NOT NULL,
                        main_entry TEXT NOT NULL,
                        ui TEXT,
                        api_endpoints TEXT NOT NULL DEFAULT '[]',
                        capabilities TEXT NOT NULL DEFAULT '[]',
                        content_hash TEXT NOT NULL,
                        size_bytes INTEGER NOT NULL,
                        signer_key_ids TEXT NOT NULL DEFAULT '[]',
                        created_at REAL NOT NULL,
                        UNIQUE (registry_id, version)
                    );
                    CREATE TABLE extension_bundle (
                        id TEXT PRIMARY KEY NOT NULL,
                        version_id TEXT NOT NULL REFERENCES extension_version (id) ON DELETE CASCADE,
                        content_hash TEXT NOT NULL,
                        signature TEXT,
                        storage_key TEXT,
                        size_bytes INTEGER,
                        created_at REAL NOT NULL,
                        UNIQUE (version_id, content_hash)
                    );
                    CREATE INDEX extension_bundle_content_hash ON extension_bundle (content_hash);
                    CREATE TABLE tenant_extension_install (
                        id TEXT PRIMARY KEY NOT NULL,
                        tenant_id TEXT NOT NULL,
                        registry_id TEXT NOT NULL REFERENCES extension_registry (id) ON DELETE CASCADE,
                        version_id TEXT NOT NULL REFERENCES extension_version (id),
                        granted_caps TEXT NOT NULL DEFAULT '[]',
                        config TEXT NOT NULL DEFAULT '{}',
                        is_enabled INTEGER NOT NULL DEFAULT 1,
                        status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled', 'pending')),
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        UNIQUE (tenant_id, registry_id)
                    );
                    CREATE TABLE tenant_extension_install_config (
                        id TEXT PRIMARY KEY NOT NULL,
                        install_id TEXT NOT NULL UNIQUE REFERENCES tenant_extension_install (id) ON DELETE CASCADE,
                        tenant_id TEXT NOT NULL,
                        config TEXT NOT NULL DEFAULT '{}',
                        providers TEXT NOT NULL DEFAULT '[]',
                        version TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    """)
        }
        return migrator
    }

    /// Closes the database connections; later calls fail with `REGISTRY_BACKEND_ERROR`.
    public func close() throws {
        do { try pool.close() } catch { throw Self.backendError(error, "cannot close the registry database") }
    }

    // MARK: - Extensions

    public func ensureExtension(publisher: String, name: String, now: Date) async throws -> ExtensionRecord {
        try await write { db in
            let candidate = ExtensionRecord(publisher: publisher, name: name, createdAt: now)
            if let existing = try Row.fetchOne(
                db, sql: "SELECT * FROM extension_registry WHERE publisher = ? AND name = ?", arguments: [publisher, name])
            {
                return try Self.extensionRecord(existing)
            }
            // The write transaction is IMMEDIATE, so no other writer can take the slug between
            // this check and the insert.
            if let other = try String.fetchOne(db, sql: "SELECT slug FROM extension_registry WHERE slug = ? LIMIT 1", arguments: [candidate.slug]) {
                throw RegistryError.conflict("slug", key: other)
            }
            try db.execute(
                sql: """
                    INSERT INTO extension_registry (id, publisher, name, slug, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (publisher, name) DO NOTHING
                    """,
                arguments: [candidate.id, publisher, name, candidate.slug, now.timeIntervalSince1970, now.timeIntervalSince1970])
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM extension_registry WHERE publisher = ? AND name = ?", arguments: [publisher, name])
            else { throw RegistryError.notFound("extension", key: "\(publisher).\(name)") }
            return try Self.extensionRecord(row)
        }
    }

    public func extensionRecord(id: String) async throws -> ExtensionRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM extension_registry WHERE id = ?", arguments: [id]).map(Self.extensionRecord)
        }
    }

    public func extensionRecord(publisher: String, name: String) async throws -> ExtensionRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM extension_registry WHERE publisher = ? AND name = ?", arguments: [publisher, name])
                .map(Self.extensionRecord)
        }
    }

    public func extensions(slug: String) async throws -> [ExtensionRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM extension_registry WHERE slug = ? ORDER BY created_at, id", arguments: [slug])
                .map(Self.extensionRecord)
        }
    }

    public func extensions() async throws -> [ExtensionRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM extension_registry ORDER BY publisher, name").map(Self.extensionRecord)
        }
    }

    // MARK: - Versions

    public func insertVersion(_ version: VersionRecord, bundle: BundleRecord) async throws {
        guard bundle.versionID == version.id else {
            throw RegistryError(code: .registryNotFound, reason: "the bundle names another version", constraint: "version", key: bundle.versionID)
        }
        let ui = try version.ui.map(Self.json)
        let endpoints = try Self.json(version.endpoints)
        let capabilities = try Self.json(version.capabilities)
        let signers = try Self.json(version.signerKeyIDs)
        try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM extension_registry WHERE id = ?", arguments: [version.extensionID]) != nil else {
                throw RegistryError.notFound("extension", key: version.extensionID)
            }
            do {
                try db.execute(
                    sql: """
                        INSERT INTO extension_version (id, registry_id, version, runtime, main_entry, ui, api_endpoints, capabilities,
                            content_hash, size_bytes, signer_key_ids, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        version.id, version.extensionID, version.version, version.runtime, version.mainEntry, ui, endpoints, capabilities,
                        version.contentHash.prefixed, version.size, signers, version.publishedAt.timeIntervalSince1970,
                    ])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE
                || error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY
            {
                throw RegistryError(
                    code: .registryConflict, reason: "a version with this key already exists", constraint: "version",
                    key: "\(version.extensionID)@\(version.version)", underlying: error.message)
            }
            try db.execute(
                sql: """
                    INSERT INTO extension_bundle (id, version_id, content_hash, signature, storage_key, size_bytes, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    bundle.id, bundle.versionID, bundle.contentHash.prefixed, bundle.signature, bundle.storageKey, bundle.size,
                    bundle.createdAt.timeIntervalSince1970,
                ])
        }
    }

    public func version(id: String) async throws -> VersionRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM extension_version WHERE id = ?", arguments: [id]).map(Self.versionRecord)
        }
    }

    public func version(extensionID: String, version: String) async throws -> VersionRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM extension_version WHERE registry_id = ? AND version = ?", arguments: [extensionID, version]
            ).map(Self.versionRecord)
        }
    }

    public func versions(extensionID: String) async throws -> [VersionRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM extension_version WHERE registry_id = ? ORDER BY created_at DESC, id DESC", arguments: [extensionID]
            ).map(Self.versionRecord)
        }
    }

    public func bundles(versionID: String) async throws -> [BundleRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM extension_bundle WHERE version_id = ? ORDER BY created_at DESC, content_hash DESC",
                arguments: [versionID]
            ).map(Self.bundleRecord)
        }
    }

    // MARK: - Installs

    @discardableResult
    public func saveInstall(_ install: InstallRecord, config: InstallConfigRecord) async throws -> InstallRecord {
        let granted = try Self.json(install.grantedCapabilities)
        let installConfig = try Self.json(install.config)
        let runnerConfig = try Self.json(config.config)
        let providers = try Self.json(config.providers)
        return try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM extension_registry WHERE id = ?", arguments: [install.extensionID]) != nil else {
                throw RegistryError.notFound("extension", key: install.extensionID)
            }
            guard
                try String.fetchOne(db, sql: "SELECT registry_id FROM extension_version WHERE id = ?", arguments: [install.versionID])
                    == install.extensionID
            else { throw RegistryError.notFound("version", key: install.versionID) }
            var stored = install
            if let existing = try Row.fetchOne(
                db, sql: "SELECT id, created_at FROM tenant_extension_install WHERE tenant_id = ? AND registry_id = ?",
                arguments: [install.tenantID, install.extensionID])
            {
                stored.id = try existing.decode(forColumn: "id")
                stored.createdAt = try Self.date(existing, "created_at")
                try db.execute(
                    sql: """
                        UPDATE tenant_extension_install SET version_id = ?, granted_caps = ?, config = ?, is_enabled = ?, status = ?,
                            updated_at = ? WHERE id = ?
                        """,
                    arguments: [
                        stored.versionID, granted, installConfig, stored.isEnabled, stored.status.rawValue,
                        stored.updatedAt.timeIntervalSince1970, stored.id,
                    ])
            } else {
                try db.execute(
                    sql: """
                        INSERT INTO tenant_extension_install (id, tenant_id, registry_id, version_id, granted_caps, config, is_enabled,
                            status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        stored.id, stored.tenantID, stored.extensionID, stored.versionID, granted, installConfig, stored.isEnabled,
                        stored.status.rawValue, stored.createdAt.timeIntervalSince1970, stored.updatedAt.timeIntervalSince1970,
                    ])
            }
            try db.execute(
                sql: """
                    INSERT INTO tenant_extension_install_config (id, install_id, tenant_id, config, providers, version, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (install_id) DO UPDATE SET config = excluded.config, providers = excluded.providers,
                        version = excluded.version, updated_at = excluded.updated_at
                    """,
                arguments: [
                    RegistryID.make(), stored.id, stored.tenantID, runnerConfig, providers, config.version,
                    config.updatedAt.timeIntervalSince1970, config.updatedAt.timeIntervalSince1970,
                ])
            return stored
        }
    }

    public func install(tenantID: String, extensionID: String) async throws -> InstallRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM tenant_extension_install WHERE tenant_id = ? AND registry_id = ?", arguments: [tenantID, extensionID]
            ).map(Self.installRecord)
        }
    }

    public func installs(tenantID: String?) async throws -> [InstallRecord] {
        try await read { db in
            if let tenantID {
                return try Row.fetchAll(
                    db, sql: "SELECT * FROM tenant_extension_install WHERE tenant_id = ? ORDER BY tenant_id, registry_id", arguments: [tenantID]
                ).map(Self.installRecord)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM tenant_extension_install ORDER BY tenant_id, registry_id").map(Self.installRecord)
        }
    }

    public func setEnabled(tenantID: String, extensionID: String, _ isEnabled: Bool, now: Date) async throws -> InstallRecord? {
        try await write { db in
            try db.execute(
                sql: "UPDATE tenant_extension_install SET is_enabled = ?, updated_at = ? WHERE tenant_id = ? AND registry_id = ?",
                arguments: [isEnabled, now.timeIntervalSince1970, tenantID, extensionID])
            return try Row.fetchOne(
                db, sql: "SELECT * FROM tenant_extension_install WHERE tenant_id = ? AND registry_id = ?", arguments: [tenantID, extensionID]
            ).map(Self.installRecord)
        }
    }

    @discardableResult
    public func deleteInstall(tenantID: String, extensionID: String) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM tenant_extension_install WHERE tenant_id = ? AND registry_id = ?", arguments: [tenantID, extensionID])
            return db.changesCount > 0
        }
    }

    public func installConfig(installID: String) async throws -> InstallConfigRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tenant_extension_install_config WHERE install_id = ?", arguments: [installID]).map { row in
                try InstallConfigRecord(
                    installID: row.decode(forColumn: "install_id"), tenantID: row.decode(forColumn: "tenant_id"),
                    config: Self.decode(row.decode(forColumn: "config"), default: [:]), providers: Self.decode(row.decode(forColumn: "providers"), default: []),
                    version: row.decode(forColumn: "version"), updatedAt: Self.date(row, "updated_at"))
            }
        }
    }

    /// One read: the install joined with its extension, its version and the version's latest
    /// bundle (a prepared statement, cached per connection).
    public func resolveInstall(tenantID: String, extensionID: String) async throws -> ResolvedInstallRecord? {
        try await read { db in
            let installRow = try db.cachedStatement(sql: "SELECT * FROM tenant_extension_install WHERE tenant_id = ? AND registry_id = ?")
            guard let install = try Row.fetchOne(installRow, arguments: [tenantID, extensionID]).map(Self.installRecord) else { return nil }
            let extensionRow = try db.cachedStatement(sql: "SELECT * FROM extension_registry WHERE id = ?")
            guard let record = try Row.fetchOne(extensionRow, arguments: [extensionID]).map(Self.extensionRecord) else { return nil }
            let versionRow = try db.cachedStatement(sql: "SELECT * FROM extension_version WHERE id = ?")
            let version = try Row.fetchOne(versionRow, arguments: [install.versionID]).map(Self.versionRecord)
            let bundleRow = try db.cachedStatement(
                sql: "SELECT * FROM extension_bundle WHERE version_id = ? ORDER BY created_at DESC, content_hash DESC LIMIT 1")
            let bundle = try Row.fetchOne(bundleRow, arguments: [install.versionID]).map(Self.bundleRecord)
            return ResolvedInstallRecord(extension: record, install: install, version: version, bundle: bundle)
        }
    }

    /// One indexed join, four columns, on the hot-path reader's own connections (see
    /// ``HotReader``), run on ``BundleCore/BlockingIO/shared`` like every blocking call.
    public func installedBundle(tenantID: String, extensionID: String) async throws -> InstalledBundle? {
        let hot = self.hot
        return try await BlockingIO.shared.run { try hot.installedBundle(tenantID: tenantID, extensionID: extensionID) }
    }

    // MARK: - Plumbing

    /// One `BEGIN IMMEDIATE` transaction: the write lock is taken first, so a read-then-write never
    /// fails to upgrade, and another process's writer makes this one wait (up to the busy timeout).
    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as RegistryError {
            throw error
        } catch {
            throw Self.backendError(error, "a registry write failed")
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as RegistryError {
            throw error
        } catch {
            throw Self.backendError(error, "a registry read failed")
        }
    }

    private static func backendError(_ error: any Error, _ reason: String) -> RegistryError {
        if let error = error as? RegistryError { return error }
        let message = (error as? DatabaseError)?.message ?? String(describing: error)
        return RegistryError(code: .registryBackend, reason: reason, underlying: message)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private static func json(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private static func decode<T: Decodable>(_ text: String?, default fallback: T) -> T {
        guard let text, let value = try? JSONDecoder().decode(T.self, from: Data(text.utf8)) else { return fallback }
        return value
    }

    private static func hash(_ text: String) throws -> ContentHash {
        do {
            return try ContentHash(parsing: text)
        } catch {
            throw RegistryError(code: .registryBackend, reason: "a stored content hash is not sha256:<hex>", key: text)
        }
    }

    private static func extensionRecord(_ row: Row) throws -> ExtensionRecord {
        ExtensionRecord(
            id: try row.decode(forColumn: "id"), publisher: try row.decode(forColumn: "publisher"),
            name: try row.decode(forColumn: "name"), displayName: try row.decode(forColumn: "display_name"),
            description: try row.decode(forColumn: "description"), createdAt: try date(row, "created_at"),
            updatedAt: try date(row, "updated_at"))
    }

    private static func versionRecord(_ row: Row) throws -> VersionRecord {
        try VersionRecord(
            id: row.decode(forColumn: "id"), extensionID: row.decode(forColumn: "registry_id"), version: row.decode(forColumn: "version"),
            runtime: row.decode(forColumn: "runtime"), mainEntry: row.decode(forColumn: "main_entry"),
            ui: decode(row.decode(forColumn: "ui"), default: nil as UIRecord?), endpoints: decode(row.decode(forColumn: "api_endpoints"), default: []),
            capabilities: decode(row.decode(forColumn: "capabilities"), default: []), contentHash: hash(row.decode(forColumn: "content_hash")),
            size: row.decode(forColumn: "size_bytes"), signerKeyIDs: decode(row.decode(forColumn: "signer_key_ids"), default: []),
            publishedAt: date(row, "created_at"))
    }

    private static func bundleRecord(_ row: Row) throws -> BundleRecord {
        try BundleRecord(
            id: row.decode(forColumn: "id"), versionID: row.decode(forColumn: "version_id"), contentHash: hash(row.decode(forColumn: "content_hash")),
            size: row.decode(Int64?.self, forColumn: "size_bytes") ?? 0, signature: row.decode(forColumn: "signature"),
            storageKey: row.decode(forColumn: "storage_key"), createdAt: date(row, "created_at"))
    }

    private static func installRecord(_ row: Row) throws -> InstallRecord {
        try InstallRecord(
            id: row.decode(forColumn: "id"), tenantID: row.decode(forColumn: "tenant_id"), extensionID: row.decode(forColumn: "registry_id"),
            versionID: row.decode(forColumn: "version_id"), isEnabled: row.decode(forColumn: "is_enabled"),
            status: InstallStatus(rawValue: row.decode(forColumn: "status")) ?? .pending,
            grantedCapabilities: decode(row.decode(forColumn: "granted_caps"), default: []), config: decode(row.decode(forColumn: "config"), default: [:]),
            createdAt: date(row, "created_at"), updatedAt: date(row, "updated_at"))
    }

    /// A REAL column of seconds since 1970 (a row that holds anything else is an error, not a crash).
    private static func date(_ row: Row, _ column: String) throws -> Date {
        Date(timeIntervalSince1970: try row.decode(Double.self, forColumn: column))
    }
}
