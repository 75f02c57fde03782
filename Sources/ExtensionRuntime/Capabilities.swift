/// A host capability a guest may be granted (reference 3.5), such as `cap:http.fetch`.
public struct Capability: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The id, `cap:...`, lower case.
    public let rawValue: String

    /// Creates a capability from an id as written (it is not normalised or checked).
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The id.
    public var description: String { rawValue }

    /// Orders by id.
    public static func < (lhs: Capability, rhs: Capability) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `cap:context.read`.
    public static let contextRead = Capability(rawValue: "cap:context.read")
    /// `cap:secrets.get`.
    public static let secretsGet = Capability(rawValue: "cap:secrets.get")
    /// `cap:http.fetch`: `alga.http.fetch`.
    public static let httpFetch = Capability(rawValue: "cap:http.fetch")
    /// `cap:storage.kv`.
    public static let storageKV = Capability(rawValue: "cap:storage.kv")
    /// `cap:log.emit`: `alga.log_info`, `alga.log_error`.
    public static let logEmit = Capability(rawValue: "cap:log.emit")
    /// `cap:ui.proxy`.
    public static let uiProxy = Capability(rawValue: "cap:ui.proxy")
    /// `cap:user.read`.
    public static let userRead = Capability(rawValue: "cap:user.read")
    /// `cap:scheduler.manage`.
    public static let schedulerManage = Capability(rawValue: "cap:scheduler.manage")
    /// `cap:invoice.manual.create`.
    public static let invoiceManualCreate = Capability(rawValue: "cap:invoice.manual.create")
    /// `cap:client.read`.
    public static let clientRead = Capability(rawValue: "cap:client.read")
    /// `cap:service.read`.
    public static let serviceRead = Capability(rawValue: "cap:service.read")

    /// Every id Alga's runner knows.
    public static let known: Set<Capability> = [
        .contextRead, .secretsGet, .httpFetch, .storageKV, .logEmit, .uiProxy, .userRead, .schedulerManage, .invoiceManualCreate,
        .clientRead, .serviceRead,
    ]

    /// Always granted: `cap:context.read`, `cap:log.emit`, `cap:user.read`.
    public static let defaults: Set<Capability> = [.contextRead, .logEmit, .userRead]

    /// The capabilities of a request: the providers, trimmed and ASCII-lowercased, joined with
    /// ``defaults``. Throws `unknown_capabilities: <comma list>` (sorted, as written after
    /// normalisation) when any is not ``known``.
    public static func granted(by providers: [String]?) throws(ExecuteFailure) -> Set<Capability> {
        var granted = defaults
        var unknown: [String] = []
        for provider in providers ?? [] {
            let id = normalise(provider)
            let capability = Capability(rawValue: id)
            if known.contains(capability) {
                granted.insert(capability)
            } else if !unknown.contains(id) {
                unknown.append(id)
            }
        }
        guard unknown.isEmpty else {
            throw ExecuteFailure(.unknownCapabilities, unknown.sorted().joined(separator: ","))
        }
        return granted
    }

    /// Trim (spaces, tabs, line breaks) and ASCII lowercase, as Alga does.
    public static func normalise(_ text: String) -> String {
        let trimmed = text.utf8.drop { isSpace($0) }.reversed().drop { isSpace($0) }.reversed()
        return String(decoding: trimmed.map { ($0 >= 65 && $0 <= 90) ? $0 + 32 : $0 }, as: UTF8.self)
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 32 || (byte >= 9 && byte <= 13) }
}
