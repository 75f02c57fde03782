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

    /// Parses a JSON body with Alga's route-level messages (`Invalid JSON body`,
    /// `Body must be a JSON object`, `size must be a positive number`).
    public static func parse(_ body: [UInt8]) throws(HostError) -> FinalizeRequest {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) else {
            throw .badRequest("Invalid JSON body")
        }
        guard let fields = object as? [String: Any] else { throw .badRequest("Body must be a JSON object") }
        var request = FinalizeRequest(key: fields["key"] as? String)
        if let size = fields["size"], !(size is NSNull) {
            guard let number = (size as? NSNumber)?.doubleValue, !(size is String), number.isFinite, number > 0 else {
                throw .badRequest("size must be a positive number")
            }
            request.size = number > Double(Int64.max) ? Int64.max : Int64(number.rounded(.down))
        }
        request.declaredHash = fields["declaredHash"] as? String
        request.manifestJson = fields["manifestJson"] as? String
        if let signature = fields["signature"] as? [String: Any] {
            request.signature = SignatureField(text: signature["text"] as? String, algorithm: signature["algorithm"] as? String)
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
    /// in this order: find the staging object; verify it in one pass (hash, declared hash and
    /// size, size cap, signature policy, manifest from the archive unless `manifestJson` is given);
    /// validate the manifest; resolve a wildcard version; refuse an existing version (409, also
    /// for identical bytes); copy create-only to the canonical key and check it; store
    /// `manifest.json` beside it; write the version and bundle rows; delete the staging object.
    ///
    /// The store is written before the registry, so a version never names a missing object; the
    /// staging object is kept until the registry write succeeds, so a finalize interrupted at any
    /// step can be retried and completes (an object already at the canonical key is accepted after
    /// re-hashing it).
    public func finalize(_ request: FinalizeRequest) async throws(HostError) -> FinalizeResult {
        // Route-level checks.
        guard let key = request.key, !key.isEmpty else { throw .badRequest("key is required") }
        if case .contentAddressed = store.configuration.layout, !key.hasPrefix(store.bundlePrefix) {
            throw .badRequest("key must start with \"\(store.bundlePrefix)\"")
        }
        guard key.contains("/_staging/"), key.hasSuffix("/bundle.tar.zst"), key.hasPrefix(store.stagingPrefix), !key.contains("..") else {
            throw .badRequest("invalid staging key (expected \(store.stagingPrefix)<id>/bundle.tar.zst)")
        }
        if let size = request.size {
            guard size > 0 else { throw .badRequest("size must be a positive number") }
            guard size <= configuration.maxBundleBytes else {
                throw .badRequest("size exceeds maximum of \(configuration.maxBundleBytes) bytes")
            }
        }
        let declared = try validateDeclaredHash(request.declaredHash)
        var signatures = request.signatures
        if let field = request.signature, let text = field.text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            do {
                signatures += try SignatureFile.fromAlgaField(text: text, algorithm: field.algorithm)
            } catch {
                throw Self.signatureError(error)
            }
        }
        let suppliedManifest = request.manifestJson.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        let publishTime = now()

        // 1. The staging object.
        let info: ObjectInfo?
        do {
            info = try await store.objects.head(key)
        } catch {
            throw HostError(.s3HeadFailed, status: 500, "Failed to read the staging object", underlying: String(reflecting: error))
        }
        guard let info else { throw HostError(.stagingNotFound, status: 400, "Uploaded staging object not found in storage") }
        guard info.size <= configuration.maxBundleBytes else { throw tooLarge(actual: info.size) }

        // 2. One pass: hash, size, cap, archive, manifest, signatures.
        let (verified, stagedETag) = try await verifyStaged(
            key: key,
            request: VerificationRequest(
                expectedHash: declared, declaredSize: request.size, limits: limits, signatures: signatures, publishTime: publishTime,
                requireManifest: suppliedManifest == nil))

        // 3. The manifest.
        let manifestBytes = suppliedManifest.map { Array($0.utf8) } ?? verified.manifest ?? []
        let validation = ManifestValidator.validate(manifestBytes, options: .init(strict: configuration.strictManifests))
        guard let manifest = validation.manifest, validation.isValid else {
            throw HostError(.invalidManifest, status: 400, "Manifest validation failed", issues: validation.issues)
        }
        guard let publisher = manifest.publisher, !publisher.isEmpty else {
            // Alga's validator allows a missing publisher and its database then fails with a 500.
            throw HostError(
                .invalidManifest, status: 400, "Manifest validation failed",
                issues: [ManifestIssue(path: "publisher", message: "publisher is required to publish")])
        }

        // 4-7. Extension, version, store, registry.
        let record: ExtensionRecord
        do {
            record = try await registry.ensureExtension(publisher: publisher, name: manifest.name, now: publishTime)
        } catch {
            throw registryFailure(error)
        }
        let canonicalKey = store.bundleKey(for: verified.hash)
        var attempts = 0
        while true {
            attempts += 1
            let version = try await resolveVersion(manifest.version, extensionID: record.id)
            if try await existingVersion(extensionID: record.id, version: version) {
                throw Self.duplicate(version)
            }
            try await storeCanonical(
                staging: key, stagedETag: stagedETag, verified: verified, manifest: manifestBytes, canonicalKey: canonicalKey)
            let versionRecord = VersionRecord(
                extensionID: record.id, version: version, runtime: manifest.runtime,
                ui: manifest.ui, endpoints: manifest.endpoints,
                capabilities: manifest.capabilities.filter { !$0.isEmpty }, contentHash: verified.hash, size: verified.size,
                signerKeyIDs: Self.signers(verified.signature), publishedAt: publishTime)
            let bundle = BundleRecord(
                versionID: versionRecord.id, contentHash: verified.hash, size: verified.size,
                signature: signatures.isEmpty ? nil : String(decoding: SignatureFile.encode(signatures), as: UTF8.self),
                storageKey: canonicalKey, createdAt: publishTime)
            do {
                try await registry.insertVersion(versionRecord, bundle: bundle)
            } catch let error as RegistryError where error.code == .registryConflict {
                // Another finalize took this version first. A wildcard is re-resolved; a fixed version is a 409.
                if manifest.isWildcardVersion && attempts <= configuration.wildcardRetries { continue }
                throw Self.duplicate(version)
            } catch {
                throw registryFailure(error)
            }
            // The version is registered; the staging object is no longer needed.
            try? await store.objects.delete(key)
            return FinalizeResult(
                extension: .init(id: record.id, name: record.name, publisher: record.publisher),
                version: .init(id: versionRecord.id, version: version), contentHash: verified.hash.hex, canonicalKey: canonicalKey)
        }
    }

    var limits: ArchiveLimits {
        var limits = ArchiveLimits.default
        limits.compressedBytes = configuration.maxBundleBytes
        return limits
    }

    /// Verifies the staging object in one pass; returns the result and the ETag it was read under.
    private func verifyStaged(key: String, request: VerificationRequest) async throws(HostError) -> (VerifiedBundle, String?) {
        let body: ObjectBody
        do {
            body = try await store.objects.get(key)
        } catch let error as StoreError where error.code == .storeNotFound {
            throw HostError(.objectNotFound, status: 500, "Uploaded staging object could not be read", underlying: error.debugDescription)
        } catch {
            throw HostError(.s3GetFailed, status: 500, "Failed to read the staging object", underlying: String(reflecting: error))
        }
        do {
            return (try await verifier.verify(body.stream, request: request), body.info.etag)
        } catch let error as VerifyError {
            // A truncation is told against the declared hash when there is one, else the declared size.
            let againstHash = error.expected?.hasPrefix(ContentHash.algorithmPrefix) ?? false
            switch error.code {
            case .verifyHashMismatch:
                throw HostError(
                    .hashMismatch, status: 400, "Declared hash does not match computed content hash",
                    details: ["declared": Self.bareHex(error.expected), "computed": Self.bareHex(error.actual)])
            case .verifyTruncated where againstHash:
                throw HostError(
                    .hashMismatch, status: 400, "Declared hash does not match computed content hash",
                    details: ["declared": Self.bareHex(error.expected), "computed": Self.bareHex(error.actual)])
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

    private func resolveVersion(_ version: String, extensionID: String) async throws(HostError) -> String {
        guard ManifestValidator.isWildcard(version) else { return version }
        do {
            return ManifestValidator.resolveWildcard(version, existing: try await registry.versionStrings(extensionID: extensionID))
        } catch {
            throw registryFailure(error)
        }
    }

    private func existingVersion(extensionID: String, version: String) async throws(HostError) -> Bool {
        do {
            return try await registry.version(extensionID: extensionID, version: version) != nil
        } catch {
            throw registryFailure(error)
        }
    }

    /// Copies the staging object create-only to its canonical key and proves the result, then
    /// stores `manifest.json` beside it. An object already at the key is accepted only after it
    /// re-hashes to the key's hash.
    private func storeCanonical(
        staging: String, stagedETag: String?, verified: VerifiedBundle, manifest: [UInt8], canonicalKey: String
    ) async throws(HostError) {
        do {
            // Pinned to the ETag the bytes were verified under: a staging object replaced since
            // then is never copied to the key of the bytes that were checked.
            try await store.objects.copy(from: staging, to: canonicalKey, condition: .createOnly, sourceETag: stagedETag)
        } catch let error as StoreError where error.code == .storeSourceChanged {
            throw HostError(
                .stagingChanged, status: 409, "The staged bundle changed during finalize; upload it again",
                details: ["key": staging], underlying: error.debugDescription)
        } catch let error as StoreError where error.code == .storeAlreadyExists {
            do {
                try await store.verifyCanonical(key: canonicalKey, hash: verified.hash, size: verified.size)
            } catch {
                throw HostError(
                    .canonicalMissing, status: 500, "The object at the canonical key is not this bundle", underlying: String(reflecting: error))
            }
        } catch {
            throw HostError(.canonicalCopyFailed, status: 500, "Failed to copy the bundle to its canonical key", underlying: String(reflecting: error))
        }
        let info: ObjectInfo?
        do {
            info = try await store.objects.head(canonicalKey)
        } catch {
            throw HostError(.s3HeadFailed, status: 500, "Failed to check the canonical object", underlying: String(reflecting: error))
        }
        guard let info, info.size == verified.size else {
            throw HostError(
                .canonicalMissing, status: 500, "The canonical object is missing after the copy",
                details: ["key": canonicalKey], underlying: "size \(info.map { String($0.size) } ?? "none"), expected \(verified.size)")
        }
        guard !manifest.isEmpty else { return }
        do {
            let manifestKey = try store.sideObjectKey(for: verified.hash, .manifest)
            _ = try await store.objects.put(manifestKey, bytes: manifest, condition: .createOnly)
        } catch let error as StoreError where error.code == .storeAlreadyExists {
            // Alga ignores 412/409 here: the manifest of this content hash is already stored.
        } catch {
            throw HostError(.manifestStoreFailed, status: 500, "Failed to store manifest.json", underlying: String(reflecting: error))
        }
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
