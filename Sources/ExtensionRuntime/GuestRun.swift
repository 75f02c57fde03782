import BundleCore
import Dispatch
import Foundation
import Logging
import ManifestV2
@_spi(Fuzzing) import WasmKit

/// What one execution needs besides the module: the request for the guest, its grants, secrets
/// and limits.
struct GuestInput: Sendable {
    var requestJSON: [UInt8]
    var grants: Set<Capability>
    var secrets: [String: String]
    var memoryBytes: Int
    var fuel: UInt64?
    var deadline: DispatchTime
    var log: RequestLog
}

/// A logger and the request's ids, merged into a record only when one is written (setting
/// metadata on a `Logger` makes some handlers re-render it, which costs more than a warm request).
struct RequestLog: Sendable {
    var logger: Logger
    var requestID: String
    var tenant: String
    var `extension`: String
    var contentHash: String

    /// The request's ids as metadata.
    var metadata: Logger.Metadata {
        ["request_id": .string(requestID), "tenant": .string(tenant), "extension": .string(`extension`), "content_hash": .string(contentHash)]
    }

    func callAsFunction(_ level: Logger.Level, _ message: @autoclosure () -> String, _ extra: Logger.Metadata = [:]) {
        guard logger.logLevel <= level else { return }
        logger.log(level: level, "\(message())", metadata: metadata.merging(extra) { $1 })
    }
}

/// The settings of the host side of a run.
struct GuestHostSettings: Sendable {
    var maxResponseBytes: Int
    var maxTableElements: Int
    var maxLogLines: Int
    var maxLogLineBytes: Int
    var egress: EgressPolicy
    var fetchTimeout: Duration
    var maxFetchResponseBytes: Int
    var maxFetchRequestBytes: Int
    var httpClient: (any OutboundHTTPClient)?
}

/// One execution of a guest: a pooled instance or a new one, the request written with `alloc`, the
/// handler called under a deadline, the response read back. Runs synchronously on the calling
/// thread (an executor's own pool, never Swift's cooperative pool: a handler and its host calls
/// block their thread).
enum GuestRun {
    /// An error a host function throws to end the run (the guest cannot catch it).
    struct HostAbort: Error {
        var failure: ExecuteFailure
    }

    static func run(_ guest: GuestModule, engine: Engine, input: GuestInput, settings: GuestHostSettings) -> Result<ExecuteResponse, ExecuteFailure> {
        if DispatchTime.now() >= input.deadline { return .failure(.timeout) }
        // A pooled instance whose memory is already past this request's cap is not used.
        var pooled = guest.pool?.take()
        if let instance = pooled, instance.memory.byteCount > input.memoryBytes { pooled = nil }
        let store = pooled?.store ?? Store(engine: engine)
        let limiter = pooled?.limiter ?? GuestLimiter(maxMemoryBytes: input.memoryBytes, maxTableElements: settings.maxTableElements)
        limiter.maxMemoryBytes = input.memoryBytes
        if pooled == nil { store.resourceLimiter = limiter }
        store.fuel = Fuel(remaining: input.fuel ?? (UInt64.max >> 1))
        let control = RunControl(store: store, deadline: input.deadline)
        Watchdog.shared.watch(control)
        defer { control.finish() }
        let current = pooled?.current ?? CurrentRequest()
        current.state = HostState(input: input, settings: settings, control: control)
        do {
            let instance: PooledInstance?
            let response: ExecuteResponse
            if let pooled {
                instance = pooled
                response = try call(alloc: pooled.alloc, handler: pooled.handler, memory: pooled.memory, input: input, settings: settings)
            } else {
                let fresh = try instantiate(guest, store: store, current: current)
                instance =
                    guest.pool == nil
                    ? nil
                    : try? PooledInstance(
                        store: store, instance: fresh.instance, memory: fresh.memory, alloc: fresh.alloc, handler: fresh.handler, limiter: limiter,
                        current: current, globalNames: guest.globalNames)
                response = try call(alloc: fresh.alloc, handler: fresh.handler, memory: fresh.memory, input: input, settings: settings)
            }
            // Only an instance whose request completed goes back, after the watchdog has let go of it.
            control.finish()
            current.state = nil
            if let instance, !control.timedOut { guest.pool?.give(instance) }
            return .success(response)
        } catch let abort as HostAbort {
            return .failure(control.timedOut ? .timeout : abort.failure)
        } catch let failure as ExecuteFailure {
            return .failure(control.timedOut ? .timeout : failure)
        } catch {
            if control.timedOut { return .failure(.timeout) }
            let text = String(describing: error)
            if text.hasPrefix("Trap: out of fuel") { return .failure(.outOfFuel) }
            if text.contains(initialMemoryTooLarge) {
                return .failure(.executeFailed("the module's initial memory is larger than memory_mb", detail: text))
            }
            if text.hasPrefix("Trap: ") {
                let reason = text.dropFirst(6).split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
                return .failure(.executeFailed("trap: \(Text.short(reason))", detail: text))
            }
            return .failure(.executeFailed(Text.short(text), detail: String(reflecting: error)))
        }
    }

    /// WasmKit's words for an initial memory past the limiter's cap.
    static let initialMemoryTooLarge = "initial memory size exceeds the resource limit"

    private struct Fresh {
        var instance: Instance
        var memory: Memory
        var alloc: Function
        var handler: Function
    }

    private static func instantiate(_ guest: GuestModule, store: Store, current: CurrentRequest) throws -> Fresh {
        var imports = Imports()
        for host in guest.imports {
            imports.define(module: "alga", name: host.rawValue, HostState.function(host, store: store, current: current))
        }
        let instance: Instance
        do {
            instance = try guest.module.instantiate(store: store, imports: imports)
        } catch let error where !(error is GuestRun.HostAbort) && !String(describing: error).hasPrefix("Trap: ")
            && !String(describing: error).contains(initialMemoryTooLarge)
        {
            // Traps and a memory past the cap are named by `run`'s own mapping.
            throw ExecuteFailure.executeFailed("instantiate: \(Text.short(String(describing: error)))", detail: String(reflecting: error))
        }
        guard let memory = instance.exports[memory: "memory"], let alloc = instance.exports[function: "alloc"],
            let handler = instance.exports[function: "handler"]
        else { throw ExecuteFailure.executeFailed("the instance lacks memory, alloc or handler") }
        return Fresh(instance: instance, memory: memory, alloc: alloc, handler: handler)
    }

    private static func call(alloc: Function, handler: Function, memory: Memory, input: GuestInput, settings: GuestHostSettings) throws
        -> ExecuteResponse
    {
        let request = input.requestJSON
        let requestPointer = try allocate(request.count, alloc: alloc, memory: memory, what: "the request")
        try GuestMemory.write(request, at: requestPointer, memory: memory)
        let outPointer = try allocate(8, alloc: alloc, memory: memory, what: "the response pointer")
        try GuestMemory.write([UInt8](repeating: 0, count: 8), at: outPointer, memory: memory)
        let result = try handler([.i32(requestPointer), .i32(UInt32(request.count)), .i32(outPointer)])
        guard let first = result.first, case .i32(let code) = first else { throw ExecuteFailure.executeFailed("handler returned no i32") }
        if code != 0 { throw ExecuteFailure.executeFailed("handler returned \(Int32(bitPattern: code))") }
        let pair = try GuestMemory.read(at: outPointer, count: 8, memory: memory, what: "out_ptr")
        let responsePointer = UInt32(pair[0]) | UInt32(pair[1]) << 8 | UInt32(pair[2]) << 16 | UInt32(pair[3]) << 24
        let responseLength = UInt32(pair[4]) | UInt32(pair[5]) << 8 | UInt32(pair[6]) << 16 | UInt32(pair[7]) << 24
        guard Int(responseLength) <= settings.maxResponseBytes else {
            throw ExecuteFailure.executeFailed("response too large", detail: "\(responseLength) bytes, cap \(settings.maxResponseBytes)")
        }
        let bytes = try GuestMemory.read(at: responsePointer, count: Int(responseLength), memory: memory, what: "the response")
        return try GuestResponse.decode(bytes)
    }

    /// `alloc(count)`, checked: non-zero and inside memory.
    static func allocate(_ count: Int, alloc: Function, memory: Memory, what: String) throws -> UInt32 {
        guard count <= Int(Int32.max) else { throw ExecuteFailure.executeFailed("\(what) is too large for the guest") }
        let result = try alloc([.i32(UInt32(count))])
        guard let first = result.first, case .i32(let pointer) = first, pointer != 0 else {
            throw ExecuteFailure.executeFailed("alloc(\(count)) failed for \(what)")
        }
        guard UInt64(pointer) + UInt64(count) <= UInt64(memory.byteCount) else {
            throw ExecuteFailure.executeFailed("alloc(\(count)) returned \(pointer), outside memory, for \(what)")
        }
        return pointer
    }
}

/// Checked access to a guest's linear memory (WasmKit's accessors stop the process on an
/// out-of-range access, so every range is checked first).
enum GuestMemory {
    static func inBounds(_ pointer: UInt32, _ count: Int, _ memory: Memory) -> Bool {
        count >= 0 && UInt64(pointer) + UInt64(count) <= UInt64(memory.byteCount)
    }

    static func write(_ bytes: [UInt8], at pointer: UInt32, memory: Memory) throws {
        guard inBounds(pointer, bytes.count, memory) else { throw ExecuteFailure.executeFailed("a write at \(pointer) is outside memory") }
        guard !bytes.isEmpty else { return }
        memory.withUnsafeMutableBufferPointer(offset: UInt(pointer), count: bytes.count) { buffer in
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
    }

    static func read(at pointer: UInt32, count: Int, memory: Memory, what: String) throws -> [UInt8] {
        guard inBounds(pointer, count, memory) else {
            throw ExecuteFailure.executeFailed("\(what) (\(count) bytes at \(pointer)) is outside memory (\(memory.byteCount) bytes)")
        }
        guard count > 0 else { return [] }
        return memory.withUnsafeBufferPointer(offset: UInt(pointer), count: count) { Array($0) }
    }
}

/// Caps a store's memory and tables.
///
/// Memory: each memory at most `maxMemoryBytes`. Tables: every table created or grown counts its
/// new size against one budget for the whole store (a growth counts the table's whole new size,
/// so the sum only ever overstates), so many tables cannot add up to more than one may hold.
final class GuestLimiter: ResourceLimiter, @unchecked Sendable {
    /// Set for each request (a pooled instance serves requests with different caps).
    var maxMemoryBytes: Int {
        get { lock.withLock { memoryCap } }
        set { lock.withLock { memoryCap = newValue } }
    }
    private var memoryCap: Int
    let maxTableElements: Int
    private let lock = NSLock()
    private var tableElements = 0

    init(maxMemoryBytes: Int, maxTableElements: Int) {
        self.memoryCap = maxMemoryBytes
        self.maxTableElements = maxTableElements
    }

    func limitMemoryGrowth(to desired: Int) throws -> Bool { lock.withLock { desired <= memoryCap } }

    func limitTableGrowth(to desired: Int) throws -> Bool {
        lock.withLock {
            guard desired <= maxTableElements - tableElements else { return false }
            tableElements += desired
            return true
        }
    }
}

/// Stops a run at its deadline.
///
/// WasmKit checks fuel at every region of translated code, so draining a store's fuel stops a
/// guest at its next loop iteration or call. The drain is a plain write from another thread, which
/// may race with the interpreter's own read-modify-write of the same cell; the watchdog repeats it
/// every 200 µs until the run reports that it has finished, so one lost write only delays the stop
/// by a fraction of a millisecond. The store is thread-confined otherwise; this is the one
/// cross-thread access.
final class RunControl: @unchecked Sendable {
    private let lock = NSLock()
    private var store: Store?
    let deadline: DispatchTime
    private var finished = false
    private var fired = false

    init(store: Store, deadline: DispatchTime) {
        self.store = store
        self.deadline = deadline
    }

    /// Whether the deadline passed before the run finished.
    var timedOut: Bool { lock.withLock { fired } }

    /// Whether the run has finished.
    var isFinished: Bool { lock.withLock { finished } }

    /// Drains the fuel, unless the run has finished; returns whether it has.
    ///
    /// One write can be lost to the interpreter's own read-modify-write (a tight loop spends most
    /// of its time between that read and that write), so a drain is a burst of writes, a few
    /// microseconds long: the interpreter's next read lands after one of them.
    func drain() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !finished, let store else { return true }
        fired = true
        for _ in 0..<2_000 { store.fuel = Fuel(remaining: 0) }
        return false
    }

    /// Marks the run finished; the drain stops, and the store (the guest's memory) is let go at
    /// once rather than when the watchdog next looks.
    func finish() {
        lock.withLock {
            finished = true
            store = nil
        }
    }
}

/// One thread that stops every run at its deadline (never a thread per run, never a thread of
/// a shared queue held while a guest winds down).
final class Watchdog: @unchecked Sendable {
    static let shared = Watchdog()

    private let condition = NSCondition()
    private var watched: [(due: UInt64, control: RunControl)] = []
    private var started = false
    /// When the thread wakes next (a new run is signalled only when it is due sooner).
    private var wake = UInt64.max

    /// Watches `control` until its run finishes.
    func watch(_ control: RunControl) {
        condition.lock()
        let due = control.deadline.uptimeNanoseconds
        watched.append((due, control))
        if !started {
            started = true
            let thread = Thread { [self] in loop() }
            thread.name = "extbundles-watchdog"
            thread.start()
        }
        if due < wake { condition.signal() }
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            var index = 0
            var next = UInt64.max
            while index < watched.count {
                let entry = watched[index]
                if entry.control.isFinished {
                    watched.swapAt(index, watched.count - 1)
                    watched.removeLast()
                    continue
                }
                if entry.due <= now {
                    if entry.control.drain() {
                        watched.swapAt(index, watched.count - 1)
                        watched.removeLast()
                        continue
                    }
                    watched[index].due = now + 200_000
                }
                next = min(next, watched[index].due)
                index += 1
            }
            if next == UInt64.max {
                wake = UInt64.max
                condition.wait()
            } else {
                // Finished runs are swept at the next wake-up; wake at least every 50 ms for them.
                let moment = DispatchTime.now().uptimeNanoseconds
                let wait = min(next - min(next, moment), 50_000_000)
                wake = moment + wait
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(wait) / 1e9))
            }
        }
    }
}
