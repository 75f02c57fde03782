import BundleArchive
import BundleCore
import BundleStore
public import BundleVerify
import Foundation
import ManifestV2
import RegistryV2

/// The finalize request body (reference 4.6):
/// `{key, size?, declaredHash?, manifestJson?, signature?: {text, algorithm}}`.
public struct FinalizeRequest: Sendable, Equatable, Codable {
    /// Alga's `signature` field.
    public struct SignatureField: Sendable, Equatable, Codable {
        /// The signature: a bare base64 DER ECDSA signature (`cosign`) or an ExtBundles signature file.
        public var text: String?
        /// `cosign` (or absent); `x509` and `pgp` are refused.
        public var algorithm: String?

        /// Creates the field.
        public init(text: String?, algorithm: String?) {
            self.text = text
            self.algorithm = algorithm
        }
    }

    /// The staging key.
    public var key: String?
    /// The expected size.
    public var size: Int64?
    /// The expected hash, 64 lowercase hex.
    public var declaredHash: String?
    /// A manifest that replaces the archive's (Alga's behaviour; not cross-checked).
    public var manifestJson: String?
    /// Alga's signature field.
    public var signature: SignatureField?
    /// Signatures given directly (a `BUNDLE.sig` file), added to `signature`'s. Not part of the JSON.
    public var signatures: [DetachedSignature] = []

    enum CodingKeys: String, CodingKey { case key, size, declaredHash, manifestJson, signature }

    /// Creates a request.
    public init(
        key: String?, size: Int64? = nil, declaredHash: String? = nil, manifestJson: String? = nil, signature: SignatureField? = nil,
        signatures: [DetachedSignature] = []
    ) {
        self.key = key
        self.size = size
        self.declaredHash = declaredHash
        self.manifestJson = manifestJson
        self.signature = signature
        self.signatures = signatures
    }

    /// The largest finalize body read, in bytes (4 MiB: a 1 MiB manifest, escaped, and signatures).
    public static let maxBodyBytes = 4 << 20

    /// Parses a JSON body with Alga's route-level messages (`Invalid JSON body`,
    /// `Body must be a JSON object`, `size must be a positive number`,
    /// `declaredHash must be 64-char lowercase hex sha256`). It is read as JavaScript's
    /// `JSON.parse` reads it, as Alga does (a repeated key: the last one wins).
    public static func parse(_ body: [UInt8]) throws(HostError) -> FinalizeRequest {
        guard body.count <= maxBodyBytes else {
            throw HostError(
                .badRequest, status: 413, "Request body too large", details: ["limit": String(maxBodyBytes), "actual": String(body.count)])
        }
        guard let json = try? JSONReader.parse(body) else { throw .badRequest("Invalid JSON body") }
        guard case .object = json else { throw .badRequest("Body must be a JSON object") }
        var request = FinalizeRequest(key: json["key"]?.string)
        switch json["size"] {
        case nil, .null?:
            break
        case .number(let text)?:
            guard let number = Double(text), number.isFinite, number > 0 else { throw .badRequest("size must be a positive number") }
            // Anything at or past 2^63 is over every cap; the cap check refuses it by name.
            request.size = number >= 9.223_372_036_854_775_807e18 ? .max : Int64(number.rounded(.down))
        default:
            throw .badRequest("size must be a positive number")
        }
        switch json["declaredHash"] {
        case nil, .null?: break
        case .string(let text)?: request.declaredHash = text
        default: throw .badRequest("declaredHash must be 64-char lowercase hex sha256")
        }
        request.manifestJson = json["manifestJson"]?.string
        if let signature = json["signature"], case .object = signature {
            request.signature = SignatureField(text: signature["text"]?.string, algorithm: signature["algorithm"]?.string)
        }
        return request
    }
}

/// The finalize response (reference 4.6): `{extension: {id, name, publisher}, version: {id, version},
/// contentHash, canonicalKey}`.
public struct FinalizeResult: Sendable, Equatable, Codable {
    /// The extension.
    public struct Extension: Sendable, Equatable, Codable {
        /// The registry id.
        public var id: String
        /// The manifest's name.
        public var name: String
        /// The manifest's publisher.
        public var publisher: String
    }

    /// The version.
    public struct Version: Sendable, Equatable, Codable {
        /// The version's id.
        public var id: String
        /// The resolved version string.
        public var version: String
    }

    /// The extension.
    public var `extension`: Extension
    /// The version.
    public var version: Version
    /// The content hash, 64 hex without prefix.
    public var contentHash: String
    /// The canonical object key.
    public var canonicalKey: String
}

extension ExtensionHost {
    /// Turns a staging object into an immutable, verified, registered version (reference 4.6),
    /// in stages: check the request; open the staging object; verify it in one pass (hash,
    /// declared hash and size, size cap, archive, signature policy for the manifest's publisher,
    /// manifest from the archive unless `manifestJson` is given); validate the manifest; resolve
    /// the version and refuse an existing one (409, also for identical bytes); store the bundle
    /// at its canonical key once (a create-only copy pinned to the ETag it was verified under,
    /// then `manifest.json` and `bundle.sig` beside it); register the version, re-resolving a
    /// wildcard that another publish took first; delete the staging object.
    ///
    /// The store is written before the registry, so a version never names a missing object; the
    /// staging object is kept until the registry write succeeds, so a finalize interrupted at any
    /// stage can be retried and completes (an object already at the canonical key is accepted
    /// after re-hashing it).
    public func finalize(_ request: FinalizeRequest) async throws(HostError) -> FinalizeResult {
        let checked = try check(request)
        let staged = try await openStaged(checked.key)
        let verified = try await verify(staged, checked)
        let manifest = try validateManifest(checked, verified)
        let record = try await ensureExtension(manifest)
        let version = try await resolveNewVersion(manifest.manifest.version, extensionID: record.id)
        try await storeCanonical(staged: checked.key, etag: staged.info.etag, verified: verified, manifest: manifest, signatures: checked.signatures)
        let registered = try await register(
            version: version, manifest: manifest, extension: record, verified: verified, signatures: checked.signatures,
            publishTime: checked.publishTime)
        // The version is registered; the staging object is no longer needed.
        try? await store.deleteStaged(checked.key)
        return FinalizeResult(
            extension: .init(id: record.id, name: record.name, publisher: record.publisher),
            version: .init(id: registered.id, version: registered.version), contentHash: verified.hash.hex,
            canonicalKey: store.bundleKey(for: verified.hash))
    }

    /// A finalize request that passed the route-level checks.
    struct CheckedFinalize {
        var key: String
        var size: Int64?
        var declaredHash: ContentHash?
        var signatures: [DetachedSignature]
        var suppliedManifest: [UInt8]?
        var publishTime: Date
    }

    /// Stage 1: the route's checks, with Alga's messages (reference 4.6).
    func check(_ request: FinalizeRequest) throws(HostError) -> CheckedFinalize {
        guard let key = request.key, !key.isEmpty else { throw .badRequest("key is required") }
        if case .contentAddressed = store.configuration.layout, !store.isUnderBundlePrefix(key) {
            throw .badRequest("key must start with \"\(store.bundlePrefix)\"")
        }
        guard store.isStagingKey(key) else {
            throw .badRequest("invalid staging key (expected tenants/<tenant>/_staging/<id>/bundle.tar.zst)")
        }
        if let size = request.size {
            guard size > 0 else { throw .badRequest("size must be a positive number") }
            guard size <= configuration.maxBundleBytes else {
                throw .badRequest("size exceeds maximum of \(configuration.maxBundleBytes) bytes")
            }
        }
        let declared = try validateDeclaredHash(request.declaredHash)
        var signatures = request.signatures
        if let field = request.signature, let text = field.text, !JavaScriptText.trim(text).isEmpty {
            do {
                signatures += try SignatureFile.fromAlgaField(text: text, algorithm: field.algorithm)
            } catch {
                throw Self.signatureError(error)
            }
        }
        guard signatures.count <= SignatureFile.maxSignatures else {
            throw Self.signatureError(VerifyError(
                code: .signatureMalformed, reason: "more than \(SignatureFile.maxSignatures) signatures",
                expected: "at most \(SignatureFile.maxSignatures)", actual: "\(signatures.count)"))
        }
        let supplied = request.manifestJson.flatMap { JavaScriptText.trim($0).isEmpty ? nil : Array($0.utf8) }
        return CheckedFinalize(
            key: key, size: request.size, declaredHash: declared, signatures: signatures, suppliedManifest: supplied, publishTime: now())
    }

    /// Stage 2: the staging object (Alga's HEAD then GET), refused before any byte is read when
    /// it is over the cap.
    func openStaged(_ key: String) async throws(HostError) -> ObjectBody {
        let info: ObjectInfo?
        do {
            info = try await store.stagedInfo(key)
        } catch {
            throw HostError(.s3HeadFailed, status: 500, "Failed to read the staging object", underlying: String(reflecting: error))
        }
        guard let info else { throw HostError(.stagingNotFound, status: 400, "Uploaded staging object not found in storage") }
        do {
            return try await store.openStaged(info, maxBytes: configuration.maxBundleBytes)
        } catch let error as StoreError where error.code == .storeTooLarge {
            throw tooLarge(actual: info.size)
        } catch let error as StoreError where error.code == .storeNotFound {
            throw HostError(.objectNotFound, status: 500, "Uploaded staging object could not be read", underlying: error.debugDescription)
        } catch {
            throw HostError(.s3GetFailed, status: 500, "Failed to read the staging object", underlying: String(reflecting: error))
        }
    }

    /// Stage 3: one pass over the staged bytes (hash, size, cap, archive, manifest, signatures).
    func verify(_ staged: ObjectBody, _ checked: CheckedFinalize) async throws(HostError) -> VerifiedBundle {
        let request = VerificationRequest(
            expectedHash: checked.declaredHash, declaredSize: checked.size, limits: limits, signatures: checked.signatures,
            publishTime: checked.publishTime, requireManifest: checked.suppliedManifest == nil,
            publisher: checked.suppliedManifest.flatMap(ManifestValidator.declaredPublisher(in:)))
        do {
            return try await verifier.verify(staged.stream, request: request)
        } catch let error as VerifyError {
            // A truncation is told against the declared hash when there is one, else the declared size.
            let againstHash = error.expected.map { BytePath.hasPrefix($0, ContentHash.algorithmPrefix) } ?? false
            switch error.code {
            case .verifyHashMismatch:
                throw Self.hashMismatch(error)
            case .verifyTruncated where againstHash:
                throw Self.hashMismatch(error)
            case .verifySizeMismatch, .verifyTruncated:
                throw HostError(
                    .sizeMismatch, status: 400, "size does not match the uploaded bundle",
                    details: ["declared": error.expected ?? "", "actual": error.actual ?? ""])
            case .verifyManifestMissing:
                throw HostError(.manifestNotFound, status: 400, "manifest.json not found in bundle")
            default:
                throw Self.signatureError(error)
            }
        } catch let error as ArchiveError {
            if error.code == .archiveLimitExceeded, error.limit == "compressedBytes" { throw tooLarge(actual: error.actual) }
            var details: [String: String] = ["reason": error.description]
            if let path = error.path { details["path"] = path }
            if let limit = error.limit { details["limit"] = limit }
            throw HostError(
                .manifestExtractionFailed, status: 400, "The bundle is not a readable tar.zst archive", details: details,
                underlying: error.debugDescription)
        } catch {
            throw HostError(.s3GetFailed, status: 500, "Failed to read the staging object", underlying: String(reflecting: error))
        }
    }

    /// A validated manifest and the bytes it came from.
    struct ValidatedManifest {
        var manifest: Manifest
        var publisher: String
        var bytes: [UInt8]
    }

    /// Stage 4: the manifest (the supplied one, else the archive's), with Alga's rules.
    func validateManifest(_ checked: CheckedFinalize, _ verified: VerifiedBundle) throws(HostError) -> ValidatedManifest {
        let bytes = checked.suppliedManifest ?? verified.manifest ?? []
        let validation = ManifestValidator.validate(bytes, options: .init(strict: configuration.strictManifests))
        guard let manifest = validation.manifest, validation.isValid else {
            throw HostError(.invalidManifest, status: 400, "Invalid manifest", issues: validation.issues)
        }
        guard let publisher = manifest.publisher, !publisher.isEmpty else {
            // Alga's validator allows a missing publisher and its database then fails with a 500.
            throw HostError(
                .invalidManifest, status: 400, "Invalid manifest",
                issues: [ManifestIssue(path: "publisher", message: "publisher is required to publish")])
        }
        // Publisher and name are the extension's identity in the registry (and its slug): a NUL
        // would cut it short in SQL text, other control characters forge what people read.
        let controls = [("publisher", publisher), ("name", manifest.name)].filter { BytePath.containsControl($0.1.utf8) }
        guard controls.isEmpty else {
            throw HostError(
                .invalidManifest, status: 400, "Invalid manifest",
                issues: controls.map { ManifestIssue(path: $0.0, message: "\($0.0) must not contain control characters") })
        }
        return ValidatedManifest(manifest: manifest, publisher: publisher, bytes: bytes)
    }

    /// Stage 5: the extension record, refusing a new extension whose slug is another's, or
    /// whose publisher lies inside another publisher's namespace.
    ///
    /// Slugs join publisher and name with a dot, and both may hold dots, so publisher `acme.pay`
    /// with name `x` and publisher `acme` with name `pay.x` share the slug `acme.pay.x`. A
    /// publisher owns the slugs that start with its own slug and a dot: a new extension of a
    /// publisher named `<existing publisher>.<more>` is refused, so nobody can take the slugs
    /// of a publisher that is already here.
    func ensureExtension(_ manifest: ValidatedManifest) async throws(HostError) -> ExtensionRecord {
        do {
            if try await registry.extensionRecord(publisher: manifest.publisher, name: manifest.manifest.name) == nil {
                try await checkPublisherNamespace(manifest.publisher)
            }
            return try await registry.ensureExtension(publisher: manifest.publisher, name: manifest.manifest.name, now: now())
        } catch let error as HostError {
            throw error
        } catch let error as RegistryError where error.code == .registryConflict && error.constraint == "slug" {
            let slug = ExtensionRecord.slug(publisher: manifest.publisher, name: manifest.manifest.name)
            throw HostError(
                .extensionSlugConflict, status: 409,
                "Another extension already has the slug \"\(Printable.escape(slug))\"; publish under its publisher or another name",
                details: ["slug": slug, "publisher": manifest.publisher, "name": manifest.manifest.name])
        } catch {
            throw registryFailure(error)
        }
    }

    /// Refuses a publisher whose slug starts with another publisher's slug and a dot.
    func checkPublisherNamespace(_ publisher: String) async throws {
        let own = Array(ExtensionRecord.normalizeSlug(publisher).utf8)
        guard own.contains(UInt8(ascii: ".")) else { return }
        for record in try await registry.extensions() {
            let other = Array(ExtensionRecord.normalizeSlug(record.publisher).utf8)
            guard other != own, own.starts(with: other + [UInt8(ascii: ".")]) else { continue }
            throw HostError(
                .extensionSlugConflict, status: 409,
                "The publisher \"\(Printable.escape(publisher))\" lies inside the namespace of the publisher \"\(Printable.escape(record.publisher))\"; publish under that publisher or another name",
                details: ["publisher": publisher, "owner": record.publisher])
        }
    }

    /// Stage 6: the version to publish (a wildcard resolved), refused when it exists.
    func resolveNewVersion(_ version: String, extensionID: String) async throws(HostError) -> String {
        let resolved: String
        do {
            resolved = ManifestValidator.isWildcard(version)
                ? ManifestValidator.resolveWildcard(version, existing: try await registry.versionStrings(extensionID: extensionID))
                : version
            guard try await registry.version(extensionID: extensionID, version: resolved) == nil else { throw Self.duplicate(resolved) }
        } catch {
            throw registryFailure(error)
        }
        return resolved
    }

    /// Stage 7: the bundle at its canonical key, once, then `manifest.json` and `bundle.sig`
    /// beside it (write-once; ones already there are kept, as Alga keeps `manifest.json`).
    func storeCanonical(
        staged key: String, etag: String?, verified: VerifiedBundle, manifest: ValidatedManifest, signatures: [DetachedSignature]
    ) async throws(HostError) {
        do {
            // Pinned to the ETag the bytes were verified under: a staging object replaced since
            // then is never copied to the key of the bytes that were checked.
            _ = try await store.publishStaged(key: key, hash: verified.hash, size: verified.size, etag: etag)
        } catch let error as StoreError where error.code == .storeSourceChanged {
            throw HostError(
                .stagingChanged, status: 409, "The staged bundle changed during finalize; upload it again",
                details: ["key": key], underlying: error.debugDescription)
        } catch let error as StoreError where error.code == .storeCorruptObject || error.code == .storeCanonicalMissing {
            throw HostError(
                .canonicalMissing, status: 500, "The object at the canonical key is not this bundle",
                details: ["key": store.bundleKey(for: verified.hash)], underlying: error.debugDescription)
        } catch {
            throw HostError(.canonicalCopyFailed, status: 500, "Failed to copy the bundle to its canonical key", underlying: String(reflecting: error))
        }
        do {
            try await store.putSideObject(.manifest, of: verified.hash, bytes: manifest.bytes)
        } catch {
            throw HostError(.manifestStoreFailed, status: 500, "Failed to store manifest.json", underlying: String(reflecting: error))
        }
        guard !signatures.isEmpty else { return }
        do {
            // The runner checks these again against its own trust bundle when it fetches the bundle.
            try await store.putSideObject(.signatures, of: verified.hash, bytes: SignatureFile.encode(signatures))
        } catch {
            throw HostError(.signatureStoreFailed, status: 500, "Failed to store bundle.sig", underlying: String(reflecting: error))
        }
    }

    /// Stage 8: the version and bundle rows; a wildcard that another publish took meanwhile is
    /// resolved again (the bundle is already stored, so nothing is copied or hashed again).
    func register(
        version first: String, manifest: ValidatedManifest, extension record: ExtensionRecord, verified: VerifiedBundle,
        signatures: [DetachedSignature], publishTime: Date
    ) async throws(HostError) -> VersionRecord {
        var version = first
        var attempts = 0
        while true {
            attempts += 1
            let versionRecord = VersionRecord(
                extensionID: record.id, version: version, runtime: manifest.manifest.runtime, ui: manifest.manifest.ui,
                endpoints: manifest.manifest.endpoints, capabilities: manifest.manifest.capabilities.filter { !$0.isEmpty },
                contentHash: verified.hash, size: verified.size, signerKeyIDs: Self.signers(verified.signature), publishedAt: publishTime)
            let bundle = BundleRecord(
                versionID: versionRecord.id, contentHash: verified.hash, size: verified.size,
                signature: signatures.isEmpty ? nil : String(decoding: SignatureFile.encode(signatures), as: UTF8.self),
                storageKey: store.bundleKey(for: verified.hash), createdAt: publishTime)
            do {
                try await registry.insertVersion(versionRecord, bundle: bundle)
                return versionRecord
            } catch let error as RegistryError where error.code == .registryConflict {
                // Another finalize took this version first. A wildcard is re-resolved; a fixed version is a 409.
                guard manifest.manifest.isWildcardVersion, attempts <= configuration.wildcardRetries else { throw Self.duplicate(version) }
                version = try await resolveNewVersion(manifest.manifest.version, extensionID: record.id)
            } catch {
                throw registryFailure(error)
            }
        }
    }

    var limits: ArchiveLimits {
        var limits = ArchiveLimits.default
        limits.compressedBytes = configuration.maxBundleBytes
        return limits
    }

    static func hashMismatch(_ error: VerifyError) -> HostError {
        HostError(
            .hashMismatch, status: 400, "Declared hash does not match computed content hash",
            details: ["declared": bareHex(error.expected), "computed": bareHex(error.actual)])
    }

    func tooLarge(actual: Int64?) -> HostError {
        HostError(
            .bundleTooLarge, status: 413, "Bundle size exceeds maximum allowed",
            details: ["limit": String(configuration.maxBundleBytes), "actual": actual.map { String($0) } ?? "more"])
    }

    func registryFailure(_ error: any Error) -> HostError {
        if let error = error as? HostError { return error }
        return HostError(.registryFailed, status: 500, "The registry failed", underlying: String(reflecting: error))
    }

    static func duplicate(_ version: String) -> HostError {
        HostError(
            .extensionVersionAlreadyExists, status: 409,
            "Version \"\(version)\" already exists for this extension. Publish a new version and try again.", details: ["version": version])
    }

    static func signatureError(_ error: VerifyError) -> HostError {
        var details: [String: String] = [:]
        if let keyID = error.keyID { details["keyId"] = keyID }
        if error.code == .signaturePublisherMismatch, let expected = error.expected { details["expected"] = expected }
        // A broken trust bundle is the host's fault, not the publisher's.
        let status = error.code == .trustBundleInvalid ? 500 : 400
        return HostError(error.code, status: status, error.description, details: details, underlying: error.debugDescription)
    }

    static func signers(_ verdict: SignatureVerdict) -> [String] {
        switch verdict {
        case .unverified: []
        case .verified(let keyIDs): keyIDs
        }
    }
}
