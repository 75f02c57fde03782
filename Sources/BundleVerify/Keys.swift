public import BundleCore
public import Crypto
import Foundation

/// A signature algorithm.
public enum SignatureAlgorithm: String, Sendable, Equatable, Codable {
    /// Ed25519 over the ASCII bytes `sha256:<hex>` of the content hash.
    case ed25519
    /// ECDSA P-256 with SHA-256 over the bundle bytes (`openssl dgst -sha256 -sign`, cosign blobs).
    case ecdsaP256SHA256 = "ecdsa-p256-sha256"
}

/// A public key a signature can be checked against.
public struct PublicKey: Sendable, Equatable {
    enum Material: Sendable, Equatable {
        case ed25519(Curve25519.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)

        static func == (lhs: Material, rhs: Material) -> Bool {
            switch (lhs, rhs) {
            case (.ed25519(let a), .ed25519(let b)): a.rawRepresentation == b.rawRepresentation
            case (.p256(let a), .p256(let b)): a.rawRepresentation == b.rawRepresentation
            default: false
            }
        }
    }

    let material: Material
    /// The SubjectPublicKeyInfo DER, in its one canonical encoding (for P-256: the named curve
    /// and an uncompressed point), whatever encoding it was read from.
    public let spki: [UInt8]

    /// `sha256:<hex of the canonical SPKI DER>`: how signatures name their key. One key has one
    /// id: a P-256 key written with explicit curve parameters gets the id of its named-curve form,
    /// so a revocation or a validity window listed under either form applies to both.
    public var keyID: String { ContentHash.of(spki).prefixed }

    /// The algorithm this key verifies.
    public var algorithm: SignatureAlgorithm {
        switch material {
        case .ed25519: .ed25519
        case .p256: .ecdsaP256SHA256
        }
    }

    /// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
    static let ed25519SPKIPrefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]

    /// Parses a SubjectPublicKeyInfo DER holding an Ed25519 or P-256 key.
    public init(spki: [UInt8]) throws(VerifyError) {
        if spki.count == 44, spki.starts(with: Self.ed25519SPKIPrefix) {
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: spki.suffix(32)) else {
                throw VerifyError(code: .trustBundleInvalid, reason: "invalid Ed25519 public key")
            }
            material = .ed25519(key)
            self.spki = spki
        } else if let key = try? P256.Signing.PublicKey(derRepresentation: spki) {
            material = .p256(key)
            self.spki = Array(key.derRepresentation)
        } else {
            throw VerifyError(code: .trustBundleInvalid, reason: "unsupported or malformed public key (Ed25519 and EC P-256 are supported)")
        }
    }

    /// Parses a PEM `PUBLIC KEY` block.
    public init(pem: String) throws(VerifyError) {
        let blocks = try PEM.blocks(in: pem)
        guard let block = blocks.first(where: { $0.label == "PUBLIC KEY" }) else {
            throw VerifyError(code: .trustBundleInvalid, reason: "no PUBLIC KEY block in the PEM text")
        }
        try self.init(spki: block.der)
    }

    /// The PEM text.
    public var pem: String { PEM.encode(label: "PUBLIC KEY", der: spki) }

    /// Checks `signature` for a bundle whose SHA-256 is `digest` (ECDSA) and whose content hash is
    /// `hash` (Ed25519 signs `sha256:<hex>`).
    public func isValid(signature: [UInt8], digest: SHA256.Digest, hash: ContentHash) throws(VerifyError) -> Bool {
        switch material {
        case .ed25519(let key):
            return key.isValidSignature(signature, for: Array(hash.prefixed.utf8))
        case .p256(let key):
            guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else {
                throw VerifyError(code: .signatureMalformed, reason: "the ECDSA signature is not valid DER", keyID: keyID)
            }
            return key.isValidSignature(parsed, for: digest)
        }
    }
}

/// A private key for `extctl sign` and tests.
public struct SigningKey: Sendable {
    enum Material: Sendable {
        case ed25519(Curve25519.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
    }

    let material: Material

    /// The PKCS#8 DER prefix of an Ed25519 private key (RFC 8410), before the 32-byte seed.
    static let ed25519PKCS8Prefix: [UInt8] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ]

    /// A new random key.
    public init(generating algorithm: SignatureAlgorithm) {
        switch algorithm {
        case .ed25519: material = .ed25519(Curve25519.Signing.PrivateKey())
        case .ecdsaP256SHA256: material = .p256(P256.Signing.PrivateKey())
        }
    }

    /// Parses a PEM `PRIVATE KEY` (PKCS#8, Ed25519 or P-256) or `EC PRIVATE KEY` (SEC1) block,
    /// as `openssl genpkey` writes them.
    /// - Throws: `SIGNING_KEY_INVALID` when the text holds no such key.
    public init(pem: String) throws(VerifyError) {
        let blocks: [PEM.Block]
        do {
            blocks = try PEM.blocks(in: pem)
        } catch {
            throw VerifyError(code: .signingKeyInvalid, reason: "the signing key is not PEM text: \(error.reason)")
        }
        if let block = blocks.first(where: { $0.label == "PRIVATE KEY" }) {
            if block.der.count == 48, block.der.starts(with: Self.ed25519PKCS8Prefix),
                let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: block.der.suffix(32))
            {
                material = .ed25519(key)
                return
            }
            if let key = try? P256.Signing.PrivateKey(derRepresentation: block.der) {
                material = .p256(key)
                return
            }
        } else if let block = blocks.first(where: { $0.label == "EC PRIVATE KEY" }),
            let key = try? P256.Signing.PrivateKey(derRepresentation: block.der)
        {
            material = .p256(key)
            return
        }
        throw VerifyError(code: .signingKeyInvalid, reason: "no Ed25519 or P-256 private key in the PEM text")
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), readable by openssl.
    public var pem: String {
        switch material {
        case .ed25519(let key): PEM.encode(label: "PRIVATE KEY", der: Self.ed25519PKCS8Prefix + Array(key.rawRepresentation))
        case .p256(let key): key.pemRepresentation
        }
    }

    /// The public half.
    public var publicKey: PublicKey {
        switch material {
        case .ed25519(let key):
            // Built from known-good bytes: cannot fail.
            try! PublicKey(spki: PublicKey.ed25519SPKIPrefix + Array(key.publicKey.rawRepresentation))
        case .p256(let key):
            try! PublicKey(spki: Array(key.publicKey.derRepresentation))
        }
    }

    /// Signs a bundle: Ed25519 over `sha256:<hex>`, ECDSA (DER) over the digest of the bytes.
    public func sign(digest: SHA256.Digest, hash: ContentHash) throws -> DetachedSignature {
        switch material {
        case .ed25519(let key):
            let signature = try key.signature(for: Array(hash.prefixed.utf8))
            return DetachedSignature(algorithm: .ed25519, keyID: publicKey.keyID, signature: Array(signature))
        case .p256(let key):
            let signature = try key.signature(for: digest)
            return DetachedSignature(algorithm: .ecdsaP256SHA256, keyID: publicKey.keyID, signature: Array(signature.derRepresentation))
        }
    }
}

/// PEM armour.
enum PEM {
    struct Block {
        var label: String
        var der: [UInt8]
    }

    /// Every `-----BEGIN X-----` ... `-----END X-----` block.
    static func blocks(in text: String) throws(VerifyError) -> [Block] {
        var blocks: [Block] = []
        var label: String?
        var body = ""
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") {
                label = String(line.dropFirst(11).dropLast(5))
                body = ""
            } else if line.hasPrefix("-----END "), line.hasSuffix("-----"), let current = label {
                guard String(line.dropFirst(9).dropLast(5)) == current, let der = Data(base64Encoded: body), !der.isEmpty else {
                    throw VerifyError(code: .trustBundleInvalid, reason: "malformed PEM block '\(current)'")
                }
                blocks.append(Block(label: current, der: Array(der)))
                label = nil
            } else if label != nil {
                body += line
            }
        }
        if let label { throw VerifyError(code: .trustBundleInvalid, reason: "unterminated PEM block '\(label)'") }
        if blocks.isEmpty { throw VerifyError(code: .trustBundleInvalid, reason: "no PEM block found") }
        return blocks
    }

    static func encode(label: String, der: [UInt8]) -> String {
        let base64 = Data(der).base64EncodedString()
        var lines: [String] = []
        var index = base64.startIndex
        while index < base64.endIndex {
            let end = base64.index(index, offsetBy: 64, limitedBy: base64.endIndex) ?? base64.endIndex
            lines.append(String(base64[index..<end]))
            index = end
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }
}
