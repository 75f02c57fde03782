import BundleCore
import Foundation

/// Recent answers of ``ExtensionHost/resolveContentHash(_:tenant:)``, keyed by the tenant's and
/// the reference's bytes, each kept for a short time. Bounded: at most ``capacity`` answers
/// (when full it starts over). A change this host makes to any install bumps the generation,
/// which drops every answer at once, also one being read from the registry at that moment.
final class ResolveCache: @unchecked Sendable {
    private struct Key: Hashable {
        var tenant: [UInt8]
        var reference: [UInt8]
    }

    static let capacity = 100_000

    private let ttl: TimeInterval
    private let lock = NSLock()
    private var answers: [Key: (until: Date, generation: UInt64, answer: Result<ContentHash, HostError>)] = [:]
    private var currentGeneration: UInt64 = 0

    init(ttl: TimeInterval) { self.ttl = ttl }

    /// The generation to hand to ``remember(_:tenant:reference:at:generation:)`` for a read that
    /// starts now.
    var generation: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return currentGeneration
    }

    func answer(tenant: String, reference: String, at time: Date) -> Result<ContentHash, HostError>? {
        guard ttl > 0 else { return nil }
        let key = Key(tenant: Array(tenant.utf8), reference: Array(reference.utf8))
        lock.lock()
        defer { lock.unlock() }
        guard let entry = answers[key], entry.generation == currentGeneration, entry.until > time else { return nil }
        return entry.answer
    }

    func remember(_ answer: Result<ContentHash, HostError>, tenant: String, reference: String, at time: Date, generation: UInt64) {
        guard ttl > 0 else { return }
        let key = Key(tenant: Array(tenant.utf8), reference: Array(reference.utf8))
        lock.lock()
        defer { lock.unlock() }
        guard generation == currentGeneration else { return }  // an install changed meanwhile
        if answers.count >= Self.capacity { answers.removeAll(keepingCapacity: true) }
        answers[key] = (time.addingTimeInterval(ttl), generation, answer)
    }

    /// Drops every answer (this host changed an install).
    func invalidate() {
        lock.lock()
        defer { lock.unlock() }
        currentGeneration &+= 1
        answers.removeAll(keepingCapacity: true)
    }
}
