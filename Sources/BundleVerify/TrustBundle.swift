import BundleCore
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
    /// The publishers this key may sign for (lowercased, as slugs are, then compared as UTF-8
    /// bytes, as the registry compares slugs: `acmé` in NFC and in NFD are different publishers),
    /// or nil for any publisher. A bundle whose manifest names another publisher is not verified by
    /// this key (`SIGNATURE_PUBLISHER_MISMATCH` when no other key verifies it).
    public var publishers: Set<String>?

    /// Creates a trusted key.
    public init(key: PublicKey, notBefore: Date? = nil, notAfter: Date? = nil, status: Status = .active, publishers: [String]? = nil) {
        self.key = key
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.status = status
        self.publishers = publishers.map { Set($0.map { $0.lowercased() }) }
    }

    /// Whether the key may sign for `publisher` (nil: the publisher is unknown, which only an
    /// unrestricted key may sign for).
    public func allows(publisher: String?) -> Bool {
        guard let publishers else { return true }
        guard let publisher else { return false }
        let wanted = publisher.lowercased()
        return publishers.contains { Self.sameBytes($0, wanted) }
    }

    /// Byte equality: Swift's `==` on strings treats canonically equivalent spellings as equal.
    static func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// The most restrictive combination of two entries for the same key: revoked if either is,
    /// then retired; valid only inside both windows; only for publishers both allow.
    func merged(with other: TrustedKey) -> TrustedKey {
        var result = self
        let rank: [Status: Int] = [.active: 0, .retired: 1, .revoked: 2]
        if rank[other.status, default: 2] > rank[status, default: 2] { result.status = other.status }
        result.notBefore = [notBefore, other.notBefore].compactMap { $0 }.max()
        result.notAfter = [notAfter, other.notAfter].compactMap { $0 }.min()
        switch (publishers, other.publishers) {
        case (nil, let only), (let only, nil): result.publishers = only
        case (let a?, let b?): result.publishers = a.filter { name in b.contains { Self.sameBytes($0, name) } }
        }
        return result
    }
}

/// The keys a host trusts, from `SIGNING_TRUST_BUNDLE`.
///
/// Forms: PEM text holding `PUBLIC KEY` and `CERTIFICATE` blocks (a certificate's key is trusted
/// within the certificate's validity, judged at the publish time; chains are not built); or JSON
/// `{"keys":[{"publicKey":"<PEM>", "notBefore":"<ISO 8601>", "notAfter":"...", "status":"active|retired|revoked", "publishers":["acme"]}]}`.
/// The environment value is the material itself when it starts with `-----BEGIN` or `{` (Alga uses
/// both forms), and a file path otherwise.
///
/// A key listed more than once gets the most restrictive combination of its entries: revoked
/// anywhere means revoked, several validity windows mean valid only where all of them allow it,
/// and several publisher lists mean only the publishers all of them name. So appending a
/// revocation to a trust bundle always works.
///
/// Bounded: at most ``maxBytes`` of material and ``maxKeys`` entries.
public struct TrustBundle: Sendable, Equatable {
    /// The largest trust bundle read, in bytes (4 MiB).
    public static let maxBytes = 4 << 20
    /// The most keys (entries) a trust bundle may list.
    public static let maxKeys = 10_000

    /// The keys, by key id.
    public var keys: [String: TrustedKey]

    /// Creates a bundle from keys; entries for the same key are merged, most restrictive wins.
    public init(keys: [TrustedKey]) {
        self.keys = Dictionary(keys.map { ($0.key.keyID, $0) }, uniquingKeysWith: { $0.merged(with: $1) })
    }

    /// Parses PEM or JSON trust material.
    public init(material text: String) throws(VerifyError) {
        guard text.utf8.count <= Self.maxBytes else {
            throw VerifyError(
                code: .trustBundleInvalid, reason: "the trust bundle is larger than \(Self.maxBytes) bytes",
                expected: "at most \(Self.maxBytes) bytes", actual: "\(text.utf8.count) bytes")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") {
            struct Document: Decodable {
                struct Entry: Decodable {
                    var publicKey: String
                    var notBefore: String?
                    var notAfter: String?
                    var status: TrustedKey.Status?
                    var publishers: [String]?
                }

                var keys: [Entry]
            }
            guard let document = try? JSONDecoder().decode(Document.self, from: Data(trimmed.utf8)) else {
                throw VerifyError(code: .trustBundleInvalid, reason: "the trust bundle JSON is not {\"keys\":[{\"publicKey\", ...}]}")
            }
            guard document.keys.count <= Self.maxKeys else { throw Self.tooManyKeys(document.keys.count) }
            var keys: [TrustedKey] = []
            for entry in document.keys {
                if let publishers = entry.publishers, publishers.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                    throw VerifyError(code: .trustBundleInvalid, reason: "a trust bundle entry lists an empty publisher")
                }
                keys.append(TrustedKey(
                    key: try PublicKey(pem: entry.publicKey), notBefore: try Self.date(entry.notBefore),
                    notAfter: try Self.date(entry.notAfter), status: entry.status ?? .active, publishers: entry.publishers))
            }
            self.init(keys: keys)
            return
        }
        let blocks = try PEM.blocks(in: trimmed)
        guard blocks.count <= Self.maxKeys else { throw Self.tooManyKeys(blocks.count) }
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

    /// Inline material (starting with `-----BEGIN` or `{`) or a file path (read up to ``maxBytes``).
    public static func load(_ value: String) throws(VerifyError) -> TrustBundle {
        if value.hasPrefix("-----BEGIN") || value.hasPrefix("{") { return try TrustBundle(material: value) }
        let bytes: [UInt8]
        do {
            bytes = try BoundedFile.read(value, limit: maxBytes)
        } catch let error as BoundedFile.TooLarge {
            throw VerifyError(
                code: .trustBundleInvalid, reason: "the trust bundle file is larger than \(maxBytes) bytes",
                expected: "at most \(maxBytes) bytes", actual: "\(error.size) bytes")
        } catch {
            throw VerifyError(code: .trustBundleInvalid, reason: "cannot read the trust bundle file '\(Printable.escape(value))'")
        }
        return try TrustBundle(material: String(decoding: bytes, as: UTF8.self))
    }

    static func tooManyKeys(_ count: Int) -> VerifyError {
        VerifyError(
            code: .trustBundleInvalid, reason: "the trust bundle lists more than \(maxKeys) keys", expected: "at most \(maxKeys)",
            actual: "\(count)")
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

    /// An ISO 8601 date and time, with or without fractional seconds (JavaScript's
    /// `toISOString` writes `2027-01-01T00:00:00.123Z`).
    static func date(_ text: String?) throws(VerifyError) -> Date? {
        guard let text else { return nil }
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = plain.date(from: text) ?? fractional.date(from: text) else {
            throw VerifyError(code: .trustBundleInvalid, reason: "'\(Printable.escape(String(text.prefix(64))))' is not an ISO 8601 date")
        }
        return date
    }
}
