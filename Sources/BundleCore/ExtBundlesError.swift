/// A stable, machine-readable error code such as `ARCHIVE_UNSAFE_PATH`.
///
/// Codes are part of the public contract: tools, logs and HTTP layers match on them, so a code
/// never changes meaning once released. Each error domain declares its codes as static members
/// in an extension of this type.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    /// The code as written on the wire, upper snake case.
    public let rawValue: String

    /// Creates a code from its wire spelling.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Creates a code from a string literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// The wire spelling.
    public var description: String { rawValue }
}

/// The error convention of ExtBundles.
///
/// Every error the libraries throw is a struct that conforms to this protocol. It carries:
/// - a stable ``code`` that callers may match on;
/// - context fields (entry path, limit name, expected and actual values...) as stored properties
///   of the concrete type;
/// - a short `description` for people, which must never contain secrets (keys, credentials,
///   signed URLs);
/// - a detailed `debugDescription` with every context field, for logs and bug reports.
public protocol ExtBundlesError: Error, Sendable, CustomStringConvertible,
    CustomDebugStringConvertible
{
    /// The stable code of this error.
    var code: ErrorCode { get }
}

extension ExtBundlesError {
    /// `CODE: description`, the single line the command-line tools print.
    public var summary: String { "\(code.rawValue): \(description)" }
}
