public import BundleCore
public import Foundation

/// Storage for the registry: extensions, their immutable versions and bundles, and tenant
/// installs with their configuration.
///
/// The contract every implementation keeps (the shared conformance suite checks each point):
/// - **Uniqueness.** `(publisher, name)` of an extension, `(extensionID, version)` of a version,
///   `(versionID, contentHash)` of a bundle and `(tenantID, extensionID)` of an install are unique.
/// - **Atomic version insert.** ``insertVersion(_:bundle:)`` writes the version and its bundle
///   together or not at all. When the version exists it throws `REGISTRY_CONFLICT` (constraint
///   `version`) and writes nothing, also when the bytes are identical, and also when another
///   writer (another task, or another process sharing a database file) inserts the same version
///   at the same moment: exactly one of them succeeds.
/// - **Immutability.** No operation changes or deletes a version or bundle.
/// - **Find-or-create.** ``ensureExtension(publisher:name:now:)`` returns the one record for a
///   publisher and name, creating it if missing, without a duplicate under concurrent callers.
/// - **Slugs.** A new extension whose slug (``ExtensionRecord/slug``, compared as bytes) is
///   already another extension's is refused with `REGISTRY_CONFLICT` (constraint `slug`), so
///   publisher `ACME` cannot take `acme.pay` from publisher `acme`; also under concurrent
///   callers exactly one of two colliding extensions is created.
/// - **Identity is bytes.** Publishers, names, tenants, ids and version strings match when their
///   bytes are equal (not by Unicode canonical equivalence), as in a database.
/// - **Installs.** ``saveInstall(_:config:)`` creates or replaces the install of
///   `(tenantID, extensionID)` and its configuration in one transaction; a replaced install keeps
///   its `id` and `createdAt`. The extension and version it names must exist (`REGISTRY_NOT_FOUND`).
/// - **Orders.** Lists are deterministic: extensions by publisher then name; versions newest
///   first (`publishedAt` descending, then `id` descending); bundles newest first (`createdAt`
///   descending, then content hash descending, Alga's "latest bundle"); installs by tenant then
///   extension id.
/// - **Round trip.** A record reads back equal to what was written.
public protocol RegistryBackend: Sendable {
    /// The extension with this publisher and name, created (with `now` as its time) if missing.
    func ensureExtension(publisher: String, name: String, now: Date) async throws -> ExtensionRecord
    /// The extension with this id.
    func extensionRecord(id: String) async throws -> ExtensionRecord?
    /// The extension with this publisher and name.
    func extensionRecord(publisher: String, name: String) async throws -> ExtensionRecord?
    /// The extensions whose slug (`lower(publisher.name)`) is `slug`, oldest first.
    func extensions(slug: String) async throws -> [ExtensionRecord]
    /// Every extension, by publisher then name.
    func extensions() async throws -> [ExtensionRecord]

    /// Inserts a version and its bundle atomically; `REGISTRY_CONFLICT` when the version exists.
    func insertVersion(_ version: VersionRecord, bundle: BundleRecord) async throws
    /// The version with this id.
    func version(id: String) async throws -> VersionRecord?
    /// The version of an extension with this version string.
    func version(extensionID: String, version: String) async throws -> VersionRecord?
    /// The versions of an extension, newest first.
    func versions(extensionID: String) async throws -> [VersionRecord]
    /// The bundles of a version, newest first.
    func bundles(versionID: String) async throws -> [BundleRecord]

    /// Creates or replaces the install of `(install.tenantID, install.extensionID)` and its config.
    /// Returns the install as stored.
    @discardableResult
    func saveInstall(_ install: InstallRecord, config: InstallConfigRecord) async throws -> InstallRecord
    /// The install of an extension for a tenant.
    func install(tenantID: String, extensionID: String) async throws -> InstallRecord?
    /// The installs of a tenant, or of every tenant when `tenantID` is nil.
    func installs(tenantID: String?) async throws -> [InstallRecord]
    /// Sets `isEnabled` (only) and `updatedAt`; nil when there is no such install.
    func setEnabled(tenantID: String, extensionID: String, _ isEnabled: Bool, now: Date) async throws -> InstallRecord?
    /// Deletes an install and its config; false when there was none.
    @discardableResult
    func deleteInstall(tenantID: String, extensionID: String) async throws -> Bool
    /// The configuration of an install.
    func installConfig(installID: String) async throws -> InstallConfigRecord?

    /// A tenant's install of an extension with its extension, version and the version's latest
    /// bundle, in one read where the backend can; nil when there is no such install.
    func resolveInstall(tenantID: String, extensionID: String) async throws -> ResolvedInstallRecord?

    /// The state of a tenant's install and the content hash of its version's latest bundle, in
    /// one small read (the runner's and the gateway's question on every request); nil when there
    /// is no such install.
    func installedBundle(tenantID: String, extensionID: String) async throws -> InstalledBundle?
}

/// What ``RegistryBackend/installedBundle(tenantID:extensionID:)`` reads: just enough to answer
/// "which bundle does this tenant run, if any".
public struct InstalledBundle: Sendable, Equatable {
    /// The install's enabled flag.
    public var isEnabled: Bool
    /// The install's status.
    public var status: InstallStatus
    /// The installed version's id.
    public var versionID: String
    /// The content hash of the version's latest bundle (nil when it has none).
    public var contentHash: ContentHash?

    /// Creates a record.
    public init(isEnabled: Bool, status: InstallStatus, versionID: String, contentHash: ContentHash?) {
        self.isEnabled = isEnabled
        self.status = status
        self.versionID = versionID
        self.contentHash = contentHash
    }

    /// Alga's active-install predicate: `is_enabled AND status = 'enabled'`.
    public var isActive: Bool { isEnabled && status == .enabled }
}

/// What ``RegistryBackend/resolveInstall(tenantID:extensionID:)`` reads.
public struct ResolvedInstallRecord: Sendable, Equatable {
    /// The extension.
    public var `extension`: ExtensionRecord
    /// The install.
    public var install: InstallRecord
    /// The installed version, if it still exists.
    public var version: VersionRecord?
    /// The version's latest bundle, if any.
    public var bundle: BundleRecord?

    /// Creates a record.
    public init(extension: ExtensionRecord, install: InstallRecord, version: VersionRecord?, bundle: BundleRecord?) {
        self.extension = `extension`
        self.install = install
        self.version = version
        self.bundle = bundle
    }
}

extension RegistryBackend {
    /// Composed from the other reads (backends with joins override it).
    public func installedBundle(tenantID: String, extensionID: String) async throws -> InstalledBundle? {
        guard let install = try await install(tenantID: tenantID, extensionID: extensionID) else { return nil }
        return InstalledBundle(
            isEnabled: install.isEnabled, status: install.status, versionID: install.versionID,
            contentHash: try await latestBundle(versionID: install.versionID)?.contentHash)
    }

    /// Composed from the other reads (backends with joins override it).
    public func resolveInstall(tenantID: String, extensionID: String) async throws -> ResolvedInstallRecord? {
        guard let record = try await extensionRecord(id: extensionID),
            let install = try await install(tenantID: tenantID, extensionID: extensionID)
        else { return nil }
        return ResolvedInstallRecord(
            extension: record, install: install, version: try await version(id: install.versionID),
            bundle: try await latestBundle(versionID: install.versionID))
    }

    /// The latest bundle of a version (Alga's choice: `createdAt` descending, content hash descending).
    public func latestBundle(versionID: String) async throws -> BundleRecord? {
        try await bundles(versionID: versionID).first
    }

    /// The version strings of an extension, newest first.
    public func versionStrings(extensionID: String) async throws -> [String] {
        try await versions(extensionID: extensionID).map(\.version)
    }
}
