import Foundation
import ManifestV2
import Testing
import TestSupport

/// `JavaScriptText` against node: `trim()`, `/\s/.test()` and `Number()` of the same strings must
/// agree, because Alga's verdicts are made with them.
@Suite struct JavaScriptTextTests {
    /// Every JavaScript whitespace scalar, its neighbours, and scalars other definitions count.
    static let interesting: [Unicode.Scalar] = [
        0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x180E, 0x2000, 0x2005, 0x200A,
        0x200B, 0x200C, 0x2028, 0x2029, 0x202F, 0x205F, 0x2060, 0x3000, 0xFEFF, 0xFFFE, 0x00, 0x7F,
    ].compactMap(Unicode.Scalar.init(_:))

    static let fragments: [String] = [
        "0", "1", "9", "12", "-", "+", ".", "e", "E", "x", "X", "0x", "0o", "0b", "0B", "f", "F", "g", "p", "_", "n",
        "Infinity", "inf", "nan", "NaN", "a", "é", "/", "1e400", "999999999999999999999", "0x1p3",
    ]

    static func cases() -> [String] {
        var cases = [
            "", " ", "5", " 5 ", "\u{FEFF}5\u{FEFF}", "\u{85}5", "5\u{85}", "\u{2028}7\u{2029}", "0x10", "0X1f", "0o17", "0b101",
            "-0x10", "+0x10", "0x", "0b2", "1_000", "1e3", "1E-3", ".5", "5.", "-.5", "+.e1", ".", "e5", "-", "+Infinity",
            "-Infinity", "Infinity", "infinity", "0x1p3", "12px", "1,000", "00012", "-0", "1e", "1e+", "1.2.3",
            "209715200", "209715201", "\u{3000}\u{A0}3\u{2009}", "\u{180E}4", "4\u{200B}",
        ]
        var random = SplitMix(state: 20_261_202)
        for _ in 0..<2_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...5, using: &random) {
                if Bool.random(using: &random) {
                    text.unicodeScalars.append(interesting.randomElement(using: &random)!)
                } else {
                    text += fragments.randomElement(using: &random)!
                }
            }
            cases.append(text)
        }
        return cases
    }

    @Test func trimWhitespaceAndNumberAgreeWithNode() throws {
        let cases = Self.cases()
        // Strings travel as hex of their UTF-8, one per line, so no JSON layer can change them.
        let script = """
            const lines = require('fs').readFileSync(0, 'utf8').split('\\n');
            const hex = s => Buffer.from(s, 'utf8').toString('hex');
            process.stdout.write(lines.map(l => {
              const s = Buffer.from(l.slice(1), 'hex').toString('utf8');
              const n = Number(s);
              return [hex(s.trim()), /\\s/.test(s), Number.isNaN(n) ? 'NaN' : Buffer.from(new Float64Array([n]).buffer).toString('hex')].join(' ');
            }).join('\\n'));
            """
        let input = cases.map { "x" + Self.hex(Array($0.utf8)) }.joined(separator: "\n")
        let result = try TestSupport.run(["node", "-e", script], stdin: Data(input.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let answers = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map { $0.split(separator: " ", omittingEmptySubsequences: false).map(String.init) }
        #expect(answers.count == cases.count)
        var disagreements: [String] = []
        for (text, theirs) in zip(cases, answers) {
            let number = JavaScriptText.number(text)
            let bits = number.isNaN ? "NaN" : Self.hex(withUnsafeBytes(of: number.bitPattern.littleEndian) { Array($0) })
            let ours: [String] = [Self.hex(Array(JavaScriptText.trim(text).utf8)), String(JavaScriptText.containsWhitespace(text)), bits]
            if ours != theirs {
                disagreements.append("\(text.unicodeScalars.map { String($0.value, radix: 16) }): ours \(ours), node \(theirs)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(20).joined(separator: "\n"))")
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func theValidatorTrimsAndRefusesWhitespaceAsJavaScriptDoes() {
        // U+FEFF is JavaScript whitespace (trimmed away, refused in a path); U+0085 is not.
        let base = #""version":"1.0.0","runtime":"wasm-js@1""#
        #expect(ManifestValidator.validate(Array(#"{"name":"\uFEFF",\#(base)}"#.utf8)).issues.map(\.path) == ["name"])
        #expect(ManifestValidator.validate(Array(#"{"name":"\u0085",\#(base)}"#.utf8)).issues.isEmpty)
        let endpoint = { (path: String) in
            ManifestValidator.validate(Array(#"{"name":"a",\#(base),"api":{"endpoints":[{"method":"GET","path":"\#(path)","handler":"h"}]}}"#.utf8)).issues.map(\.message)
        }
        #expect(endpoint(#"/a\uFEFFb"#) == ["Endpoint 'path' must not contain spaces."])
        #expect(endpoint(#"/a\u3000b"#) == ["Endpoint 'path' must not contain spaces."])
        #expect(endpoint(#"/a\u0085b"#).isEmpty)
        #expect(endpoint(#"/a\u200Bb"#).isEmpty)
    }
}

/// A seeded generator, so a disagreement is reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
