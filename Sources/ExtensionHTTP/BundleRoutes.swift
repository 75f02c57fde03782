public import BundleCore
public import ExtensionHost
import Foundation
public import Hummingbird
import HTTPTypes
import ManifestV2
import NIOCore

/// Alga's bundle routes (reference 4.4 to 4.7) over ``ExtensionHost/ExtensionHost``, for a host to
/// mount in its own Hummingbird application:
///
/// - `POST /api/ext-bundles/upload-proxy?filename=&size=&declaredHash=`: the body streams to a
///   new staging object as it arrives (never buffered whole); the size cap, the size and the
///   declared hash are checked while it streams, and a body that ends early, is too long, has
///   the wrong hash or is cut by the client leaves no staging object;
/// - `POST /api/ext-bundles/finalize` and `POST /api/ext-bundles/abort`.
///
/// Every answer is JSON with an `x-request-id` header (`<base36 ms>-<6 base36>`, as Alga makes
/// them); upload errors also carry `x-upload-proxy-why`. Each route checks an admin API key
/// (``APIKeyPolicy``) and a per-actor sliding-window rate limit before anything else.
public struct ExtensionBundleRoutes: Sendable {
    /// The services.
    public let host: ExtensionHost
    /// Who may call.
    public let keys: APIKeyPolicy
    /// The rate limit (separate counts per route).
    public let rateLimiter: SlidingWindowRateLimiter

    /// Creates the routes.
    public init(host: ExtensionHost, keys: APIKeyPolicy, rateLimiter: SlidingWindowRateLimiter = SlidingWindowRateLimiter()) {
        self.host = host
        self.keys = keys
        self.rateLimiter = rateLimiter
    }

    /// Adds the three routes to `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        let routes = self
        router.post("/api/ext-bundles/upload-proxy") { request, _ in await routes.upload(request) }
        router.post("/api/ext-bundles/finalize") { request, _ in await routes.finalize(request) }
        router.post("/api/ext-bundles/abort") { request, _ in await routes.abort(request) }
    }

    // MARK: - The routes

    func upload(_ request: Request) async -> Response {
        let id = RequestID.make()
        if let refusal = await gate(request, route: "upload-proxy", id: id, upload: true) { return refusal }
        let query = request.uri.queryParameters
        let parameters = UploadRequest(
            filename: query["filename"].map(String.init), size: query["size"].map(String.init),
            declaredHash: query["declaredHash"].map(String.init), contentLength: request.headers[.contentLength])
        // Alga's order: the parameters first, then the body.
        do {
            _ = try host.validate(parameters)
        } catch {
            return Self.error(error, id: id, upload: true)
        }
        // The handler is the body's only reader: a pump task reads it into a small bounded
        // channel that the store consumes, and the handler waits for the pump before it answers.
        // (A store may read its body from a task of its own, as AsyncHTTPClient does; if that
        // task read the request body directly, it could still be reading when Hummingbird drains
        // the rest of the body after the answer, and two readers of one body stop the process.)
        let channel = ChunkChannel(capacity: 4)
        let body = request.body
        let pump = Task {
            do {
                for try await chunk in body where chunk.readableBytes > 0 {
                    try await channel.send(Array(chunk.readableBytesView))
                }
                channel.finish()
            } catch {
                channel.fail(error)
            }
        }
        defer { pump.cancel() }
        // A body that ends before its first byte is Alga's `missing_body`.
        let hasBody: Bool
        do {
            hasBody = try await channel.peek()
        } catch {
            channel.close()
            _ = await pump.value
            return Self.error(HostError(.badRequest, status: 400, "Missing request body", why: "missing_body"), id: id, upload: true)
        }
        let stream: ByteStream? = hasBody ? ByteStream(unfolding: { try await channel.receive() }) : nil
        let response: Response
        do {
            response = Self.json(try await host.upload(parameters, body: stream), id: id)
        } catch {
            response = Self.error(error, id: id, upload: true)
        }
        channel.close()
        pump.cancel()
        _ = await pump.value
        return response
    }

    func finalize(_ request: Request) async -> Response {
        let id = RequestID.make()
        if let refusal = await gate(request, route: "finalize", id: id, upload: false) { return refusal }
        do {
            let bytes = try await Self.collect(request, limit: FinalizeRequest.maxBodyBytes)
            let parsed = try FinalizeRequest.parse(bytes)
            let result = try await host.finalize(parsed)
            return Self.json(result, id: id)
        } catch {
            return Self.error(error, id: id, upload: false)
        }
    }

    func abort(_ request: Request) async -> Response {
        let id = RequestID.make()
        if let refusal = await gate(request, route: "abort", id: id, upload: false) { return refusal }
        do {
            let bytes = try await Self.collect(request, limit: 64 << 10)
            guard let json = try? JSONReader.parse(bytes), case .object = json else { throw HostError(.badRequest, status: 400, "Invalid JSON body") }
            let result = try await host.abort(key: json["key"]?.string, reason: json["reason"]?.string)
            return Self.json(result, id: id)
        } catch {
            return Self.error(error, id: id, upload: false, genericMessage: "Failed to abort extension bundle upload.")
        }
    }

    // MARK: - Checks every route makes

    /// Authentication, then the rate limit; nil when the request may go on.
    func gate(_ request: Request, route: String, id: String, upload: Bool) async -> Response? {
        let actor: String
        switch keys.admin(request.headers) {
        case .admin(let who), .runner(let who): actor = who
        case .missing: return Self.plain(401, ["error": "Unauthorized: API key missing"], id: id, why: upload ? "api_key_missing" : nil)
        case .invalid: return Self.plain(401, ["error": "Unauthorized: API key invalid"], id: id, why: upload ? "api_key_invalid" : nil)
        case .forbidden:
            return Self.plain(403, ["error": "Forbidden", "code": "RBAC_FORBIDDEN"], id: id, why: upload ? "rbac_forbidden_missing_admin_header" : nil)
        }
        // In Alga's insecure mode any key passes, so the actor is Alga's: the first
        // x-forwarded-for, else x-real-ip, else "unknown".
        let who = keys.allowInsecure ? APIKeyPolicy.fingerprint(Self.forwardedActor(request.headers)) : actor
        guard await rateLimiter.allow(route: route, actor: who) else {
            return Self.plain(429, ["error": "Too Many Requests", "code": "RATE_LIMIT"], id: id, why: upload ? "rate_limited" : nil)
        }
        return nil
    }

    static func forwardedActor(_ headers: HTTPFields) -> String {
        if let forwarded = headers[HTTPField.Name("x-forwarded-for")!]?.split(separator: ",").first {
            let trimmed = forwarded.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty { return trimmed }
        }
        return headers[HTTPField.Name("x-real-ip")!] ?? "unknown"
    }

    // MARK: - Bodies and answers

    /// The whole body, at most `limit` bytes (413 `Request body too large` past it).
    static func collect(_ request: Request, limit: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in request.body {
            guard bytes.count + chunk.readableBytes <= limit else {
                throw HostError(.badRequest, status: 413, "Request body too large", details: ["limit": String(limit)])
            }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }

    static func json(_ value: some Encodable, id: String, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return response(status, Array(data), id: id, why: nil)
    }

    static func plain(_ status: Int, _ object: [String: String], id: String, why: String?) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return response(HTTPResponse.Status(code: status), Array(data), id: id, why: why)
    }

    static func error(_ error: any Error, id: String, upload: Bool, genericMessage: String = "Failed to finalize extension bundle.") -> Response {
        let hostError =
            (error as? HostError)
            ?? HostError(
                .internalError, status: 500, upload ? "Failed to prepare extension bundle upload." : genericMessage, why: "unhandled_exception",
                underlying: String(reflecting: error))
        let generic = upload ? hostError.message : genericMessage
        return response(
            HTTPResponse.Status(code: hostError.status), hostError.envelope(genericMessage: generic), id: id,
            why: upload ? (hostError.why ?? "unhandled_exception") : nil)
    }

    static func response(_ status: HTTPResponse.Status, _ body: [UInt8], id: String, why: String?) -> Response {
        var headers: HTTPFields = [.contentType: "application/json", RequestID.header: id]
        if let why { headers[HTTPField.Name("x-upload-proxy-why")!] = why }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Alga's request ids: `<milliseconds since 1970 in base 36>-<6 random base-36 characters>`.
enum RequestID {
    static let header = HTTPField.Name("x-request-id")!

    static func make() -> String {
        let milliseconds = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        let random = String((0..<6).map { _ in alphabet[Int.random(in: 0..<36)] })
        return String(milliseconds, radix: 36) + "-" + random
    }
}

/// A bounded hand-off of body chunks from one sender to one receiver: the sender waits while
/// ``capacity`` chunks are waiting, so a slow store slows the client down instead of the body
/// piling up in memory. ``close()`` ends it from the receiving side (a late receive or send then
/// throws); a second concurrent receiver is refused with an error, never a crash.
final class ChunkChannel: @unchecked Sendable {
    struct Closed: Error {}
    struct ConcurrentReceive: Error {}

    private let lock = NSLock()
    private let capacity: Int
    private var buffer: [[UInt8]] = []
    private var finished = false
    private var failure: (any Error)?
    private var closed = false
    private var receiver: CheckedContinuation<[UInt8]?, any Error>?
    private var sender: (chunk: [UInt8], continuation: CheckedContinuation<Void, any Error>)?

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Sends a chunk, waiting while the buffer is full.
    func send(_ chunk: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            lock.lock()
            if closed {
                lock.unlock()
                continuation.resume(throwing: Closed())
            } else if let receiver {
                self.receiver = nil
                lock.unlock()
                receiver.resume(returning: chunk)
                continuation.resume()
            } else if buffer.count < capacity {
                buffer.append(chunk)
                lock.unlock()
                continuation.resume()
            } else {
                sender = (chunk, continuation)
                lock.unlock()
            }
        }
    }

    /// The body ended.
    func finish() { end(nil) }

    /// The body failed (the client went away).
    func fail(_ error: any Error) { end(error) }

    private func end(_ error: (any Error)?) {
        lock.lock()
        finished = true
        failure = error
        let waiting = receiver
        receiver = nil
        lock.unlock()
        if let waiting {
            if let error { waiting.resume(throwing: error) } else { waiting.resume(returning: nil) }
        }
    }

    /// Ends the channel from the receiving side: waiting and later calls throw.
    func close() {
        lock.lock()
        closed = true
        let waitingSender = sender
        sender = nil
        let waitingReceiver = receiver
        receiver = nil
        lock.unlock()
        waitingSender?.continuation.resume(throwing: Closed())
        waitingReceiver?.resume(throwing: Closed())
    }

    /// Whether the body has a first byte (waits for it or for the end).
    func peek() async throws -> Bool {
        guard let chunk = try await receive() else { return false }
        lock.withLock { buffer.insert(chunk, at: 0) }
        return true
    }

    /// The next chunk, or nil at the end.
    func receive() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
            lock.lock()
            if closed {
                lock.unlock()
                continuation.resume(throwing: Closed())
            } else if !buffer.isEmpty {
                let chunk = buffer.removeFirst()
                let waiting = sender
                if let waiting {
                    buffer.append(waiting.chunk)
                    sender = nil
                }
                lock.unlock()
                waiting?.continuation.resume()
                continuation.resume(returning: chunk)
            } else if let waiting = sender {
                sender = nil
                lock.unlock()
                waiting.continuation.resume()
                continuation.resume(returning: waiting.chunk)
            } else if finished {
                let error = failure
                lock.unlock()
                if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: nil) }
            } else if receiver != nil {
                lock.unlock()
                continuation.resume(throwing: ConcurrentReceive())
            } else {
                receiver = continuation
                lock.unlock()
            }
        }
    }
}
