public import BundleCore

/// An error of a ``RegistryBackend``.
public struct RegistryError: ExtBundlesError, Equatable {
    /// The stable code.
    public var code: ErrorCode
    /// What went wrong, for people.
    public var reason: String
    /// The uniqueness rule or table involved (`version`, `extension`, `install`, ...).
    public var constraint: String?
    /// The key of the row involved (`<extension id>@<version>`, `<tenant>/<extension id>`, ...).
    public var key: String?
    /// The backend's own message (SQLite's), for logs only.
    public var underlying: String?

    /// Creates an error.
    public init(code: ErrorCode, reason: String, constraint: String? = nil, key: String? = nil, underlying: String? = nil) {
        self.code = code
        self.reason = reason
        self.constraint = constraint
        self.key = key
        self.underlying = underlying
    }

    /// `REGISTRY_CONFLICT`: a row with the same unique key exists.
    public static func conflict(_ constraint: String, key: String) -> RegistryError {
        RegistryError(code: .registryConflict, reason: "a \(constraint) with this key already exists", constraint: constraint, key: key)
    }

    /// `REGISTRY_NOT_FOUND`: a row the operation needs does not exist.
    public static func notFound(_ what: String, key: String) -> RegistryError {
        RegistryError(code: .registryNotFound, reason: "no such \(what)", constraint: what, key: key)
    }

    /// A short description.
    public var description: String {
        key.map { "\(reason) (\($0))" } ?? reason
    }

    /// Every field.
    public var debugDescription: String {
        var fields = ["code: \(code)", "reason: \(reason)"]
        if let constraint { fields.append("constraint: \(constraint)") }
        if let key { fields.append("key: \(key)") }
        if let underlying { fields.append("underlying: \(underlying)") }
        return "RegistryError(\(fields.joined(separator: ", ")))"
    }
}

extension ErrorCode {
    /// A unique rule would be broken: the version, extension or install exists.
    public static let registryConflict: ErrorCode = "REGISTRY_CONFLICT"
    /// A row the operation refers to does not exist.
    public static let registryNotFound: ErrorCode = "REGISTRY_NOT_FOUND"
    /// The backend failed (I/O, a locked database past the busy timeout, a corrupt file).
    public static let registryBackend: ErrorCode = "REGISTRY_BACKEND_ERROR"
}
