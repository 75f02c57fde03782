/// Runs an extension's handler for one request: the seam between the runner's HTTP layer (or a
/// host's own code) and the WebAssembly engine.
///
/// The contract every implementation keeps:
/// - ``execute(_:options:)`` never throws and always answers: a runner-side failure is a
///   response with `error` set (``ExecuteFailure``, reference 6.5's table), the handler's own
///   answer has `error` nil, whatever its status;
/// - a request is judged on its own: no state of one request (memory, globals, secrets) is seen
///   by another, of the same tenant or not;
/// - an unknown provider is `unknown_capabilities: ...` before anything runs;
/// - with an idempotency key, a completed handler call is answered again for the same
///   (tenant, extension, key) without running the handler; runner-side failures are not kept.
///
/// ``WasmKitExecutor`` runs `wasm-core@1` modules; ``StubExecutor`` answers from a closure for
/// hosts' tests.
public protocol Executor: Sendable {
    /// Executes `request`.
    func execute(_ request: ExecuteRequest, options: ExecuteOptions) async -> ExecuteResponse
}

extension Executor {
    /// Executes `request` without an idempotency key.
    public func execute(_ request: ExecuteRequest) async -> ExecuteResponse {
        await execute(request, options: ExecuteOptions())
    }
}

/// Per-call options that do not travel in the request body (they are HTTP headers of
/// `POST /v1/execute`).
public struct ExecuteOptions: Sendable, Equatable {
    /// `x-idempotency-key`.
    public var idempotencyKey: String?
    /// `x-request-id`, used when the body's `context.request_id` is absent.
    public var requestID: String?

    /// Creates options.
    public init(idempotencyKey: String? = nil, requestID: String? = nil) {
        self.idempotencyKey = idempotencyKey
        self.requestID = requestID
    }
}

/// An ``Executor`` that answers from a closure and records what it was asked, for the tests of
/// hosts that sit in front of a runner. It checks capabilities as a real executor does.
public actor StubExecutor: Executor {
    /// Answers a request that passed the capability check.
    public typealias Handler = @Sendable (ExecuteRequest) async -> ExecuteResponse

    private let handler: Handler
    private var received: [(request: ExecuteRequest, options: ExecuteOptions)] = []

    /// Creates a stub that answers with `handler`.
    public init(handler: @escaping Handler) { self.handler = handler }

    /// A stub that answers every request with `response`.
    public init(always response: ExecuteResponse) { self.handler = { _ in response } }

    /// The requests seen, oldest first.
    public var requests: [ExecuteRequest] { received.map(\.request) }

    /// The options seen, oldest first.
    public var options: [ExecuteOptions] { received.map(\.options) }

    /// Records the request and answers it.
    public func execute(_ request: ExecuteRequest, options: ExecuteOptions) async -> ExecuteResponse {
        received.append((request, options))
        do {
            _ = try Capability.granted(by: request.providers)
        } catch {
            return ExecuteResponse(failure: error)
        }
        return await handler(request)
    }
}
