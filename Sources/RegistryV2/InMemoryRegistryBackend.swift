import BundleCore
public import Foundation

/// A ``RegistryBackend`` in memory, for tests of services that use the registry. Keeps the same
/// contract as the SQLite backend; state lives as long as the instance.
public actor InMemoryRegistryBackend: RegistryBackend {
    private var extensionsByID: [String: ExtensionRecord] = [:]
    private var versionsByID: [String: VersionRecord] = [:]
    private var bundlesByVersion: [String: [BundleRecord]] = [:]
    private var installsByKey: [InstallKey: InstallRecord] = [:]
    private var configs: [String: InstallConfigRecord] = [:]

    /// Tenant and extension by their bytes.
    private struct InstallKey: Hashable {
        var tenantID: [UInt8]
        var extensionID: [UInt8]

        init(tenantID: String, extensionID: String) {
            self.tenantID = Array(tenantID.utf8)
            self.extensionID = Array(extensionID.utf8)
        }
    }

    /// Creates an empty registry.
    public init() {}

    public func ensureExtension(publisher: String, name: String, now: Date) throws -> ExtensionRecord {
        if let existing = find(publisher: publisher, name: name) { return existing }
        let record = ExtensionRecord(publisher: publisher, name: name, createdAt: now)
        if let other = extensionsByID.values.first(where: { Self.same($0.slug, record.slug) }) {
            throw RegistryError.conflict("slug", key: other.slug)
        }
        extensionsByID[record.id] = record
        return record
    }

    public func extensionRecord(id: String) -> ExtensionRecord? { extensionsByID[id] }

    public func extensionRecord(publisher: String, name: String) -> ExtensionRecord? { find(publisher: publisher, name: name) }

    public func extensions(slug: String) -> [ExtensionRecord] {
        extensionsByID.values.filter { Self.same($0.slug, slug) }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func extensions() -> [ExtensionRecord] {
        extensionsByID.values.sorted { ($0.publisher, $0.name) < ($1.publisher, $1.name) }
    }

    public func insertVersion(_ version: VersionRecord, bundle: BundleRecord) throws {
        guard extensionsByID[version.extensionID] != nil else { throw RegistryError.notFound("extension", key: version.extensionID) }
        guard versionsByID[version.id] == nil,
            !versionsByID.values.contains(where: { $0.extensionID == version.extensionID && Self.same($0.version, version.version) })
        else {
            throw RegistryError.conflict("version", key: "\(version.extensionID)@\(version.version)")
        }
        guard bundle.versionID == version.id else {
            throw RegistryError(code: .registryNotFound, reason: "the bundle names another version", constraint: "version", key: bundle.versionID)
        }
        versionsByID[version.id] = version
        bundlesByVersion[version.id, default: []].append(bundle)
    }

    public func version(id: String) -> VersionRecord? { versionsByID[id] }

    public func version(extensionID: String, version: String) -> VersionRecord? {
        versionsByID.values.first { $0.extensionID == extensionID && Self.same($0.version, version) }
    }

    public func versions(extensionID: String) -> [VersionRecord] {
        versionsByID.values.filter { $0.extensionID == extensionID }.sorted { ($0.publishedAt, $0.id) > ($1.publishedAt, $1.id) }
    }

    public func bundles(versionID: String) -> [BundleRecord] {
        (bundlesByVersion[versionID] ?? []).sorted { ($0.createdAt, $0.contentHash.hex) > ($1.createdAt, $1.contentHash.hex) }
    }

    @discardableResult
    public func saveInstall(_ install: InstallRecord, config: InstallConfigRecord) throws -> InstallRecord {
        guard extensionsByID[install.extensionID] != nil else { throw RegistryError.notFound("extension", key: install.extensionID) }
        guard versionsByID[install.versionID]?.extensionID == install.extensionID else {
            throw RegistryError.notFound("version", key: install.versionID)
        }
        let key = InstallKey(tenantID: install.tenantID, extensionID: install.extensionID)
        var stored = install
        if let existing = installsByKey[key] {
            stored.id = existing.id
            stored.createdAt = existing.createdAt
            configs[existing.id] = nil
        }
        var storedConfig = config
        storedConfig.installID = stored.id
        storedConfig.tenantID = stored.tenantID
        installsByKey[key] = stored
        configs[stored.id] = storedConfig
        return stored
    }

    public func install(tenantID: String, extensionID: String) -> InstallRecord? {
        installsByKey[InstallKey(tenantID: tenantID, extensionID: extensionID)]
    }

    public func installs(tenantID: String?) -> [InstallRecord] {
        installsByKey.values.filter { tenantID == nil || Self.same($0.tenantID, tenantID!) }
            .sorted { ($0.tenantID, $0.extensionID) < ($1.tenantID, $1.extensionID) }
    }

    public func setEnabled(tenantID: String, extensionID: String, _ isEnabled: Bool, now: Date) -> InstallRecord? {
        let key = InstallKey(tenantID: tenantID, extensionID: extensionID)
        guard var install = installsByKey[key] else { return nil }
        install.isEnabled = isEnabled
        install.updatedAt = now
        installsByKey[key] = install
        return install
    }

    @discardableResult
    public func deleteInstall(tenantID: String, extensionID: String) -> Bool {
        guard let removed = installsByKey.removeValue(forKey: InstallKey(tenantID: tenantID, extensionID: extensionID)) else {
            return false
        }
        configs[removed.id] = nil
        return true
    }

    public func installConfig(installID: String) -> InstallConfigRecord? { configs[installID] }

    private func find(publisher: String, name: String) -> ExtensionRecord? {
        extensionsByID.values.first { Self.same($0.publisher, publisher) && Self.same($0.name, name) }
    }

    /// Byte equality, as a database compares text (not Swift's canonical equivalence).
    private static func same(_ lhs: String, _ rhs: String) -> Bool { lhs.utf8.elementsEqual(rhs.utf8) }
}
