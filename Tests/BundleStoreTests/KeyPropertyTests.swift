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

    /// A symlink planted in the store (as a folder or as an object) never leads a read, a
    /// listing, a copy or a delete outside the root.
    @Test func symlinksInTheStoreLeadNowhere() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("store-symlinks")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try FileSystemObjectStore(root: scratch + "/root")
        try TestSupport.sh(
            """
            mkdir -p outside/sub root/sha256/real && echo secret > outside/sub/passwd && echo secret > outside/file
            ln -s ../../outside root/sha256/evil && ln -s ../../../outside/file root/sha256/real/link.bin
            """, cwd: scratch)
        try await store.put("sha256/real/ok.bin", bytes: [1], condition: .createOnly)
        for prefix in ["", "sha256/", "sha256/evil/", "sha256/evil/sub/", "sha256/evil", "sha256/real/"] {
            let listed = try await store.listAll(prefix: prefix).map(\.key)
            #expect(listed.allSatisfy { $0 == "sha256/real/ok.bin" }, "\(prefix): \(listed)")
        }
        for key in ["sha256/evil/sub/passwd", "sha256/evil/file", "sha256/real/link.bin"] {
            #expect(try await store.head(key) == nil, "\(key)")
            let error = await #expect(throws: StoreError.self) { _ = try await store.get(key) }
            #expect(error?.code == .storeNotFound, "\(key)")
            let copied = await #expect(throws: StoreError.self) {
                try await store.copy(from: key, to: "sha256/stolen/\(BytePath.lastSegment(key))", condition: .createOnly, sourceETag: nil)
            }
            #expect(copied?.code == .storeNotFound, "\(key)")
            try await store.delete(key)
            if key.hasSuffix("link.bin") {
                // The link is a name inside the root: a write replaces the link, not its target.
                try await store.put(key, bytes: [9], condition: .unconditional)
                #expect(try await contents(store, key) == [9])
            } else {
                await #expect(throws: StoreError.self, "\(key)") { try await store.put(key, bytes: [9], condition: .unconditional) }
            }
        }
        #expect(try String(contentsOfFile: scratch + "/outside/sub/passwd", encoding: .utf8) == "secret\n")
        #expect(try String(contentsOfFile: scratch + "/outside/file", encoding: .utf8) == "secret\n")
        #expect(TestSupport.listing(scratch + "/outside/sub") == ["passwd"])
    }

    @Test func aStoreRootThatCannotBeAFolderIsATypedError() throws {
        let scratch = try TestSupport.makeTemporaryDirectory("store-root")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        FileManager.default.createFile(atPath: scratch + "/file", contents: Data([1]))
        for root in ["/dev/null/store", scratch + "/file", scratch + "/file/below", "/proc/version"] {
            let error = #expect(throws: StoreError.self) { _ = try FileSystemObjectStore(root: root) }
            #expect(error?.code == .storeIO, "\(root): \(String(describing: error))")
        }
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
