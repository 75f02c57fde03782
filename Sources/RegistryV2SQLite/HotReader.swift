import BundleCore
import Foundation
import GRDBSQLite
import RegistryV2

/// The registry's hot read, `installedBundle(tenantID:extensionID:)`, on read-only SQLite
/// connections of its own: one prepared statement each, no transaction around the single
/// `SELECT` (SQLite reads one consistent snapshot per statement), checked out under a lock. The
/// runner and the gateway ask it on every request; GRDB's read path (a dispatch queue hop and a
/// `BEGIN`/`COMMIT` per read) costs ten times the query itself.
final class HotReader: @unchecked Sendable {
    private final class Connection {
        let handle: OpaquePointer
        let statement: OpaquePointer

        init(handle: OpaquePointer, statement: OpaquePointer) {
            self.handle = handle
            self.statement = statement
        }

        deinit {
            sqlite3_finalize(statement)
            sqlite3_close_v2(handle)
        }
    }

    static let sql = """
        SELECT i.is_enabled, i.status, i.version_id, b.content_hash FROM tenant_extension_install i
        LEFT JOIN extension_bundle b ON b.version_id = i.version_id
        WHERE i.tenant_id = ?1 AND i.registry_id = ?2 ORDER BY b.created_at DESC, b.content_hash DESC LIMIT 1
        """

    private let path: String
    private let busyTimeoutMilliseconds: Int32
    private let lock = NSLock()
    private var idle: [Connection] = []
    private let maxIdle: Int

    init(path: String, busyTimeout: TimeInterval, maxIdle: Int) {
        self.path = path
        self.busyTimeoutMilliseconds = Int32(SQLiteRegistryBackend.Configuration.milliseconds(busyTimeout))
        self.maxIdle = maxIdle
    }

    /// Reads one install's state and bundle hash.
    func installedBundle(tenantID: String, extensionID: String) throws -> InstalledBundle? {
        let connection = try checkOut()
        defer { checkIn(connection) }
        let statement = connection.statement
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        guard sqlite3_bind_text(statement, 1, tenantID, -1, transient) == SQLITE_OK,
            sqlite3_bind_text(statement, 2, extensionID, -1, transient) == SQLITE_OK
        else { throw failure(connection.handle) }
        switch sqlite3_step(statement) {
        case SQLITE_DONE:
            return nil
        case SQLITE_ROW:
            let status = text(statement, 1).flatMap(InstallStatus.init(rawValue:)) ?? .pending
            guard let versionID = text(statement, 2) else { throw RegistryError(code: .registryBackend, reason: "an install row without a version") }
            var hash: ContentHash?
            if let stored = text(statement, 3) {
                do { hash = try ContentHash(parsing: stored) } catch {
                    throw RegistryError(code: .registryBackend, reason: "a stored content hash is not sha256:<hex>", key: stored)
                }
            }
            return InstalledBundle(isEnabled: sqlite3_column_int64(statement, 0) != 0, status: status, versionID: versionID, contentHash: hash)
        default:
            throw failure(connection.handle)
        }
    }

    private func text(_ statement: OpaquePointer, _ column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(statement, column) else { return nil }
        return String(cString: pointer)
    }

    private func checkOut() throws -> Connection {
        lock.lock()
        if let connection = idle.popLast() {
            lock.unlock()
            return connection
        }
        lock.unlock()
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &handle, flags, nil) == SQLITE_OK, let handle else {
            let error = RegistryError(
                code: .registryBackend, reason: "cannot open the registry for reading",
                underlying: handle.map { String(cString: sqlite3_errmsg($0)) })
            if let handle { sqlite3_close_v2(handle) }
            throw error
        }
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, Self.sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            let error = failure(handle)
            sqlite3_close_v2(handle)
            throw error
        }
        return Connection(handle: handle, statement: statement)
    }

    private func checkIn(_ connection: Connection) {
        lock.lock()
        defer { lock.unlock() }
        if idle.count < maxIdle { idle.append(connection) }
    }

    private func failure(_ handle: OpaquePointer) -> RegistryError {
        RegistryError(code: .registryBackend, reason: "a registry read failed", underlying: String(cString: sqlite3_errmsg(handle)))
    }
}
