import BundleCore
import Foundation
import Testing
import TestSupport

@Suite struct ContentHashTests {
    static let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    @Test func parsesBareAndPrefixedSpellings() throws {
        let bare = try ContentHash(parsing: Self.abc)
        let prefixed = try ContentHash(parsing: "sha256:" + Self.abc)
        #expect(bare == prefixed)
        #expect(bare.hex == Self.abc)
        #expect(bare.prefixed == "sha256:" + Self.abc)
        #expect(bare.description == "sha256:" + Self.abc)
        #expect(bare.digestBytes.count == 32)
        #expect(bare.digestBytes.first == 0xba)
    }

    @Test func lowercasesUppercaseInputUnlessRefused() throws {
        let upper = try ContentHash(parsing: Self.abc.uppercased())
        #expect(upper.hex == Self.abc)
        let error = #expect(throws: ContentHashError.self) {
            try ContentHash(parsing: Self.abc.uppercased(), allowUppercase: false)
        }
        #expect(error?.code == .invalidContentHash)
        #expect(error?.reason.contains("position 0") == true)
    }

    @Test(arguments: [
        ("", "expected 64 hex characters, found 0"),
        ("sha256:", "expected 64 hex characters, found 0"),
        (String(repeating: "a", count: 63), "found 63"),
        (String(repeating: "a", count: 65), "found 65"),
        ("sha256:" + String(repeating: "g", count: 64), "invalid character at position 0"),
        (String(repeating: "a", count: 63) + "-", "invalid character at position 63"),
        ("md5:" + String(repeating: "a", count: 64), "unsupported algorithm 'md5'"),
        ("SHA256:" + String(repeating: "a", count: 64), "unsupported algorithm 'SHA256'"),
        (" " + String(repeating: "a", count: 64), "found 65"),
    ])
    func refusesMalformedInput(input: String, message: String) {
        let error = #expect(throws: ContentHashError.self) { try ContentHash(parsing: input) }
        #expect(error?.code == .invalidContentHash)
        #expect(error?.reason.contains(message) == true, "\(error?.reason ?? "") does not contain \(message)")
        #expect(error?.summary.hasPrefix("INVALID_CONTENT_HASH: invalid content hash") == true)
    }

    @Test func equalityComparesEveryByte() throws {
        let base = try ContentHash(parsing: Self.abc)
        var seen: Set<ContentHash> = [base]
        for position in [0, 15, 16, 31, 32, 47, 48, 63] {
            var chars = Array(Self.abc)
            chars[position] = chars[position] == "0" ? "1" : "0"
            let other = try ContentHash(parsing: String(chars))
            #expect(other != base, "difference at \(position) not seen")
            seen.insert(other)
        }
        #expect(seen.count == 9)
    }

    @Test func codableUsesThePrefixedSpelling() throws {
        let hash = try ContentHash(parsing: Self.abc)
        let data = try JSONEncoder().encode([hash])
        #expect(String(decoding: data, as: UTF8.self) == "[\"sha256:\(Self.abc)\"]")
        #expect(try JSONDecoder().decode([ContentHash].self, from: Data("[\"\(Self.abc)\"]".utf8)) == [hash])
        #expect(throws: (any Error).self) { try JSONDecoder().decode([ContentHash].self, from: Data("[\"nope\"]".utf8)) }
    }

    @Test func digestBytesRoundTrip() throws {
        let hash = try ContentHash(parsing: Self.abc)
        #expect(try ContentHash(digestBytes: hash.digestBytes) == hash)
        #expect(throws: ContentHashError.self) { try ContentHash(digestBytes: [UInt8](repeating: 0, count: 31)) }
    }
}

@Suite struct ContentHasherTests {
    @Test func knownVectors() throws {
        #expect(ContentHash.of(Array("abc".utf8)).hex == ContentHashTests.abc)
        #expect(
            ContentHash.of([]).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var hasher = ContentHasher()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { hasher.update(chunk) }
        #expect(hasher.byteCount == 1_000_000)
        #expect(hasher.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func chunkingDoesNotChangeTheHash() {
        let data = TestSupport.randomBytes(100_003, seed: 7)
        let whole = ContentHash.of(data)
        for chunkSize in [1, 63, 64, 65, 4096, 99_999] {
            var hasher = ContentHasher()
            var offset = 0
            while offset < data.count {
                let end = min(offset + chunkSize, data.count)
                hasher.update(Array(data[offset..<end]))
                offset = end
            }
            #expect(hasher.finalize() == whole, "chunk size \(chunkSize)")
        }
    }

    @Test func agreesWithSha256sum() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = TestSupport.randomBytes(3 << 20, seed: 42)
        try TestSupport.write(data, to: "blob", in: dir)
        let expected = try TestSupport.sh("sha256sum blob | cut -d' ' -f1", cwd: dir)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(ContentHash.of(data).hex == expected)
    }
}
