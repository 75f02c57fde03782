import BundleCore
import Crypto
public import Foundation

/// AWS Signature Version 4: header signing (`Authorization`) and query signing (presigned URLs).
///
/// A small value type with no I/O, checked against the aws-c-auth test vectors. Paths and query
/// values are given decoded; the signer encodes them (RFC 3986 unreserved characters stay, `/`
/// stays in paths) exactly as the request must put them on the wire.
public struct AWSSigV4: Sendable {
    /// Access key, secret and optional session token.
    public struct Credentials: Sendable, Equatable {
        /// The access key id.
        public var accessKeyID: String
        /// The secret access key.
        public var secretAccessKey: String
        /// The session token of temporary credentials.
        public var sessionToken: String?

        /// Creates credentials.
        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// The parts of a request that are signed.
    public struct Request: Sendable, Equatable {
        /// `GET`, `PUT`, ...
        public var method: String
        /// The decoded path, starting with `/`.
        public var path: String
        /// Decoded query parameters, in any order.
        public var query: [Parameter]
        /// Headers to sign, including `host`; repeated names are joined with `,` in order.
        public var headers: [Parameter]

        /// Creates a request.
        public init(method: String, path: String, query: [Parameter] = [], headers: [Parameter]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// A name and a value.
    public struct Parameter: Sendable, Equatable {
        /// The name.
        public var name: String
        /// The value.
        public var value: String

        /// Creates a parameter.
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A computed signature and the intermediate texts (for tests and debugging).
    public struct Signature: Sendable, Equatable {
        /// The canonical request.
        public var canonicalRequest: String
        /// The string to sign.
        public var stringToSign: String
        /// The hex signature.
        public var signature: String
        /// `host;x-amz-date;...`.
        public var signedHeaders: String
        /// Header signing: the headers to add (`x-amz-date`, `x-amz-content-sha256` when asked,
        /// `x-amz-security-token`, `authorization`). Query signing: empty.
        public var headers: [Parameter]
        /// Query signing: the query parameters to add, `X-Amz-Signature` last. Header signing: empty.
        public var query: [Parameter]
    }

    /// The payload hash S3 accepts for bodies that are not hashed up front.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of the empty string.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The credentials.
    public var credentials: Credentials
    /// The region, e.g. `us-east-1`.
    public var region: String
    /// The service, `s3` for S3.
    public var service: String

    /// Creates a signer.
    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Signs with an `Authorization` header.
    /// - Parameters:
    ///   - payloadHash: hex SHA-256 of the body, or ``unsignedPayload``.
    ///   - addContentHashHeader: also sign and return `x-amz-content-sha256` (S3 requires it).
    ///   - normalizePath: remove `.`/`..` segments and repeated slashes first (not for S3).
    ///   - omitSessionToken: add the token header after signing instead of signing it.
    public func signHeaders(
        _ request: Request, payloadHash: String, date: Date, addContentHashHeader: Bool = true,
        normalizePath: Bool = false, omitSessionToken: Bool = false
    ) -> Signature {
        let stamp = Self.timestamp(date)
        var headers = request.headers
        var added = [Parameter("X-Amz-Date", stamp)]
        if addContentHashHeader { added.append(Parameter("x-amz-content-sha256", payloadHash)) }
        var trailing: [Parameter] = []
        if let token = credentials.sessionToken {
            if omitSessionToken { trailing.append(Parameter("X-Amz-Security-Token", token)) } else { added.append(Parameter("X-Amz-Security-Token", token)) }
        }
        headers += added
        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(headers)
        let canonical = [
            request.method, Self.canonicalPath(request.path, normalize: normalizePath), Self.canonicalQuery(request.query),
            canonicalHeaders, signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let (stringToSign, signature) = sign(canonical, stamp: stamp)
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(stamp)), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signature(
            canonicalRequest: canonical, stringToSign: stringToSign, signature: signature, signedHeaders: signedHeaders,
            headers: added + trailing + [Parameter("Authorization", authorization)], query: [])
    }

    /// Signs in the query string (a presigned URL valid for `expires` seconds).
    public func presign(
        _ request: Request, payloadHash: String = unsignedPayload, date: Date, expires: Int, normalizePath: Bool = false,
        omitSessionToken: Bool = false
    ) -> Signature {
        let stamp = Self.timestamp(date)
        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(request.headers)
        var added = [
            Parameter("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            Parameter("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(stamp))"),
            Parameter("X-Amz-Date", stamp),
            Parameter("X-Amz-Expires", String(expires)),
            Parameter("X-Amz-SignedHeaders", signedHeaders),
        ]
        var trailing: [Parameter] = []
        if let token = credentials.sessionToken {
            if omitSessionToken { trailing.append(Parameter("X-Amz-Security-Token", token)) } else { added.append(Parameter("X-Amz-Security-Token", token)) }
        }
        let canonical = [
            request.method, Self.canonicalPath(request.path, normalize: normalizePath),
            Self.canonicalQuery(request.query + added), canonicalHeaders, signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let (stringToSign, signature) = sign(canonical, stamp: stamp)
        return Signature(
            canonicalRequest: canonical, stringToSign: stringToSign, signature: signature, signedHeaders: signedHeaders,
            headers: [], query: added + trailing + [Parameter("X-Amz-Signature", signature)])
    }

    // MARK: - Pieces

    private func scope(_ stamp: String) -> String { "\(stamp.prefix(8))/\(region)/\(service)/aws4_request" }

    private func sign(_ canonical: String, stamp: String) -> (String, String) {
        let stringToSign = [
            "AWS4-HMAC-SHA256", stamp, scope(stamp), Self.hex(SHA256.hash(data: Array(canonical.utf8))),
        ].joined(separator: "\n")
        var key = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [String(stamp.prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key)
        return (stringToSign, Self.hex(signature))
    }

    /// The hex SHA-256 of a body, for `payloadHash`.
    public static func payloadHash(_ body: [UInt8]) -> String { hex(SHA256.hash(data: body)) }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 { Hex.encode(bytes) }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2) + "T"
            + pad(parts.tm_hour, 2) + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2) + "Z"
    }

    /// RFC 3986 encoding: unreserved characters stay, everything else is `%XX` (uppercase hex).
    public static func uriEncode(_ text: String, encodeSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where !encodeSlash:
                out.append("/")
            default:
                let high = String(byte >> 4, radix: 16, uppercase: true)
                let low = String(byte & 0x0f, radix: 16, uppercase: true)
                out += "%\(high)\(low)"
            }
        }
        return out
    }

    static func canonicalPath(_ path: String, normalize: Bool) -> String {
        var path = path.isEmpty ? "/" : path
        if normalize {
            var segments: [Substring] = []
            for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
                if segment == "." { continue }
                if segment == ".." {
                    _ = segments.popLast()
                    continue
                }
                segments.append(segment)
            }
            let trailing = path.hasSuffix("/") && !segments.isEmpty
            path = "/" + segments.joined(separator: "/") + (trailing ? "/" : "")
        }
        return uriEncode(path, encodeSlash: false)
    }

    static func canonicalQuery(_ parameters: [Parameter]) -> String {
        let encoded: [(name: String, value: String)] = parameters.map { parameter in
            (uriEncode(parameter.name, encodeSlash: true), uriEncode(parameter.value, encodeSlash: true))
        }
        let sorted = encoded.sorted { lhs, rhs in
            lhs.name == rhs.name
                ? lhs.value.utf8.lexicographicallyPrecedes(rhs.value.utf8)
                : lhs.name.utf8.lexicographicallyPrecedes(rhs.name.utf8)
        }
        return sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    /// Lowercased names, values trimmed with inner whitespace runs folded, repeated names joined
    /// with `,`; sorted by name.
    static func canonicalHeaders(_ headers: [Parameter]) -> (String, String) {
        var merged: [String: [String]] = [:]
        for header in headers {
            let value = header.value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
                .joined(separator: " ")
            merged[header.name.lowercased(), default: []].append(value)
        }
        let names = merged.keys.sorted()
        let canonical = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (canonical, names.joined(separator: ";"))
    }
}
