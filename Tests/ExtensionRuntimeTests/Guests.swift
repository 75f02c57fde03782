import BundleCore
import Foundation
import RunnerCache
import TestSupport
import WAT

/// Test guests in WebAssembly text: each is a `wasm-core@1` module with a bump allocator, and a
/// handler that does one thing.
enum Guests {
    /// The common part: memory, a bump allocator from 4096 that grows memory when it must, and
    /// `dealloc` (a no-op).
    static func module(imports: String = "", data: String = "", globals: String = "", extra: String = "", handler: String) -> String {
        """
        (module
          \(imports)
          (memory (export "memory") 1)
          (global $heap (mut i32) (i32.const 4096))
          \(globals)
          \(data)
          (func $alloc (export "alloc") (param $size i32) (result i32)
            (local $ptr i32) (local $end i32)
            (local.set $ptr (global.get $heap))
            (local.set $end (i32.add (local.get $ptr) (local.get $size)))
            (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
              (then
                (if (i32.eq
                      (memory.grow (i32.add (i32.div_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65536)) (i32.const 1)))
                      (i32.const -1))
                  (then (return (i32.const 0))))))
            (global.set $heap (local.get $end))
            (local.get $ptr))
          (func (export "dealloc") (param i32 i32))
          (func $store_out (param $out i32) (param $ptr i32) (param $len i32)
            (i32.store (local.get $out) (local.get $ptr))
            (i32.store offset=4 (local.get $out) (local.get $len)))
          \(extra)
          (func (export "handler") (param $req i32) (param $len i32) (param $out i32) (result i32)
            \(handler))
        )
        """
    }

    static func wasm(_ text: String) throws -> [UInt8] { try wat2wasm(text) }

    /// Answers with the request document itself (which has no `status`: an opaque body).
    static let echo = module(handler: "(call $store_out (local.get $out) (local.get $req) (local.get $len)) (i32.const 0)")

    /// Answers with a constant.
    static func constant(_ response: String) -> String {
        let escaped = response.utf8.map { String(format: "\\%02x", $0) }.joined()
        return module(
            data: #"(data (i32.const 1024) "\#(escaped)")"#,
            handler: "(call $store_out (local.get $out) (i32.const 1024) (i32.const \(response.utf8.count))) (i32.const 0)")
    }

    /// Counts its calls in a global and answers `{"status":20N}`: a fresh instance says 201.
    static let counter = module(
        data: #"(data (i32.const 1024) "{\"status\":200}")"#,
        globals: "(global $calls (mut i32) (i32.const 0))",
        handler: """
            (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
            (i32.store8 (i32.const 1036) (i32.add (i32.const 48) (global.get $calls)))
            (call $store_out (local.get $out) (i32.const 1024) (i32.const 14)) (i32.const 0)
            """)

    static let badOutPointer = module(handler: "(call $store_out (local.get $out) (i32.const -16) (i32.const 8)) (i32.const 0)")

    static let hugeLength = module(handler: "(call $store_out (local.get $out) (i32.const 1024) (i32.const 0x7fffffff)) (i32.const 0)")

    /// `alloc` answers an address past the end of memory.
    static let badAlloc = """
        (module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 65530))
          (func (export "handler") (param i32 i32 i32) (result i32) (i32.const 0)))
        """

    static let returnsSeven = module(handler: "(i32.const 7)")

    /// Logs a line with `alga.log_info` and its first five bytes with `alga.log_error`, then
    /// answers 204.
    static func logger(_ line: String) -> String {
        let escaped = line.utf8.map { String(format: "\\%02x", $0) }.joined()
        return module(
            imports: #"(import "alga" "log_info" (func $log_info (param i32 i32))) (import "alga" "log_error" (func $log_error (param i32 i32)))"#,
            data: #"(data (i32.const 1024) "{\"status\":204}") (data (i32.const 2048) "\#(escaped)")"#,
            handler: """
                (call $log_info (i32.const 2048) (i32.const \(line.utf8.count)))
                (call $log_error (i32.const 2048) (i32.const 5))
                (call $log_info (i32.const -100) (i32.const 50))
                (call $store_out (local.get $out) (i32.const 1024) (i32.const 14)) (i32.const 0)
                """)
    }

    /// Calls `alga.http.fetch` with `request` (a JSON document) and answers with what it got
    /// back (the fetch answer is itself a response document); a negative fetch code is returned
    /// as the handler's result.
    static func fetcher(_ request: String) -> String {
        let escaped = request.utf8.map { String(format: "\\%02x", $0) }.joined()
        return module(
            imports: #"(import "alga" "http.fetch" (func $fetch (param i32 i32 i32) (result i32)))"#,
            data: #"(data (i32.const 1024) "\#(escaped)")"#,
            handler: """
                (local $rc i32)
                (local.set $rc (call $fetch (i32.const 1024) (i32.const \(request.utf8.count)) (local.get $out)))
                (local.get $rc)
                """)
    }

    /// Reads the secret `name` with `alga.secret_get` and answers with its value as an opaque
    /// body; a negative code is the handler's result.
    static func secretReader(_ name: String) -> String {
        module(
            imports: #"(import "alga" "secret_get" (func $secret_get (param i32 i32 i32) (result i32)))"#,
            data: #"(data (i32.const 1024) "\#(name)")"#,
            handler: "(call $secret_get (i32.const 1024) (i32.const \(name.utf8.count)) (local.get $out))")
    }

    /// A module importing something the runner does not provide.
    static let wasiImport = """
        (module
          (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "alloc") (param i32) (result i32) (i32.const 1024))
          (func (export "handler") (param i32 i32 i32) (result i32) (i32.const 0)))
        """

    /// Grows its table by 200,000 elements and returns what `table.grow` answered.
    static let tableGrower = module(extra: "(table $t 1 funcref)", handler: "(table.grow $t (ref.null func) (i32.const 200000))")

    /// An `alloc` that calls `alga.secret_get` every time: the host calls `alloc` from inside
    /// `secret_get` to hand the answer over, which must not recurse without end.
    static let reentrantAlloc = """
        (module
          (import "alga" "secret_get" (func $secret_get (param i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (global $heap (mut i32) (i32.const 4096))
          (data (i32.const 1024) "x")
          (func $alloc (export "alloc") (param $size i32) (result i32)
            (local $ptr i32)
            (drop (call $secret_get (i32.const 1024) (i32.const 1) (i32.const 1100)))
            (local.set $ptr (global.get $heap))
            (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
            (local.get $ptr))
          (func (export "handler") (param $req i32) (param $len i32) (param $out i32) (result i32)
            (i32.store (local.get $out) (local.get $req))
            (i32.store offset=4 (local.get $out) (local.get $len))
            (i32.const 0)))
        """

    /// Keeps a counter in memory (not a global) and answers `{"status":20N}`: an instance put
    /// back as instantiation left it says 201 every time.
    static let memoryCounter = module(
        data: #"(data (i32.const 1024) "{\"status\":200}")"#,
        handler: """
            (i32.store (i32.const 3000) (i32.add (i32.load (i32.const 3000)) (i32.const 1)))
            (i32.store8 (i32.const 1036) (i32.add (i32.const 48) (i32.load (i32.const 3000))))
            (call $store_out (local.get $out) (i32.const 1024) (i32.const 14)) (i32.const 0)
            """)

    /// Three tables of 40,000 elements: 120,000 together.
    static let manyTables = module(extra: "(table 40000 funcref) (table 40000 funcref) (table 40000 funcref)", handler: "(i32.const 0)")

    /// Uses exception handling, which guests may not.
    static let exceptions = module(extra: "(tag $boom)", handler: "(throw $boom)")

    /// Imports `alga.log_info` with the wrong signature.
    static let wrongImportType = """
        (module (import "alga" "log_info" (func (param i32)))
          (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 1024))
          (func (export "handler") (param i32 i32 i32) (result i32) (i32.const 0)))
        """

    /// Exports `dealloc` with the wrong signature.
    static let wrongDeallocType = """
        (module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 1024))
          (func (export "dealloc") (param i32)) (func (export "handler") (param i32 i32 i32) (result i32) (i32.const 0)))
        """

    /// A module without `handler`.
    static let noHandler = """
        (module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 1024)))
        """

    /// `handler` with the wrong type.
    static let wrongHandlerType = """
        (module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 1024))
          (func (export "handler") (param i32 i32) (result i32) (i32.const 0)))
        """

    /// A component's preamble (what componentize-js writes), followed by junk.
    static let component: [UInt8] = [0x00, 0x61, 0x73, 0x6D, 0x0D, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03]
}

/// A ``ModuleCache`` that serves modules given as bytes, keyed by their hash (for the executor
/// tests that need no bundle), and counts lookups.
final class FixedModules: ModuleCache, @unchecked Sendable {
    private let folder: String
    private let lock = NSLock()
    private var paths: [ContentHash: String] = [:]
    private(set) var lookups = 0

    init() throws { folder = try TestSupport.makeTemporaryDirectory("modules") }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    /// Adds `bytes` and returns the hash requests name it by.
    @discardableResult
    func add(_ bytes: [UInt8]) throws -> ContentHash {
        let hash = ContentHash.of(bytes)
        let path = folder + "/" + hash.hex + ".wasm"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        lock.withLock { paths[hash] = path }
        return hash
    }

    func ensureModuleCached(_ hash: ContentHash) async throws -> ModuleHandle {
        let path: String? = lock.withLock {
            lookups += 1
            return paths[hash]
        }
        guard let path else { throw CacheError(code: .cacheNotFound, reason: "no such bundle", hash: hash) }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        return ModuleHandle(hash: hash, path: path, size: size ?? 0, bundleRoot: folder, lease: CacheLease(hash: hash) {})
    }

    func ensureUiCached(_ hash: ContentHash) async throws -> UIHandle {
        throw CacheError(code: .cacheNotFound, reason: "no UI here", hash: hash)
    }
}
