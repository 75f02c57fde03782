import BundleCore
import ExtensionRuntime
import Foundation
import Logging
import MetricsTestKit
import RunnerCache
import Testing
import WAT

/// A guest that does what the first character of its request's `body_b64` says (the request
/// document ends with `"body_b64":"<4 chars>"}}`, so that character is at `len - 7`):
/// `T` loops forever, `W` grows memory forever, `Z` traps, `d` recurses without end, `c` grows
/// memory until refused and answers 200 with `x-pages`; anything else echoes the request.
enum Modes {
    static let loop = "TA=="
    static let growForever = "WA=="
    static let trap = "ZA=="
    static let recurse = "dA=="
    static let growUntilRefused = "cA=="
    static let echo = "QQ=="

    static let wat: String = Guests.module(
        data: #"(data (i32.const 1024) "{\"status\":200,\"body_b64\":null,\"headers\":{\"x-pages\":\"00000\"}}")"#,
        extra: """
            (func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))
            (func $digits (param $value i32) (param $at i32)
              (local $i i32)
              (local.set $i (i32.const 4))
              (loop $next
                (i32.store8 (i32.add (local.get $at) (local.get $i)) (i32.add (i32.const 48) (i32.rem_u (local.get $value) (i32.const 10))))
                (local.set $value (i32.div_u (local.get $value) (i32.const 10)))
                (local.set $i (i32.sub (local.get $i) (i32.const 1)))
                (br_if $next (i32.ge_s (local.get $i) (i32.const 0)))))
            """,
        handler: """
            (local $mode i32)
            (local.set $mode (i32.load8_u (i32.sub (i32.add (local.get $req) (local.get $len)) (i32.const 7))))
            (if (i32.eq (local.get $mode) (i32.const 84)) (then (loop $spin (br $spin))))
            (if (i32.eq (local.get $mode) (i32.const 87)) (then (loop $grow (drop (memory.grow (i32.const 1))) (br $grow))))
            (if (i32.eq (local.get $mode) (i32.const 90)) (then unreachable))
            (if (i32.eq (local.get $mode) (i32.const 100)) (then (return (call $down (i32.const 0)))))
            (if (i32.eq (local.get $mode) (i32.const 99))
              (then
                (block $refused (loop $more (br_if $refused (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $more)))
                (call $digits (memory.size) (i32.const 1076))
                (call $store_out (local.get $out) (i32.const 1024) (i32.const 60))
                (return (i32.const 0))))
            (call $store_out (local.get $out) (local.get $req) (local.get $len))
            (i32.const 0)
            """)
}

/// Builds requests and executors for the tests.
struct Harness {
    let modules: FixedModules
    let executor: WasmKitExecutor
    let metrics: TestMetrics
    let logs: LogCapture

    init(configure: (inout WasmKitExecutor.Configuration) -> Void = { _ in }, httpClient: (any OutboundHTTPClient)? = nil) throws {
        modules = try FixedModules()
        metrics = TestMetrics()
        logs = LogCapture()
        var configuration = WasmKitExecutor.Configuration()
        configuration.metricsFactory = metrics
        let logs = self.logs
        configuration.logger = Logger(label: "test") { _ in logs.handler() }
        configuration.logger.logLevel = .debug
        configure(&configuration)
        executor = WasmKitExecutor(modules: modules, configuration: configuration, httpClient: httpClient)
    }

    /// Adds the guest `wat` and returns its hash.
    func add(_ wat: String) throws -> ContentHash { try modules.add(try wat2wasm(wat)) }

    static func request(
        _ hash: ContentHash, method: String = "GET", path: String = "/x", body: String? = nil, tenant: String = "t1", extensionID: String = "e1",
        requestID: String? = "r1", config: [String: String]? = nil, limits: ExecuteRequest.Limits? = nil, providers: [String]? = nil,
        secrets: ExecuteRequest.SecretEnvelope? = nil, user: ExecuteRequest.User? = nil
    ) -> ExecuteRequest {
        ExecuteRequest(
            context: .init(requestID: requestID, tenantID: tenant, extensionID: extensionID, contentHash: hash.prefixed, config: config),
            http: .init(method: method, path: path, query: ["q": "1"], headers: ["accept": "application/json"], bodyB64: body),
            limits: limits, providers: providers, secretEnvelope: secrets, user: user)
    }
}

/// Collects log records.
final class LogCapture: @unchecked Sendable {
    struct Record {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let lock = NSLock()
    private var storage: [Record] = []

    var records: [Record] { lock.withLock { storage } }

    func append(_ record: Record) { lock.withLock { storage.append(record) } }

    func handler() -> some LogHandler { Handler(capture: self) }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = metadata
            for (key, value) in event.metadata ?? [:] { merged[key] = value }
            capture.append(Record(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// The response body as a JSON object.
func jsonObject(_ response: ExecuteResponse, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let body = try #require(response.body, sourceLocation: sourceLocation)
    return try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], sourceLocation: sourceLocation)
}
