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
        var user: String
        var method: String
        var path: String
        var key: String
    }

    private struct Entry {
        var response: ExecuteResponse
        var expires: Date
        var order: UInt64
    }

    let capacity: Int
    let maxBytes: Int
    let ttl: TimeInterval
    private var bytes = 0
    private let now: @Sendable () -> Date
    private var entries: [Key: Entry] = [:]
    private var inFlight: [Key: Task<ExecuteResponse, Never>] = [:]
    private var counter: UInt64 = 0

    init(capacity: Int, maxBytes: Int, ttl: TimeInterval, now: @escaping @Sendable () -> Date) {
        self.capacity = max(0, capacity)
        self.maxBytes = max(0, maxBytes)
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
            remove(key)
        }
        if let running = inFlight[key] { return (await running.value, true) }
        let task = Task { await run() }
        inFlight[key] = task
        let response = await task.value
        inFlight[key] = nil
        if shouldKeep(response), capacity > 0, ttl > 0, Self.size(response) <= maxBytes {
            counter += 1
            remove(key)
            entries[key] = Entry(response: response, expires: now().addingTimeInterval(ttl), order: counter)
            bytes += Self.size(response)
            if entries.count > capacity || bytes > maxBytes { evict() }
        }
        return (response, false)
    }

    private static func size(_ response: ExecuteResponse) -> Int {
        (response.bodyB64?.utf8.count ?? 0) + response.headers.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count } + 64
    }

    private func remove(_ key: Key) {
        if let entry = entries.removeValue(forKey: key) { bytes -= Self.size(entry.response) }
    }

    private func evict() {
        let moment = now()
        for (key, entry) in entries where entry.expires <= moment { remove(key) }
        guard entries.count > capacity || bytes > maxBytes else { return }
        // Down to nine tenths at once, so a full cache sorts once per tenth of its inserts.
        for (key, _) in entries.sorted(by: { $0.value.order < $1.value.order }) {
            if entries.count <= capacity - capacity / 10 && bytes <= maxBytes - maxBytes / 10 { break }
            remove(key)
        }
    }
}
