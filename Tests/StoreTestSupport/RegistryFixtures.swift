public import RegistryV2
import RegistryV2SQLite
import Foundation
import TestSupport

/// A backend under test. `reopen` gives a fresh instance over the same state: a new
/// `SQLiteRegistryBackend` on the same file (after closing the old one), or the same actor.
public struct RegistryFixture: Sendable, CustomStringConvertible {
    /// The backend's name in test output.
    public let description: String
    /// Makes a fresh backend; returns it, a way to reopen its state, and a cleanup.
    public let make: @Sendable () throws -> (backend: any RegistryBackend, reopen: @Sendable () throws -> any RegistryBackend, cleanup: @Sendable () -> Void)

    /// The in-memory backend.
    public static let memory = RegistryFixture(description: "memory") {
        let backend = InMemoryRegistryBackend()
        return (backend, { backend }, {})
    }

    /// The SQLite backend on a temporary file.
    public static let sqlite = RegistryFixture(description: "sqlite") {
        let folder = try TestSupport.makeTemporaryDirectory("registry")
        let path = folder + "/registry.sqlite"
        let backend = try SQLiteRegistryBackend(path: path)
        return (
            backend,
            {
                try backend.close()
                return try SQLiteRegistryBackend(path: path)
            },
            { try? FileManager.default.removeItem(atPath: folder) }
        )
    }

    /// Both.
    public static let all = [memory, sqlite]
}

