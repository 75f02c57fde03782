import Foundation

/// Path rules on UTF-8 bytes, the way the file system and object stores see names.
///
/// Swift's `String` operations work on grapheme clusters and compare with canonical
/// equivalence: `"/\u{301}x".hasPrefix("/")` is false, `"../\u{301}x".split(separator: "/")` has
/// one segment, and `"é" == "e\u{301}"`. A file system splits on the byte 0x2F and compares
/// bytes. Every rule about paths, keys and prefixes in ExtBundles goes through these helpers, so
/// what a rule sees is what the file system (or S3) will see.
public enum BytePath {
    /// The byte `/`.
    public static let slash = UInt8(ascii: "/")
    /// The byte `.`.
    public static let dot = UInt8(ascii: ".")

    /// The segments between `/` bytes, empty ones included (`"a//b"` has three).
    public static func segments<Bytes: Collection>(_ bytes: Bytes) -> [Bytes.SubSequence] where Bytes.Element == UInt8 {
        bytes.split(separator: slash, omittingEmptySubsequences: false)
    }

    /// The segments of a string's UTF-8 bytes.
    public static func segments(_ text: String) -> [Substring.UTF8View.SubSequence] {
        segments(Substring(text).utf8)
    }

    /// Whether a segment is `.` or `..`.
    public static func isDotSegment<Bytes: Collection>(_ segment: Bytes) -> Bool where Bytes.Element == UInt8 {
        switch segment.count {
        case 1: return segment.first == dot
        case 2: return segment.allSatisfy { $0 == dot }
        default: return false
        }
    }

    /// Whether a segment is exactly `..`.
    public static func isParentSegment<Bytes: Collection>(_ segment: Bytes) -> Bool where Bytes.Element == UInt8 {
        segment.count == 2 && segment.allSatisfy { $0 == dot }
    }

    /// Whether any byte is a C0 control character (0x00-0x1F) or DEL (0x7F).
    public static func containsControl<Bytes: Sequence>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        bytes.contains { $0 < 0x20 || $0 == 0x7f }
    }

    /// Whether `text` starts with `prefix`, byte for byte.
    public static func hasPrefix(_ text: some StringProtocol, _ prefix: some StringProtocol) -> Bool {
        text.utf8.starts(with: prefix.utf8)
    }

    /// Whether `text` ends with `suffix`, byte for byte.
    public static func hasSuffix(_ text: some StringProtocol, _ suffix: some StringProtocol) -> Bool {
        text.utf8.reversed().starts(with: suffix.utf8.reversed())
    }

    /// Whether `needle` occurs in `text`, byte for byte.
    public static func contains(_ text: some StringProtocol, _ needle: some StringProtocol) -> Bool {
        let haystack = Array(text.utf8)
        let pattern = Array(needle.utf8)
        guard !pattern.isEmpty else { return true }
        guard haystack.count >= pattern.count else { return false }
        for start in 0...(haystack.count - pattern.count) where haystack[start] == pattern[0] {
            if haystack[start..<(start + pattern.count)].elementsEqual(pattern) { return true }
        }
        return false
    }

    /// `text` without its first `count` UTF-8 bytes (`count` must fall on a scalar boundary,
    /// as after ``hasPrefix(_:_:)`` with a valid prefix).
    public static func dropPrefix(_ text: String, bytes count: Int) -> String {
        String(decoding: text.utf8.dropFirst(count), as: UTF8.self)
    }

    /// The part before the last `/` byte (without it), or nil when there is none.
    public static func parent(_ text: String) -> String? {
        guard let slash = text.utf8.lastIndex(of: slash) else { return nil }
        return String(decoding: text.utf8[..<slash], as: UTF8.self)
    }

    /// The part after the last `/` byte (the whole text when there is none).
    public static func lastSegment(_ text: String) -> String {
        guard let slash = text.utf8.lastIndex(of: slash) else { return text }
        return String(decoding: text.utf8[text.utf8.index(after: slash)...], as: UTF8.self)
    }

    /// `text` without trailing `/` bytes (a lone `/` stays).
    public static func trimmingTrailingSlashes(_ text: String) -> String {
        var bytes = Array(text.utf8)[...]
        while bytes.count > 1 && bytes.last == slash { bytes = bytes.dropLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The key of a path in a set or dictionary: its exact bytes (two canonically equivalent
    /// spellings are different names to a file system, so they are different keys here).
    public static func key(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The Unicode NFC form of the bytes of `text` (what macOS file systems compare), used to
    /// find names that would collide there. ASCII text is returned as is.
    public static func nfcKey(_ text: String) -> [UInt8] {
        guard text.utf8.contains(where: { $0 >= 0x80 }) else { return Array(text.utf8) }
        return Array(text.precomposedStringWithCanonicalMapping.utf8)
    }
}

/// Text made safe to print: control characters, DEL, C1 controls and invisible format
/// characters (bidirectional overrides, zero-width marks) are written as `\n`, `\t`, `\u{1B}`...,
/// so a hostile name cannot move the cursor, colour a terminal or hide part of a line.
public enum Printable {
    /// `text` with non-printable scalars escaped.
    /// - Parameters:
    ///   - keepingLayout: leave line feeds and tabs (and backslashes) as they are, for
    ///     multi-line text shown as text (a manifest); everything else is still escaped.
    ///   - escapingBackslashes: write a backslash as `\\` (the default), so an escape can be
    ///     told from the same characters typed; false for text whose parts were escaped already
    ///     (an error's description), which would otherwise be escaped twice.
    public static func escape(_ text: String, keepingLayout: Bool = false, escapingBackslashes: Bool = true) -> String {
        let keepBackslash = keepingLayout || !escapingBackslashes
        guard text.unicodeScalars.contains(where: { needsEscape($0) || (!keepBackslash && $0 == "\\") }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n" where keepingLayout, "\t" where keepingLayout, "\\" where keepBackslash: out.unicodeScalars.append(scalar)
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default:
                if needsEscape(scalar) {
                    out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// JSON text (as an encoder wrote it) made printable while staying valid JSON: DEL, C1
    /// controls, format, separator, private-use and unassigned characters become `\uXXXX`
    /// escapes (surrogate pairs above U+FFFF), which JSON allows only inside strings, where an
    /// encoder puts every such character. Control characters below U+0020 are left alone: the
    /// encoder has escaped those inside strings, and outside them they are the layout.
    public static func escapeJSON(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { $0.value >= 0x7f && needsEscape($0) }) else { return json }
        var out = ""
        out.reserveCapacity(json.utf8.count + 16)
        for scalar in json.unicodeScalars {
            guard scalar.value >= 0x7f, needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            for unit in String(scalar).utf16 {
                let hex = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return out
    }

    /// Raw bytes made printable: valid UTF-8 is escaped as above; every byte of an invalid
    /// sequence is written `\xNN`.
    public static func escape(bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return escape(text) }
        var out = ""
        var index = 0
        while index < bytes.count {
            // The longest valid prefix from here, else one escaped byte.
            var length = min(4, bytes.count - index)
            var decoded: String?
            while length > 0 {
                if let text = String(validating: bytes[index..<(index + length)], as: UTF8.self), text.unicodeScalars.count == 1 {
                    decoded = text
                    break
                }
                length -= 1
            }
            if let decoded {
                out += escape(decoded)
                index += length
            } else {
                out += "\\x" + (bytes[index] < 16 ? "0" : "") + String(bytes[index], radix: 16, uppercase: true)
                index += 1
            }
        }
        return out
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x80 { return value < 0x20 || value == 0x7f }  // ASCII: no table lookup
        if (0x80...0x9f).contains(value) { return true }
        switch scalar.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }
}

/// A file could not be read or written.
public struct FileError: ExtBundlesError, Equatable {
    /// The operation that failed (`open`, `read`, ...).
    public var operation: String
    /// The path.
    public var path: String
    /// The `errno` of the failed call.
    public var errno: Int32

    /// Creates an error.
    public init(_ operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    /// Always `FILE_IO`.
    public var code: ErrorCode { .fileIO }

    /// The operation, the system's reason and the path.
    public var description: String {
        "\(operation) failed: \(String(cString: strerror(errno))) (file '\(Printable.escape(path))')"
    }

    /// Every field.
    public var debugDescription: String { "FileError(code: FILE_IO, operation: \(operation), path: \"\(path)\", errno: \(errno))" }
}

extension ErrorCode {
    /// A local file could not be opened, read or written.
    public static let fileIO: ErrorCode = "FILE_IO"
}
