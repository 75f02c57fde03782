import BundleCore
import ExtensionRuntime
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// A real HTTP server on 127.0.0.1 for the guests' outbound requests: `/hello` answers 200 with
/// a body and a header, `/redirect` answers 302 to `/hello`, `/big` answers 2 MiB, `/slow`
/// answers after 3 s, `/echo` answers the request's method, a header and its body.
final class TestHTTPServer: @unchecked Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init() async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(Handler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async { try? await channel.close() }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(let buffer):
                body.append(contentsOf: buffer.readableBytesView)
            case .end:
                guard let head else { return }
                var headers = HTTPHeaders()
                var status = HTTPResponseStatus.ok
                var payload: [UInt8] = []
                switch head.uri {
                case "/hello":
                    headers.add(name: "x-test", value: "yes")
                    payload = Array("hi from the server".utf8)
                case "/redirect":
                    status = .found
                    headers.add(name: "location", value: "/hello")
                case "/big":
                    payload = [UInt8](repeating: 0x61, count: 2 << 20)
                case "/slow":
                    let loop = context.eventLoop
                    let boxed = NIOLoopBound(context, eventLoop: loop)
                    loop.scheduleTask(in: .seconds(3)) { Self.answer(boxed.value, .ok, HTTPHeaders(), Array("late".utf8), self) }
                    return
                case "/echo":
                    payload = Array("\(head.method.rawValue) \(head.headers.first(name: "x-sent") ?? "-") ".utf8) + body
                default:
                    status = .notFound
                }
                Self.answer(context, status, headers, payload, self)
            }
        }

        static func answer(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ headers: HTTPHeaders, _ payload: [UInt8], _ handler: Handler) {
            var headers = headers
            headers.add(name: "content-length", value: "\(payload.count)")
            context.write(handler.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: payload)))), promise: nil)
            context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

@Suite("WasmKitExecutor: alga.http.fetch against a real server")
struct FetchTests {
    struct Answer: Decodable {
        var status: Int
        var headers: [String: String]
        var body_b64: String?
    }

    func run(
        _ fetchRequest: String, allowlist: [String] = ["127.0.0.1"], providers: [String]? = ["cap:http.fetch"], limits: ExecuteRequest.Limits? = nil,
        configure: (inout WasmKitExecutor.Configuration) -> Void = { _ in }
    ) async throws -> ExecuteResponse {
        let harness = try Harness {
            $0.egress = EgressPolicy(allowlist: allowlist)
            configure(&$0)
        }
        let hash = try harness.add(Guests.fetcher(fetchRequest))
        return await harness.executor.execute(Harness.request(hash, limits: limits, providers: providers))
    }

    @Test func aFetchInsideTheAllowlistReturnsTheAnswerToTheGuest() async throws {
        let server = try await TestHTTPServer()
        defer { Task { await server.close() } }
        let response = try await run(#"{"url":"http://127.0.0.1:\#(server.port)/hello"}"#, allowlist: ["127.0.0.1"])
        // The guest answers with the fetch's answer document, so it arrives as the response.
        #expect(response.error == nil)
        #expect(response.status == 200)
        #expect(response.headers["x-test"] == "yes")
        #expect(response.body == Array("hi from the server".utf8))
        let posted = try await run(
            #"{"url":"http://127.0.0.1:\#(server.port)/echo","method":"post","headers":{"x-sent":"v1"},"body_b64":"Ym9keQ=="}"#)
        #expect(posted.body == Array("POST v1 body".utf8))
    }

    @Test func hostsOutsideTheAllowlistAndCallsWithoutTheCapabilityAreRefused() async throws {
        let server = try await TestHTTPServer()
        defer { Task { await server.close() } }
        let url = "http://127.0.0.1:\(server.port)/hello"
        #expect(try await run(#"{"url":"\#(url)"}"#, allowlist: ["example.com"]).error == "execute_failed: handler returned -2")
        #expect(try await run(#"{"url":"\#(url)"}"#, providers: nil).error == "execute_failed: handler returned -2")
        #expect(try await run(#"{"url":"\#(url)"}"#, allowlist: ["0.0.1"]).error == "execute_failed: handler returned -2")
        // An empty allowlist allows every name, but not the host's own or private addresses.
        for address in [url, "http://localhost:\(server.port)/hello", "http://169.254.169.254/latest/meta-data", "http://127.1:\(server.port)/"] {
            #expect(try await run(#"{"url":"\#(address)"}"#, allowlist: []).error == "execute_failed: handler returned -2", "\(address)")
        }
    }

    @Test(arguments: [
        #"{"url":"ftp://127.0.0.1/x"}"#, #"{"url":"http://user:pw@127.0.0.1/x"}"#, #"{"url":"/relative"}"#, #"{"url":"http://exa mple.com/"}"#,
        #"{"method":"GET"}"#, #"{"url":"http://127.0.0.1/","headers":{"x":"a\r\nb: c"}}"#, #"{"url":"http://127.0.0.1/","body_b64":"!!"}"#,
        #"{"url":"http://127.0.0.1/","method":"GE T"}"#, "not json", #"{"url":"http://127.0.0.1%2eevil.com/"}"#,
    ])
    func malformedRequestsAreRefusedAsInvalid(document: String) async throws {
        #expect(try await run(document).error == "execute_failed: handler returned -1")
    }

    @Test(arguments: ["Host", "connection", "Transfer-Encoding", "content-length", "proxy-authorization"])
    func aGuestCannotSetFramingOrHostHeaders(name: String) async throws {
        let document = #"{"url":"http://127.0.0.1:1/","headers":{"\#(name)":"internal-admin"}}"#
        #expect(try await run(document).error == "execute_failed: handler returned -1")
    }

    @Test func redirectsAreNotFollowed() async throws {
        let server = try await TestHTTPServer()
        defer { Task { await server.close() } }
        let response = try await run(#"{"url":"http://127.0.0.1:\#(server.port)/redirect"}"#)
        #expect(response.status == 302)
        #expect(response.headers["location"] == "/hello")
    }

    @Test func aResponsePastTheCapIsRefused() async throws {
        let server = try await TestHTTPServer()
        defer { Task { await server.close() } }
        let response = try await run(#"{"url":"http://127.0.0.1:\#(server.port)/big"}"#) { $0.maxFetchResponseBytes = 1 << 20 }
        #expect(response.error == "execute_failed: handler returned -4")
    }

    @Test func aSlowServerEndsWithTheDeadlineOrTheFetchTimeout() async throws {
        let server = try await TestHTTPServer()
        defer { Task { await server.close() } }
        let url = "http://127.0.0.1:\(server.port)/slow"
        #expect(try await run(#"{"url":"\#(url)"}"#, limits: .init(timeoutMs: 500)).error == "execute_failed: timeout")
        let transport = try await run(#"{"url":"\#(url)"}"#, limits: .init(timeoutMs: 10_000)) { $0.fetchTimeout = .milliseconds(300) }
        #expect(transport.error == "execute_failed: handler returned -3")
    }

    @Test func aClosedPortIsATransportError() async throws {
        let server = try await TestHTTPServer()
        let port = server.port
        await server.close()
        #expect(try await run(#"{"url":"http://127.0.0.1:\#(port)/"}"#).error == "execute_failed: handler returned -3")
    }

    @Test func theAllowlistMatchesHostsAndSubdomainsOnly() {
        let policy = EgressPolicy(allowlist: [" Example.COM ", "api.partner.io", ""])
        #expect(policy.allowlist == ["example.com", "api.partner.io"])
        for host in ["example.com", "EXAMPLE.com", "a.example.com", "x.y.example.com", "api.partner.io"] { #expect(policy.allows(host: host), "\(host)") }
        for host in ["evilexample.com", "example.com.evil.net", "partner.io", "example.co", ""] { #expect(!policy.allows(host: host), "\(host)") }
        #expect(EgressPolicy().allows(host: "anything.at.all"))
        // Addresses match whole, never by suffix.
        #expect(EgressPolicy(allowlist: ["127.0.0.1"]).allows(host: "127.0.0.1"))
        #expect(!EgressPolicy(allowlist: ["0.0.1"]).allows(host: "127.0.0.1"))
        #expect(!EgressPolicy(allowlist: ["1"]).allows(host: "10.0.0.1"))
        #expect(EgressPolicy.fromEnvironment(["EXT_EGRESS_ALLOWLIST": "a.com, b.org"]).allowlist == ["a.com", "b.org"])
        let open = EgressPolicy()
        for host in ["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "localhost", "a.localhost",
            "::1", "[::1]", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "127.1", "0x7f.1", "2130706433", "010.0.0.1",
            "0:0:0:0:0:0:0:1", "[0::1]", "::0:1", "0::", "0:0:0:0:0:ffff:a9fe:a9fe", "0::ffff:7f00:1", "64:ff9b::a9fe:a9fe", "localhost.",
            "x.localhost.", "127.0.0.1.", "fec0::1", "not:an:address"] {
            #expect(!open.allowsAddress(of: host), "\(host)")
        }
        for host in ["8.8.8.8", "example.com", "1.2.3.4", "172.32.0.1", "a1.example.com", "2001:4860:4860::8888", "::ffff:8.8.8.8"] { #expect(open.allowsAddress(of: host), "\(host)") }
        #expect(EgressPolicy(allowlist: ["10.1.2.3"]).allowsAddress(of: "10.1.2.3"))
    }
}
