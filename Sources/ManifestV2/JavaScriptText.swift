/// Text rules as JavaScript applies them, for the places where we must reach the same verdict as
/// Alga's TypeScript (`trim()`, `/\s/`).
///
/// JavaScript's whitespace is its `WhiteSpace` and `LineTerminator` productions: tab, line feed,
/// vertical tab, form feed, carriage return, space, U+00A0, U+FEFF, the other `Zs` characters
/// (U+1680, U+2000-U+200A, U+202F, U+205F, U+3000) and U+2028/U+2029. That is not Unicode's
/// `White_Space` (which Swift's `isWhitespace` and Foundation's `.whitespacesAndNewlines` follow):
/// U+FEFF is JavaScript whitespace and U+0085 is not, so a name padded with either would be
/// judged differently by the two.
public enum JavaScriptText {
    /// Whether JavaScript's `\s` (and `trim()`) treats this scalar as whitespace.
    @inlinable
    public static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x80 { return value == 0x20 || (value >= 0x09 && value <= 0x0D) }
        switch value {
        case 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF: return true
        default: return false
        }
    }

    /// `text.trim()`: JavaScript whitespace removed from both ends.
    public static func trim(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isWhitespace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isWhitespace($0) })!
        if first == scalars.startIndex && last == scalars.index(before: scalars.endIndex) { return text }
        return String(scalars[first...last])
    }

    /// `/\s/.test(text)`: whether any scalar is JavaScript whitespace.
    public static func containsWhitespace(_ text: String) -> Bool {
        // Every JavaScript whitespace scalar is ASCII or starts with byte 0xC2, 0xE1, 0xE2, 0xE3
        // or 0xEF in UTF-8: most strings are decided on their bytes alone.
        var mayHaveWide = false
        for byte in text.utf8 {
            if byte < 0x80 {
                if byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) { return true }
            } else if byte == 0xC2 || byte == 0xE1 || byte == 0xE2 || byte == 0xE3 || byte == 0xEF {
                mayHaveWide = true
            }
        }
        return mayHaveWide && text.unicodeScalars.contains(where: isWhitespace)
    }

    /// `Number(text)`: JavaScript's string-to-number conversion. Whitespace is trimmed; empty
    /// text is 0; `0x`/`0o`/`0b` integers (unsigned), `Infinity` with an optional sign, and
    /// decimal literals (`1`, `-1.5`, `.5`, `5.`, `1e3`) are numbers; anything else (`1_000`,
    /// `0x1p3`, `inf`, `nan`, `12px`) is NaN.
    public static func number(_ text: String) -> Double {
        let bytes = Array(trim(text).utf8)
        if bytes.isEmpty { return 0 }
        if bytes.count > 2, bytes[0] == UInt8(ascii: "0") {
            let radix: Double? = switch bytes[1] {
            case UInt8(ascii: "x"), UInt8(ascii: "X"): 16
            case UInt8(ascii: "o"), UInt8(ascii: "O"): 8
            case UInt8(ascii: "b"), UInt8(ascii: "B"): 2
            default: nil
            }
            if let radix {
                var value = 0.0
                for byte in bytes[2...] {
                    guard let digit = hexDigit(byte), Double(digit) < radix else { return .nan }
                    value = value * radix + Double(digit)
                }
                return value
            }
        }
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-") {
            negative = bytes[0] == UInt8(ascii: "-")
            index = 1
        }
        if bytes[index...].elementsEqual("Infinity".utf8) { return negative ? -.infinity : .infinity }
        // StrUnsignedDecimalLiteral: digits [. digits?] | . digits, then an optional exponent.
        func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            return index - start
        }
        var mantissa = digits()
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            mantissa += digits()
        }
        guard mantissa > 0 else { return .nan }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { return .nan }
        }
        guard index == bytes.count else { return .nan }
        // The grammar is checked; strtod reads what is left the same way.
        return Double(String(decoding: bytes, as: UTF8.self)) ?? .nan
    }

    private static func hexDigit(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
