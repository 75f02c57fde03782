import BundleArchive
import BundleCore
import BundleStore
import BundleVerify
import ExtensionHTTP
import ExtensionHost
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import RegistryV2
import Testing
import TestSupport

/// A router with the bundle routes over an in-memory store and registry.
struct RouteFixture: Sendable {
    static let adminKey = "admin-key-1"
    static let runnerKey = "runner-key-1"

    let host: ExtensionHost
    let objects: InMemoryObjectStore
    let app: Application<RouterResponder<BasicRequestContext>>

    init(allowInsecure: Bool = false, rateLimit: Int = 1_000) throws {
        objects = InMemoryObjectStore()
        host = ExtensionHost(store: try BundleStore(objects: objects), registry: InMemoryRegistryBackend())
        let router = Router()
        ExtensionBundleRoutes(
            host: host, keys: APIKeyPolicy(adminKeys: [Self.adminKey], runnerKeys: [Self.runnerKey], allowInsecure: allowInsecure),
            rateLimiter: SlidingWindowRateLimiter(window: .seconds(60), max: rateLimit)
        ).register(on: router)
        app = Application(router: router)
    }

    static func headers(key: String? = adminKey, _ extra: [(String, String)] = []) -> HTTPFields {
        var fields = HTTPFields()
        if let key { fields[HTTPField.Name("x-api-key")!] = key }
        for (name, value) in extra { fields[HTTPField.Name(name)!] = value }
        return fields
    }

    /// The staging objects in the store.
    func stagingKeys() async throws -> [String] {
        try await objects.list(prefix: "sha256/_staging/", continuation: nil, limit: 1000).objects.map(\.key)
    }
}

/// Runs a command on a thread of its own (never on the cooperative pool, which the server under
/// test needs: two tests blocking both of a 2-core machine's cooperative threads would stall it).
func command(_ arguments: [String]) async throws -> ProcessResult {
    try await BlockingIO.shared.run { try TestSupport.run(arguments) }
}

/// A packed bundle.
func makeBundle(version: String = "1.0.0", seed: UInt64 = 1) throws -> [UInt8] {
    let scratch = try TestSupport.makeTemporaryDirectory("http-bundle")
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    try TestSupport.write(
        Array(#"{"name":"com.acme.demo","publisher":"Acme","version":"\#(version)","runtime":"wasm-core@1"}"#.utf8), to: "src/manifest.json",
        in: scratch)
    try TestSupport.write(TestSupport.randomBytes(40_000, seed: seed), to: "src/dist/main.wasm", in: scratch)
    var bytes: [UInt8] = []
    _ = try BundlePacker.pack(directory: scratch + "/src", configuration: .init(zstd: .init(level: 3))) { bytes.append(contentsOf: $0) }
    return bytes
}

func json(_ response: TestResponse) throws -> [String: Any] {
    let bytes = Data(response.body.readableBytesView)
    return try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
}

let why = HTTPField.Name("x-upload-proxy-why")!
let requestID = HTTPField.Name("x-request-id")!

@Suite("Bundle routes (Alga reference 4.4-4.7)")
struct BundleRouteTests {
    @Test func uploadFinalizeAndAbortHaveAlgasShapes() async throws {
        let fixture = try RouteFixture()
        let bundle = try makeBundle()
        let hash = ContentHash.of(bundle)
        try await fixture.app.test(.router) { client in
            let key = try await client.execute(
                uri: "/api/ext-bundles/upload-proxy?filename=b.tar.zst&size=\(bundle.count)&declaredHash=\(hash.hex)", method: .post,
                headers: RouteFixture.headers(), body: ByteBuffer(bytes: bundle)
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let id = try #require(response.headers[requestID])
                #expect(id.range(of: #"^[0-9a-z]+-[0-9a-z]{6}$"#, options: .regularExpression) != nil)
                let body = try json(response)
                let upload = try #require(body["upload"] as? [String: Any])
                #expect(upload["strategy"] as? String == "staging")
                #expect(body["filename"] as? String == "b.tar.zst")
                #expect(body["size"] as? Int == bundle.count)
                #expect(body["declaredHash"] as? String == hash.hex)
                return try #require(upload["key"] as? String)
            }
            #expect(key.hasPrefix("sha256/_staging/"))
            try await client.execute(
                uri: "/api/ext-bundles/finalize", method: .post, headers: RouteFixture.headers(),
                body: ByteBuffer(string: #"{"key":"\#(key)","size":\#(bundle.count),"declaredHash":"\#(hash.hex)"}"#)
            ) { response in
                #expect(response.status == .ok)
                let body = try json(response)
                #expect(body["contentHash"] as? String == hash.hex)
                #expect((body["extension"] as? [String: Any])?["name"] as? String == "com.acme.demo")
                #expect((body["version"] as? [String: Any])?["version"] as? String == "1.0.0")
                #expect(response.headers[requestID] != nil)
            }
            // The same version again: Alga's 409 envelope.
            let again = try await client.execute(
                uri: "/api/ext-bundles/upload-proxy?filename=b.tar.zst&size=\(bundle.count)", method: .post, headers: RouteFixture.headers(),
                body: ByteBuffer(bytes: bundle)
            ) { try #require((try json($0)["upload"] as? [String: Any])?["key"] as? String) }
            try await client.execute(
                uri: "/api/ext-bundles/finalize", method: .post, headers: RouteFixture.headers(), body: ByteBuffer(string: #"{"key":"\#(again)"}"#)
            ) { response in
                #expect(response.status == .conflict)
                let body = try json(response)
                #expect(body["success"] as? Bool == false)
                #expect((body["error"] as? [String: Any])?["code"] as? String == "EXTENSION_VERSION_ALREADY_EXISTS")
            }
            try await client.execute(
                uri: "/api/ext-bundles/abort", method: .post, headers: RouteFixture.headers(), body: ByteBuffer(string: #"{"key":"\#(again)"}"#)
            ) { response in
                #expect(response.status == .ok)
                let body = try json(response)
                #expect(body["status"] as? String == "deleted")
                #expect(body["area"] as? String == "staging")
            }
            try await client.execute(
                uri: "/api/ext-bundles/abort", method: .post, headers: RouteFixture.headers(),
                body: ByteBuffer(string: #"{"key":"sha256/\#(hash.hex)/bundle.tar.zst"}"#)
            ) { response in
                let decoded128 = try json(response)
                #expect(decoded128["status"] as? String == "noop")
            }
        }
        #expect(try await fixture.stagingKeys().isEmpty)
    }

    @Test(arguments: [
        ("", 400, "BAD_REQUEST", "filename is required", "filename_required"),
        ("filename=b.tar.zst", 400, "BAD_REQUEST", "size is required", "size_required"),
        ("filename=b.tar.zst&size=-3", 400, "BAD_REQUEST", "size must be a positive number", "size_invalid"),
        ("filename=b.tar.zst&size=209715201", 400, "BAD_REQUEST", "size exceeds maximum of 209715200 bytes", "size_exceeds_cap"),
        ("filename=b.tar.zst&size=10&declaredHash=ABC", 400, "BAD_REQUEST", "declaredHash must be 64-char lowercase hex sha256", "declared_hash_invalid"),
        ("filename=b.tar.zst&size=10", 400, "BAD_REQUEST", "Missing request body", "missing_body"),
    ])
    func uploadErrorsHaveTheirCodeMessageAndWhy(query: String, status: Int, code: String, message: String, reason: String) async throws {
        let fixture = try RouteFixture()
        try await fixture.app.test(.router) { client in
            try await client.execute(uri: "/api/ext-bundles/upload-proxy?\(query)", method: .post, headers: RouteFixture.headers()) { response in
                #expect(response.status.code == status)
                let body = try json(response)
                #expect(body["code"] as? String == code)
                #expect(body["error"] as? String == message)
                #expect(response.headers[why] == reason)
                #expect(response.headers[requestID] != nil)
            }
        }
    }

    @Test func aBodyOfTheWrongSizeOrHashLeavesNothing() async throws {
        let fixture = try RouteFixture()
        let bundle = try makeBundle()
        try await fixture.app.test(.router) { client in
            try await client.execute(
                uri: "/api/ext-bundles/upload-proxy?filename=b&size=\(bundle.count + 10)", method: .post, headers: RouteFixture.headers(),
                body: ByteBuffer(bytes: bundle)
            ) { response in
                // The client sends the real content-length, which disagrees with size.
                #expect(response.status == .badRequest)
                #expect(response.headers[why] == "content_length_mismatch")
            }
            try await client.execute(
                uri: "/api/ext-bundles/upload-proxy?filename=b&size=\(bundle.count)&declaredHash=\(String(repeating: "a", count: 64))", method: .post,
                headers: RouteFixture.headers(), body: ByteBuffer(bytes: bundle)
            ) { response in
                #expect(response.status == .badRequest)
                let decoded172 = try json(response)
                #expect(decoded172["code"] as? String == "HASH_MISMATCH")
                #expect(response.headers[why] == "hash_mismatch")
            }
        }
        #expect(try await fixture.stagingKeys().isEmpty)
    }

    @Test func keysAreCheckedOnEveryRoute() async throws {
        let fixture = try RouteFixture()
        try await fixture.app.test(.router) { client in
            for route in ["upload-proxy?filename=b&size=1", "finalize", "abort"] {
                try await client.execute(uri: "/api/ext-bundles/\(route)", method: .post, headers: RouteFixture.headers(key: nil)) { response in
                    #expect(response.status == .unauthorized)
                    let decoded191 = try json(response)
                    #expect(decoded191["error"] as? String == "Unauthorized: API key missing")
                }
                try await client.execute(uri: "/api/ext-bundles/\(route)", method: .post, headers: RouteFixture.headers(key: "admin-key-2")) { response in
                    #expect(response.status == .unauthorized)
                    let decoded195 = try json(response)
                    #expect(decoded195["error"] as? String == "Unauthorized: API key invalid")
                }
                // A runner's key is known, but not an admin's.
                try await client.execute(uri: "/api/ext-bundles/\(route)", method: .post, headers: RouteFixture.headers(key: RouteFixture.runnerKey)) {
                    response in
                    #expect(response.status == .forbidden)
                    let body = try json(response)
                    #expect(body["code"] as? String == "RBAC_FORBIDDEN")
                    #expect(body["error"] as? String == "Forbidden")
                }
            }
        }
    }

    @Test func theInsecureModeIsAlgasHeaderCheck() async throws {
        let fixture = try RouteFixture(allowInsecure: true)
        try await fixture.app.test(.router) { client in
            try await client.execute(uri: "/api/ext-bundles/upload-proxy?filename=b&size=1", method: .post, headers: RouteFixture.headers(key: "anything")) {
                response in
                #expect(response.status == .forbidden)
                #expect(response.headers[why] == "rbac_forbidden_missing_admin_header")
            }
            try await client.execute(
                uri: "/api/ext-bundles/upload-proxy?filename=b", method: .post, headers: RouteFixture.headers(key: "anything", [("x-alga-admin", "TRUE")])
            ) { response in
                #expect(response.headers[why] == "size_required")
            }
        }
    }

    @Test func theRateLimitIsPerActorAndRoute() async throws {
        let fixture = try RouteFixture(rateLimit: 2)
        try await fixture.app.test(.router) { client in
            for attempt in 0..<3 {
                try await client.execute(uri: "/api/ext-bundles/abort", method: .post, headers: RouteFixture.headers(), body: ByteBuffer(string: "{}")) {
                    response in
                    if attempt < 2 {
                        #expect(response.status == .badRequest)
                    } else {
                        #expect(response.status == .tooManyRequests)
                        let body = try json(response)
                        #expect(body["code"] as? String == "RATE_LIMIT")
                        #expect(body["error"] as? String == "Too Many Requests")
                    }
                }
            }
            // Another route has its own count.
            try await client.execute(uri: "/api/ext-bundles/finalize", method: .post, headers: RouteFixture.headers(), body: ByteBuffer(string: "{}")) {
                response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test(arguments: [
        ("finalize", "not json", 400, "Invalid JSON body"),
        ("finalize", "[1]", 400, "Body must be a JSON object"),
        ("finalize", "{}", 400, "key is required"),
        ("abort", "not json", 400, "Invalid JSON body"),
        ("abort", #"{"key":5}"#, 400, "Missing or invalid 'key' (string required)"),
        ("abort", #"{"key":"other/x"}"#, 400, "Invalid key: must start with 'sha256/'"),
    ])
    func bodyErrorsHaveAlgasMessages(route: String, body: String, status: Int, message: String) async throws {
        let fixture = try RouteFixture()
        try await fixture.app.test(.router) { client in
            try await client.execute(uri: "/api/ext-bundles/\(route)", method: .post, headers: RouteFixture.headers(), body: ByteBuffer(string: body)) {
                response in
                #expect(response.status.code == status)
                let object = try json(response)
                #expect(object["error"] as? String == message)
                #expect(object["code"] as? String == "BAD_REQUEST")
                #expect(response.headers[requestID] != nil)
                #expect(response.headers[why] == nil)
            }
        }
    }

    @Test func aFinalizeBodyPastFourMebibytesIs413() async throws {
        let fixture = try RouteFixture()
        try await fixture.app.test(.router) { client in
            let big = ByteBuffer(repeating: 0x20, count: (4 << 20) + 1)
            try await client.execute(uri: "/api/ext-bundles/finalize", method: .post, headers: RouteFixture.headers(), body: big) { response in
                #expect(response.status.code == 413)
                let decoded278 = try json(response)
                #expect(decoded278["error"] as? String == "Request body too large")
            }
        }
    }

    @Test func keysComeFromTheEnvironmentAndAFile() throws {
        let folder = try TestSupport.makeTemporaryDirectory("keys")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data("# admins\nfile-key\n\n".utf8).write(to: URL(fileURLWithPath: folder + "/keys"))
        let policy = try APIKeyPolicy.fromEnvironment([
            "EXT_ADMIN_API_KEYS": " a, b ,", "EXT_ADMIN_API_KEYS_FILE": folder + "/keys", "ALGA_AUTH_KEY": "r", "EXT_BUNDLES_ALLOW_INSECURE": "TRUE",
        ])
        #expect(policy.adminKeys == ["a", "b", "file-key"])
        #expect(policy.runnerKeys == ["r"])
        #expect(policy.allowInsecure)
        let strict = APIKeyPolicy(adminKeys: ["a"], runnerKeys: ["r"])
        #expect(strict.runner(RouteFixture.headers(key: "r")) != .invalid)
        #expect(strict.runner(RouteFixture.headers(key: "x")) == .invalid)
    }
}

@Suite("Bundle routes on a real server on 127.0.0.1, driven with curl")
struct LiveBundleRouteTests {
    @Test func aLargeUploadStreamsAndADisconnectedClientLeavesNothing() async throws {
        let fixture = try RouteFixture()
        let folder = try TestSupport.makeTemporaryDirectory("live-upload")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // 24 MiB of incompressible bytes: not a bundle, but upload-proxy only stages bytes.
        let file = folder + "/big.bin"
        try Data(TestSupport.randomBytes(24 << 20, seed: 7)).write(to: URL(fileURLWithPath: file))
        let hash = try ContentHash.of(Array(Data(contentsOf: URL(fileURLWithPath: file))))
        try await fixture.app.test(.live) { client in
            let port = try #require(client.port)
            let base = "http://127.0.0.1:\(port)/api/ext-bundles/upload-proxy?filename=big.bin&size=\(24 << 20)"
            let full = try await command([
                "curl", "-sS", "-X", "POST", "-H", "x-api-key: \(RouteFixture.adminKey)", "-H", "content-type: application/octet-stream",
                "--data-binary", "@" + file, base + "&declaredHash=\(hash.hex)",
            ])
            #expect(full.status == 0, "\(full.stderr)")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(full.stdout.utf8)) as? [String: Any])
            #expect((body["upload"] as? [String: Any])?["strategy"] as? String == "staging")
            #expect(try await fixture.stagingKeys().count == 1)
            // A client that goes away half way: curl sends slowly and gives up after a second.
            let cut = try await command([
                "curl", "-sS", "--max-time", "1", "--limit-rate", "2M", "-X", "POST", "-H", "x-api-key: \(RouteFixture.adminKey)",
                "--data-binary", "@" + file, base,
            ])
            #expect(cut.status != 0)
            // Give the server time to notice; the cut upload must never become an object.
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await fixture.stagingKeys().count == 1)
        }
    }
}

/// A store whose writes read their body from a task of their own and fail at once, as an S3
/// client whose PUT is refused early does.
final class EarlyFailingStore: ObjectStore, @unchecked Sendable {
    let base = InMemoryObjectStore()
    func head(_ key: String) async throws -> ObjectInfo? { try await base.head(key) }
    func get(_ key: String, range: ByteRange?) async throws -> ObjectBody { try await base.get(key, range: range) }
    func put(_ key: String, body: ByteStream, length: Int64?, condition: WriteCondition) async throws -> ObjectInfo {
        Task {
            for try await _ in body {}
        }
        throw StoreError(code: .storeBackend, reason: "refused early", key: key)
    }
    func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo {
        try await base.copy(from: source, to: destination, condition: condition, sourceETag: sourceETag)
    }
    func delete(_ key: String) async throws { try await base.delete(key) }
    func list(prefix: String, continuation: String?, limit: Int) async throws -> ObjectListing {
        try await base.list(prefix: prefix, continuation: continuation, limit: limit)
    }
}

@Suite("Bundle routes when the store gives up early")
struct EarlyStoreFailureTests {
    @Test func aStoreThatFailsWhileStillReadingNeverSharesTheBody() async throws {
        let host = ExtensionHost(store: try BundleStore(objects: EarlyFailingStore()), registry: InMemoryRegistryBackend())
        let router = Router()
        ExtensionBundleRoutes(host: host, keys: APIKeyPolicy(adminKeys: [RouteFixture.adminKey])).register(on: router)
        let app = Application(router: router)
        let folder = try TestSupport.makeTemporaryDirectory("early")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data(TestSupport.randomBytes(8 << 20, seed: 3)).write(to: URL(fileURLWithPath: folder + "/b"))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            for _ in 0..<3 {
                let result = try await command([
                    "curl", "-sS", "-X", "POST", "-H", "x-api-key: \(RouteFixture.adminKey)", "--data-binary", "@" + folder + "/b",
                    "http://127.0.0.1:\(port)/api/ext-bundles/upload-proxy?filename=b&size=\(8 << 20)",
                ])
                #expect(result.stdout.contains("S3_PUT_FAILED"), "\(result.stdout) \(result.stderr)")
            }
        }
    }
}
