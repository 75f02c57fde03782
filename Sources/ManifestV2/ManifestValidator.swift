/// One problem with a manifest, in Alga's `{path, message}` shape.
public struct ManifestIssue: Sendable, Equatable, Codable, CustomStringConvertible {
    /// JSONPath-like location: `$`, `name`, `api.endpoints[0].method`, `precompiled.<key>`.
    public var path: String
    /// The message, word for word as Alga's finalize validator says it.
    public var message: String

    /// Creates an issue.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `path: message`.
    public var description: String { "\(path): \(message)" }
}

/// A manifest that passed validation, normalised as finalize stores it (reference 3.3).
public struct Manifest: Sendable, Equatable {
    /// An API endpoint: method upper-cased, path sanitised with a leading `/`, handler sanitised.
    public struct Endpoint: Sendable, Equatable, Codable {
        /// `GET`, `POST`, ...
        public var method: String
        /// `/api/status`.
        public var path: String
        /// `dist/main`.
        public var handler: String

        /// Creates an endpoint.
        public init(method: String, path: String, handler: String) {
            self.method = method
            self.path = path
            self.handler = handler
        }
    }

    /// The iframe UI: the sanitised entry and the menu hooks that have labels.
    public struct UI: Sendable, Equatable, Codable {
        /// Always `iframe`.
        public var type: String
        /// `ui/index.html`.
        public var entry: String
        /// The trimmed `appMenu` label, if any.
        public var appMenuLabel: String?
        /// The trimmed `clientPortalMenu` label, if any.
        public var clientPortalMenuLabel: String?

        /// Creates a UI description.
        public init(type: String, entry: String, appMenuLabel: String? = nil, clientPortalMenuLabel: String? = nil) {
            self.type = type
            self.entry = entry
            self.appMenuLabel = appMenuLabel
            self.clientPortalMenuLabel = clientPortalMenuLabel
        }
    }

    /// The name, trimmed.
    public var name: String
    /// The publisher, trimmed, if given.
    public var publisher: String?
    /// The version as written (trimmed); may be a wildcard `X.Y.*`.
    public var version: String
    /// The runtime, trimmed.
    public var runtime: String
    /// The capabilities as written (validated non-empty strings).
    public var capabilities: [String]
    /// The UI, when the manifest has an iframe UI.
    public var ui: UI?
    /// The API endpoints (empty when none).
    public var endpoints: [Endpoint]
    /// Asset patterns.
    public var assets: [String]
    /// Precompiled targets: target triple to path.
    public var precompiled: [String: String]
    /// The parsed document.
    public var json: JSONValue

    /// Whether the version is a wildcard `X.Y.*` (resolved at publish time).
    public var isWildcardVersion: Bool { ManifestValidator.isWildcard(version) }
}

/// The result of validating a manifest.
public struct ManifestValidation: Sendable, Equatable {
    /// Every issue found (empty when valid).
    public var issues: [ManifestIssue]
    /// The normalised manifest, when there are no issues.
    public var manifest: Manifest?

    /// Whether there are no issues.
    public var isValid: Bool { issues.isEmpty }
}

/// Alga's finalize manifest validator (reference 3.2 column A and 3.6), reproduced: the same rules,
/// the same `{path, message}` issues with the exact messages, all issues collected. Strict mode adds
/// issues for new extensions (reverse-domain name, strict SemVer, the `cap:` prefix, duplicate
/// endpoints) without changing what the compatible mode says.
public enum ManifestValidator {
    /// Validation settings.
    public struct Options: Sendable, Equatable {
        /// Add the strict-mode issues. Default false.
        public var strict: Bool
        /// The largest manifest accepted, in bytes. Default 1 MiB.
        public var maxBytes: Int
        /// The deepest nesting accepted. Default 64.
        public var maxDepth: Int

        /// Creates options.
        public init(strict: Bool = false, maxBytes: Int = 1 << 20, maxDepth: Int = 64) {
            self.strict = strict
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
        }
    }

    /// The top-level fields finalize accepts.
    public static let knownFields: Set<String> = [
        "name", "publisher", "version", "runtime", "capabilities", "ui", "api", "assets", "precompiled",
    ]

    /// The HTTP methods an endpoint may use.
    public static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]

    /// Validates manifest bytes: size, JSON, then the rules. A key repeated in an object reads as
    /// JavaScript reads it (the last value wins, as in Alga); strict mode also reports each
    /// repeated key as an issue (`<path>: duplicate key`).
    public static func validate(_ bytes: [UInt8], options: Options = .init()) -> ManifestValidation {
        guard bytes.count <= options.maxBytes else {
            return ManifestValidation(
                issues: [ManifestIssue(path: "$", message: "Manifest is larger than \(options.maxBytes) bytes.")], manifest: nil)
        }
        let document: (value: JSONValue, duplicateKeys: [String])
        do {
            document = try JSONReader.parseDocument(bytes, maxDepth: options.maxDepth)
        } catch {
            return ManifestValidation(issues: [ManifestIssue(path: "$", message: error.description)], manifest: nil)
        }
        var result = validate(document.value, options: options)
        if options.strict, !document.duplicateKeys.isEmpty {
            result.issues += document.duplicateKeys.map { ManifestIssue(path: $0, message: "duplicate key") }
            result.manifest = nil
        }
        return result
    }

    /// The `publisher` a manifest declares (trimmed, as validation reads it), or nil when the bytes
    /// are not a JSON object with a non-empty string `publisher`. Used to judge signatures by
    /// publisher before (or without) a full validation.
    public static func declaredPublisher(in bytes: [UInt8]) -> String? {
        guard bytes.count <= Options().maxBytes, let json = try? JSONReader.parse(bytes),
            let publisher = json["publisher"]?.string?.trimmed, !publisher.isEmpty
        else { return nil }
        return publisher
    }

    /// Validates a parsed document.
    public static func validate(_ json: JSONValue, options: Options = .init()) -> ManifestValidation {
        guard case .object(let members) = json else {
            return ManifestValidation(issues: [ManifestIssue(path: "$", message: "Manifest must be a JSON object.")], manifest: nil)
        }
        var issues: [ManifestIssue] = []
        func issue(_ path: String, _ message: String) { issues.append(ManifestIssue(path: path, message: message)) }
        for member in members where !knownFields.contains(member.key) {
            issue(member.key, "Unknown top-level field '\(member.key)'.")
        }

        let name = json["name"]?.string?.trimmed
        if name?.isEmpty ?? true { issue("name", "Field 'name' is required and must be a non-empty string.") }

        let version = json["version"]?.string?.trimmed
        if version == nil {
            issue("version", "Field 'version' is required and must be a string.")
        } else if let version, !isSemverLike(version) && !isWildcard(version) {
            issue("version", "Field 'version' must be a semver-like string (e.g., 1.2.3, 1.2.3-beta, 1.2.3+build).")
        }

        let runtime = json["runtime"]?.string?.trimmed
        if json["runtime"]?.string == nil {
            issue("runtime", "Field 'runtime' is required and must be a string.")
        } else if let runtime, runtime.isEmpty || !(runtime.contains("@") || runtime.contains("-")) {
            issue("runtime", "Field 'runtime' must be a non-empty string containing '@' or '-'.")
        }

        var publisher: String?
        if let value = json["publisher"] {
            publisher = value.string?.trimmed
            if publisher?.isEmpty ?? true { issue("publisher", "Field 'publisher', if provided, must be a non-empty string.") }
        }

        let capabilities = stringArray(json["capabilities"], field: "capabilities", item: "capability", into: &issues)
        let assets = stringArray(json["assets"], field: "assets", item: "asset", into: &issues)

        var precompiled: [String: String] = [:]
        if let value = json["precompiled"] {
            if case .object(let entries) = value {
                for entry in entries {
                    if entry.key.isEmpty {
                        issue("precompiled", "Field 'precompiled' has an empty key which is not allowed.")
                    } else if let path = entry.value.string, !path.trimmed.isEmpty {
                        precompiled[entry.key] = path
                    } else {
                        issue("precompiled.\(entry.key)", "Each precompiled mapping value must be a non-empty string.")
                    }
                }
            } else {
                issue("precompiled", "Field 'precompiled' must be an object mapping non-empty keys to non-empty strings.")
            }
        }

        var ui: Manifest.UI?
        if let value = json["ui"] {
            ui = validateUI(value, into: &issues)
        }

        var endpoints: [Manifest.Endpoint] = []
        if let value = json["api"] {
            endpoints = validateAPI(value, into: &issues)
        }

        if options.strict {
            issues += strictIssues(name: name, version: version, capabilities: capabilities, endpoints: endpoints)
        }
        guard issues.isEmpty, let name, let version, let runtime else { return ManifestValidation(issues: issues, manifest: nil) }
        let manifest = Manifest(
            name: name, publisher: publisher, version: version, runtime: runtime, capabilities: capabilities, ui: ui,
            endpoints: endpoints, assets: assets, precompiled: precompiled, json: json)
        return ManifestValidation(issues: [], manifest: manifest)
    }

    private static func stringArray(_ value: JSONValue?, field: String, item: String, into issues: inout [ManifestIssue]) -> [String] {
        guard let value else { return [] }
        guard case .array(let elements) = value else {
            issues.append(ManifestIssue(path: field, message: "Field '\(field)' must be an array of non-empty strings if provided."))
            return []
        }
        var strings: [String] = []
        for (index, element) in elements.enumerated() {
            if let text = element.string, !text.trimmed.isEmpty {
                strings.append(text)
            } else {
                issues.append(ManifestIssue(path: "\(field)[\(index)]", message: "Each \(item) must be a non-empty string."))
            }
        }
        return strings
    }

    private static func validateUI(_ value: JSONValue, into issues: inout [ManifestIssue]) -> Manifest.UI? {
        guard case .object = value else {
            issues.append(ManifestIssue(path: "ui", message: "Field 'ui' must be an object if provided."))
            return nil
        }
        let start = issues.count
        if value["type"]?.string != "iframe" {
            issues.append(ManifestIssue(path: "ui.type", message: "Field 'ui.type' must be exactly 'iframe' when 'ui' is provided."))
        }
        let entry = value["entry"]?.string
        if entry?.trimmed.isEmpty ?? true {
            issues.append(ManifestIssue(path: "ui.entry", message: "Field 'ui.entry' is required and must be a non-empty string when 'ui' is provided."))
        } else if entry!.containsDotDot {
            issues.append(ManifestIssue(path: "ui.entry", message: "Field 'ui.entry' must not contain '..'."))
        }
        var labels: [String: String] = [:]
        if let hooks = value["hooks"] {
            if case .object = hooks {
                for hook in ["appMenu", "clientPortalMenu"] {
                    guard let menu = hooks[hook] else { continue }
                    guard case .object = menu else {
                        issues.append(ManifestIssue(path: "ui.hooks.\(hook)", message: "Field 'ui.hooks.\(hook)' must be an object if provided."))
                        continue
                    }
                    if let label = menu["label"]?.string?.trimmed, !label.isEmpty {
                        labels[hook] = label
                    } else {
                        issues.append(ManifestIssue(
                            path: "ui.hooks.\(hook).label", message: "Field 'ui.hooks.\(hook).label' is required and must be a non-empty string."))
                    }
                }
            } else {
                issues.append(ManifestIssue(path: "ui.hooks", message: "Field 'ui.hooks' must be an object if provided."))
            }
        }
        guard issues.count == start, let entry else { return nil }
        return Manifest.UI(
            type: "iframe", entry: sanitizePath(entry), appMenuLabel: labels["appMenu"], clientPortalMenuLabel: labels["clientPortalMenu"])
    }

    private static func validateAPI(_ value: JSONValue, into issues: inout [ManifestIssue]) -> [Manifest.Endpoint] {
        guard case .object = value else {
            issues.append(ManifestIssue(path: "api", message: "Field 'api' must be an object if provided."))
            return []
        }
        guard let list = value["endpoints"] else {
            issues.append(ManifestIssue(path: "api.endpoints", message: "Field 'api.endpoints' is required when 'api' is provided."))
            return []
        }
        guard case .array(let elements) = list else {
            issues.append(ManifestIssue(path: "api.endpoints", message: "Field 'api.endpoints' must be an array."))
            return []
        }
        var endpoints: [Manifest.Endpoint] = []
        for (index, element) in elements.enumerated() {
            let base = "api.endpoints[\(index)]"
            guard case .object = element else {
                issues.append(ManifestIssue(path: base, message: "Each endpoint must be an object."))
                continue
            }
            let start = issues.count
            let method = element["method"]?.string?.trimmed ?? ""
            let upperMethod = method.asciiUppercased
            if method.isEmpty {
                issues.append(ManifestIssue(path: base + ".method", message: "Endpoint 'method' is required and must be a non-empty string."))
            } else if !methods.contains(upperMethod) {
                issues.append(ManifestIssue(
                    path: base + ".method",
                    message: "Endpoint 'method' must be one of: GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD (case-insensitive)."))
            }
            let rawPath = element["path"]?.string ?? ""
            let path = normalizedEndpointPath(rawPath)
            if rawPath.trimmed.isEmpty {
                issues.append(ManifestIssue(
                    path: base + ".path", message: "Endpoint 'path' is required and must be a non-empty string starting with '/'."))
            } else {
                if path.containsWhitespace {
                    issues.append(ManifestIssue(path: base + ".path", message: "Endpoint 'path' must not contain spaces."))
                }
                if path.containsDotDot {
                    issues.append(ManifestIssue(path: base + ".path", message: "Endpoint 'path' must not contain '..'."))
                }
            }
            let handler = element["handler"]?.string ?? ""
            if handler.trimmed.isEmpty {
                issues.append(ManifestIssue(path: base + ".handler", message: "Endpoint 'handler' is required and must be a non-empty string."))
            } else if handler.containsDotDot {
                issues.append(ManifestIssue(path: base + ".handler", message: "Endpoint 'handler' must not contain '..'."))
            }
            if issues.count == start {
                endpoints.append(Manifest.Endpoint(method: upperMethod, path: path, handler: sanitizePath(handler)))
            }
        }
        return endpoints
    }

    private static func strictIssues(name: String?, version: String?, capabilities: [String], endpoints: [Manifest.Endpoint]) -> [ManifestIssue] {
        var issues: [ManifestIssue] = []
        if let name, !isReverseDomain(name) {
            issues.append(ManifestIssue(path: "name", message: "name must be a reverse-domain identifier like \"com.example.app\""))
        }
        if let version, !isStrictSemver(version) {
            issues.append(ManifestIssue(path: "version", message: "version must be a valid semantic version (e.g., 1.0.0)"))
        }
        for (index, capability) in capabilities.enumerated() where !capability.trimmed.lowercased().hasPrefix("cap:") {
            issues.append(ManifestIssue(
                path: "capabilities[\(index)]", message: "capability '\(capability)' must use the 'cap:' prefix (it would be dropped at install)"))
        }
        var seen: Set<[UInt8]> = []
        for (index, endpoint) in endpoints.enumerated() {
            let signature = endpoint.method + " " + endpoint.path
            if !seen.insert(Array(signature.utf8)).inserted {
                issues.append(ManifestIssue(path: "api.endpoints[\(index)]", message: "endpoint '\(signature)' is declared more than once"))
            }
        }
        return issues
    }

    // MARK: - Rules and normalisation (reference 3.3, 3.4)

    /// Alga's `sanitizePath`: removes leading `./` repeatedly, then collapses runs of `/`.
    public static func sanitizePath(_ path: String) -> String {
        var value = Substring(path).utf8[...]
        while value.starts(with: "./".utf8) { value = value.dropFirst(2) }
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        for byte in value where !(byte == UInt8(ascii: "/") && out.last == UInt8(ascii: "/")) {
            out.append(byte)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The endpoint path as stored: sanitised, with a leading `/`.
    public static func normalizedEndpointPath(_ path: String) -> String {
        let sanitized = sanitizePath(path)
        return sanitized.utf8.first == UInt8(ascii: "/") ? sanitized : "/" + sanitized
    }

    /// `^\d+\.\d+\.\d+(-[A-Za-z0-9.-]+)?(\+[A-Za-z0-9.-]+)?$`.
    public static func isSemverLike(_ version: String) -> Bool {
        var rest = version.utf8[...]
        for index in 0..<3 {
            let digits = rest.prefix(while: isDigit)
            guard !digits.isEmpty else { return false }
            rest = rest.dropFirst(digits.count)
            if index < 2 {
                guard rest.first == UInt8(ascii: ".") else { return false }
                rest = rest.dropFirst()
            }
        }
        // Then optionally "-" and "+" parts, each one or more of [A-Za-z0-9.-].
        for marker in [UInt8(ascii: "-"), UInt8(ascii: "+")] where rest.first == marker {
            let body = rest.dropFirst().prefix { isDigit($0) || isLetter($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
            guard !body.isEmpty else { return false }
            rest = rest.dropFirst(1 + body.count)
        }
        return rest.isEmpty
    }

    /// `^\d+\.\d+\.\*$`.
    public static func isWildcard(_ version: String) -> Bool {
        var rest = version.utf8[...]
        for _ in 0..<2 {
            let digits = rest.prefix(while: isDigit)
            guard !digits.isEmpty, rest.dropFirst(digits.count).first == UInt8(ascii: ".") else { return false }
            rest = rest.dropFirst(digits.count + 1)
        }
        return rest.elementsEqual("*".utf8)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    /// Strict SemVer 2.0: no leading zeros, dot-separated identifiers.
    public static func isStrictSemver(_ version: String) -> Bool {
        guard isSemverLike(version) else { return false }
        let core = version.prefix { $0 != "-" && $0 != "+" }
        guard core.split(separator: ".").allSatisfy({ $0 == "0" || $0.first != "0" }) else { return false }
        let suffix = version.dropFirst(core.count)
        let prerelease = suffix.hasPrefix("-") ? suffix.dropFirst().prefix { $0 != "+" } : ""
        let build = suffix.firstIndex(of: "+").map { suffix[suffix.index(after: $0)...] } ?? ""
        for part in [prerelease, build] where !part.isEmpty {
            let identifiers = part.split(separator: ".", omittingEmptySubsequences: false)
            guard identifiers.allSatisfy({ !$0.isEmpty }) else { return false }
            if part == prerelease, identifiers.contains(where: { $0.count > 1 && $0.first == "0" && $0.allSatisfy(\.isASCIIDigit) }) { return false }
        }
        return true
    }

    /// Lowercase alphanumeric segments (inner `-` allowed), at least two, separated by dots.
    public static func isReverseDomain(_ name: String) -> Bool {
        let segments = name.split(separator: ".", omittingEmptySubsequences: false)
        return segments.count >= 2 && segments.allSatisfy { segment in
            guard let first = segment.first, let last = segment.last else { return false }
            return segment.allSatisfy { $0.isASCIILowercaseOrDigit || $0 == "-" } && first != "-" && last != "-"
        }
    }

    /// Resolves `X.Y.*` against existing versions (reference 3.4): `X.Y.(max patch + 1)` over the
    /// versions that are exactly `X.Y.N`, or `X.Y.0` when there are none. Other versions come back
    /// unchanged. Patches are compared and incremented as decimal digit strings, so no patch
    /// number, however long, can overflow (`1.2.9223372036854775807` is followed by
    /// `1.2.9223372036854775808`).
    public static func resolveWildcard(_ version: String, existing: [String]) -> String {
        guard isWildcard(version) else { return version }
        let prefix = Array(version.utf8.dropLast())  // "X.Y."
        var maxPatch: [UInt8]?
        for candidate in existing where candidate.utf8.starts(with: prefix) {
            let digits = Array(candidate.utf8.dropFirst(prefix.count))
            guard !digits.isEmpty, digits.allSatisfy(isDigit) else { continue }
            let patch = Array(digits.drop { $0 == UInt8(ascii: "0") })  // 007 is 7, as parseInt reads it
            if let current = maxPatch, !isLarger(patch, than: current) { continue }
            maxPatch = patch
        }
        return String(decoding: prefix, as: UTF8.self) + (maxPatch.map(increment) ?? "0")
    }

    /// Compares digit strings without leading zeros by value.
    private static func isLarger(_ lhs: [UInt8], than rhs: [UInt8]) -> Bool {
        lhs.count != rhs.count ? lhs.count > rhs.count : lhs.lexicographicallyPrecedes(rhs) == false && lhs != rhs
    }

    /// A digit string (without leading zeros, empty for 0) plus one.
    private static func increment(_ digits: [UInt8]) -> String {
        var result = digits
        var index = result.count - 1
        while index >= 0 {
            if result[index] == UInt8(ascii: "9") {
                result[index] = UInt8(ascii: "0")
                index -= 1
            } else {
                result[index] += 1
                return String(decoding: result, as: UTF8.self)
            }
        }
        return "1" + String(decoding: result, as: UTF8.self)
    }
}

/// The `cap:*` vocabulary of the runner's host providers (reference 3.5).
public enum Capabilities {
    /// Every capability the runner knows.
    public static let known: [String] = [
        "cap:context.read", "cap:secrets.get", "cap:http.fetch", "cap:storage.kv", "cap:log.emit", "cap:ui.proxy",
        "cap:user.read", "cap:scheduler.manage", "cap:invoice.manual.create", "cap:client.read", "cap:service.read",
    ]

    /// Always granted.
    public static let defaults: [String] = ["cap:context.read", "cap:log.emit", "cap:user.read"]

    /// What an install is granted: each requested id trimmed and lowercased, unknown ids dropped,
    /// the defaults added; in the order of ``known``.
    public static func normalize(_ requested: [String]) -> [String] {
        let wanted = Set(requested.map { $0.trimmed.lowercased() }).union(defaults)
        return known.filter(wanted.contains)
    }
}

extension String {
    /// JavaScript's `trim()` (``JavaScriptText/trim(_:)``).
    var trimmed: String { JavaScriptText.trim(self) }

    /// Whether `..` occurs anywhere (as Alga's substring test).
    var containsDotDot: Bool {
        var previousDot = false
        for byte in utf8 {
            let dot = byte == UInt8(ascii: ".")
            if dot && previousDot { return true }
            previousDot = dot
        }
        return false
    }

    /// Upper-cased like JavaScript's `toUpperCase` (full Unicode mapping, so `poſt` is `POST`),
    /// with a fast path for ASCII.
    var asciiUppercased: String {
        guard utf8.allSatisfy({ $0 < 0x80 }) else { return uppercased() }
        return String(decoding: utf8.map { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") ? $0 - 32 : $0 }, as: UTF8.self)
    }

    /// `/\s/.test(self)` (``JavaScriptText/containsWhitespace(_:)``).
    var containsWhitespace: Bool { JavaScriptText.containsWhitespace(self) }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
    var isASCIILetterOrDigit: Bool { isASCII && (isLetter || isNumber) }
    var isASCIILowercaseOrDigit: Bool { isASCII && (isLowercase || isNumber) }
}
