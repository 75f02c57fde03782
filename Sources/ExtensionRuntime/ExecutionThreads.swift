import Foundation

/// The executor's own threads: handlers (and the blocking host calls they make) run here, never
/// on Swift's cooperative pool.
///
/// A warm request takes a few tens of microseconds, about what it costs to wake a sleeping
/// thread, so a thread that finishes a job keeps looking for the next one for ``spin`` before it
/// sleeps: under steady load, jobs are picked up without a wake-up. Threads start on demand up to
/// ``maximum`` and stop after ``idleTimeout`` without work; jobs beyond the limit wait in order.
final class ExecutionThreads: @unchecked Sendable {
    let maximum: Int
    let spin: Duration
    let idleTimeout: TimeInterval

    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var head = 0
    private var threads = 0
    private var sleeping = 0
    private var spinning = 0
    /// Sleeping threads already signalled that have not woken yet.
    private var wakeups = 0

    init(maximum: Int, spin: Duration = .microseconds(100), idleTimeout: TimeInterval = 30) {
        self.maximum = max(1, maximum)
        self.spin = spin
        self.idleTimeout = idleTimeout
    }

    /// Runs `body` on one of the threads. The calling task waits for it on its own thread for at
    /// most ``spin`` (a short job is answered without the calling thread going to sleep and being
    /// woken again, which costs as much as the job), then is suspended, not blocked.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        let handoff = Handoff<T>()
        submit { handoff.complete(body()) }
        let until = ContinuousClock.now + spin
        while ContinuousClock.now < until {
            if let value = handoff.result() { return value }
            for _ in 0..<32 { _ = ContinuousClock.now }
        }
        return await withCheckedContinuation { handoff.wait($0) }
    }

    private func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        if spinning + wakeups < jobs.count - head {
            if sleeping > wakeups {
                wakeups += 1
                condition.signal()
            } else if threads < maximum {
                threads += 1
                let thread = Thread { [self] in work() }
                thread.name = "extbundles-execute"
                thread.stackSize = 8 << 20
                thread.start()
            }
        }
        condition.unlock()
    }

    private var pending: Bool { head < jobs.count }

    private func take() -> (() -> Void)? {
        guard head < jobs.count else { return nil }
        let job = jobs[head]
        head += 1
        if head > 64 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }

    private func work() {
        condition.lock()
        while true {
            if let job = take() {
                condition.unlock()
                job()
                condition.lock()
                continue
            }
            // Look for work a little longer before sleeping.
            spinning += 1
            condition.unlock()
            let until = ContinuousClock.now + spin
            var found = false
            while ContinuousClock.now < until {
                condition.lock()
                found = pending
                condition.unlock()
                if found { break }
                for _ in 0..<64 { _ = ContinuousClock.now }
            }
            condition.lock()
            spinning -= 1
            if found || pending { continue }
            sleeping += 1
            let woke = condition.wait(until: Date(timeIntervalSinceNow: idleTimeout))
            sleeping -= 1
            if wakeups > 0 { wakeups -= 1 }
            if !woke && !pending {
                threads -= 1
                condition.unlock()
                return
            }
        }
    }
}

/// A job's result, handed to a caller that is either still looking for it or suspended.
final class Handoff<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    private var continuation: CheckedContinuation<T, Never>?

    /// The result, if it is there.
    func result() -> T? { lock.withLock { value } }

    /// Delivers the result (to the suspended caller, if it is).
    func complete(_ result: T) {
        lock.lock()
        if let continuation {
            self.continuation = nil
            lock.unlock()
            continuation.resume(returning: result)
        } else {
            value = result
            lock.unlock()
        }
    }

    /// Suspends the caller until the result comes (or resumes it at once if it has).
    func wait(_ continuation: CheckedContinuation<T, Never>) {
        lock.lock()
        if let value {
            lock.unlock()
            continuation.resume(returning: value)
        } else {
            self.continuation = continuation
            lock.unlock()
        }
    }
}
