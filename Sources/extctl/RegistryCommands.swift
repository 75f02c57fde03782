import ArgumentParser
import BundleCore
import BundleStore
import BundleVerify
import ExtensionHost
import Foundation
import ManifestV2
import RegistryV2
import RegistryV2SQLite

/// Options that pick the data the publish pipeline runs against: a data folder holding a
/// filesystem store and an SQLite registry, or explicit URLs for each.
struct HostOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The data folder: <DIR>/store and <DIR>/registry.sqlite (EXT_DATA_DIR).", valueName: "dir"))
    var data: String = ProcessInfo.processInfo.environment["EXT_DATA_DIR"] ?? ".ext-data"

    @Option(help: ArgumentHelp("The bundle store: file:///PATH or s3://BUCKET[/PREFIX] (default <data>/store).", valueName: "url"))
    var store: String?

    @Option(help: ArgumentHelp("The registry: an SQLite file path or sqlite:///PATH (default <data>/registry.sqlite).", valueName: "url"))
    var registry: String?

    @Option(help: "Key prefix of canonical bundles (BUNDLE_STORE_BASE).")
    var base: String = ProcessInfo.processInfo.environment["BUNDLE_STORE_BASE"] ?? "sha256/"

    @Option(help: ArgumentHelp("Trusted keys (PEM or JSON); default SIGNING_TRUST_BUNDLE; none means permissive.", valueName: "file"))
    var trustBundle: String?

    /// The bundle store.
    func bundleStore() throws -> BundleStore {
        try BundleStore(objects: try StoreOptions.objectStore(url: store ?? data + "/store"), configuration: .init(layout: .contentAddressed(base: base)))
    }

    /// The services over the chosen store and registry.
    func host(strictManifests: Bool = false) throws -> ExtensionHost {
        var path = registry ?? data + "/registry.sqlite"
        if BytePath.hasPrefix(path, "sqlite://") { path = BytePath.dropPrefix(path, bytes: "sqlite://".utf8.count) }
        let trust = try trustBundle.map { try TrustBundle.load($0) } ?? TrustBundle.fromEnvironment()
        return ExtensionHost(
            store: try bundleStore(),
            registry: try SQLiteRegistryBackend(path: path), verifier: StreamingBundleVerifier(trust: trust),
            configuration: .init(strictManifests: strictManifests))
    }
}

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Upload a bundle to staging and finalize it into a registered version; prints the finalize result as JSON.")

    @Argument(help: "The bundle file.")
    var bundle: String

    @Option(help: ArgumentHelp("A signature file (default BUNDLE.sig when it exists).", valueName: "file"))
    var signature: String?

    @Option(help: ArgumentHelp("A manifest that replaces the archive's.", valueName: "file"))
    var manifest: String?

    @Flag(help: "Validate the manifest in strict mode.")
    var strictManifest = false

    @OptionGroup var options: HostOptions

    func run() async throws {
        let host = try options.host(strictManifests: strictManifest)
        var info = stat()
        guard stat(bundle, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw RefusedInput(message: "BAD_REQUEST: cannot read the bundle file '\(bundle)'")
        }
        let (bundlePath, signaturePath, manifestPath) = (bundle, signature, manifest)
        let (signatures, manifestJson) = try await BlockingIO.shared.run {
            let signatures = try SignatureFile.load(for: bundlePath, explicit: signaturePath)
            let manifestJson = try manifestPath.map { path in
                let bytes = try BoundedFile.read(path, limit: ManifestValidator.Options().maxBytes)
                // Empty would mean "no override" to finalize: a file that reads empty (a FIFO with
                // no writer, a truncated file) is refused rather than silently ignored.
                guard !bytes.isEmpty else { throw RefusedInput(message: "BAD_REQUEST: the manifest file '\(path)' is empty") }
                return String(decoding: bytes, as: UTF8.self)
            }
            return (signatures, manifestJson)
        }
        let size = Int64(info.st_size)
        let upload = try await host.upload(
            UploadRequest(filename: (bundle as NSString).lastPathComponent, size: size), body: .file(at: bundle))
        do {
            let result = try await host.finalize(
                FinalizeRequest(key: upload.upload.key, size: size, declaredHash: upload.contentHash.hex, manifestJson: manifestJson, signatures: signatures))
            try Console.json(result)
        } catch {
            // A refused bundle leaves nothing behind locally.
            _ = try? await host.abort(key: upload.upload.key)
            throw error
        }
    }
}

struct Install: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install a version (default: the newest) of an extension for a tenant; installing again replaces the install.")

    @OptionGroup var target: InstallTarget

    @Option(help: "The version (default: the newest).")
    var version: String?

    @OptionGroup var options: HostOptions

    func run() async throws {
        let host = try options.host()
        let install = try await host.install(target.extension, tenant: target.tenant, version: version)
        let resolved = try await host.resolve(install.extensionID, tenant: target.tenant)
        Console.out("installed \(resolved.extension.slug) \(resolved.version.version) for tenant \(target.tenant): \(resolved.contentHash.prefixed)")
        Console.out("capabilities: \(install.grantedCapabilities.joined(separator: ", "))")
    }
}

/// The extension and tenant an install command acts on.
struct InstallTarget: ParsableArguments {
    @Argument(help: "The extension: its registry id or publisher.name.")
    var `extension`: String

    @Option(help: "The tenant.")
    var tenant: String
}

struct Enable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable", abstract: "Enable a tenant's install (flips isEnabled only).")

    @OptionGroup var target: InstallTarget
    @OptionGroup var options: HostOptions

    func run() async throws {
        try await options.host().setEnabled(target.extension, tenant: target.tenant, true)
        Console.out("enabled \(target.extension) for tenant \(target.tenant)")
    }
}

struct Disable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable a tenant's install (flips isEnabled only).")

    @OptionGroup var target: InstallTarget
    @OptionGroup var options: HostOptions

    func run() async throws {
        try await options.host().setEnabled(target.extension, tenant: target.tenant, false)
        Console.out("disabled \(target.extension) for tenant \(target.tenant)")
    }
}

struct Uninstall: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Remove a tenant's install. The bundle stays in the store (it is content-addressed and may be shared).")

    @OptionGroup var target: InstallTarget
    @OptionGroup var options: HostOptions

    func run() async throws {
        try await options.host().uninstall(target.extension, tenant: target.tenant)
        Console.out("uninstalled \(target.extension) for tenant \(target.tenant)")
    }
}

struct Resolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Print the content hash (sha256:<hex>) a tenant's active install runs.")

    @OptionGroup var target: InstallTarget
    @OptionGroup var options: HostOptions

    func run() async throws {
        Console.out(try await options.host().resolve(target.extension, tenant: target.tenant).contentHash.prefixed)
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List extensions and their versions, or a tenant's installs.")

    @Option(help: "List this tenant's installs instead.")
    var tenant: String?

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var options: HostOptions

    struct VersionRow: Encodable {
        var `extension`: String
        var extensionId: String
        var version: String
        var contentHash: String?
        var publishedAt: Date
    }

    struct InstallRow: Encodable {
        var `extension`: String
        var extensionId: String
        var version: String
        var contentHash: String?
        var isEnabled: Bool
        var status: String
        var capabilities: [String]
    }

    func run() async throws {
        let host = try options.host()
        let registry = host.registry
        if let tenant {
            var rows: [InstallRow] = []
            for install in try await registry.installs(tenantID: tenant) {
                let record = try await registry.extensionRecord(id: install.extensionID)
                let version = try await registry.version(id: install.versionID)
                let bundle = try await registry.latestBundle(versionID: install.versionID)
                rows.append(
                    InstallRow(
                        extension: record?.slug ?? install.extensionID, extensionId: install.extensionID, version: version?.version ?? "?",
                        contentHash: bundle?.contentHash.prefixed, isEnabled: install.isEnabled, status: install.status.rawValue,
                        capabilities: install.grantedCapabilities))
            }
            if json { return try Console.json(rows) }
            for row in rows {
                Console.out("\(row.extension)  \(row.version)  \(row.isEnabled ? "enabled" : "disabled")  \(row.contentHash ?? "-")")
            }
            return
        }
        var rows: [VersionRow] = []
        for record in try await registry.extensions() {
            for listing in try await host.listVersions(record.id) {
                rows.append(
                    VersionRow(
                        extension: record.slug, extensionId: record.id, version: listing.version, contentHash: listing.contentHash,
                        publishedAt: listing.publishedAt))
            }
        }
        if json { return try Console.json(rows) }
        for row in rows { Console.out("\(row.extension)  \(row.version)  \(row.contentHash ?? "-")") }
    }
}
