public import BundleCore

/// Why a bundle or a signature was refused.
public struct VerifyError: ExtBundlesError, Equatable {
    /// The stable code.
    public var code: ErrorCode
    /// A short explanation.
    public var reason: String
    /// The expected value (hash, size, key id...).
    public var expected: String?
    /// The value found.
    public var actual: String?
    /// The key id involved, for signature errors.
    public var keyID: String?

    /// Creates an error.
    public init(code: ErrorCode, reason: String, expected: String? = nil, actual: String? = nil, keyID: String? = nil) {
        self.code = code
        self.reason = reason
        self.expected = expected
        self.actual = actual
        self.keyID = keyID
    }

    /// The reason with expected/actual and the key id.
    public var description: String {
        var text = reason
        if let keyID { text += " (key \(Printable.escape(keyID)))" }
        if let expected, let actual { text += ": expected \(expected), got \(actual)" }
        return text
    }

    /// Every field.
    public var debugDescription: String {
        "VerifyError(code: \(code), reason: \(reason), expected: \(expected ?? "-"), actual: \(actual ?? "-"), keyID: \(keyID ?? "-"))"
    }
}

extension ErrorCode {
    /// The bytes do not hash to the expected content hash, at the declared size (tampered).
    public static let verifyHashMismatch: ErrorCode = "VERIFY_HASH_MISMATCH"
    /// The stream is shorter than the declared size (truncated), so its hash differs too.
    public static let verifyTruncated: ErrorCode = "VERIFY_TRUNCATED"
    /// The stream is not the declared size.
    public static let verifySizeMismatch: ErrorCode = "VERIFY_SIZE_MISMATCH"
    /// The archive has no `manifest.json` at the root or one folder down.
    public static let verifyManifestMissing: ErrorCode = "VERIFY_MANIFEST_MISSING"
    /// A trust bundle is configured and the bundle carries no signature.
    public static let signatureMissing: ErrorCode = "SIGNATURE_MISSING"
    /// A signature does not verify with its key.
    public static let signatureInvalid: ErrorCode = "SIGNATURE_INVALID"
    /// No trusted key has the signature's key id.
    public static let signatureUnknownKey: ErrorCode = "SIGNATURE_UNKNOWN_KEY"
    /// The signing key is revoked in the trust bundle.
    public static let signatureKeyRevoked: ErrorCode = "SIGNATURE_KEY_REVOKED"
    /// The signing key was not valid at the publish time (before `notBefore` or after `notAfter`).
    public static let signatureKeyExpired: ErrorCode = "SIGNATURE_KEY_EXPIRED"
    /// Every verified signature is by a key the trust bundle restricts to other publishers.
    public static let signaturePublisherMismatch: ErrorCode = "SIGNATURE_PUBLISHER_MISMATCH"
    /// A signature file, base64 text or DER structure is malformed.
    public static let signatureMalformed: ErrorCode = "SIGNATURE_MALFORMED"
    /// The signature algorithm is not supported (Alga's `x509`, `pgp`, ...).
    public static let signatureUnsupported: ErrorCode = "SIGNATURE_UNSUPPORTED_ALGORITHM"
    /// A key or trust bundle (PEM, JSON) is malformed or of an unsupported kind.
    public static let trustBundleInvalid: ErrorCode = "TRUST_BUNDLE_INVALID"
    /// A private signing key (PEM) is malformed or of an unsupported kind.
    public static let signingKeyInvalid: ErrorCode = "SIGNING_KEY_INVALID"
}
