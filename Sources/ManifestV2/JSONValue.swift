/// A JSON value that keeps object keys in document order.
public enum JSONValue: Sendable, Equatable {
    /// An object, its members in document order.
    case object([(key: String, value: JSONValue)])
    /// An array.
    case array([JSONValue])
    /// A string.
    case string(String)
    /// A number, as written.
    case number(String)
    /// `true` or `false`.
    case bool(Bool)
    /// `null`.
    case null

    /// Compares values, objects member by member in order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.array(let a), .array(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.null, .null): true
        default: false
        }
    }

    /// The member `key` of an object (the last, if repeated, as JavaScript's `JSON.parse` keeps),
    /// or nil. Keys are compared by their exact scalars (their UTF-8 bytes), as JavaScript
    /// compares them.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { JSONValue.sameBytes($0.key, key) }?.value
    }

    /// Whether two strings have the same UTF-8 bytes (not canonical equivalence, which `==`
    /// tests), compared in place.
    @inline(__always)
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        var a = a
        var b = b
        return a.withUTF8 { left in b.withUTF8 { right in left.elementsEqual(right) } }
    }

    /// The string, if this is one.
    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}

/// Why bytes are not a JSON document we accept.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// The byte offset.
    public var offset: Int

    /// `message at position N`.
    public var description: String { "\(message) at position \(offset)" }
}

/// A strict RFC 8259 parser with a nesting limit (so no input can exhaust the stack).
///
/// A key repeated in one object is read as JavaScript's `JSON.parse` reads it (which Alga and
/// every browser use): the member keeps the position of its first occurrence and the value of
/// its last. The repeated keys are reported by ``parseDocument(_:maxDepth:)``.
public struct JSONReader {
    private let bytes: [UInt8]
    private let maxDepth: Int
    private var index = 0
    /// Where the reader is (object keys and array indices), for naming repeated keys.
    private var path: [PathComponent] = []
    private var duplicates: [String] = []

    private enum PathComponent {
        case key(String)
        case index(Int)
    }

    /// `api.endpoints[0].path`: the path of the value being read.
    private var pathText: String {
        var text = ""
        for component in path {
            switch component {
            case .key(let key): text += text.isEmpty ? key : "." + key
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }

    /// The most repeated keys ``parseDocument(_:maxDepth:)`` lists (the first ones).
    public static let maxReportedDuplicates = 100

    /// A path text of at most 512 UTF-8 bytes (cut at a character, marked with `…`).
    static func clipped(_ text: String) -> String {
        guard text.utf8.count > 512 else { return text }
        var out = ""
        for character in text {
            guard out.utf8.count + character.utf8.count <= 509 else { break }
            out.append(character)
        }
        return out + "…"
    }

    /// Parses one document.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        try parseDocument(bytes, maxDepth: maxDepth).value
    }

    /// Parses one document and lists the paths of repeated keys (`ui.entry`, `api.endpoints[0].path`):
    /// the first ``maxReportedDuplicates``, each path cut to 512 bytes.
    public static func parseDocument(_ bytes: [UInt8], maxDepth: Int = 64) throws(JSONParseError) -> (value: JSONValue, duplicateKeys: [String]) {
        var reader = JSONReader(bytes: bytes, maxDepth: maxDepth)
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.index == bytes.count else { throw reader.failure("Unexpected non-whitespace character after JSON") }
        return (value, reader.duplicates)
    }

    private init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private func failure(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: index) }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0a, 0x0d: index += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw failure("Unexpected end of JSON input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw failure("Unexpected token in JSON")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
            bytes[index..<(index + count)].elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: count))
        else { throw failure("Unexpected token in JSON") }
        index += count
    }

    private mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw failure("JSON nests deeper than \(maxDepth) levels") }
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        // Exact bytes, not canonical equivalence: "é" and "e\u{301}" are two keys in JavaScript.
        // Small objects (manifests) are searched in place; large ones through an index.
        var positions: [[UInt8]: Int]?
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw failure("Expected property name or '}' in JSON")
            }
            let key = try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("Expected ':' after property name in JSON") }
            index += 1
            skipWhitespace()
            path.append(.key(key))
            let member = try value(depth: depth)
            if members.count == 32 && positions == nil {
                positions = Dictionary(members.enumerated().map { (Array($0.element.key.utf8), $0.offset) }, uniquingKeysWith: { first, _ in first })
            }
            let position = positions.map { $0[Array(key.utf8)] } ?? members.firstIndex { JSONValue.sameBytes($0.key, key) }
            if let position {
                // Bounded: a document of a megabyte may repeat a key a hundred thousand times
                // under a path of many long keys; the first ones name the problem.
                if duplicates.count < Self.maxReportedDuplicates { duplicates.append(Self.clipped(pathText)) }
                members[position].value = member
            } else {
                positions?[Array(key.utf8)] = members.count
                members.append((key, member))
            }
            path.removeLast()
            guard try separator(closing: UInt8(ascii: "}"), "Expected ',' or '}' after property value in JSON") else { continue }
            return .object(members)
        }
    }

    /// After a member or element: true at the closing bracket, false at a comma (both consumed).
    private mutating func separator(closing: UInt8, _ message: String) throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw failure("Unexpected end of JSON input") }
        if bytes[index] == UInt8(ascii: ",") {
            index += 1
            return false
        }
        guard bytes[index] == closing else { throw failure(message) }
        index += 1
        return true
    }

    private mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw failure("JSON nests deeper than \(maxDepth) levels") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            path.append(.index(elements.count))
            elements.append(try value(depth: depth))
            path.removeLast()
            guard try separator(closing: UInt8(ascii: "]"), "Expected ',' or ']' after array element in JSON") else { continue }
            return .array(elements)
        }
    }

    private mutating func string() throws(JSONParseError) -> String {
        index += 1
        let start = index
        var plain = true
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
            if bytes[index] == UInt8(ascii: "\\") {
                plain = false
                index += 2
            } else {
                guard bytes[index] >= 0x20 else { throw failure("Bad control character in string literal in JSON") }
                index += 1
            }
        }
        guard index < bytes.count else { throw failure("Unterminated string in JSON") }
        let end = index
        index += 1
        guard !plain else {
            let text: String? = bytes.withUnsafeBufferPointer { buffer in
                let run = UnsafeBufferPointer(rebasing: buffer[start..<end])
                // ASCII (most manifests) needs no validation.
                if run.allSatisfy({ $0 < 0x80 }) { return String(decoding: run, as: UTF8.self) }
                return String(validating: run, as: UTF8.self)
            }
            guard let text else { throw failure("Invalid UTF-8 in JSON string") }
            return text
        }
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        func flush() throws(JSONParseError) {
            guard !utf8.isEmpty else { return }
            guard let text = String(validating: utf8, as: UTF8.self) else { throw failure("Invalid UTF-8 in JSON string") }
            scalars.append(contentsOf: text.unicodeScalars)
            utf8.removeAll()
        }
        var position = start
        while position < end {
            let byte = bytes[position]
            guard byte == UInt8(ascii: "\\") else {
                utf8.append(byte)
                position += 1
                continue
            }
            try flush()
            guard position + 1 < end else { throw failure("Bad escaped character in JSON") }
            let escape = bytes[position + 1]
            position += 2
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = try hex4(at: position)
                position += 4
                if (0xD800...0xDBFF).contains(code), position + 6 <= end, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                {
                    let low = try hex4(at: position + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        position += 6
                    }
                }
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default:
                throw failure("Bad escaped character in JSON")
            }
        }
        try flush()
        return String(scalars)
    }

    private func hex4(at position: Int) throws(JSONParseError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw failure("Bad Unicode escape in JSON") }
        var value: UInt32 = 0
        for byte in bytes[position..<(position + 4)] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("Bad Unicode escape in JSON")
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    private mutating func number() throws(JSONParseError) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits() -> Int {
            let from = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - from
        }
        guard index < bytes.count else { throw failure("No number after minus sign in JSON") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            throw failure("No number after minus sign in JSON")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw failure("Unterminated fractional number in JSON") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw failure("Exponent part is missing a number in JSON") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }
}
