public import Foundation
import SwiftASN1
import X509

/// A key the host trusts, with its validity window and status.
public struct TrustedKey: Sendable, Equatable {
    /// Whether the key may sign.
    public enum Status: String, Sendable, Equatable, Codable {
        /// Signs.
        case active
        /// Signatures made before `notAfter` still verify; judged by the publish time.
        case retired
        /// Never verifies, whatever the dates.
        case revoked
    }

    /// The key.
    public var key: PublicKey
    /// Not valid before this time.
    public var notBefore: Date?
    /// Not valid after this time.
    public var notAfter: Date?
    /// The status.
    public var status: Status

    /// Creates a trusted key.
    public init(key: PublicKey, notBefore: Date? = nil, notAfter: Date? = nil, status: Status = .active) {
        self.key = key
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.status = status
    }
}

/// The keys a host trusts, from `SIGNING_TRUST_BUNDLE`.
///
/// Forms: PEM text holding `PUBLIC KEY` and `CERTIFICATE` blocks (a certificate's key is trusted
/// within the certificate's validity, judged at the publish time; chains are not built); or JSON
/// `{"keys":[{"publicKey":"<PEM>", "notBefore":"<ISO 8601>", "notAfter":"...", "status":"active|retired|revoked"}]}`.
/// The environment value is the material itself when it starts with `-----BEGIN` or `{` (Alga uses
/// both forms), and a file path otherwise.
public struct TrustBundle: Sendable, Equatable {
    /// The keys, by key id.
    public var keys: [String: TrustedKey]

    /// Creates a bundle from keys.
    public init(keys: [TrustedKey]) {
        self.keys = Dictionary(keys.map { ($0.key.keyID, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Parses PEM or JSON trust material.
    public init(material text: String) throws(VerifyError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") {
            struct Document: Decodable {
                struct Entry: Decodable {
                    var publicKey: String
                    var notBefore: String?
                    var notAfter: String?
                    var status: TrustedKey.Status?
                }

                var keys: [Entry]
            }
            guard let document = try? JSONDecoder().decode(Document.self, from: Data(trimmed.utf8)) else {
                throw VerifyError(code: .trustBundleInvalid, reason: "the trust bundle JSON is not {\"keys\":[{\"publicKey\", ...}]}")
            }
            var keys: [TrustedKey] = []
            for entry in document.keys {
                keys.append(TrustedKey(
                    key: try PublicKey(pem: entry.publicKey), notBefore: try Self.date(entry.notBefore),
                    notAfter: try Self.date(entry.notAfter), status: entry.status ?? .active))
            }
            self.init(keys: keys)
            return
        }
        let blocks = try PEM.blocks(in: trimmed)
        var keys: [TrustedKey] = []
        for block in blocks {
            switch block.label {
            case "PUBLIC KEY": keys.append(TrustedKey(key: try PublicKey(spki: block.der)))
            case "CERTIFICATE": keys.append(try Self.certificateKey(block.der))
            default:
                throw VerifyError(
                    code: .trustBundleInvalid,
                    reason: "PEM blocks of type '\(block.label)' are not supported in a trust bundle (use PUBLIC KEY or CERTIFICATE)")
            }
        }
        self.init(keys: keys)
    }

    /// Reads `SIGNING_TRUST_BUNDLE`: nil when unset or empty (permissive policy).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(VerifyError) -> TrustBundle? {
        guard let value = environment["SIGNING_TRUST_BUNDLE"]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
            return nil
        }
        return try load(value)
    }

    /// Inline material (starting with `-----BEGIN` or `{`) or a file path.
    public static func load(_ value: String) throws(VerifyError) -> TrustBundle {
        if value.hasPrefix("-----BEGIN") || value.hasPrefix("{") { return try TrustBundle(material: value) }
        guard let data = FileManager.default.contents(atPath: value) else {
            throw VerifyError(code: .trustBundleInvalid, reason: "cannot read the trust bundle file '\(value)'")
        }
        return try TrustBundle(material: String(decoding: data, as: UTF8.self))
    }

    /// A certificate's public key, trusted within the certificate's validity window.
    static func certificateKey(_ der: [UInt8]) throws(VerifyError) -> TrustedKey {
        let certificate: Certificate
        let spki: [UInt8]
        do {
            certificate = try Certificate(derEncoded: der)
            spki = try certificate.publicKey.serializeAsPEM().derBytes
        } catch {
            throw VerifyError(code: .trustBundleInvalid, reason: "malformed X.509 certificate in the trust bundle")
        }
        return TrustedKey(
            key: try PublicKey(spki: spki), notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter)
    }

    private static func date(_ text: String?) throws(VerifyError) -> Date? {
        guard let text else { return nil }
        let formatter = ISO8601DateFormatter()
        guard let date = formatter.date(from: text) else {
            throw VerifyError(code: .trustBundleInvalid, reason: "'\(text)' is not an ISO 8601 date")
        }
        return date
    }
}
