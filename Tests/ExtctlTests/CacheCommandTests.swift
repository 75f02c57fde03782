import BundleCore
import BundleStore
import Foundation
import RunnerCache
import Testing
import TestSupport

@Suite struct CacheCommandTests {
    /// A 20 MiB bundle in a filesystem store; returns its hash and main.wasm.
    func makeStore(_ scratch: Scratch) throws -> (hash: ContentHash, wasm: [UInt8], index: [UInt8]) {
        let wasm = TestSupport.randomBytes(20 << 20, seed: 77)
        let index = Array("<html>crash</html>".utf8)
        try TestSupport.write(Array(#"{"name":"com.acme.crash","publisher":"Acme","version":"1.0.0","runtime":"wasm-js@1"}"#.utf8), to: "tree/manifest.json", in: scratch.path)
        try TestSupport.write(wasm, to: "tree/dist/main.wasm", in: scratch.path)
        try TestSupport.write(index, to: "tree/ui/index.html", in: scratch.path)
        #expect(try extctl("pack", scratch("tree"), "-o", scratch("b.tar.zst"), "--level", "1").status == 0)
        let put = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", "file://" + scratch("store"))
        #expect(put.status == 0, "\(put.stderr)")
        return (try ContentHash(parsing: String(put.stdout.prefix(71))), wasm, index)
    }

    /// Every `<hex>` folder in the cache is a complete entry with the right bytes.
    func checkServable(_ root: String, _ expected: (hash: ContentHash, wasm: [UInt8], index: [UInt8])) throws {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where !name.hasPrefix(".") {
            #expect(name == expected.hash.hex)
            #expect(FileManager.default.fileExists(atPath: root + "/\(name)/meta.json"))
            #expect(FileManager.default.contents(atPath: root + "/\(name)/bundle/dist/main.wasm").map(Array.init) == expected.wasm)
            #expect(FileManager.default.contents(atPath: root + "/\(name)/bundle/ui/index.html").map(Array.init) == expected.index)
        }
    }

    @Test func aFillKilledAtRandomPointsNeverLeavesAServedEntry() async throws {
        let scratch = try Scratch("cli-cache-crash")
        let expected = try makeStore(scratch)
        let store = try BundleStore(objects: try FileSystemObjectStore(root: scratch("store")))
        let root = scratch("cache")
        // How long one fill takes here, to spread the kills over it.
        let started = Date()
        #expect(try extctl("cache", "warm", expected.hash.prefixed, "--cache", root, "--store", "file://" + scratch("store")).status == 0)
        let fillTime = Date().timeIntervalSince(started)
        try checkServable(root, expected)
        var killedMidFill = 0
        for trial in 0..<20 {
            #expect(try extctl("cache", "clear", "--cache", root, "--store", "file://" + scratch("store")).status == 0)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestSupport.extctl)
            process.arguments = ["cache", "warm", expected.hash.prefixed, "--cache", root, "--store", "file://" + scratch("store")]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait until the fill has started (its temporary folder exists), then kill it after a
            // delay spread over the fill's duration: early, midway, and near the rename.
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline, process.isRunning,
                !((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).contains(where: { $0.hasPrefix(".tmp-") })
            {
                usleep(500)
            }
            usleep(UInt32(Double(trial) / 20 * fillTime * 1_000_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix(".tmp-") }
            if !leftovers.isEmpty { killedMidFill += 1 }
            try checkServable(root, expected)
            // The next start removes the dead fill's leftovers and fills correctly.
            let cache = try DiskModuleCache(root: root, store: store)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).allSatisfy { !$0.hasPrefix(".") || $0 == ".extbundles-cache" })
            let module = try await cache.ensureModuleCached(expected.hash)
            #expect(try await module.bytes() == expected.wasm)
            try checkServable(root, expected)
        }
        // The kills really landed inside fills (not all before or after them).
        #expect(killedMidFill >= 5, "only \(killedMidFill) of 20 kills interrupted a fill")
    }

    @Test func warmStatsPruneAndClear() throws {
        let scratch = try Scratch("cli-cache")
        let data = scratch("data")
        let bundle = try packExtension(scratch, "ext")
        let published = try extctl("publish", bundle, "--data", data)
        #expect(published.status == 0, "\(published.stderr)")
        let hash = ContentHash.of(Array(try Data(contentsOf: URL(fileURLWithPath: bundle))))
        let warm = try extctl("cache", "warm", "acme.com.acme.cli", "--data", data)
        #expect(warm.status == 0, "\(warm.stderr)")
        #expect(warm.stdout.hasPrefix(hash.prefixed))
        #expect(FileManager.default.fileExists(atPath: data + "/cache/\(hash.hex)/bundle/ui/index.html"))
        let stats = try extctl("cache", "stats", "--json", "--data", data)
        let object = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        #expect(object?["entries"] as? Int == 1)
        #expect(try extctl("cache", "prune", "--data", data).stdout.contains("evicted") == false)
        #expect(try extctl("cache", "prune", "--max-bytes", "0", "--data", data).stdout.contains("evicted \(hash.prefixed)"))
        #expect(try extctl("cache", "warm", hash.hex, "--data", data).status == 0)
        #expect(try extctl("cache", "clear", "--data", data).stdout == "removed 1 entry\n")
        let missing = try extctl("cache", "warm", ContentHash.of([1]).prefixed, "--data", data)
        #expect(missing.status == 1 && missing.stderr.contains("CACHE_NOT_FOUND"))
    }
}
