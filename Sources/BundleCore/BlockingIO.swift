import Foundation

/// The one place where ExtBundles' async code does blocking work (file system calls, whole-file
/// hashing, archive extraction): a pool of threads outside Swift's cooperative pool, so a slow
/// disk never stalls the tasks that serve requests, and an actor never blocks while it holds
/// its isolation.
///
/// The policy of the libraries:
/// - an `async` API never makes a blocking system call on the calling task's thread: it runs
///   the call through ``run(_:)``;
/// - a synchronous API (``BundleArchive``'s extractor, say) blocks its caller, by design: call it
///   from ``run(_:)`` when you are in async code;
/// - work that is one stage of a pipeline whose other stages wait for it (the reader and decoder
///   stages of a file read) is started with ``spawn(_:)``, which always gets a thread at once, so
///   stages can never wait behind the jobs that are waiting for them.
///
/// Threads are started on demand up to ``maximumThreads`` and stop after ``idleTimeout`` seconds
/// without work; jobs beyond the limit wait in order. As Hummingbird's `FileIO` does with
/// `NIOThreadPool`, but without a dependency on SwiftNIO.
public final class BlockingIO: @unchecked Sendable {
    /// The pool the libraries use.
    public static let shared = BlockingIO()

    /// Threads that may run ``run(_:)`` jobs at once.
    public let maximumThreads: Int
    /// Seconds an idle thread waits for work before it stops.
    public let idleTimeout: TimeInterval

    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var head = 0
    private var threads = 0
    private var idle = 0

    /// Creates a pool.
    /// - Parameters:
    ///   - maximumThreads: threads for ``run(_:)`` jobs; default 32.
    ///   - idleTimeout: seconds before an idle thread stops; default 10.
    public init(maximumThreads: Int = 32, idleTimeout: TimeInterval = 10) {
        self.maximumThreads = max(1, maximumThreads)
        self.idleTimeout = idleTimeout
    }

    /// Runs `body` on a pool thread and returns its result to the calling task, which is
    /// suspended (not blocked) meanwhile.
    public func run<T>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let box = UncheckedBox(continuation)
            submit(force: false) { box.value.resume(with: Result { try body() }) }
        }
    }

    /// Runs a non-throwing `body` on a pool thread.
    public func run<T>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let box = UncheckedBox(continuation)
            submit(force: false) { box.value.resume(returning: body()) }
        }
    }

    /// Starts `body` on a thread of the pool at once (an idle one, or a new one even beyond
    /// ``maximumThreads``): for a pipeline stage that its caller waits for.
    public func spawn(_ body: @escaping @Sendable () -> Void) {
        submit(force: true, body)
    }

    /// Threads alive now (for tests and metrics).
    public var threadCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return threads
    }

    private func submit(force: Bool, _ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        let queued = jobs.count - head
        let startThread = queued > idle && (force || threads < maximumThreads)
        if startThread {
            threads += 1
        } else {
            condition.signal()
        }
        condition.unlock()
        if startThread {
            let thread = Thread { [self] in work() }
            thread.name = "extbundles-blocking-io"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// What a taken slot of the queue holds.
    private static let done: @Sendable () -> Void = {}

    private func work() {
        condition.lock()
        while true {
            if head < jobs.count {
                let job = jobs[head]
                // Release the slot at once: a finished job must not keep what it captured (a
                // 1 MiB chunk being written, say) alive until the queue is compacted.
                jobs[head] = Self.done
                head += 1
                if head > 64 && head * 2 > jobs.count {
                    jobs.removeFirst(head)
                    head = 0
                }
                condition.unlock()
                job()
                condition.lock()
                continue
            }
            idle += 1
            let woken = condition.wait(until: Date(timeIntervalSinceNow: idleTimeout))
            idle -= 1
            if !woken && head >= jobs.count {
                threads -= 1
                condition.unlock()
                return
            }
        }
    }
}

/// Carries a value that is used by exactly one thread at a time across a `@Sendable` boundary.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
