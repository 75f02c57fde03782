public import BundleCore
public import Foundation
public import ManifestV2

/// An extension: one publisher's named package, shared by every tenant (Alga's
/// `extension_registry`). `(publisher, name)` is unique.
public struct ExtensionRecord: Sendable, Equatable, Codable {
    /// A lowercase UUID.
    public var id: String
    /// The publisher, as in the manifest.
    public var publisher: String
    /// The name, as in the manifest.
    public var name: String
    /// An optional display name.
    public var displayName: String?
    /// An optional description.
    public var description: String?
    /// When the record was created.
    public var createdAt: Date
    /// When the record last changed.
    public var updatedAt: Date

    /// Creates a record.
    public init(
        id: String = RegistryID.make(), publisher: String, name: String, displayName: String? = nil, description: String? = nil,
        createdAt: Date = Date(), updatedAt: Date? = nil
    ) {
        self.id = id
        self.publisher = publisher
        self.name = name
        self.displayName = displayName
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    /// Alga's slug, `lower(publisher + "." + name)`, in Unicode NFC.
    public var slug: String { Self.slug(publisher: publisher, name: name) }

    /// The slug of a publisher and name: Alga's `lower(publisher + "." + name)`, then NFC, so that
    /// spellings that look the same (`é` as one code point or as `e` + U+0301) are one slug and
    /// a publisher cannot take another's by spelling it differently. For the ASCII and NFC names
    /// publishers use, it is Alga's slug byte for byte.
    public static func slug(publisher: String, name: String) -> String { normalizeSlug(publisher + "." + name) }

    /// A slug as typed (`ACME.Pay`, or a decomposed spelling) in the form registries store.
    public static func normalizeSlug(_ text: String) -> String { text.lowercased().precomposedStringWithCanonicalMapping }
}

/// An API endpoint of a version: ManifestV2's normalised endpoint (method upper-case, path with
/// one leading `/`, handler sanitised).
public typealias EndpointRecord = Manifest.Endpoint

/// The UI of a version: ManifestV2's `{type, entry}` with the two menu hooks Alga keeps.
public typealias UIRecord = Manifest.UI

/// A published version: immutable once written (Alga's `extension_version`, plus what Alga
/// leaves out: size, signer key ids and the publish time). `(extensionID, version)` is unique.
public struct VersionRecord: Sendable, Equatable, Codable {
    /// A lowercase UUID.
    public var id: String
    /// The extension's id.
    public var extensionID: String
    /// The resolved version string (never a wildcard).
    public var version: String
    /// The runtime, `wasm-js@1`.
    public var runtime: String
    /// Alga's `main_entry`: the UI entry, or `main`.
    public var mainEntry: String
    /// The UI, if any.
    public var ui: UIRecord?
    /// The API endpoints.
    public var endpoints: [EndpointRecord]
    /// The capabilities as requested by the manifest (non-empty strings, verbatim).
    public var capabilities: [String]
    /// The bundle's content hash.
    public var contentHash: ContentHash
    /// The bundle's size in bytes.
    public var size: Int64
    /// The key ids whose signatures were verified at publish time (empty when unverified).
    public var signerKeyIDs: [String]
    /// The publish time.
    public var publishedAt: Date

    /// Creates a version record.
    public init(
        id: String = RegistryID.make(), extensionID: String, version: String, runtime: String, mainEntry: String? = nil,
        ui: UIRecord? = nil, endpoints: [EndpointRecord] = [], capabilities: [String] = [], contentHash: ContentHash, size: Int64,
        signerKeyIDs: [String] = [], publishedAt: Date = Date()
    ) {
        self.id = id
        self.extensionID = extensionID
        self.version = version
        self.runtime = runtime
        self.mainEntry = mainEntry ?? ui?.entry ?? "main"
        self.ui = ui
        self.endpoints = endpoints
        self.capabilities = capabilities
        self.contentHash = contentHash
        self.size = size
        self.signerKeyIDs = signerKeyIDs
        self.publishedAt = publishedAt
    }
}

/// A bundle of a version (Alga's `extension_bundle`). `(versionID, contentHash)` is unique; one
/// content hash may serve several versions, and its object is stored once.
public struct BundleRecord: Sendable, Equatable, Codable {
    /// A lowercase UUID.
    public var id: String
    /// The version's id.
    public var versionID: String
    /// The content hash.
    public var contentHash: ContentHash
    /// The size in bytes.
    public var size: Int64
    /// The detached signatures as verified at publish time (a signature file's JSON), if any.
    public var signature: String?
    /// The canonical object key.
    public var storageKey: String?
    /// When the row was written.
    public var createdAt: Date

    /// Creates a bundle record.
    public init(
        id: String = RegistryID.make(), versionID: String, contentHash: ContentHash, size: Int64, signature: String? = nil,
        storageKey: String? = nil, createdAt: Date = Date()
    ) {
        self.id = id
        self.versionID = versionID
        self.contentHash = contentHash
        self.size = size
        self.signature = signature
        self.storageKey = storageKey
        self.createdAt = createdAt
    }
}

/// An install's `status` column (Alga's CHECK constraint allows these three).
public enum InstallStatus: String, Sendable, Equatable, Codable, CaseIterable {
    /// Installed and provisioned.
    case enabled
    /// Administratively disabled.
    case disabled
    /// Waiting for provisioning.
    case pending
}

/// A tenant's install of an extension (Alga's `tenant_extension_install`): at most one per
/// tenant and extension.
public struct InstallRecord: Sendable, Equatable, Codable {
    /// A lowercase UUID.
    public var id: String
    /// The tenant.
    public var tenantID: String
    /// The extension's id.
    public var extensionID: String
    /// The installed version's id.
    public var versionID: String
    /// The flag enable/disable flips.
    public var isEnabled: Bool
    /// The lifecycle status (not changed by enable/disable).
    public var status: InstallStatus
    /// The capabilities granted: normalised, known ones only.
    public var grantedCapabilities: [String]
    /// The install's configuration.
    public var config: [String: String]
    /// When the install was created.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date

    /// Creates an install record.
    public init(
        id: String = RegistryID.make(), tenantID: String, extensionID: String, versionID: String, isEnabled: Bool = true,
        status: InstallStatus = .enabled, grantedCapabilities: [String] = [], config: [String: String] = [:],
        createdAt: Date = Date(), updatedAt: Date? = nil
    ) {
        self.id = id
        self.tenantID = tenantID
        self.extensionID = extensionID
        self.versionID = versionID
        self.isEnabled = isEnabled
        self.status = status
        self.grantedCapabilities = grantedCapabilities
        self.config = config
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    /// Alga's active-install predicate (reference 5.5): `is_enabled AND status = 'enabled'`.
    public var isActive: Bool { isEnabled && status == .enabled }
}

/// The configuration sent to the runner for an install (Alga's
/// `tenant_extension_install_config`): one per install.
public struct InstallConfigRecord: Sendable, Equatable, Codable {
    /// The install's id.
    public var installID: String
    /// The tenant.
    public var tenantID: String
    /// The configuration map.
    public var config: [String: String]
    /// The capability providers: granted capabilities plus the defaults.
    public var providers: [String]
    /// A random UUID rotated on every write, so the runner can tell a change.
    public var version: String
    /// When it last changed.
    public var updatedAt: Date

    /// Creates a config record.
    public init(
        installID: String, tenantID: String, config: [String: String] = [:], providers: [String] = [],
        version: String = RegistryID.make(), updatedAt: Date = Date()
    ) {
        self.installID = installID
        self.tenantID = tenantID
        self.config = config
        self.providers = providers
        self.version = version
        self.updatedAt = updatedAt
    }
}

/// Identifiers of registry rows.
public enum RegistryID {
    /// A new lowercase UUID.
    public static func make() -> String { UUID().uuidString.lowercased() }

    /// Whether `text` is a UUID (any case): 8-4-4-4-12 hex digits.
    public static func isUUID(_ text: String) -> Bool {
        let bytes = text.utf8
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            switch index {
            case 8, 13, 18, 23: guard byte == UInt8(ascii: "-") else { return false }
            default:
                guard (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46) else { return false }
            }
        }
        return true
    }
}
