import Foundation
import Testing
import TestSupport

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
}
