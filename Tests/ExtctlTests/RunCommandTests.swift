import Foundation
import Testing
import TestSupport
import WAT

@Suite("extctl run")
struct RunCommandTests {
    /// Copies Examples/hello-world to a scratch folder and builds its handler there with its own
    /// build.sh (the toolchain's clang), so the repository's dist/ is never touched.
    static func builtExample(_ scratch: Scratch) throws -> String {
        let source = TestSupport.repositoryRoot.appendingPathComponent("Examples/hello-world").path
        let folder = scratch("hello-world")
        try TestSupport.sh("cp -R '\(source)' '\(folder)' && rm -rf '\(folder)/dist' && bash '\(folder)/build.sh' >/dev/null")
        #expect(FileManager.default.fileExists(atPath: folder + "/dist/main.wasm"))
        return folder
    }

    @Test func theHelloWorldExampleBuildsFromSourcePacksAndAnswersWhatItsSourceSays() throws {
        let scratch = try Scratch("run")
        let folder = try Self.builtExample(scratch)
        let bundle = scratch("hello.tar.zst")
        try extctl("pack", folder, "-o", bundle)
        let plain = try extctl("run", bundle, "--path", "/hello", "--config", "greeting=Howdy")
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout == "HTTP 200\ncontent-type: application/json\n\n{\"message\":\"Howdy, world\",\"method\":\"GET\",\"path\":\"/hello\"}\n")
        // Its log line reaches the runner's log with the request's ids.
        #expect(plain.stderr.contains("hello-world handled a request"))
        #expect(plain.stderr.contains("extension=com.example.extbundles.hello-world"))

        let json = try extctl("run", bundle, "--method", "post", "--path", "/hello/bob", "--json")
        #expect(json.status == 0)
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(answer["status"] as? Int == 200)
        #expect(answer["error"] is NSNull)
        let encoded = try #require(answer["body_b64"] as? String)
        let body = try #require(Data(base64Encoded: encoded))
        #expect(String(decoding: body, as: UTF8.self) == #"{"message":"Hello, world","method":"POST","path":"/hello/bob"}"#)
    }

    @Test func aHandlerFailureIsExitStatusOneWithTheRunnersError() throws {
        let scratch = try Scratch("run-fail")
        let folder = try Self.builtExample(scratch)
        let bundle = scratch("hello.tar.zst")
        try extctl("pack", folder, "-o", bundle)
        let starved = try extctl("run", bundle, "--path", "/hello", "--fuel", "10")
        #expect(starved.status == 1)
        #expect(starved.stderr.contains("error: execute_failed: out of fuel"))
        let unknown = try extctl("run", bundle, "--provider", "cap:made.up")
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("unknown_capabilities: cap:made.up"))
        let notABundle = scratch("junk.tar.zst")
        try Data("junk".utf8).write(to: URL(fileURLWithPath: notABundle))
        let junk = try extctl("run", notABundle)
        #expect(junk.status == 1)
        #expect(junk.stderr.contains("bundle_fetch_failed"))
        let neither = try extctl("run", scratch("missing-file"))
        #expect(neither.status == 1)
        #expect(neither.stderr.contains("RUN_TARGET"))
    }

    @Test func aPublishedBundleRunsByHashThroughTheCache() throws {
        let scratch = try Scratch("run-hash")
        let folder = try Self.builtExample(scratch)
        let bundle = scratch("hello.tar.zst")
        let packed = try extctl("pack", folder, "-o", bundle)
        let hash = String(packed.stdout.prefix { $0 != " " })
        let data = scratch("data")
        let put = try extctl("store", "put-bundle", bundle, "--store", "file://" + data + "/store")
        #expect(put.status == 0, "\(put.stderr)")
        let run = try extctl("run", hash, "--data", data, "--path", "/hello")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains(#"{"message":"Hello, world","method":"GET","path":"/hello"}"#))
        #expect(FileManager.default.fileExists(atPath: data + "/cache/" + hash.dropFirst(7)))
    }

    /// Packs a bundle whose handler is `handler` (WebAssembly text): answers with the request
    /// document itself when it echoes.
    static func bundle(_ scratch: Scratch, handler: String) throws -> String {
        let module = try wat2wasm("""
            (module (memory (export "memory") 1) (global $heap (mut i32) (i32.const 4096))
              (func (export "alloc") (param $size i32) (result i32) (local $p i32)
                (local.set $p (global.get $heap)) (global.set $heap (i32.add (local.get $p) (local.get $size))) (local.get $p))
              (func (export "handler") (param $req i32) (param $len i32) (param $out i32) (result i32) \(handler)))
            """)
        try TestSupport.write(Array(#"{"name":"com.acme.echo","publisher":"Acme","version":"1.0.0","runtime":"wasm-core@1"}"#.utf8), to: "src/manifest.json", in: scratch.path)
        try TestSupport.write(module, to: "src/dist/main.wasm", in: scratch.path)
        try extctl("pack", scratch("src"), "-o", scratch("b.tar.zst"))
        return scratch("b.tar.zst")
    }

    @Test func theRequestOptionsReachTheHandler() throws {
        let scratch = try Scratch("run-echo")
        let bundle = try Self.bundle(
            scratch, handler: "(i32.store (local.get $out) (local.get $req)) (i32.store offset=4 (local.get $out) (local.get $len)) (i32.const 0)")
        try Data("the body".utf8).write(to: URL(fileURLWithPath: scratch("body.txt")))
        let result = try extctl(
            "run", bundle, "--method", "put", "--path", "/p", "--body", scratch("body.txt"), "--header", "X-One: 1", "--query", "q=2",
            "--config", "c=3", "--tenant", "acme", "--provider", "cap:http.fetch")
        #expect(result.status == 0, "\(result.stderr)")
        let text = result.stdout.components(separatedBy: "\n\n").dropFirst().joined(separator: "\n\n")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let http = try #require(document["http"] as? [String: Any])
        #expect(http["method"] as? String == "PUT")
        #expect(http["path"] as? String == "/p")
        #expect(http["body_b64"] as? String == Data("the body".utf8).base64EncodedString())
        #expect((http["headers"] as? [String: String]) == ["x-one": "1"])
        #expect((http["query"] as? [String: String]) == ["q": "2"])
        let context = try #require(document["context"] as? [String: Any])
        #expect((context["config"] as? [String: String]) == ["c": "3"])
        #expect(context["tenant_id"] as? String == "acme")
        #expect(context["extension_id"] as? String == "com.acme.echo")
    }

    @Test func timeoutAndMemoryLimitsApply() throws {
        let scratch = try Scratch("run-limits")
        let spinner = try Self.bundle(scratch, handler: "(loop $l (br $l)) (i32.const 0)")
        let spun = try extctl("run", spinner, "--timeout-ms", "100")
        #expect(spun.status == 1)
        #expect(spun.stderr.contains("error: execute_failed: timeout"))
        let other = try Scratch("run-limits-2")
        let grower = try Self.bundle(other, handler: "(memory.grow (i32.const 100))")
        // 100 more pages do not fit in 2 MiB: memory.grow answers -1, which the handler returns.
        let refused = try extctl("run", grower, "--memory-mb", "2")
        #expect(refused.stderr.contains("error: execute_failed: handler returned -1"))
        let allowed = try extctl("run", grower, "--memory-mb", "16")
        #expect(allowed.stderr.contains("error: execute_failed: handler returned 1"))
    }
}
