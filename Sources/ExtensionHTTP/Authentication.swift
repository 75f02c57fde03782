import Crypto
public import Foundation
public import HTTPTypes

/// Who may call the admin routes (bundles, installs) and the runner-facing ones.
///
/// Alga's middleware only checks that an `x-api-key` header exists; here the key must be one of
/// ``adminKeys`` (admin routes) or of ``runnerKeys`` or ``adminKeys`` (runner-facing routes),
/// compared in constant time. ``allowInsecure`` (`EXT_BUNDLES_ALLOW_INSECURE=true`) keeps Alga's
/// behaviour for migrations: any `x-api-key` passes, and the admin routes want `x-alga-admin: true`.
public struct APIKeyPolicy: Sendable {
    /// Admin API keys (`EXT_ADMIN_API_KEYS`, comma-separated, and the lines of
    /// `EXT_ADMIN_API_KEYS_FILE`).
    public var adminKeys: [String]
    /// The keys runners send (`ALGA_AUTH_KEY`).
    public var runnerKeys: [String]
    /// Alga's header-only checks (`EXT_BUNDLES_ALLOW_INSECURE=true`).
    public var allowInsecure: Bool

    /// Creates a policy.
    public init(adminKeys: [String], runnerKeys: [String] = [], allowInsecure: Bool = false) {
        self.adminKeys = adminKeys.filter { !$0.isEmpty }
        self.runnerKeys = runnerKeys.filter { !$0.isEmpty }
        self.allowInsecure = allowInsecure
    }

    /// The policy of the environment: `EXT_ADMIN_API_KEYS`, `EXT_ADMIN_API_KEYS_FILE`,
    /// `ALGA_AUTH_KEY`, `EXT_BUNDLES_ALLOW_INSECURE`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> APIKeyPolicy {
        var admin = (environment["EXT_ADMIN_API_KEYS"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if let path = environment["EXT_ADMIN_API_KEYS_FILE"], !path.isEmpty {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            admin += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("#") }
        }
        let runner = (environment["ALGA_AUTH_KEY"]).map { [$0.trimmingCharacters(in: .whitespaces)] } ?? []
        let insecure = environment["EXT_BUNDLES_ALLOW_INSECURE"]?.lowercased() == "true"
        return APIKeyPolicy(adminKeys: admin, runnerKeys: runner, allowInsecure: insecure)
    }

    /// What a request's credentials allow.
    public enum Verdict: Sendable, Equatable {
        /// An admin, known by the fingerprint of its key (for rate limits and logs).
        case admin(actor: String)
        /// A runner.
        case runner(actor: String)
        /// No `x-api-key`: 401 `Unauthorized: API key missing`.
        case missing
        /// A key that is not known: 401 `Unauthorized: API key invalid`.
        case invalid
        /// A known key without the right (or, insecure, no `x-alga-admin: true`): 403.
        case forbidden
    }

    /// Judges the headers of a request to an admin route.
    public func admin(_ headers: HTTPFields) -> Verdict {
        guard let key = headers[Self.apiKey], !key.isEmpty else { return .missing }
        if allowInsecure {
            guard headers[Self.algaAdmin]?.lowercased() == "true" else { return .forbidden }
            return .admin(actor: Self.fingerprint(key))
        }
        if Self.contains(adminKeys, key) { return .admin(actor: Self.fingerprint(key)) }
        if Self.contains(runnerKeys, key) { return .forbidden }
        return .invalid
    }

    /// Judges the headers of a request to a runner-facing route.
    public func runner(_ headers: HTTPFields) -> Verdict {
        guard let key = headers[Self.apiKey], !key.isEmpty else { return .missing }
        if allowInsecure || Self.contains(runnerKeys, key) { return .runner(actor: Self.fingerprint(key)) }
        if Self.contains(adminKeys, key) { return .admin(actor: Self.fingerprint(key)) }
        return .invalid
    }

    static let apiKey = HTTPField.Name("x-api-key")!
    static let algaAdmin = HTTPField.Name("x-alga-admin")!

    /// Whether `key` is one of `keys`, looking at every byte of every key (SHA-256 digests are
    /// compared, so lengths leak nothing either).
    static func contains(_ keys: [String], _ key: String) -> Bool {
        let digest = Array(SHA256.hash(data: Data(key.utf8)))
        var found: UInt8 = 1
        for candidate in keys {
            let other = Array(SHA256.hash(data: Data(candidate.utf8)))
            var difference: UInt8 = 0
            for index in 0..<digest.count { difference |= digest[index] ^ other[index] }
            found &= difference == 0 ? 0 : 1
        }
        return found == 0
    }

    /// The first 12 hex digits of the key's SHA-256: names an actor without revealing its key.
    static func fingerprint(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
    }
}

/// Alga's per-actor sliding window (reference 4.4): at most ``max`` requests in any ``window``,
/// for each (route, actor); bounded in the actors it remembers.
public actor SlidingWindowRateLimiter {
    /// The window (`EXT_BUNDLES_RATELIMIT_WINDOW_MS`, default 60,000 ms).
    public let window: Duration
    /// Requests allowed per window (`EXT_BUNDLES_RATELIMIT_MAX`, default 30).
    public let max: Int
    /// The most (route, actor) pairs remembered; the least recently seen go first.
    public let capacity: Int
    private var hits: [String: [ContinuousClock.Instant]] = [:]

    /// Creates a limiter.
    public init(window: Duration = .seconds(60), max: Int = 30, capacity: Int = 10_000) {
        self.window = window
        self.max = max
        self.capacity = capacity
    }

    /// The limiter of `EXT_BUNDLES_RATELIMIT_WINDOW_MS` and `EXT_BUNDLES_RATELIMIT_MAX`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> SlidingWindowRateLimiter {
        let window = environment["EXT_BUNDLES_RATELIMIT_WINDOW_MS"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 60_000
        let max = environment["EXT_BUNDLES_RATELIMIT_MAX"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 30
        return SlidingWindowRateLimiter(window: .milliseconds(window), max: max)
    }

    /// Records a request of `actor` on `route`; false when it is over the limit (it is not
    /// counted then).
    public func allow(route: String, actor: String) -> Bool {
        let now = ContinuousClock.now
        let key = route + "\u{0}" + actor
        var recent = (hits[key] ?? []).filter { now - $0 < window }
        guard recent.count < max else {
            hits[key] = recent
            return false
        }
        recent.append(now)
        hits[key] = recent
        if hits.count > capacity {
            // Down to nine tenths in one pass, so a full table is swept once per tenth of its size.
            hits = hits.filter { !$0.value.isEmpty && now - $0.value[$0.value.count - 1] < window }
            if hits.count > capacity - capacity / 10 {
                let keep = hits.sorted { ($0.value.last ?? now) > ($1.value.last ?? now) }.prefix(capacity - capacity / 10)
                hits = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
        }
        return true
    }
}
