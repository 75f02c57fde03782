public import BundleArchive
public import BundleCore
public import Crypto
public import Foundation

/// What a verification must check besides the archive itself.
public struct VerificationRequest: Sendable {
    /// The hash the bytes must have, when known (a download by hash, a declared upload hash).
    public var expectedHash: ContentHash?
    /// The size the bytes must have, when declared; tells a truncated stream from a tampered one.
    public var declaredSize: Int64?
    /// Archive limits; `compressedBytes` is the size cap (default 200 MiB).
    public var limits: ArchiveLimits
    /// Detached signatures over the bundle.
    public var signatures: [DetachedSignature]
    /// The time key validity is judged at (the publish time). Default now.
    public var publishTime: Date
    /// Refuse a bundle without `manifest.json`. Default true.
    public var requireManifest: Bool

    /// Creates a request.
    public init(
        expectedHash: ContentHash? = nil, declaredSize: Int64? = nil, limits: ArchiveLimits = .default,
        signatures: [DetachedSignature] = [], publishTime: Date = Date(), requireManifest: Bool = true
    ) {
        self.expectedHash = expectedHash
        self.declaredSize = declaredSize
        self.limits = limits
        self.signatures = signatures
        self.publishTime = publishTime
        self.requireManifest = requireManifest
    }
}

/// The signature outcome.
public enum SignatureVerdict: Sendable, Equatable {
    /// No trust bundle is configured and the bundle was accepted without a verified signature.
    case unverified
    /// Verified by these trusted keys.
    case verified(keyIDs: [String])
}

/// A bundle that passed verification.
public struct VerifiedBundle: Sendable, Equatable {
    /// SHA-256 of the compressed bytes.
    public var hash: ContentHash
    /// Size in bytes.
    public var size: Int64
    /// Where the manifest was found, if anywhere.
    public var manifestPath: String?
    /// The manifest's bytes (up to 1 MiB).
    public var manifest: [UInt8]?
    /// The entries, in archive order.
    public var entries: [ArchiveEntry]
    /// Whether `dist/main.wasm` is present (the module the runner executes).
    public var hasMainWasm: Bool
    /// Whether `ui/index.html` is present (the UI document).
    public var hasUIIndex: Bool
    /// The signature outcome.
    public var signature: SignatureVerdict
}

/// Proves a bundle before anything trusts it.
///
/// Contract: read the stream once; succeed only when the bytes hash to `expectedHash` (if given),
/// have `declaredSize` (if given), stay within the size cap and archive limits, hold a manifest
/// (if required), and pass the signature policy. Any failure is a typed error
/// (``VerifyError``, ``BundleArchive/ArchiveError``) and nothing of the bundle is returned.
public protocol Verifier: Sendable {
    /// Verifies `body`, also handing every accepted entry and its data to `visitor` (an
    /// extractor, a per-file hasher) during the same pass. What the visitor received is only to
    /// be trusted when this returns: on a throw, discard it.
    func verify(_ body: ByteStream, request: VerificationRequest, visitor: (any ArchiveVisitor)?) async throws -> VerifiedBundle
}

extension Verifier {
    /// Verifies `body`.
    public func verify(_ body: ByteStream, request: VerificationRequest) async throws -> VerifiedBundle {
        try await verify(body, request: request, visitor: nil)
    }
}

/// The ``Verifier`` of ExtBundles: one pass computing SHA-256 over the compressed bytes, the size
/// cap, zstd decoding and the tar walk with the ``BundleArchive/ArchiveLimits``, capturing the
/// manifest and the entry list; then the signature policy.
///
/// Policy: **strict** whenever a trust bundle is configured (unsigned, unknown key, revoked or
/// expired key, or a bad signature is refused); **permissive** otherwise (unsigned is accepted as
/// ``SignatureVerdict/unverified``; a malformed signature is still refused). There is no skip.
public struct StreamingBundleVerifier: Verifier {
    /// The keys trusted; nil means the permissive policy.
    public let trust: TrustBundle?

    /// Creates a verifier.
    public init(trust: TrustBundle?) { self.trust = trust }

    /// A verifier configured from `SIGNING_TRUST_BUNDLE`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(VerifyError) -> StreamingBundleVerifier {
        StreamingBundleVerifier(trust: try TrustBundle.fromEnvironment(environment))
    }

    /// Verifies `body` in one pass, forwarding the archive to `visitor` too.
    public func verify(_ body: ByteStream, request: VerificationRequest, visitor: (any ArchiveVisitor)?) async throws -> VerifiedBundle {
        let inspector = BundleInspector()
        let reader = try BundleReader(visitor: visitor.map { TeeVisitor(inspector, $0) } ?? inspector, limits: request.limits)
        let hashing = HashingLane()
        var received: Int64 = 0
        var archiveError: ArchiveError?
        for try await chunk in body {
            received += Int64(chunk.count)
            guard received <= request.limits.compressedBytes else {
                throw ArchiveError.limitExceeded("compressedBytes", limitValue: request.limits.compressedBytes, actual: received)
            }
            // The SHA-256 of this chunk runs on another core while this task decodes it.
            async let hashed: Void = hashing.update(chunk)
            if archiveError == nil {  // after an archive error, keep hashing: a bad hash explains a bad archive
                do {
                    try chunk.withUnsafeBytes { try reader.consume($0) }
                } catch let error as ArchiveError {
                    archiveError = error
                }
            }
            await hashed
            if let archiveError, request.expectedHash == nil { throw archiveError }
        }
        if archiveError == nil {
            do { _ = try reader.finish() } catch { archiveError = error }
        }
        return try conclude(request, hasher: hashing.hasher, inspector: inspector, archiveError: archiveError)
    }

    /// Verifies the bundle file at `path` in one pass on three threads (read and hash, zstd
    /// decoding, tar walk), so hashing and decompression overlap with a few chunks of slack
    /// between them rather than in lock-step. The same checks and errors as
    /// ``verify(_:request:)``; the calling task waits without blocking the cooperative pool.
    public func verify(fileAt path: String, request: VerificationRequest) async throws -> VerifiedBundle {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<VerifiedBundle, any Error>) in
            let thread = Thread {
                continuation.resume(with: Result { try self.verifyBlocking(fileAt: path, request: request) })
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    private func verifyBlocking(fileAt path: String, request: VerificationRequest) throws -> VerifiedBundle {
        let inspector = BundleInspector()
        do {
            let summary = try BundleReader.read(fileAt: path, visitor: inspector, limits: request.limits, computeHash: true, lightVisitor: true)
            return try conclude(request, hasher: summary.hasher ?? ContentHasher(), inspector: inspector, archiveError: nil)
        } catch let error as ArchiveError {
            // The pipeline stops at the first refusal. When a hash is expected, a wrong hash is the
            // better explanation of a bad archive, so hash the whole file before reporting.
            guard request.expectedHash != nil, error.limit != "compressedBytes" else { throw error }
            let hasher = try FileHashing.hasher(fileAt: path)
            return try conclude(request, hasher: hasher, inspector: inspector, archiveError: error)
        }
    }

    /// The checks after the pass, in the order that gives the most useful error.
    private func conclude(
        _ request: VerificationRequest, hasher: ContentHasher, inspector: BundleInspector, archiveError: ArchiveError?
    ) throws -> VerifiedBundle {
        let hash = hasher.finalize()
        let size = hasher.byteCount
        if let expected = request.expectedHash, hash != expected {
            let truncated = request.declaredSize.map { size < $0 } ?? false
            throw VerifyError(
                code: truncated ? .verifyTruncated : .verifyHashMismatch,
                reason: truncated
                    ? "the bundle is shorter than declared (\(size) of \(request.declaredSize ?? 0) bytes): truncated"
                    : "the bundle does not hash to the expected content hash: tampered or wrong bundle",
                expected: expected.prefixed, actual: hash.prefixed)
        }
        if let archiveError { throw archiveError }
        if let declared = request.declaredSize, declared != size {
            throw VerifyError(
                code: size < declared ? .verifyTruncated : .verifySizeMismatch, reason: "the bundle is not the declared size",
                expected: "\(declared) bytes", actual: "\(size) bytes")
        }
        if request.requireManifest, inspector.manifestPath == nil {
            throw VerifyError(code: .verifyManifestMissing, reason: "no manifest.json at the root or one folder down")
        }
        let verdict = try evaluate(request.signatures, digest: hasher.digest256, hash: hash, at: request.publishTime)
        let paths = Set(inspector.entries.lazy.filter { $0.kind == .file }.map(\.path))
        return VerifiedBundle(
            hash: hash, size: size, manifestPath: inspector.manifestPath, manifest: inspector.manifest,
            entries: inspector.entries, hasMainWasm: paths.contains("dist/main.wasm"), hasUIIndex: paths.contains("ui/index.html"),
            signature: verdict)
    }

    /// Applies the policy to the signatures of a bundle with this digest and hash.
    public func evaluate(
        _ signatures: [DetachedSignature], digest: SHA256.Digest, hash: ContentHash, at time: Date
    ) throws(VerifyError) -> SignatureVerdict {
        for signature in signatures { try Self.checkShape(signature) }
        guard let trust else { return .unverified }
        guard !signatures.isEmpty else {
            throw VerifyError(code: .signatureMissing, reason: "a trust bundle is configured and the bundle is unsigned")
        }
        var verified: [String] = []
        var firstFailure: VerifyError?
        for signature in signatures {
            let candidates: [TrustedKey]
            if let keyID = signature.keyID {
                guard let trusted = trust.keys[keyID] else {
                    firstFailure = firstFailure ?? VerifyError(
                        code: .signatureUnknownKey, reason: "no trusted key has this key id", keyID: keyID)
                    continue
                }
                candidates = [trusted]
            } else {
                candidates = trust.keys.values.filter { $0.key.algorithm == signature.algorithm }
                    .sorted { $0.key.keyID < $1.key.keyID }
            }
            var matched = false
            for trusted in candidates where trusted.key.algorithm == signature.algorithm {
                guard try trusted.key.isValid(signature: signature.signature, digest: digest, hash: hash) else { continue }
                // A good signature by a revoked or out-of-window key fails the whole bundle.
                try Self.checkStanding(trusted, at: time)
                verified.append(trusted.key.keyID)
                matched = true
                break
            }
            if !matched, firstFailure == nil {
                firstFailure = VerifyError(
                    code: candidates.isEmpty ? .signatureUnknownKey : .signatureInvalid,
                    reason: candidates.isEmpty ? "no trusted key can check this signature" : "the signature does not verify",
                    keyID: signature.keyID)
            }
        }
        guard !verified.isEmpty else { throw firstFailure ?? VerifyError(code: .signatureInvalid, reason: "no signature verifies") }
        return .verified(keyIDs: verified)
    }

    static func checkShape(_ signature: DetachedSignature) throws(VerifyError) {
        switch signature.algorithm {
        case .ed25519:
            guard signature.signature.count == 64 else {
                throw VerifyError(code: .signatureMalformed, reason: "an Ed25519 signature has 64 bytes", actual: "\(signature.signature.count) bytes", keyID: signature.keyID)
            }
        case .ecdsaP256SHA256:
            guard (try? P256.Signing.ECDSASignature(derRepresentation: signature.signature)) != nil else {
                throw VerifyError(code: .signatureMalformed, reason: "the ECDSA signature is not valid DER", keyID: signature.keyID)
            }
        }
    }

    static func checkStanding(_ trusted: TrustedKey, at time: Date) throws(VerifyError) {
        let keyID = trusted.key.keyID
        if trusted.status == .revoked {
            throw VerifyError(code: .signatureKeyRevoked, reason: "the signing key is revoked", keyID: keyID)
        }
        if let notBefore = trusted.notBefore, time < notBefore {
            throw VerifyError(code: .signatureKeyExpired, reason: "the signing key was not yet valid at the publish time", keyID: keyID)
        }
        if let notAfter = trusted.notAfter, time > notAfter {
            throw VerifyError(code: .signatureKeyExpired, reason: "the signing key had expired at the publish time", keyID: keyID)
        }
    }
}

/// The hash state of one verification. `update` calls never overlap: each is awaited before the
/// next chunk is read, so the hasher has one user at a time.
final class HashingLane: @unchecked Sendable {
    private(set) var hasher = ContentHasher()

    func update(_ chunk: [UInt8]) async { hasher.update(chunk) }
}
