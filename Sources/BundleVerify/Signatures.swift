import BundleCore
import Foundation

/// One detached signature over a bundle.
public struct DetachedSignature: Sendable, Equatable {
    /// The algorithm.
    public var algorithm: SignatureAlgorithm
    /// `sha256:<hex of the signer's SPKI DER>`; nil for a bare cosign signature, which is then
    /// checked against each trusted P-256 key.
    public var keyID: String?
    /// The raw signature (Ed25519: 64 bytes; ECDSA: DER).
    public var signature: [UInt8]

    /// Creates a signature record.
    public init(algorithm: SignatureAlgorithm, keyID: String?, signature: [UInt8]) {
        self.algorithm = algorithm
        self.keyID = keyID
        self.signature = signature
    }
}

/// The `BUNDLE.sig` file: JSON `{"signatures":[{"algorithm", "keyId", "signature"}]}`, or a bare
/// base64 DER ECDSA signature as cosign writes it. Bounded: at most ``maxBytes`` of text and
/// ``maxSignatures`` signatures.
public enum SignatureFile {
    /// The largest signature file read, in bytes (256 KiB).
    public static let maxBytes = 256 << 10
    /// The most signatures one bundle may carry.
    public static let maxSignatures = 64

    struct Document: Codable {
        struct Entry: Codable {
            var algorithm: String
            var keyId: String?
            var signature: String
        }

        var signatures: [Entry]
    }

    /// Parses either form.
    public static func parse(_ bytes: [UInt8]) throws(VerifyError) -> [DetachedSignature] {
        guard bytes.count <= maxBytes else { throw tooLarge(Int64(bytes.count)) }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("{") else { return [try bare(text)] }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(text.utf8)) else {
            throw VerifyError(code: .signatureMalformed, reason: "the signature file is not {\"signatures\":[...]} JSON")
        }
        guard document.signatures.count <= maxSignatures else {
            throw VerifyError(
                code: .signatureMalformed, reason: "the signature file holds more than \(maxSignatures) signatures",
                expected: "at most \(maxSignatures)", actual: "\(document.signatures.count)")
        }
        var signatures: [DetachedSignature] = []
        for entry in document.signatures {
            guard let algorithm = SignatureAlgorithm(rawValue: entry.algorithm) else {
                throw VerifyError(
                    code: .signatureUnsupported, reason: "unsupported signature algorithm '\(entry.algorithm)' (ed25519, ecdsa-p256-sha256)")
            }
            guard let raw = Data(base64Encoded: entry.signature), !raw.isEmpty else {
                throw VerifyError(code: .signatureMalformed, reason: "a signature is not valid base64", keyID: entry.keyId)
            }
            signatures.append(DetachedSignature(algorithm: algorithm, keyID: entry.keyId, signature: Array(raw)))
        }
        return signatures
    }

    /// A bare base64 DER ECDSA signature (cosign's output).
    static func bare(_ text: String) throws(VerifyError) -> DetachedSignature {
        guard let raw = Data(base64Encoded: text.filter { !$0.isWhitespace }), !raw.isEmpty else {
            throw VerifyError(code: .signatureMalformed, reason: "the signature is neither JSON nor base64")
        }
        return DetachedSignature(algorithm: .ecdsaP256SHA256, keyID: nil, signature: Array(raw))
    }

    /// Reads and parses a signature file (at most ``maxBytes``).
    public static func load(_ path: String) throws -> [DetachedSignature] {
        do {
            return try parse(try BoundedFile.read(path, limit: maxBytes))
        } catch let error as BoundedFile.TooLarge {
            throw tooLarge(error.size)
        }
    }

    static func tooLarge(_ size: Int64) -> VerifyError {
        VerifyError(
            code: .signatureMalformed, reason: "the signature file is larger than \(maxBytes) bytes", expected: "at most \(maxBytes) bytes",
            actual: "\(size) bytes")
    }

    /// Maps Alga's finalize field `signature: {text, algorithm}`: `cosign` is the bare base64
    /// form; our JSON file is accepted as text too; `x509`, `pgp` and others are refused.
    public static func fromAlgaField(text: String, algorithm: String?) throws(VerifyError) -> [DetachedSignature] {
        switch algorithm?.lowercased() {
        case nil, "cosign": return try parse(Array(text.utf8))
        case .some(let other):
            throw VerifyError(code: .signatureUnsupported, reason: "signature algorithm '\(other)' is not supported (use cosign or an ExtBundles signature file)")
        }
    }

    /// The JSON form, pretty-printed with sorted keys.
    public static func encode(_ signatures: [DetachedSignature]) -> [UInt8] {
        let document = Document(signatures: signatures.map {
            .init(algorithm: $0.algorithm.rawValue, keyId: $0.keyID, signature: Data($0.signature).base64EncodedString())
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(document)) ?? Data()) + [0x0a]
    }
}
