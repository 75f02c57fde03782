import AsyncHTTPClient
public import BundleCore
public import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// Which hosts a guest's `alga.http.fetch` may reach (`EXT_EGRESS_ALLOWLIST`, reference 6.7).
///
/// A URL's host, lowercased, must equal an entry or end with `.<entry>`; ports are not
/// considered; an empty list allows every host, as in Alga. One difference: an IP address must
/// equal an entry (Alga's suffix rule lets the entry `0.0.1` admit `127.0.0.1`).
public struct EgressPolicy: Sendable, Equatable {
    /// The entries, trimmed and lowercased, without empty ones.
    public var allowlist: [String]

    /// Creates a policy.
    public init(allowlist: [String] = []) {
        self.allowlist = allowlist.map { Capability.normalise($0) }.filter { !$0.isEmpty }
    }

    /// The policy of `EXT_EGRESS_ALLOWLIST` (comma-separated hosts).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> EgressPolicy {
        EgressPolicy(allowlist: (environment["EXT_EGRESS_ALLOWLIST"] ?? "").split(separator: ",").map(String.init))
    }

    /// Whether an address host (or `localhost`) may be reached: loopback, private, link-local
    /// (cloud metadata at 169.254.169.254), unspecified and unique-local addresses only when an
    /// entry names them exactly. Alga has no such rule; without it an empty allowlist lets a guest
    /// reach the runner itself and the cloud's metadata service. (A DNS name that resolves to such
    /// an address is not caught here.)
    public func allowsAddress(of host: String) -> Bool {
        let host = Capability.normalise(host)
        guard Self.isInternal(host) else { return true }
        return allowlist.contains(host)
    }

    /// Whether `host` is `localhost` or an address of the host's own or a private network.
    static func isInternal(_ rawHost: String) -> Bool {
        var host = rawHost
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host.removeLast() }
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        if host.contains(":") {
            // Parsed, not compared as text: `0:0:0:0:0:0:0:1`, `[::ffff:7f00:1]` and friends.
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { return true }
            let bytes = withUnsafeBytes(of: &address) { Array($0) }
            let v4 = Array(bytes[12..<16])
            if bytes[0..<15].allSatisfy({ $0 == 0 }) { return true }  // :: and ::1
            if bytes[0] == 0xFE && (bytes[1] & 0xC0) == 0x80 { return true }  // fe80::/10
            if bytes[0] == 0xFE && (bytes[1] & 0xC0) == 0xC0 { return true }  // fec0::/10
            if (bytes[0] & 0xFE) == 0xFC { return true }  // fc00::/7
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && ((bytes[10] == 0xFF && bytes[11] == 0xFF) || (bytes[10] == 0 && bytes[11] == 0)) {
                return isInternal(v4.map(String.init).joined(separator: "."))  // ::ffff:a.b.c.d, ::a.b.c.d
            }
            if bytes[0..<12].elementsEqual([0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0]) {
                return isInternal(v4.map(String.init).joined(separator: "."))  // 64:ff9b::/96 (NAT64)
            }
            return false
        }
        // A top-level label never starts with a digit: a host whose last label does is an
        // address, and only the canonical dotted quad is judged; other forms a resolver would
        // take (`127.1`, `0x7f.1`, `2130706433`, `010.0.0.1`) count as internal.
        guard let last = host.split(separator: ".").last, let first = last.utf8.first, first >= 0x30 && first <= 0x39 else { return false }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4,
            parts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 3 && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && ($0 == "0" || $0.first != "0") })
        else { return true }
        let octets = parts.map { Int($0) ?? 256 }
        guard octets.allSatisfy({ $0 <= 255 }) else { return true }
        switch (octets[0], octets[1]) {
        case (0, _), (10, _), (127, _), (169, 254), (192, 168): return true
        case (172, 16...31), (100, 64...127): return true
        default: return false
        }
    }

    /// Whether `host` (as a URL gives it) may be reached.
    public func allows(host: String) -> Bool {
        guard !allowlist.isEmpty else { return true }
        let host = Capability.normalise(host)
        let isAddress = host.contains(":") || host.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }
        return allowlist.contains { host == $0 || (!isAddress && host.hasSuffix("." + $0)) }
    }
}

/// An outbound request of a guest, checked: the URL is absolute `http` or `https` with a plain
/// host and no user info, rebuilt from its parts so that what is fetched is what was checked.
public struct OutboundRequest: Sendable, Equatable {
    /// The URL to fetch.
    public var url: String
    /// Its host, lowercased (what the allowlist judged).
    public var host: String
    /// The method.
    public var method: String
    /// Headers.
    public var headers: [(String, String)]
    /// The body.
    public var body: [UInt8]?

    /// Creates a request.
    public init(url: String, host: String, method: String, headers: [(String, String)], body: [UInt8]?) {
        self.url = url
        self.host = host
        self.method = method
        self.headers = headers
        self.body = body
    }

    /// Compares every field.
    public static func == (lhs: OutboundRequest, rhs: OutboundRequest) -> Bool {
        lhs.url == rhs.url && lhs.host == rhs.host && lhs.method == rhs.method && lhs.body == rhs.body
            && lhs.headers.elementsEqual(rhs.headers) { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    /// Checks a URL as a guest wrote it; nil when it is not one the runner fetches.
    public static func checkedURL(_ text: String) -> (url: String, host: String)? {
        guard text.utf8.count <= 8192, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            components.user == nil, components.password == nil, let host = components.percentEncodedHost?.lowercased(), !host.isEmpty
        else { return nil }
        let hostBytes = Array(host.utf8)
        let bracketed = hostBytes.first == UInt8(ascii: "[") && hostBytes.last == UInt8(ascii: "]")
        let allowed: (UInt8) -> Bool = { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                || (bracketed && (byte == UInt8(ascii: ":") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")))
        }
        guard hostBytes.allSatisfy(allowed) else { return nil }
        var rebuilt = scheme + "://" + host
        if let port = components.port {
            guard (1...65535).contains(port) else { return nil }
            rebuilt += ":\(port)"
        }
        let path = components.percentEncodedPath
        rebuilt += path.isEmpty ? "/" : path
        if let query = components.percentEncodedQuery { rebuilt += "?" + query }
        let judged = bracketed ? String(host.dropFirst().dropLast()) : host
        return (rebuilt, judged)
    }
}

/// The answer to an outbound request.
public struct OutboundResponse: Sendable, Equatable {
    /// The HTTP status.
    public var status: Int
    /// Headers (the last of repeated names wins, names lowercased).
    public var headers: [String: String]
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why an outbound request did not get an answer.
public struct OutboundFailure: ExtBundlesError, Equatable {
    /// What kind of failure.
    public enum Kind: String, Sendable {
        /// The connection failed, was refused or reset, or the server did not speak HTTP.
        case transport = "FETCH_TRANSPORT"
        /// No answer in time.
        case timeout = "FETCH_TIMEOUT"
        /// The answer's body was larger than the cap.
        case tooLarge = "FETCH_TOO_LARGE"
    }

    /// The kind.
    public var kind: Kind
    /// The underlying error or the cap, for logs.
    public var detail: String

    /// Creates a failure.
    public init(_ kind: Kind, detail: String = "") {
        self.kind = kind
        self.detail = detail
    }

    /// `FETCH_TRANSPORT`, `FETCH_TIMEOUT` or `FETCH_TOO_LARGE`.
    public var code: ErrorCode { ErrorCode(rawValue: kind.rawValue) }
    /// A short description.
    public var description: String {
        switch kind {
        case .transport: "the outbound request failed"
        case .timeout: "the outbound request timed out"
        case .tooLarge: "the outbound answer is larger than the cap"
        }
    }
    /// Every field.
    public var debugDescription: String { "OutboundFailure(code: \(kind.rawValue), detail: \(detail))" }
}

/// What the runner uses to make a guest's outbound HTTP requests (a seam: hosts' tests inject a
/// fake).
///
/// Contract: redirects are never followed (a 3xx is an answer); the call returns within
/// `timeout`; a body past `maxResponseBytes` is `tooLarge` and is not read further.
public protocol OutboundHTTPClient: Sendable {
    /// Performs the request.
    func fetch(_ request: OutboundRequest, timeout: Duration, maxResponseBytes: Int) async throws(OutboundFailure) -> OutboundResponse
}

/// ``OutboundHTTPClient`` on AsyncHTTPClient, with redirects off.
public final class AsyncHTTPOutboundClient: OutboundHTTPClient {
    private let client: HTTPClient
    private let owned: Bool

    /// One client for the whole process, never shut down (as `HTTPClient.shared`, but with
    /// redirects off).
    public static let shared = AsyncHTTPOutboundClient()

    /// A client of its own (shut down with ``shutdown()`` before it goes).
    public init() {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        // A refused connection is an answer for the guest at once, not retried until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        owned = true
    }

    /// Shuts the client down.
    public func shutdown() async throws {
        if owned { try await client.shutdown() }
    }

    /// Performs the request.
    public func fetch(_ request: OutboundRequest, timeout: Duration, maxResponseBytes: Int) async throws(OutboundFailure) -> OutboundResponse {
        var outbound = HTTPClientRequest(url: request.url)
        outbound.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outbound.headers.add(name: name, value: value) }
        if let body = request.body { outbound.body = .bytes(ByteBuffer(bytes: body)) }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let amount = TimeAmount.nanoseconds(Int64(max(0, seconds) * 1e9))
        do {
            let response = try await client.execute(outbound, timeout: amount)
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxResponseBytes {
                throw OutboundFailure(.tooLarge, detail: "content-length \(length), cap \(maxResponseBytes)")
            }
            var body: [UInt8] = []
            for try await chunk in response.body {
                guard body.count + chunk.readableBytes <= maxResponseBytes else {
                    throw OutboundFailure(.tooLarge, detail: "cap \(maxResponseBytes)")
                }
                body.append(contentsOf: chunk.readableBytesView)
            }
            var headers: [String: String] = [:]
            for (name, value) in response.headers { headers[name.lowercased()] = value }
            return OutboundResponse(status: Int(response.status.code), headers: headers, body: body)
        } catch let failure as OutboundFailure {
            throw failure
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw OutboundFailure(.timeout, detail: String(describing: error))
        } catch {
            throw OutboundFailure(.transport, detail: String(describing: error))
        }
    }
}
