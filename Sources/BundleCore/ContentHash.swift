import Crypto

/// The identity of a bundle: the SHA-256 of the exact compressed bytes of its `bundle.tar.zst`.
///
/// Two spellings exist on the wire and both are accepted by ``init(parsing:allowUppercase:)``:
/// bare 64-character hex (store keys, APIs) and `sha256:<hex>` (registry rows, UI URLs).
/// Output is always lowercase: ``hex`` and ``prefixed``.
///
/// Equality is computed in constant time, so comparing a computed hash against an expected one
/// does not leak how many leading bytes matched.
public struct ContentHash: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The algorithm prefix used in the `sha256:<hex>` spelling.
    public static let algorithmPrefix = "sha256:"

    // Four 64-bit words hold the 32 digest bytes, big-endian, so comparison is branch-free.
    private let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// Creates a hash from its 32 raw digest bytes.
    /// - Throws: ``ContentHashError`` with code `INVALID_CONTENT_HASH` when there are not 32 bytes.
    public init<Bytes: Collection>(digestBytes bytes: Bytes) throws(ContentHashError)
    where Bytes.Element == UInt8 {
        guard bytes.count == 32 else {
            throw ContentHashError(input: "<\(bytes.count) bytes>", reason: "a SHA-256 digest has 32 bytes")
        }
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, byte) in bytes.enumerated() {
            words[index / 8] = words[index / 8] << 8 | UInt64(byte)
        }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    /// Parses `sha256:<64 hex>` or bare `<64 hex>`.
    ///
    /// - Parameters:
    ///   - text: the hash as written.
    ///   - allowUppercase: accept `A-F` and lowercase them (the default); pass `false` where an API
    ///     requires lowercase, as Alga's `declaredHash` does.
    /// - Throws: ``ContentHashError`` naming what is wrong (length, character, prefix).
    public init(parsing text: some StringProtocol, allowUppercase: Bool = true) throws(ContentHashError) {
        var utf8 = Substring(text).utf8[...]
        let prefix = Self.algorithmPrefix.utf8
        if utf8.starts(with: prefix) {
            utf8 = utf8.dropFirst(prefix.count)
        } else if let colon = utf8.firstIndex(of: UInt8(ascii: ":")) {
            let algorithm = String(Substring(utf8[utf8.startIndex..<colon]))
            throw ContentHashError(
                input: String(text), reason: "unsupported algorithm '\(algorithm)', expected sha256")
        }
        guard utf8.count == 64 else {
            throw ContentHashError(
                input: String(text), reason: "expected 64 hex characters, found \(utf8.count)")
        }
        // Four words filled in place (no array: this runs on every registry read and UI request).
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (index, char) in utf8.enumerated() {
            let nibble: UInt8
            switch char {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = char - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = char - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F") where allowUppercase:
                nibble = char - UInt8(ascii: "A") + 10
            default:
                throw ContentHashError(
                    input: String(text),
                    reason: "invalid character at position \(index) (expected \(allowUppercase ? "" : "lowercase ")hex)")
            }
            switch index / 16 {
            case 0: words.0 = words.0 << 4 | UInt64(nibble)
            case 1: words.1 = words.1 << 4 | UInt64(nibble)
            case 2: words.2 = words.2 << 4 | UInt64(nibble)
            default: words.3 = words.3 << 4 | UInt64(nibble)
            }
        }
        (w0, w1, w2, w3) = words
    }

    /// The 32 digest bytes.
    public var digestBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for word in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return out
    }

    /// Bare lowercase hex, 64 characters: the spelling of store keys and APIs.
    public var hex: String { Hex.encode(digestBytes) }

    /// `sha256:<hex>`: the spelling of registry rows and UI URLs.
    public var prefixed: String { Self.algorithmPrefix + hex }

    /// The prefixed spelling.
    public var description: String { prefixed }

    /// Constant-time comparison of the digests.
    public static func == (lhs: ContentHash, rhs: ContentHash) -> Bool {
        ((lhs.w0 ^ rhs.w0) | (lhs.w1 ^ rhs.w1) | (lhs.w2 ^ rhs.w2) | (lhs.w3 ^ rhs.w3)) == 0
    }

    /// Hashes all four digest words.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0)
        hasher.combine(w1)
        hasher.combine(w2)
        hasher.combine(w3)
    }

    /// Decodes from a string in either spelling.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: text)
    }

    /// Encodes as `sha256:<hex>`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(prefixed)
    }

    /// The SHA-256 of `bytes`, in one call.
    public static func of(_ bytes: some Sequence<UInt8>) -> ContentHash {
        var hasher = ContentHasher()
        let array = Array(bytes)
        array.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }
}

/// A string that is not a valid content hash.
public struct ContentHashError: ExtBundlesError, Equatable {
    /// The input that was refused (a hash is not a secret).
    public var input: String
    /// What is wrong with it.
    public var reason: String

    /// Always ``ErrorCode/invalidContentHash``.
    public var code: ErrorCode { .invalidContentHash }

    /// Creates the error.
    public init(input: String, reason: String) {
        self.input = input
        self.reason = reason
    }

    /// A short line: what is wrong.
    public var description: String { "invalid content hash: \(reason)" }

    /// The code, the reason and the input, truncated to 100 characters.
    public var debugDescription: String {
        "ContentHashError(code: \(code), reason: \(reason), input: \"\(input.prefix(100))\")"
    }
}

extension ErrorCode {
    /// A content hash that is not `sha256:<64 hex>` or bare 64 hex.
    public static let invalidContentHash: ErrorCode = "INVALID_CONTENT_HASH"
}
