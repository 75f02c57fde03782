public import BundleCore
import Dispatch
public import CoreMetrics
public import Foundation
public import Logging
public import RunnerCache
public import WasmKit

/// The ``Executor`` of `wasm-core@1` guests on WasmKit (`docs/guest-abi.md`).
///
/// - Modules come from a ``RunnerCache/ModuleCache`` by content hash (fetched, verified and
///   unpacked on a miss there) and are parsed, validated and checked against the contract once
///   per hash here ( ``GuestModule``), kept in memory for the most recently used
///   ``Configuration/moduleCapacity`` hashes; concurrent first requests share one load, and a
///   module that does not load is remembered as such.
/// - Every request starts from the state instantiation left: a new instance, or a pooled one put
///   back exactly (``InstancePool``: memory and mutable globals restored, tables and segments
///   unchanged by construction); nothing survives between requests.
/// - Limits: a wall-clock deadline (`limits.timeout_ms`, default 5 s; the guest is stopped at
///   its next loop iteration or call by draining its fuel, and waits in host calls end with it),
///   a memory cap (`limits.memory_mb`, default 256: `memory.grow` past it returns -1 in the
///   guest), an optional fuel budget (`limits.fuel`), table, log and response caps.
/// - Handlers run on the executor's own threads (``Configuration/maxConcurrentExecutions``),
///   never on Swift's cooperative pool; requests past the limit wait their turn, and the time
///   they wait counts against their deadline.
/// - Capabilities, the egress allowlist, secrets and idempotency as reference 6.5 to 6.7 describe,
///   with the idempotency map scoped by tenant and extension and bounded in count and time.
/// - Logs (swift-log) carry `request_id`, `tenant`, `extension` and `content_hash`; metrics
///   (swift-metrics): `<prefix>_total`, `<prefix>_failures_total` with a `kind` dimension and
///   `<prefix>_duration_seconds` (a timer).
public final class WasmKitExecutor: Executor {
    /// Settings.
    public struct Configuration: Sendable {
        /// `timeout_ms` when a request has none. Default 5,000.
        public var defaultTimeoutMs: UInt64
        /// The largest `timeout_ms` honoured. Default 600,000 (ten minutes).
        public var maxTimeoutMs: UInt64
        /// `memory_mb` when a request has none. Default 256.
        public var defaultMemoryMb: UInt64
        /// The largest `memory_mb` honoured. Default 4,096 (all of wasm32).
        public var maxMemoryMb: UInt64
        /// The largest response a handler may return, in bytes. Default 10 MiB.
        public var maxResponseBytes: Int
        /// The largest request document handed to a guest, in bytes. Default 16 MiB.
        public var maxRequestBytes: Int
        /// Parsed modules kept in memory. Default 64.
        public var moduleCapacity: Int
        /// The most module bytes kept parsed at once (the least recently used go first). Default
        /// 256 MiB.
        public var moduleCacheBytes: Int
        /// The largest module loaded. Default 32 MiB.
        public var maxModuleBytes: Int
        /// Handlers running at once (threads). Default twice the processor count, at least 4.
        public var maxConcurrentExecutions: Int
        /// The elements all of a guest's tables may hold together. Default 100,000.
        public var maxTableElements: Int
        /// Log lines a guest may write per request (the rest are dropped). Default 1,000.
        public var maxLogLines: Int
        /// The longest guest log line kept, in bytes. Default 8 KiB.
        public var maxLogLineBytes: Int
        /// Where `alga.http.fetch` may go (`EXT_EGRESS_ALLOWLIST`). Default: anywhere.
        public var egress: EgressPolicy
        /// The longest an outbound request may take (also bounded by the run's deadline).
        /// Default 30 s, as Alga.
        public var fetchTimeout: Duration
        /// The largest outbound response body. Default 10 MiB.
        public var maxFetchResponseBytes: Int
        /// The largest outbound request document a guest may pass. Default 10 MiB.
        public var maxFetchRequestBytes: Int
        /// Idempotent responses kept. Default 10,000.
        public var idempotencyCapacity: Int
        /// The bytes of idempotent response bodies kept at once. Default 64 MiB.
        public var idempotencyBytes: Int
        /// The largest response kept for idempotency (larger ones run again). Default 1 MiB.
        public var idempotencyMaxResponseBytes: Int
        /// How long an idempotent response is kept. Default 10 minutes.
        public var idempotencyTTL: TimeInterval
        /// The interpreter's value stack per request, in bytes (deep recursion traps with
        /// `call stack exhausted` past it). Default 512 KiB.
        public var stackSize: Int
        /// Opens secret envelopes. Default: the inline kind only.
        public var secrets: any SecretDecrypter
        /// The logger; each request's logs add its ids as metadata.
        public var logger: Logger
        /// Where metrics go; nil means `MetricsSystem.factory`.
        public var metricsFactory: (any MetricsFactory)?
        /// The prefix of metric labels. Default `extbundles_execute`.
        public var metricsPrefix: String
        /// The clock of the idempotency map.
        public var now: @Sendable () -> Date

        /// Creates a configuration.
        public init(
            defaultTimeoutMs: UInt64 = 5_000, maxTimeoutMs: UInt64 = 600_000, defaultMemoryMb: UInt64 = 256, maxMemoryMb: UInt64 = 4_096,
            maxResponseBytes: Int = 10 << 20, maxRequestBytes: Int = 16 << 20, moduleCapacity: Int = 64, moduleCacheBytes: Int = 256 << 20,
            maxModuleBytes: Int = 32 << 20,
            maxConcurrentExecutions: Int = max(4, ProcessInfo.processInfo.activeProcessorCount * 2), maxTableElements: Int = 100_000,
            maxLogLines: Int = 1_000, maxLogLineBytes: Int = 8_192, egress: EgressPolicy = EgressPolicy(), fetchTimeout: Duration = .seconds(30),
            maxFetchResponseBytes: Int = 10 << 20, maxFetchRequestBytes: Int = 10 << 20, idempotencyCapacity: Int = 10_000,
            idempotencyBytes: Int = 64 << 20, idempotencyMaxResponseBytes: Int = 1 << 20, idempotencyTTL: TimeInterval = 600, stackSize: Int = 1 << 19, secrets: any SecretDecrypter = InlineSecretDecrypter(),
            logger: Logger = Logger(label: "extbundles.runtime"), metricsFactory: (any MetricsFactory)? = nil,
            metricsPrefix: String = "extbundles_execute", now: @escaping @Sendable () -> Date = { Date() }
        ) {
            self.defaultTimeoutMs = defaultTimeoutMs
            self.maxTimeoutMs = maxTimeoutMs
            self.defaultMemoryMb = defaultMemoryMb
            self.maxMemoryMb = maxMemoryMb
            self.maxResponseBytes = maxResponseBytes
            self.maxRequestBytes = maxRequestBytes
            self.moduleCapacity = moduleCapacity
            self.moduleCacheBytes = moduleCacheBytes
            self.maxModuleBytes = maxModuleBytes
            self.maxConcurrentExecutions = maxConcurrentExecutions
            self.maxTableElements = maxTableElements
            self.maxLogLines = maxLogLines
            self.maxLogLineBytes = maxLogLineBytes
            self.egress = egress
            self.fetchTimeout = fetchTimeout
            self.maxFetchResponseBytes = maxFetchResponseBytes
            self.maxFetchRequestBytes = maxFetchRequestBytes
            self.idempotencyCapacity = idempotencyCapacity
            self.idempotencyBytes = idempotencyBytes
            self.idempotencyMaxResponseBytes = idempotencyMaxResponseBytes
            self.idempotencyTTL = idempotencyTTL
            self.stackSize = stackSize
            self.secrets = secrets
            self.logger = logger
            self.metricsFactory = metricsFactory
            self.metricsPrefix = metricsPrefix
            self.now = now
        }

        /// The defaults with what the environment sets: `EXT_EGRESS_ALLOWLIST`,
        /// `EXT_EXECUTE_TIMEOUT_MS` (the default timeout), `EXT_EXECUTE_MEMORY_MB` (the default
        /// memory cap), `EXT_EXECUTE_CONCURRENCY`.
        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Configuration {
            var configuration = Configuration()
            configuration.egress = EgressPolicy.fromEnvironment(environment)
            func number(_ name: String) -> UInt64? {
                environment[name].flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }.flatMap { $0 > 0 ? $0 : nil }
            }
            if let value = number("EXT_EXECUTE_TIMEOUT_MS") { configuration.defaultTimeoutMs = value }
            if let value = number("EXT_EXECUTE_MEMORY_MB") { configuration.defaultMemoryMb = value }
            if let value = number("EXT_EXECUTE_CONCURRENCY") { configuration.maxConcurrentExecutions = Int(min(value, 1024)) }
            return configuration
        }
    }

    /// What the executor holds.
    public struct Stats: Sendable, Equatable {
        /// Modules parsed and kept (failed loads included).
        public var modules: Int
        /// Idempotent responses kept.
        public var idempotentResponses: Int
    }

    /// The settings.
    public let configuration: Configuration
    /// The engine every request's store is made from.
    public let engine: Engine
    private let modules: ModuleTable
    private let idempotency: IdempotencyCache
    private let pool: ExecutionThreads
    private let settings: GuestHostSettings
    private let metrics: ExecuteMetrics

    /// Creates an executor over `modules`. `httpClient` makes the guests' outbound requests;
    /// nil uses ``AsyncHTTPOutboundClient/shared``.
    public init(modules: any ModuleCache, configuration: Configuration = Configuration(), httpClient: (any OutboundHTTPClient)? = nil) {
        self.configuration = configuration
        self.engine = Engine(configuration: GuestModule.engineConfiguration(stackSize: configuration.stackSize))
        self.modules = ModuleTable(
            source: modules, engine: engine, capacity: configuration.moduleCapacity, maxBytes: configuration.moduleCacheBytes,
            maxModuleBytes: configuration.maxModuleBytes, maxTableElements: configuration.maxTableElements)
        self.idempotency = IdempotencyCache(
            capacity: configuration.idempotencyCapacity, maxBytes: configuration.idempotencyBytes, ttl: configuration.idempotencyTTL,
            now: configuration.now)
        self.pool = ExecutionThreads(maximum: configuration.maxConcurrentExecutions)
        self.settings = GuestHostSettings(
            maxResponseBytes: configuration.maxResponseBytes, maxTableElements: configuration.maxTableElements,
            maxLogLines: configuration.maxLogLines, maxLogLineBytes: configuration.maxLogLineBytes, egress: configuration.egress,
            fetchTimeout: configuration.fetchTimeout, maxFetchResponseBytes: configuration.maxFetchResponseBytes,
            maxFetchRequestBytes: configuration.maxFetchRequestBytes, httpClient: httpClient ?? AsyncHTTPOutboundClient.shared)
        self.metrics = ExecuteMetrics(prefix: configuration.metricsPrefix, factory: configuration.metricsFactory ?? MetricsSystem.factory)
    }

    /// Executes `request` (see ``Executor``).
    public func execute(_ request: ExecuteRequest, options: ExecuteOptions) async -> ExecuteResponse {
        let started = DispatchTime.now()
        let logger = RequestLog(
            logger: configuration.logger, requestID: request.context.requestID ?? options.requestID ?? "", tenant: request.context.tenantID,
            extension: request.context.extensionID, contentHash: request.context.contentHash)
        let response: ExecuteResponse
        var replayed = false
        if let key = options.idempotencyKey, !key.isEmpty {
            let scoped = IdempotencyCache.Key(
                tenant: request.context.tenantID, extension: request.context.extensionID, user: request.user?.userID ?? "",
                method: request.http.method, path: request.http.path, key: key)
            let logger = logger
            let keepUpTo = min(configuration.idempotencyMaxResponseBytes, Int.max / 2) / 3 * 4 + 4
            (response, replayed) = await idempotency.response(for: scoped, shouldKeep: { $0.error == nil && ($0.bodyB64?.utf8.count ?? 0) <= keepUpTo }) {
                await self.run(request, options: options, logger: logger)
            }
        } else {
            response = await run(request, options: options, logger: logger)
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds
        metrics.executions.increment()
        metrics.duration.recordNanoseconds(Int64(elapsed))
        if let error = response.error {
            let kind = ExecuteFailure.Kind(rawValue: String(error.prefix { $0 != ":" }))
            metrics.failure(kind).increment()
            logger(.info, "execute failed", ["error": .string(error), "duration_us": .stringConvertible(elapsed / 1000)])
        } else {
            logger(
                .debug, "executed",
                [
                    "status": .stringConvertible(response.status), "duration_us": .stringConvertible(elapsed / 1000),
                    "replayed": .stringConvertible(replayed),
                ])
        }
        return response
    }

    /// Fetches (through the module cache) and loads the module of `hash`, so that the first
    /// request does not pay for it. Throws what that request would answer.
    public func warm(_ hash: ContentHash) async throws(ExecuteFailure) {
        _ = try await modules.guest(hash).get()
    }

    /// What the executor holds now.
    public func stats() async -> Stats {
        Stats(modules: await modules.count, idempotentResponses: await idempotency.count)
    }

    /// Forgets the parsed modules (the module cache's entries stay).
    public func purgeModules() async { await modules.removeAll() }

    private func run(_ request: ExecuteRequest, options: ExecuteOptions, logger: RequestLog) async -> ExecuteResponse {
        do {
            let grants = try Capability.granted(by: request.providers)
            guard let hash = try? ContentHash(parsing: request.context.contentHash) else {
                throw ExecuteFailure(.bundleFetchFailed, "content_hash is not a SHA-256 hash (sha256:<64 hex> or 64 hex)")
            }
            let guest = try await modules.guest(hash).get()
            var secrets: [String: String] = [:]
            if let envelope = request.secretEnvelope {
                do {
                    secrets = try await configuration.secrets.decrypt(envelope, context: request.context)
                } catch {
                    throw ExecuteFailure(.secretDecryptFailed, nil, detail: String(reflecting: error))
                }
            }
            let document = try GuestRequest.document(for: request, requestID: options.requestID, grants: grants)
            guard document.count <= configuration.maxRequestBytes else {
                throw ExecuteFailure.executeFailed("request too large", detail: "\(document.count) bytes, cap \(configuration.maxRequestBytes)")
            }
            let limits = request.limits
            let timeoutMs = max(1, min(limits?.timeoutMs ?? configuration.defaultTimeoutMs, configuration.maxTimeoutMs, 1 << 40))
            let memoryMb = min(limits?.memoryMb ?? configuration.defaultMemoryMb, configuration.maxMemoryMb, 1 << 16)
            let input = GuestInput(
                requestJSON: document, grants: grants, secrets: secrets, memoryBytes: Int(memoryMb) << 20, fuel: limits?.fuel,
                deadline: DispatchTime.now() + .milliseconds(Int(timeoutMs)), log: logger)
            let engine = self.engine
            let settings = self.settings
            return try await pool.run { GuestRun.run(guest, engine: engine, input: input, settings: settings) }.get()
        } catch let failure as ExecuteFailure {
            if let detail = failure.detail { logger(.debug, "execute failure detail", ["detail": .string(detail)]) }
            return ExecuteResponse(failure: failure)
        } catch {
            return ExecuteResponse(failure: .init(.executeFailed, "internal error", detail: String(reflecting: error)))
        }
    }
}

/// The request document a guest reads (`docs/guest-abi.md`).
enum GuestRequest {
    static func document(for request: ExecuteRequest, requestID: String?, grants: Set<Capability>) throws(ExecuteFailure) -> [UInt8] {
        if let body = request.http.bodyB64, !body.isEmpty, Data(base64Encoded: body.trimmingCharacters(in: .whitespacesAndNewlines)) == nil {
            throw .executeFailed("body_b64 is not standard base64")
        }
        let context = request.context
        var writer = JSONWriter(capacity: 256 + (request.http.bodyB64?.utf8.count ?? 0))
        writer.beginObject()
        writer.key("context")
        writer.beginObject()
        writer.member("request_id", context.requestID ?? requestID)
        writer.member("tenant_id", context.tenantID)
        writer.member("extension_id", context.extensionID)
        writer.member("install_id", context.installID)
        writer.member("version_id", context.versionID)
        writer.member("content_hash", context.contentHash)
        writer.member("config", map: context.config ?? [:])
        writer.endObject()
        writer.key("http")
        writer.beginObject()
        writer.member("method", request.http.method)
        writer.member("path", request.http.path)
        writer.member("query", map: request.http.query ?? [:])
        writer.member("headers", map: request.http.headers ?? [:])
        writer.member("body_b64", request.http.bodyB64?.trimmingCharacters(in: .whitespacesAndNewlines))
        writer.endObject()
        if let user = request.user, grants.contains(.userRead) {
            writer.key("user")
            writer.beginObject()
            writer.member("user_id", user.userID)
            writer.member("user_email", user.userEmail)
            writer.member("user_name", user.userName)
            writer.member("user_type", user.userType)
            writer.member("client_name", user.clientName)
            writer.member("client_id", user.clientID)
            writer.member("additional_fields", map: user.additionalFields ?? [:])
            writer.endObject()
        }
        writer.endObject()
        return writer.bytes
    }
}

/// Parsed modules by content hash, least recently used first out.
actor ModuleTable {
    private struct Slot {
        var result: Result<GuestModule, ExecuteFailure>
        var lastUse: UInt64
    }

    private let source: any ModuleCache
    private let engine: Engine
    private let capacity: Int
    private let maxBytes: Int
    private let maxModuleBytes: Int
    private let maxTableElements: Int
    private var bytes = 0
    private var slots: [ContentHash: Slot] = [:]
    private var loading: [ContentHash: Task<Result<GuestModule, ExecuteFailure>, Never>] = [:]
    private var tick: UInt64 = 0

    init(source: any ModuleCache, engine: Engine, capacity: Int, maxBytes: Int, maxModuleBytes: Int, maxTableElements: Int) {
        self.source = source
        self.engine = engine
        self.capacity = max(1, capacity)
        self.maxBytes = maxBytes
        self.maxModuleBytes = maxModuleBytes
        self.maxTableElements = maxTableElements
    }

    var count: Int { slots.count }

    func removeAll() {
        slots.removeAll()
        bytes = 0
    }

    private static func size(_ result: Result<GuestModule, ExecuteFailure>) -> Int {
        if case .success(let guest) = result { return guest.byteCount }
        return 0
    }

    func guest(_ hash: ContentHash) async -> Result<GuestModule, ExecuteFailure> {
        tick += 1
        if var slot = slots[hash] {
            slot.lastUse = tick
            slots[hash] = slot
            return slot.result
        }
        if let task = loading[hash] { return await task.value }
        let source = self.source
        let engine = self.engine
        let maxModuleBytes = self.maxModuleBytes
        let maxTableElements = self.maxTableElements
        let task = Task<Result<GuestModule, ExecuteFailure>, Never> {
            let bytes: [UInt8]
            do {
                let handle = try await source.ensureModuleCached(hash)
                guard handle.size <= Int64(maxModuleBytes) else {
                    return .failure(.executeFailed("the module is larger than \(maxModuleBytes) bytes (\(handle.size))"))
                }
                bytes = try await handle.bytes()
            } catch let error as CacheError {
                return .failure(ExecuteFailure(.bundleFetchFailed, error.summary, detail: error.debugDescription))
            } catch {
                return .failure(ExecuteFailure(.bundleFetchFailed, Text.short(String(describing: error)), detail: String(reflecting: error)))
            }
            return await BlockingIO.shared.run {
                Result { () throws(ExecuteFailure) in
                    try GuestModule.load(bytes, hash: hash, engine: engine, maxBytes: maxModuleBytes, maxTableElements: maxTableElements)
                }
            }
        }
        loading[hash] = task
        let result = await task.value
        loading[hash] = nil
        // A fetch failure is the module cache's to remember; a module that does not load is
        // remembered here.
        if case .failure(let failure) = result, failure.kind == .bundleFetchFailed || failure.detail == GuestModule.transientMarker {
            return result
        }
        tick += 1
        slots[hash] = Slot(result: result, lastUse: tick)
        bytes += Self.size(result)
        while slots.count > capacity || (bytes > maxBytes && slots.count > 1),
            let oldest = slots.filter({ $0.key != hash }).min(by: { $0.value.lastUse < $1.value.lastUse })
        {
            bytes -= Self.size(oldest.value.result)
            slots[oldest.key] = nil
        }
        return result
    }
}

/// The executor's metrics.
struct ExecuteMetrics: Sendable {
    let executions: Counter
    let duration: CoreMetrics.Timer
    private let prefix: String
    private let factory: any MetricsFactory
    private let failures: [String: Counter]

    init(prefix: String, factory: any MetricsFactory) {
        self.prefix = prefix
        self.factory = factory
        executions = Counter(label: prefix + "_total", factory: factory)
        duration = CoreMetrics.Timer(label: prefix + "_duration_seconds", factory: factory)
        var failures: [String: Counter] = [:]
        for kind in ExecuteFailure.Kind.all {
            failures[kind.rawValue] = Counter(label: prefix + "_failures_total", dimensions: [("kind", kind.rawValue)], factory: factory)
        }
        self.failures = failures
    }

    func failure(_ kind: ExecuteFailure.Kind) -> Counter {
        failures[kind.rawValue] ?? Counter(label: prefix + "_failures_total", dimensions: [("kind", kind.rawValue)], factory: factory)
    }
}
