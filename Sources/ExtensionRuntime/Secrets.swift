public import BundleCore
import Foundation

/// Turns a request's secret envelope into the install's secrets (a seam: Vault, a KMS, a test
/// double).
///
/// Contract: return the `{name: value}` map, or throw; any error becomes
/// `secret_decrypt_failed` and nothing runs. An implementation may cache, keyed at least by
/// tenant, extension and ciphertext (Alga keys by `tenant:extension:install:version:sha256(ct)`).
public protocol SecretDecrypter: Sendable {
    /// Decrypts `envelope` for the request's tenant and extension.
    func decrypt(_ envelope: ExecuteRequest.SecretEnvelope, context: ExecuteRequest.Context) async throws -> [String: String]
}

/// The envelopes a runner can open without help: the inline kind (standard base64 of a JSON
/// `{string: string}` map; an empty ciphertext is an empty map). An algorithm starting with
/// `vault-transit` goes to ``vault`` when one is given, and fails otherwise.
public struct InlineSecretDecrypter: SecretDecrypter {
    /// What opens `vault-transit` envelopes, if anything.
    public var vault: (any SecretDecrypter)?
    /// The largest decoded map, in bytes (default 1 MiB).
    public var maxBytes: Int

    /// Creates a decrypter.
    public init(vault: (any SecretDecrypter)? = nil, maxBytes: Int = 1 << 20) {
        self.vault = vault
        self.maxBytes = maxBytes
    }

    /// Why an envelope could not be opened (for logs; the caller sees `secret_decrypt_failed`,
    /// never this text, which names no secret).
    public struct Refusal: ExtBundlesError {
        /// `SECRET_ENVELOPE_REFUSED`.
        public var code: ErrorCode { "SECRET_ENVELOPE_REFUSED" }
        /// What was wrong.
        public var reason: String
        /// The reason.
        public var description: String { reason }
        /// The code and the reason.
        public var debugDescription: String { "Refusal(code: SECRET_ENVELOPE_REFUSED, reason: \(reason))" }
    }

    /// Opens the envelope: an empty ciphertext is an empty map whatever the algorithm, as in
    /// Alga.
    public func decrypt(_ envelope: ExecuteRequest.SecretEnvelope, context: ExecuteRequest.Context) async throws -> [String: String] {
        let text = envelope.ciphertextB64.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return [:] }
        if let algorithm = envelope.algorithm?.lowercased(), algorithm.hasPrefix("vault-transit") {
            guard let vault else { throw Refusal(reason: "a vault-transit envelope and no Vault decrypter") }
            return try await vault.decrypt(envelope, context: context)
        }
        guard text.utf8.count <= (maxBytes / 3 + 1) * 4 + 4 else { throw Refusal(reason: "the envelope is larger than \(maxBytes) bytes") }
        guard let data = Data(base64Encoded: text) else { throw Refusal(reason: "the ciphertext is not standard base64") }
        guard let map = try? JSONDecoder().decode([String: String].self, from: data) else {
            throw Refusal(reason: "the plaintext is not a JSON object of strings")
        }
        return map
    }
}
