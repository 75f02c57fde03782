public import BundleArchive
public import BundleCore
public import Crypto
public import Foundation
import ManifestV2

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
    /// The publisher the bundle is published under, which trust-bundle keys restricted to some
    /// publishers must allow. Nil (the default): the `publisher` of the bundle's own manifest.
    public var publisher: String?

    /// Creates a request.
    public init(
        expectedHash: ContentHash? = nil, declaredSize: Int64? = nil, limits: ArchiveLimits = .default,
        signatures: [DetachedSignature] = [], publishTime: Date = Date(), requireManifest: Bool = true, publisher: String? = nil
    ) {
        self.expectedHash = expectedHash
        self.declaredSize = declaredSize
        self.limits = limits
        self.signatures = signatures
        self.publishTime = publishTime
        self.requireManifest = requireManifest
        self.publisher = publisher
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
    /// Where the manifest, the module and the UI are: computed once here, used by every reader.
    public var layout: BundleLayout
    /// The manifest's bytes (up to 1 MiB).
    public var manifest: [UInt8]?
    /// The entries, in archive order.
    public var entries: [ArchiveEntry]
    /// The publisher the signatures were judged for (the request's, or the manifest's).
    public var publisher: String?
    /// The signature outcome.
    public var signature: SignatureVerdict

    /// Where the manifest was found, if anywhere.
    public var manifestPath: String? { layout.manifestPath }
    /// The module entry (``BundleArchive/BundleLayout/modulePath``), if the bundle has one.
    public var module: ArchiveEntry? { entries.first { $0.kind == .file && $0.path.utf8.elementsEqual(layout.modulePath.utf8) } }
    /// Whether the UI has an `index.html` (the document served for the UI's root).
    public var hasUIIndex: Bool {
        let index = layout.uiPrefix + "index.html"
        return entries.contains { $0.kind == .file && $0.path.utf8.elementsEqual(index.utf8) }
    }
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
/// expired key, a bad signature, or only keys not allowed for the bundle's publisher is refused);
/// **permissive** otherwise (unsigned is accepted as ``SignatureVerdict/unverified``; a malformed
/// signature is still refused). There is no skip.
///
/// Checking signatures is bounded: at most ``SignatureFile/maxSignatures`` signatures and
/// ``maxSignatureChecks`` key checks per bundle.
public struct StreamingBundleVerifier: Verifier {
    /// The keys trusted; nil means the permissive policy.
    public let trust: TrustBundle?

    /// The most signature checks (a signature against a key) one bundle may cost.
    public static let maxSignatureChecks = 256

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
                    if visitor != nil {
                        // A visitor may write files (an extractor): blocking work goes to the pool.
                        let box = ReaderBox(reader)
                        try await BlockingIO.shared.run { try chunk.withUnsafeBytes { try box.reader.consume($0) } }
                    } else {
                        try chunk.withUnsafeBytes { try reader.consume($0) }
                    }
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
        try await BlockingIO.shared.run { try self.verifyBlocking(fileAt: path, request: request) }
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
        // A key bound to publishers must allow every publisher the bundle is known by: the one it
        // is published under and the one its own manifest names (which is what runners judge).
        let archivePublisher = inspector.manifest.flatMap(ManifestValidator.declaredPublisher(in:))
        let publisher = request.publisher ?? archivePublisher
        var publishers = [request.publisher, archivePublisher].compactMap { $0 }
        if publishers.count == 2, TrustedKey.sameBytes(publishers[0].lowercased(), publishers[1].lowercased()) { publishers.removeLast() }
        let verdict = try evaluate(
            request.signatures, digest: hasher.digest256, hash: hash, at: request.publishTime, publishers: publishers)
        return VerifiedBundle(
            hash: hash, size: size, layout: inspector.layout, manifest: inspector.manifest, entries: inspector.entries,
            publisher: publisher, signature: verdict)
    }

    /// Applies the policy to the signatures of a bundle with this digest and hash, published by
    /// `publisher` (nil when unknown: then only keys without a publisher restriction count).
    public func evaluate(
        _ signatures: [DetachedSignature], digest: SHA256.Digest, hash: ContentHash, at time: Date, publisher: String? = nil
    ) throws(VerifyError) -> SignatureVerdict {
        try evaluate(signatures, digest: digest, hash: hash, at: time, publishers: publisher.map { [$0] } ?? [])
    }

    /// Applies the policy for a bundle known by several publishers (the one it is published under
    /// and the one its manifest names): a restricted key must allow all of them.
    func evaluate(
        _ signatures: [DetachedSignature], digest: SHA256.Digest, hash: ContentHash, at time: Date, publishers: [String]
    ) throws(VerifyError) -> SignatureVerdict {
        guard signatures.count <= SignatureFile.maxSignatures else {
            throw VerifyError(
                code: .signatureMalformed, reason: "more than \(SignatureFile.maxSignatures) signatures",
                expected: "at most \(SignatureFile.maxSignatures)", actual: "\(signatures.count)")
        }
        for signature in signatures { try Self.checkShape(signature) }
        guard let trust else { return .unverified }
        guard !signatures.isEmpty else {
            throw VerifyError(code: .signatureMissing, reason: "a trust bundle is configured and the bundle is unsigned")
        }
        var verified: [String] = []
        var wrongPublisher: [String] = []
        var firstFailure: VerifyError?
        var checks = 0
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
                checks += 1
                guard checks <= Self.maxSignatureChecks else {
                    throw VerifyError(
                        code: .signatureMalformed, reason: "checking these signatures would take more than \(Self.maxSignatureChecks) key checks",
                        expected: "at most \(Self.maxSignatureChecks)")
                }
                guard try trusted.key.isValid(signature: signature.signature, digest: digest, hash: hash) else { continue }
                // A good signature by a revoked or out-of-window key fails the whole bundle.
                try Self.checkStanding(trusted, at: time)
                matched = true
                if publishers.isEmpty ? trusted.allows(publisher: nil) : publishers.allSatisfy({ trusted.allows(publisher: $0) }) {
                    verified.append(trusted.key.keyID)
                } else {
                    wrongPublisher.append(trusted.key.keyID)
                }
                break
            }
            if !matched, firstFailure == nil {
                firstFailure = VerifyError(
                    code: candidates.isEmpty ? .signatureUnknownKey : .signatureInvalid,
                    reason: candidates.isEmpty ? "no trusted key can check this signature" : "the signature does not verify",
                    keyID: signature.keyID)
            }
        }
        guard !verified.isEmpty else {
            if let keyID = wrongPublisher.first {
                throw VerifyError(
                    code: .signaturePublisherMismatch,
                    reason: "the bundle is signed only by keys the trust bundle does not allow for its publisher",
                    expected: publishers.isEmpty
                        ? "a key allowed for any publisher (the bundle names none)"
                        : "a key allowed for publisher " + publishers.map { "'\(Printable.escape($0))'" }.joined(separator: " and "),
                    actual: wrongPublisher.joined(separator: ", "), keyID: keyID)
            }
            throw firstFailure ?? VerifyError(code: .signatureInvalid, reason: "no signature verifies")
        }
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

/// Carries the single-pass reader of one verification to the pool thread that feeds it; it is
/// used by one thread at a time (each chunk is awaited before the next).
private struct ReaderBox: @unchecked Sendable {
    let reader: BundleReader
    init(_ reader: BundleReader) { self.reader = reader }
}

/// The hash state of one verification. `update` calls never overlap: each is awaited before the
/// next chunk is read, so the hasher has one user at a time.
final class HashingLane: @unchecked Sendable {
    private(set) var hasher = ContentHasher()

    func update(_ chunk: [UInt8]) async { hasher.update(chunk) }
}
