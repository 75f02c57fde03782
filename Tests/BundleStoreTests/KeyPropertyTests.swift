import BundleCore
import BundleStore
import CoreFoundation
import Foundation
import Testing
import TestSupport

/// Property: over random text (random bytes decoded as UTF-8, and pieces chosen to hide a `/` in
/// grapheme clusters), every key, prefix and base the store accepts stays inside the store's
/// root, byte for byte.
@Suite struct KeyPropertyTests {
    static func randomText(_ state: inout UInt64) -> String {
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let pieces = ["/", ".", "..", "a", "\u{301}", "\u{200D}", "\u{600}", "é", "e\u{301}", "\\", "\u{1B}", "\u{7F}", "_staging", "sha256", "\u{212A}"]
        var bytes: [UInt8] = []
        for _ in 0..<Int(next() % 10 + 1) {
            if next() % 4 == 0 {
                bytes.append(UInt8(truncatingIfNeeded: next()))  // any byte (invalid UTF-8 decodes to U+FFFD)
            } else {
                bytes += Array(pieces[Int(next() % UInt64(pieces.count))].utf8)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func isContained(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.first != BytePath.slash, !BytePath.containsControl(bytes) else { return false }
        return BytePath.segments(bytes).allSatisfy { !$0.isEmpty && !BytePath.isDotSegment($0) }
    }

    @Test func filesAStoreCouldNotHaveWrittenAreNotListed() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("foreign-names")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try FileSystemObjectStore(root: scratch + "/root")
        try await store.put("sha256/ok/bundle.tar.zst", bytes: [1], condition: .createOnly)
        // Written beside it by someone else: control characters, DEL, a backslash-free escape.
        for name in ["a\nb", "\u{1B}[31mred", "del\u{7F}", "tab\tx"] {
            let path = scratch + "/root/sha256/ok/" + name
            #expect(FileManager.default.createFile(atPath: path, contents: Data([2])))
        }
        let listed = try await store.listAll(prefix: "").map(\.key)
        #expect(listed == ["sha256/ok/bundle.tar.zst"])
        for key in listed { try ObjectKey.validate(key) }
    }

    @Test func acceptedKeysPrefixesAndBasesStayInsideTheRoot() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("key-property")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try FileSystemObjectStore(root: scratch + "/root")
        var state: UInt64 = 10
        var keys = 0
        var written = 0
        for _ in 0..<20_000 {
            let text = Self.randomText(&state)
            if (try? ObjectKey.validate(text)) != nil {
                keys += 1
                #expect(Self.isContained(text), "\(text.debugDescription)")
                if written < 300, (try? await store.put(text, bytes: [1], condition: .unconditional)) != nil { written += 1 }
            }
            if (try? ObjectKey.validatePrefix(text)) != nil {
                // The folder part of an accepted prefix is a valid path inside the root.
                if let parent = BytePath.parent(text) { #expect(Self.isContained(parent), "\(text.debugDescription)") }
                let listed = (try? await store.list(prefix: text, continuation: nil, limit: 50))?.objects ?? []
                #expect(listed.allSatisfy { BytePath.hasPrefix($0.key, text) })
            }
            if let bundles = try? BundleStore(objects: store, configuration: .init(layout: .contentAddressed(base: text))) {
                #expect(Self.isContained(String(decoding: bundles.bundlePrefix.utf8.dropLast(), as: UTF8.self)), "\(text.debugDescription)")
                #expect(bundles.isStagingKey(bundles.stagingPrefix + "x/bundle.tar.zst"))
            }
        }
        #expect(keys > 1_000 && written > 100, "the generator must produce accepted keys too")
        // Everything written is under root/, nothing beside it.
        #expect(TestSupport.rawTree(scratch).allSatisfy { $0.starts(with: Array("root".utf8)) })
    }
}
