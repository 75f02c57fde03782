import BundleCore
import Dispatch
import Foundation
import Logging
import ManifestV2
import WasmKit

/// The per-run state behind the `alga` imports: grants, the log budget, the deadline.
///
/// Every import fails softly: a call without its capability, with a range outside memory or a
/// malformed request does nothing (logs) or returns a negative code (fetch, secrets); it never
/// traps. Only the deadline ends a run from inside an import.
final class HostState: @unchecked Sendable {
    let input: GuestInput
    let settings: GuestHostSettings
    let control: RunControl
    private var logLines = 0
    private var logsDropped = false
    /// Set while an import calls back into the guest (its `alloc`): an import called from there
    /// is refused, so a guest cannot make the host recurse without end.
    private var inCallback = false

    init(input: GuestInput, settings: GuestHostSettings, control: RunControl) {
        self.input = input
        self.settings = settings
        self.control = control
    }

    /// Return codes of `http.fetch` and `secret_get` (documented in `docs/guest-abi.md`).
    enum Code: Int32 {
        case ok = 0
        case invalidRequest = -1
        case notAllowed = -2
        case transport = -3
        case tooLarge = -4
        case `internal` = -5
        case missing = -6
    }

    /// The import `host`, serving whichever request `current` holds when it is called.
    static func function(_ host: GuestModule.HostImport, store: Store, current: CurrentRequest) -> Function {
        Function(store: store, type: host.type) { caller, args in
            guard let state = current.state else { throw GuestRun.HostAbort(failure: .executeFailed("an import was called outside a request")) }
            switch host {
            case .logInfo: return try state.log(caller, args, level: .info)
            case .logError: return try state.log(caller, args, level: .error)
            case .httpFetch: return [.i32(UInt32(bitPattern: try state.fetch(caller, args).rawValue))]
            case .secretGet: return [.i32(UInt32(bitPattern: try state.secret(caller, args).rawValue))]
            }
        }
    }

    private func arguments(_ args: [Value]) -> [UInt32] {
        args.map { if case .i32(let value) = $0 { value } else { 0 } }
    }

    /// A line of the host's about the guest, counted against the guest's log budget (a guest
    /// looping on a refused fetch must not flood the log).
    private func hostLog(_ level: Logger.Level, _ message: @autoclosure () -> String) {
        guard logLines < settings.maxLogLines else { return }
        logLines += 1
        input.log(level, message(), ["source": "host"])
    }

    private func checkDeadline() throws {
        if DispatchTime.now() >= input.deadline || control.timedOut { throw GuestRun.HostAbort(failure: .timeout) }
    }

    // MARK: log_info, log_error

    func log(_ caller: borrowing Caller, _ args: [Value], level: Logger.Level) throws -> [Value] {
        try checkDeadline()
        guard input.grants.contains(.logEmit), !inCallback else { return [] }
        guard logLines < settings.maxLogLines else {
            if !logsDropped {
                logsDropped = true
                input.log(.warning, "guest log lines past \(settings.maxLogLines) are dropped", ["source": "guest"])
            }
            return []
        }
        logLines += 1
        let values = arguments(args)
        guard let memory = caller.instance?.exports[memory: "memory"] else { return [] }
        let count = min(Int(values[1]), settings.maxLogLineBytes)
        guard let bytes = try? GuestMemory.read(at: values[0], count: count, memory: memory, what: "a log line") else {
            input.log(.debug, "a guest log line outside memory was dropped", ["source": "guest"])
            return []
        }
        var line = Text.escapingControls(String(decoding: bytes, as: UTF8.self))
        if Int(values[1]) > count { line += "…" }
        input.log(level, line, ["source": "guest"])
        return []
    }

    // MARK: secret_get

    func secret(_ caller: borrowing Caller, _ args: [Value]) throws -> Code {
        try checkDeadline()
        guard !inCallback else { return .internal }
        guard input.grants.contains(.secretsGet) else { return .notAllowed }
        let values = arguments(args)
        guard values[1] <= 1024, let instance = caller.instance, let memory = instance.exports[memory: "memory"],
            let bytes = try? GuestMemory.read(at: values[0], count: Int(values[1]), memory: memory, what: "a secret name")
        else { return .invalidRequest }
        guard let value = input.secrets[String(decoding: bytes, as: UTF8.self)] else { return .missing }
        return try hand(Array(value.utf8), to: instance, memory: memory, outPointer: values[2])
    }

    // MARK: http.fetch

    func fetch(_ caller: borrowing Caller, _ args: [Value]) throws -> Code {
        try checkDeadline()
        guard !inCallback else { return .internal }
        guard input.grants.contains(.httpFetch) else {
            hostLog(.debug, "http.fetch without cap:http.fetch refused")
            return .notAllowed
        }
        let values = arguments(args)
        guard let instance = caller.instance, let memory = instance.exports[memory: "memory"] else { return .internal }
        guard UInt64(values[1]) <= UInt64(settings.maxFetchRequestBytes),
            let bytes = try? GuestMemory.read(at: values[0], count: Int(values[1]), memory: memory, what: "a fetch request"),
            let request = Self.outboundRequest(bytes)
        else { return .invalidRequest }
        guard settings.egress.allows(host: request.host), settings.egress.allowsAddress(of: request.host) else {
            hostLog(.info, "http.fetch to \(request.host) refused by the egress rules")
            return .notAllowed
        }
        guard let client = settings.httpClient else { return .internal }
        // The fetch runs on the HTTP client's event loop; this thread waits for it, never past
        // the run's deadline.
        let remaining = Double(input.deadline.uptimeNanoseconds &- min(input.deadline.uptimeNanoseconds, DispatchTime.now().uptimeNanoseconds)) / 1e9
        let timeout = min(settings.fetchTimeout, .nanoseconds(Int64(remaining * 1e9)))
        let outcome = LockedValue<Result<OutboundResponse, OutboundFailure>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let limit = settings.maxFetchResponseBytes
        let task = Task {
            do throws(OutboundFailure) {
                let response = try await client.fetch(request, timeout: timeout, maxResponseBytes: limit)
                outcome.withLock { $0 = .success(response) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        if done.wait(timeout: input.deadline) == .timedOut {
            task.cancel()
            throw GuestRun.HostAbort(failure: .timeout)
        }
        switch outcome.withLock({ $0 }) {
        case .none:
            return .transport
        case .success(let response):
            var writer = JSONWriter(capacity: response.body.count * 4 / 3 + 256)
            writer.beginObject()
            writer.key("status")
            writer.int(response.status)
            writer.member("headers", map: response.headers)
            writer.member("body_b64", Data(response.body).base64EncodedString())
            writer.endObject()
            return try hand(writer.bytes, to: instance, memory: memory, outPointer: values[2])
        case .failure(let failure):
            hostLog(.debug, "http.fetch to \(request.host) failed: \(failure.debugDescription)")
            switch failure.kind {
            case .tooLarge: return .tooLarge
            case .timeout:
                try checkDeadline()
                return .transport
            case .transport: return .transport
            }
        }
    }

    /// Copies `bytes` into memory from the guest's `alloc` and stores `(ptr, len)` at `outPointer`.
    /// A trap (or the deadline) inside `alloc` ends the run; an `alloc` that fails or answers
    /// outside memory is `-5`.
    private func hand(_ bytes: [UInt8], to instance: Instance, memory: Memory, outPointer: UInt32) throws -> Code {
        guard GuestMemory.inBounds(outPointer, 8, memory), let alloc = instance.exports[function: "alloc"] else { return .internal }
        inCallback = true
        defer { inCallback = false }
        let pointer: UInt32
        do {
            pointer = try GuestRun.allocate(bytes.count, alloc: alloc, memory: memory, what: "an import's answer")
        } catch is ExecuteFailure {
            return .internal
        }
        guard (try? GuestMemory.write(bytes, at: pointer, memory: memory)) != nil else { return .internal }
        let length = UInt32(bytes.count)
        let pair: [UInt8] = [pointer, length].flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
        guard (try? GuestMemory.write(pair, at: outPointer, memory: memory)) != nil else { return .internal }
        return .ok
    }

    /// `{url, method?, headers?, body_b64?}`, checked; nil when malformed.
    static func outboundRequest(_ bytes: [UInt8]) -> OutboundRequest? {
        guard let json = try? JSONReader.parse(bytes, maxDepth: 8), case .object = json, let urlText = json["url"]?.string,
            let (url, host) = OutboundRequest.checkedURL(urlText)
        else { return nil }
        var method = "GET"
        if let value = json["method"], value != .null {
            guard let text = value.string?.uppercased(), !text.isEmpty, text.utf8.count <= 16, text.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A })
            else { return nil }
            method = text
        }
        var headers: [(String, String)] = []
        if let value = json["headers"], value != .null {
            guard case .object(let members) = value else { return nil }
            for (name, member) in members {
                guard let text = member.string, GuestResponse.isHeaderName(name), GuestResponse.isHeaderValue(text),
                    !GuestResponse.isHostControlled(name)
                else { return nil }
                headers.append((name, text))
            }
        }
        var body: [UInt8]?
        if let value = json["body_b64"], value != .null {
            guard let text = value.string, let data = Data(base64Encoded: text) else { return nil }
            body = Array(data)
        }
        return OutboundRequest(url: url, host: host, method: method, headers: headers, body: body)
    }
}

/// Reads what a handler answered.
enum GuestResponse {
    /// A JSON object with a `status` member is a response and must be well formed; any other
    /// bytes are an opaque body (status 200, no headers).
    static func decode(_ bytes: [UInt8]) throws(ExecuteFailure) -> ExecuteResponse {
        guard let first = bytes.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }), first == UInt8(ascii: "{"),
            let json = try? JSONReader.parse(bytes, maxDepth: 16), let statusValue = json["status"]
        else { return ExecuteResponse(status: 200, headers: [:], body: bytes) }
        guard case .number(let text) = statusValue, let status = Int(text), (100...599).contains(status) else {
            throw .executeFailed("bad response: status must be an integer from 100 to 599")
        }
        var headers: [String: String] = [:]
        if let value = json["headers"], value != .null {
            guard case .object(let members) = value else { throw .executeFailed("bad response: headers must be an object of strings") }
            for (name, member) in members {
                guard let text = member.string else { throw .executeFailed("bad response: header \(Text.short(name, 64)) is not a string") }
                guard isHeaderName(name), isHeaderValue(text) else {
                    throw .executeFailed("bad response: header \(Text.short(name, 64)) is not a valid HTTP header")
                }
                // Framing and connection headers belong to whoever sends the answer on.
                if isHostControlled(name) && name.lowercased() != "host" { continue }
                headers[name.lowercased()] = text
            }
        }
        var bodyB64: String?
        if let value = json["body_b64"], value != .null {
            // Checked by decoding; the guest's own text is passed on.
            guard let text = value.string, Data(base64Encoded: text) != nil else {
                throw .executeFailed("bad response: body_b64 is not standard base64")
            }
            bodyB64 = text
        }
        return ExecuteResponse(status: status, headers: headers, bodyB64: bodyB64, error: nil)
    }

    /// Headers about the connection or the message's framing, which the host sets: a guest may
    /// not send them on a fetch (`host` included: no reaching another virtual host behind an
    /// allowed name) and they are dropped from its answer.
    static func isHostControlled(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "expect"].contains(lower)
            || lower.hasPrefix("proxy-")
    }

    /// An RFC 9110 token.
    static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 256
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
    }

    /// No control characters but tab (so no CR or LF: no header injection downstream).
    static func isHeaderValue(_ value: String) -> Bool {
        value.utf8.count <= 16_384 && value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }
}
