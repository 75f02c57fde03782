public import BundleCore

/// A runner-side failure of an execution, as the `error` of an ``ExecuteResponse``
/// (reference 6.5's table).
///
/// `description` is the wire text (`execute_failed: timeout`); ``detail`` keeps what a log needs
/// and is never sent to the caller.
public struct ExecuteFailure: ExtBundlesError, Equatable {
    /// The row of reference 6.5's table.
    public struct Kind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The wire prefix, such as `execute_failed`.
        public let rawValue: String
        /// The `status` of the answer.
        public let status: Int

        /// Creates a kind.
        public init(rawValue: String, status: Int) {
            self.rawValue = rawValue
            self.status = status
        }

        /// Creates a kind from its wire prefix (status 500 unless it is one of the known ones).
        public init(rawValue: String) {
            self = Kind.all.first { $0.rawValue == rawValue } ?? Kind(rawValue: rawValue, status: 500)
        }

        /// The wire prefix.
        public var description: String { rawValue }

        /// 400: `x-alga-tenant` or `x-alga-extension` is missing (the HTTP layer's check).
        public static let missingRoutingHeaders = Kind(rawValue: "missing_routing_headers", status: 400)
        /// 500: the engine could not be set up.
        public static let engineInitFailed = Kind(rawValue: "engine_init_failed", status: 500)
        /// 502: the bundle could not be fetched, verified or unpacked, or has no `dist/main.wasm`.
        public static let bundleFetchFailed = Kind(rawValue: "bundle_fetch_failed", status: 502)
        /// 400: a provider is not in the capability vocabulary.
        public static let unknownCapabilities = Kind(rawValue: "unknown_capabilities", status: 400)
        /// 500: the secret envelope could not be decrypted.
        public static let secretDecryptFailed = Kind(rawValue: "secret_decrypt_failed", status: 500)
        /// 500: the module could not be parsed, linked or instantiated, trapped, ran out of time
        /// or fuel, or answered outside the contract.
        public static let executeFailed = Kind(rawValue: "execute_failed", status: 500)

        /// Every known kind.
        public static let all: [Kind] = [
            .missingRoutingHeaders, .engineInitFailed, .bundleFetchFailed, .unknownCapabilities, .secretDecryptFailed, .executeFailed,
        ]
    }

    /// The row.
    public var kind: Kind
    /// The text after `kind: ` on the wire (`timeout`, `out of fuel`, ...); nil for kinds that
    /// carry none (`missing_routing_headers`, `secret_decrypt_failed`).
    public var message: String?
    /// More for logs (an underlying error's debug description); never sent.
    public var detail: String?

    /// Creates a failure.
    public init(_ kind: Kind, _ message: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.message = message
        self.detail = detail
    }

    /// `EXECUTE_FAILED`, `BUNDLE_FETCH_FAILED`, ...
    public var code: ErrorCode { ErrorCode(rawValue: kind.rawValue.uppercased()) }

    /// The `error` string of the answer: `kind` or `kind: message`.
    public var wireMessage: String {
        guard let message, !message.isEmpty else { return kind.rawValue }
        return "\(kind.rawValue): \(message)"
    }

    /// The wire text.
    public var description: String { wireMessage }

    /// The wire text and the detail.
    public var debugDescription: String {
        var text = "ExecuteFailure(kind: \(kind.rawValue), status: \(kind.status)"
        if let message { text += ", message: \(message)" }
        if let detail { text += ", detail: \(detail)" }
        return text + ")"
    }

    /// `execute_failed: <message>`.
    public static func executeFailed(_ message: String, detail: String? = nil) -> ExecuteFailure {
        ExecuteFailure(.executeFailed, message, detail: detail)
    }

    /// The handler ran past its wall-clock budget.
    public static let timeout = ExecuteFailure(.executeFailed, "timeout")
    /// The handler used up its fuel budget.
    public static let outOfFuel = ExecuteFailure(.executeFailed, "out of fuel")
    /// The module is a component, which the runner cannot run yet.
    public static let componentsUnsupported = ExecuteFailure(.executeFailed, "components are not supported yet")
}
