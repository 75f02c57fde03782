import Foundation

/// Responses kept by (tenant, extension, `x-idempotency-key`), bounded in count and time.
///
/// Alga's runner keeps them in one global map keyed by the header alone, without bound or expiry
/// (reference 6.5 step 2), so one tenant's key answers another's request. Here the key is scoped,
/// the oldest entries go first past ``capacity``, entries expire after ``ttl``, and a request
/// whose key is already running waits for that run instead of running the handler twice.
actor IdempotencyCache {
    struct Key: Hashable {
        var tenant: String
        var `extension`: String
        var key: String
    }

    private struct Entry {
        var response: ExecuteResponse
        var expires: Date
        var order: UInt64
    }

    let capacity: Int
    let ttl: TimeInterval
    private let now: @Sendable () -> Date
    private var entries: [Key: Entry] = [:]
    private var inFlight: [Key: Task<ExecuteResponse, Never>] = [:]
    private var counter: UInt64 = 0

    init(capacity: Int, ttl: TimeInterval, now: @escaping @Sendable () -> Date) {
        self.capacity = max(0, capacity)
        self.ttl = ttl
        self.now = now
    }

    /// How many responses are kept.
    var count: Int { entries.count }

    /// The kept response for `key`, the response of a run of it in flight, or the response of
    /// `run`, kept when `shouldKeep` says so.
    func response(
        for key: Key, shouldKeep: @escaping @Sendable (ExecuteResponse) -> Bool, run: @escaping @Sendable () async -> ExecuteResponse
    ) async -> (response: ExecuteResponse, replayed: Bool) {
        let moment = now()
        if let entry = entries[key] {
            if entry.expires > moment { return (entry.response, true) }
            entries[key] = nil
        }
        if let running = inFlight[key] { return (await running.value, true) }
        let task = Task { await run() }
        inFlight[key] = task
        let response = await task.value
        inFlight[key] = nil
        if shouldKeep(response), capacity > 0, ttl > 0 {
            counter += 1
            entries[key] = Entry(response: response, expires: now().addingTimeInterval(ttl), order: counter)
            if entries.count > capacity { evict() }
        }
        return (response, false)
    }

    private func evict() {
        let moment = now()
        entries = entries.filter { $0.value.expires > moment }
        guard entries.count > capacity else { return }
        // Down to nine tenths at once, so a full cache sorts once per tenth of its inserts.
        let excess = entries.count - capacity * 9 / 10
        for (key, _) in entries.sorted(by: { $0.value.order < $1.value.order }).prefix(excess) { entries[key] = nil }
    }
}
