import BundleCore
import BundleStore
import Foundation
import Testing
import TestSupport

@Suite struct StoreCommandTests {
    /// What killed uploads leave (a writer's temporary file, an abandoned staging session) is
    /// removed by `store sweep`; a live writer's file and canonical bundles stay.
    @Test func sweepRemovesWhatInterruptedUploadsLeft() throws {
        let scratch = try Scratch("cli-sweep")
        let store = scratch("store")
        try TestSupport.write(TestSupport.randomBytes(1_000, seed: 5), to: "b.tar.zst", in: scratch.path)
        #expect(try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", store).status == 0)
        let session = "sha256/_staging/\(UUID().uuidString.lowercased())"
        try TestSupport.write([1, 2], to: "\(session)/chunks/0000000000000000000", in: store)
        try TestSupport.write([3], to: "\(session)/.bundle.tar.zst.extbundles-tmp-999999999-00aa", in: store)  // no such process
        try TestSupport.write([4], to: "sha256/x/.bundle.tar.zst.extbundles-tmp-1-00bb", in: store)  // pid 1 runs
        let fresh = try extctl("store", "sweep", "--store", store)
        #expect(fresh.status == 0 && fresh.stdout == "removed 0 staging sessions and 1 temporary file\n", "\(fresh.stdout) \(fresh.stderr)")
        #expect(!FileManager.default.fileExists(atPath: store + "/\(session)/.bundle.tar.zst.extbundles-tmp-999999999-00aa"))
        #expect(FileManager.default.fileExists(atPath: store + "/sha256/x/.bundle.tar.zst.extbundles-tmp-1-00bb"))
        let all = try extctl("store", "sweep", "--store", store, "--older-than", "0")
        #expect(all.stdout == "removed 1 staging session and 1 temporary file\n", "\(all.stdout) \(all.stderr)")
        #expect(try extctl("store", "ls", "--store", store).stdout.hasSuffix("/bundle.tar.zst\n"))
        #expect(try extctl("store", "sweep", "--store", store, "--older-than", "-1").status != 0)
    }

    @Test func putGetHeadAndListOnAFileStore() throws {
        let scratch = try Scratch("cli-store")
        let bytes = TestSupport.randomBytes(700_000, seed: 31)
        try TestSupport.write(bytes, to: "b.tar.zst", in: scratch.path)
        let hash = ContentHash.of(bytes)
        let store = "file://" + scratch("store")
        let put = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", store)
        #expect(put.status == 0, "\(put.stderr)")
        #expect(put.stdout == "\(hash.prefixed)  stored\n")
        let again = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", store, "--expect-hash", hash.hex)
        #expect(again.stdout == "\(hash.prefixed)  already present\n")
        #expect(FileManager.default.fileExists(atPath: scratch("store/sha256/\(hash.hex)/bundle.tar.zst")))
        let head = try extctl("store", "head-bundle", hash.prefixed, "--store", store)
        #expect(head.stdout.contains("key:  sha256/\(hash.hex)/bundle.tar.zst\nsize: 700000\n"))
        let get = try extctl("store", "get-bundle", hash.hex, "-o", scratch("copy.tar.zst"), "--store", store)
        #expect(get.status == 0)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: scratch("copy.tar.zst")))) == bytes)
        let list = try extctl("store", "ls", "--store", store)
        #expect(list.stdout == "      700000  sha256/\(hash.hex)/bundle.tar.zst\n")
        // A custom base prefix (BUNDLE_STORE_BASE).
        let based = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", store, environment: ["BUNDLE_STORE_BASE": "/bundles//"])
        #expect(based.status == 0)
        #expect(FileManager.default.fileExists(atPath: scratch("store/bundles/\(hash.hex)/bundle.tar.zst")))
    }

    @Test func refusalsAreTypedWithExitStatus1() throws {
        let scratch = try Scratch("cli-store-bad")
        try TestSupport.write([1, 2, 3], to: "b.tar.zst", in: scratch.path)
        let store = "file://" + scratch("store")
        let cases: [([String], String)] = [
            (["store", "put-bundle", scratch("b.tar.zst"), "--store", store, "--expect-hash", String(repeating: "0", count: 64)], "STORE_HASH_MISMATCH"),
            (["store", "put-bundle", scratch("b.tar.zst"), "--store", store, "--expect-hash", "sha256:xyz"], "INVALID_CONTENT_HASH"),
            (["store", "head-bundle", String(repeating: "a", count: 64), "--store", store], "STORE_NOT_FOUND"),
            (["store", "get-bundle", "not-a-hash", "-o", scratch("x"), "--store", store], "INVALID_CONTENT_HASH"),
            (["store", "presign", String(repeating: "a", count: 64), "--store", store], "STORE_UNSUPPORTED"),
            (["store", "ls", "--store", store, "--prefix", "../"], "STORE_INVALID_KEY"),
            (["store", "ls", "--store", "ftp://host/x"], "STORE_CONFIGURATION"),
            (["store", "put-bundle", scratch("missing"), "--store", store], "FILE_IO"),
            (["store", "put-bundle", scratch("."), "--store", store], "FILE_IO: read failed: Is a directory"),
        ]
        for (arguments, code) in cases {
            let result = try TestSupport.run([TestSupport.extctl] + arguments)
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(code), "\(arguments): \(result.stderr)")
        }
        #expect(TestSupport.listing(scratch("store")).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scratch("x")))
    }

    /// A writer killed with SIGKILL at several points of a filesystem write never leaves a visible
    /// object; the next write completes.
    @Test func sigkillDuringAFilesystemWriteLeavesNoVisibleObject() async throws {
        let scratch = try Scratch("sigkill")
        let bytes = TestSupport.randomBytes(6 << 20, seed: 32)
        let hash = ContentHash.of(bytes)
        let objects = try FileSystemObjectStore(root: scratch("store"))
        for sent in [0, 1 << 20, 5 << 20, 6 << 20] {
            let fifo = scratch("in-\(sent).fifo")
            #expect(mkfifo(fifo, 0o600) == 0)
            let child = Process()
            child.executableURL = URL(fileURLWithPath: TestSupport.extctl)
            child.arguments = ["store", "put-bundle", fifo, "--store", "file://" + scratch("store")]
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            let writer = try #require(FileHandle(forWritingAtPath: fifo))
            if sent > 0 { try writer.write(contentsOf: bytes[..<sent]) }
            // Wait until the child has written what it read into its temporary file.
            for _ in 0..<200 {
                let written = try temporaryBytes(in: scratch("store"))
                if written >= Int64(sent) - (1 << 20) && (sent == 0 || written > 0) { break }
                try await Task.sleep(nanoseconds: 10_000_000)
            }
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            try? writer.close()
            #expect(child.terminationReason == .uncaughtSignal, "sent \(sent)")
            #expect(try await objects.listAll(prefix: "").isEmpty, "sent \(sent): a killed write became visible")
            #expect(try await objects.head("sha256/\(hash.hex)/bundle.tar.zst") == nil)
        }
        // The leftovers are temporary files only, and the sweep removes them.
        #expect(objects.removeTemporaryFiles(olderThan: 0) >= 1)
        #expect(try temporaryBytes(in: scratch("store")) == 0)
        try Data(bytes).write(to: URL(fileURLWithPath: scratch("whole.tar.zst")))
        let put = try extctl("store", "put-bundle", scratch("whole.tar.zst"), "--store", "file://" + scratch("store"))
        #expect(put.stdout == "\(hash.prefixed)  stored\n")
    }

    /// The bytes in temporary files under `root`.
    func temporaryBytes(in root: String) throws -> Int64 {
        var total: Int64 = 0
        guard let walker = FileManager.default.enumerator(atPath: root) else { return 0 }
        while let relative = walker.nextObject() as? String {
            guard relative.contains(".extbundles-tmp-") else { continue }
            let size = try FileManager.default.attributesOfItem(atPath: root + "/" + relative)[.size] as? Int64
            total += size ?? 0
        }
        return total
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["EXTBUNDLES_S3_ENDPOINT"] != nil || ProcessInfo.processInfo.environment["CI"] == "true"))
    func putAndPresignOnS3() throws {
        let environment = ProcessInfo.processInfo.environment
        let endpoint = try #require(environment["EXTBUNDLES_S3_ENDPOINT"], "the S3 tests need scripts/test.sh (EXTBUNDLES_S3_* not set)")
        let s3 = [
            "STORAGE_S3_ENDPOINT": endpoint, "STORAGE_S3_ACCESS_KEY": environment["EXTBUNDLES_S3_ACCESS_KEY"] ?? "",
            "STORAGE_S3_SECRET_KEY": environment["EXTBUNDLES_S3_SECRET_KEY"] ?? "",
            "STORAGE_S3_BUCKET": "unused-default",
        ]
        let scratch = try Scratch("cli-s3")
        let bytes = TestSupport.randomBytes(300_000, seed: 33)
        try TestSupport.write(bytes, to: "b.tar.zst", in: scratch.path)
        let hash = ContentHash.of(bytes)
        let store = "s3://\(environment["EXTBUNDLES_S3_BUCKET"] ?? "extbundles-test")/cli-\(UUID().uuidString.lowercased())"
        let put = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", store, environment: s3)
        #expect(put.stdout == "\(hash.prefixed)  stored\n", "\(put.stderr)")
        let again = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", store, environment: s3)
        #expect(again.stdout == "\(hash.prefixed)  already present\n")
        let presign = try extctl("store", "presign", hash.hex, "--expires", "120", "--store", store, environment: s3)
        #expect(presign.status == 0)
        try TestSupport.sh("curl -sf -o '\(scratch("via-curl"))' '\(presign.stdout.trimmingCharacters(in: .whitespacesAndNewlines))'")
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: scratch("via-curl")))) == bytes)
        let list = try extctl("store", "ls", "--store", store, environment: s3)
        #expect(list.stdout == "      300000  sha256/\(hash.hex)/bundle.tar.zst\n")
        let denied = try extctl("store", "ls", "--store", store, environment: s3.merging(["STORAGE_S3_SECRET_KEY": "wrong"]) { $1 })
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("STORE_ACCESS_DENIED"))
        #expect(!denied.stderr.contains("wrong"))
    }
}
