public import BundleCore
public import Foundation
import ManifestV2
public import RegistryV2

/// A tenant's install resolved to the bundle it runs.
public struct ResolvedInstall: Sendable, Equatable {
    /// The extension.
    public var `extension`: ExtensionRecord
    /// The install.
    public var install: InstallRecord
    /// The installed version.
    public var version: VersionRecord
    /// The content hash of the version's latest bundle.
    public var contentHash: ContentHash
}

/// A row of the versions viewer (reference 5.7).
public struct VersionListing: Sendable, Equatable, Codable {
    /// The version's id.
    public var versionId: String
    /// The version string.
    public var version: String
    /// When it was published.
    public var publishedAt: Date
    /// `sha256:<hex>` of its latest bundle.
    public var contentHash: String?
    /// Whether the tenant asked about has this version installed.
    public var installed: Bool
}

extension ExtensionHost {
    /// Finds an extension by registry id (a UUID), by `PUBLISHER/NAME` (exact), or by slug
    /// `publisher.name` (case-insensitive). A slug that names several extensions (possible only
    /// in registries written before slugs were unique) is 409 `EXTENSION_AMBIGUOUS`, naming the
    /// candidates, never a silent pick.
    public func findExtension(_ reference: String) async throws(HostError) -> ExtensionRecord {
        do {
            if RegistryID.isUUID(reference), let record = try await registry.extensionRecord(id: reference.lowercased()) {
                return record
            }
            if let slash = reference.utf8.firstIndex(of: BytePath.slash) {
                let publisher = String(decoding: reference.utf8[..<slash], as: UTF8.self)
                let name = String(decoding: reference.utf8[reference.utf8.index(after: slash)...], as: UTF8.self)
                if let record = try await registry.extensionRecord(publisher: publisher, name: name) { return record }
            }
            let candidates = try await registry.extensions(slug: ExtensionRecord.normalizeSlug(reference))
            if candidates.count > 1 {
                throw HostError(
                    .extensionAmbiguous, status: 409, "Several extensions have this slug; name one by its id or PUBLISHER/NAME",
                    details: ["extension": reference, "candidates": candidates.map { "\($0.id) (\($0.publisher)/\($0.name))" }.joined(separator: ", ")])
            }
            if let record = candidates.first { return record }
        } catch {
            throw registryFailure(error)
        }
        throw HostError(.extensionNotFound, status: 404, "Extension not found", details: ["extension": reference])
    }

    /// Installs a version (default: the newest) for a tenant (reference 5.4): the granted
    /// capabilities are the version's, normalised, unknown ones dropped and the defaults added;
    /// the install is enabled with an empty config. Installing again replaces the install.
    @discardableResult
    public func install(_ reference: String, tenant: String, version: String? = nil) async throws(HostError) -> InstallRecord {
        defer { resolveCache.invalidate() }
        let record = try await findExtension(reference)
        let target = try await findVersion(record, version)
        let time = now()
        let granted = Capabilities.normalize(target.capabilities)
        let install = InstallRecord(
            tenantID: tenant, extensionID: record.id, versionID: target.id, isEnabled: true, status: .enabled,
            grantedCapabilities: granted, config: [:], createdAt: time)
        return try await save(install, providers: granted)
    }

    /// Switches an existing install to another version (default: the newest), keeping its
    /// enabled flag, status and config.
    @discardableResult
    public func update(_ reference: String, tenant: String, version: String? = nil) async throws(HostError) -> InstallRecord {
        defer { resolveCache.invalidate() }
        let record = try await findExtension(reference)
        var install = try await existingInstall(record, tenant: tenant)
        let target = try await findVersion(record, version)
        install.versionID = target.id
        install.grantedCapabilities = Capabilities.normalize(target.capabilities)
        install.updatedAt = now()
        return try await save(install, providers: install.grantedCapabilities)
    }

    /// Removes a tenant's install. The bundle objects stay: they are content-addressed and may
    /// serve other versions and tenants (Alga deletes them; reference 9 item 3).
    public func uninstall(_ reference: String, tenant: String) async throws(HostError) {
        defer { resolveCache.invalidate() }
        let record = try await findExtension(reference)
        let removed: Bool
        do {
            removed = try await registry.deleteInstall(tenantID: tenant, extensionID: record.id)
        } catch {
            throw registryFailure(error)
        }
        guard removed else { throw Self.noInstall(tenant, record) }
    }

    /// Enables or disables an install: flips `isEnabled` only (reference 5.4).
    @discardableResult
    public func setEnabled(_ reference: String, tenant: String, _ isEnabled: Bool) async throws(HostError) -> InstallRecord {
        defer { resolveCache.invalidate() }
        let record = try await findExtension(reference)
        let updated: InstallRecord?
        do {
            updated = try await registry.setEnabled(tenantID: tenant, extensionID: record.id, isEnabled, now: now())
        } catch {
            throw registryFailure(error)
        }
        guard let updated else { throw Self.noInstall(tenant, record) }
        return updated
    }

    /// Resolves a tenant's install to the content hash it runs (reference 5.5): the install must
    /// be active (`isEnabled` and status `enabled`, the gateway's rule); the hash is the installed
    /// version's latest bundle.
    public func resolve(_ reference: String, tenant: String) async throws(HostError) -> ResolvedInstall {
        let id: String
        if RegistryID.isUUID(reference) { id = reference.lowercased() } else { id = try await findExtension(reference).id }
        let found: ResolvedInstallRecord?
        do {
            found = try await registry.resolveInstall(tenantID: tenant, extensionID: id)
        } catch {
            throw registryFailure(error)
        }
        guard let found else {
            // No install, or no such extension: tell which.
            let record = try await findExtension(reference)
            throw Self.noInstall(tenant, record)
        }
        let install = found.install
        guard install.isActive else {
            throw HostError(
                .installDisabled, status: 403,
                install.isEnabled ? "The extension's install for this tenant is \(install.status.rawValue)" : "The extension is disabled for this tenant",
                details: [
                    "tenant": tenant, "extension": found.extension.id, "isEnabled": String(install.isEnabled), "status": install.status.rawValue,
                ])
        }
        guard let version = found.version, let bundle = found.bundle else {
            throw HostError(.bundleNotFound, status: 404, "The installed version has no bundle", details: ["versionId": install.versionID])
        }
        return ResolvedInstall(extension: found.extension, install: install, version: version, contentHash: bundle.contentHash)
    }

    /// The content hash a tenant's active install runs: ``resolve(_:tenant:)`` without the
    /// records (the runner's and the gateway's question on every request). Answers, refusals
    /// included, are kept for ``Configuration/resolveCacheTTL`` (a quarter of a second by
    /// default) and dropped at once when this host changes an install; otherwise it is one small
    /// registry read when `reference` is a registry id. Errors as for ``resolve(_:tenant:)``.
    public func resolveContentHash(_ reference: String, tenant: String) async throws(HostError) -> ContentHash {
        let time = now()
        if let cached = resolveCache.answer(tenant: tenant, reference: reference, at: time) { return try cached.get() }
        let generation = resolveCache.generation
        let answer: Result<ContentHash, HostError>
        do {
            answer = .success(try await resolveContentHashUncached(reference, tenant: tenant))
        } catch {
            answer = .failure(error)
        }
        if case .failure(let error) = answer, error.status >= 500 { return try answer.get() }  // never remember a failure of ours
        resolveCache.remember(answer, tenant: tenant, reference: reference, at: time, generation: generation)
        return try answer.get()
    }

    /// ``resolveContentHash(_:tenant:)`` without the cache.
    public func resolveContentHashUncached(_ reference: String, tenant: String) async throws(HostError) -> ContentHash {
        let id: String
        if RegistryID.isUUID(reference) { id = reference.lowercased() } else { id = try await findExtension(reference).id }
        let found: InstalledBundle?
        do {
            found = try await registry.installedBundle(tenantID: tenant, extensionID: id)
        } catch {
            throw registryFailure(error)
        }
        guard let found else { throw Self.noInstall(tenant, try await findExtension(reference)) }
        guard found.isActive else {
            throw HostError(
                .installDisabled, status: 403,
                found.isEnabled ? "The extension's install for this tenant is \(found.status.rawValue)" : "The extension is disabled for this tenant",
                details: ["tenant": tenant, "extension": id, "isEnabled": String(found.isEnabled), "status": found.status.rawValue])
        }
        guard let hash = found.contentHash else {
            throw HostError(.bundleNotFound, status: 404, "The installed version has no bundle", details: ["versionId": found.versionID])
        }
        return hash
    }

    /// The runner's check (reference 5.6), honouring enabled/disabled: true when the tenant has an
    /// active install of the extension whose version has a bundle with exactly this hash. The
    /// hash may be bare or `sha256:`-prefixed, in any case.
    public func validateInstall(tenant: String, extension reference: String, hash: String) async throws(HostError) -> Bool {
        guard !tenant.isEmpty, !reference.isEmpty, let wanted = try? ContentHash(parsing: hash.trimmingCharacters(in: .whitespaces)) else {
            throw .badRequest("missing or invalid parameters")
        }
        do {
            let record = try await findExtension(reference)
            guard let install = try await registry.install(tenantID: tenant, extensionID: record.id), install.isActive else { return false }
            return try await registry.bundles(versionID: install.versionID).contains { $0.contentHash == wanted }
        } catch let error as HostError where error.code == .extensionNotFound {
            return false
        } catch let error as HostError {
            throw error
        } catch {
            throw registryFailure(error)
        }
    }

    /// The versions of an extension, newest first (reference 5.7), with `installed` set for
    /// the version `tenant` has installed.
    public func listVersions(_ reference: String, tenant: String? = nil) async throws(HostError) -> [VersionListing] {
        let record = try await findExtension(reference)
        do {
            var installed: String?
            if let tenant { installed = try await registry.install(tenantID: tenant, extensionID: record.id)?.versionID }
            var rows: [VersionListing] = []
            for version in try await registry.versions(extensionID: record.id) {
                let bundle = try await registry.latestBundle(versionID: version.id)
                rows.append(
                    VersionListing(
                        versionId: version.id, version: version.version, publishedAt: version.publishedAt,
                        contentHash: bundle?.contentHash.prefixed, installed: version.id == installed))
            }
            return rows
        } catch {
            throw registryFailure(error)
        }
    }

    private func findVersion(_ record: ExtensionRecord, _ version: String?) async throws(HostError) -> VersionRecord {
        let found: VersionRecord?
        do {
            if let version {
                found = try await registry.version(extensionID: record.id, version: version)
            } else {
                found = try await registry.versions(extensionID: record.id).first
            }
        } catch {
            throw registryFailure(error)
        }
        guard let found else {
            throw HostError(.versionNotFound, status: 404, "Version not found", details: ["extension": record.id, "version": version ?? "latest"])
        }
        return found
    }

    private func existingInstall(_ record: ExtensionRecord, tenant: String) async throws(HostError) -> InstallRecord {
        let install: InstallRecord?
        do {
            install = try await registry.install(tenantID: tenant, extensionID: record.id)
        } catch {
            throw registryFailure(error)
        }
        guard let install else { throw Self.noInstall(tenant, record) }
        return install
    }

    private func save(_ install: InstallRecord, providers: [String]) async throws(HostError) -> InstallRecord {
        let providers = Capabilities.known.filter(Set(providers).union(Capabilities.defaults).contains)
        let config = InstallConfigRecord(
            installID: install.id, tenantID: install.tenantID, config: install.config, providers: providers, updatedAt: install.updatedAt)
        do {
            return try await registry.saveInstall(install, config: config)
        } catch {
            throw registryFailure(error)
        }
    }

    static func noInstall(_ tenant: String, _ record: ExtensionRecord) -> HostError {
        HostError(.installNotFound, status: 404, "Extension is not installed for this tenant", details: ["tenant": tenant, "extension": record.id])
    }
}
