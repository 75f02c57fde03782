import BundleCore
import BundleStore
import ExtBundlesTesting
import Foundation
import RunnerCache
import Testing
import TestSupport

func bodyText(_ response: AssetResponse) -> String {
    switch response.body {
    case .empty: return ""
    case .bytes(let bytes): return String(decoding: bytes, as: UTF8.self)
    case .file(let path, let offset, let length):
        let data = FileManager.default.contents(atPath: path) ?? Data()
        return String(decoding: data.dropFirst(Int(offset)).prefix(Int(length)), as: UTF8.self)
    }
}

/// The runner cases of reference 8.1 and 8.2, as tests of the asset responses.
@Suite struct UIAssetResponseTests {
    let csp = UIAssetResponder.Configuration.defaultContentSecurityPolicy

    func request(_ hash: ContentHash, _ path: String, _ headers: [(name: String, value: String)] = []) -> AssetRequest {
        AssetRequest(extensionID: "ext-1", contentHash: hash.prefixed, path: path, headers: headers)
    }

    @Test func coldFillThen304() async throws {
        let fixture = try CacheFixture()
        let bundle = try CacheBundle(seed: 40)
        try await fixture.publish(bundle)
        let responder = UIAssetResponder(cache: try fixture.cache())
        let first = await responder.respond(to: request(bundle.hash, "index.html"))
        #expect(first.status == 200)
        #expect(first.header("Content-Type") == "text/html; charset=utf-8")
        #expect(first.header("Cache-Control") == "public, max-age=31536000, immutable")
        #expect(first.header("Content-Length") == String(bundle.index.count))
        #expect(bodyText(first) == String(decoding: bundle.index, as: UTF8.self))
        let etag = try #require(first.header("ETag"))
        #expect(etag == "\"sha256-\(ContentHash.of(bundle.index).hex)\"")
        let again = await responder.respond(to: request(bundle.hash, "index.html", [("if-none-match", "\"other\", \(etag)")]))
        #expect(again.status == 304)
        #expect(again.body == .empty)
        #expect(again.header("ETag") == etag)
        #expect(again.header("Content-Security-Policy") == csp)  // a 304 on HTML keeps its CSP
        #expect(await responder.respond(to: request(bundle.hash, "index.html", [("If-None-Match", "*")])).status == 304)
        #expect(fixture.objects.gets.withLock { $0 } == 1)
    }

    @Test func cspAndNosniffRules() async throws {
        let fixture = try CacheFixture()
        let bundle = try CacheBundle(seed: 41)
        try await fixture.publish(bundle)
        let cache = try fixture.cache()
        let responder = UIAssetResponder(cache: cache)
        let html = await responder.respond(to: request(bundle.hash, ""))
        #expect(html.header("Content-Security-Policy") == csp)
        #expect(html.header("Content-Security-Policy")?.contains("frame-ancestors") == false)
        #expect(html.header("X-Content-Type-Options") == "nosniff")
        // A client-side route falls back to index.html, with its CSP.
        let route = await responder.respond(to: request(bundle.hash, "some/client/route"))
        #expect(route.status == 200 && route.header("Content-Security-Policy") == csp)
        #expect(bodyText(route) == String(decoding: bundle.index, as: UTF8.self))
        // Scripts: nosniff, no CSP.
        let script = await responder.respond(to: request(bundle.hash, "assets/app.js"))
        #expect(script.status == 200 && script.header("Content-Type") == "text/javascript; charset=utf-8")
        #expect(script.header("X-Content-Type-Options") == "nosniff" && script.header("Content-Security-Policy") == nil)
        #expect(bodyText(script) == "console.log(41)")
        // EXT_UI_FRAME_ANCESTORS appends; EXT_UI_CONTENT_SECURITY_POLICY replaces (and wins).
        let framed = UIAssetResponder(cache: cache, configuration: .fromEnvironment(["EXT_UI_FRAME_ANCESTORS": "https://app.example.com"]))
        #expect(await framed.respond(to: request(bundle.hash, "index.html")).header("Content-Security-Policy")?.hasSuffix("; frame-ancestors https://app.example.com") == true)
        let replaced = UIAssetResponder(
            cache: cache,
            configuration: .fromEnvironment(["EXT_UI_CONTENT_SECURITY_POLICY": "default-src 'none'", "EXT_UI_FRAME_ANCESTORS": "https://x"]))
        #expect(await replaced.respond(to: request(bundle.hash, "index.html")).header("Content-Security-Policy") == "default-src 'none'")
        let blank = UIAssetResponder(cache: cache, configuration: .fromEnvironment(["EXT_UI_CONTENT_SECURITY_POLICY": "  "]))
        #expect(await blank.respond(to: request(bundle.hash, "index.html")).header("Content-Security-Policy") == csp)
    }

    @Test func traversalIsRefusedBeforeAnyFetch() async throws {
        let fixture = try CacheFixture()
        let bundle = try CacheBundle(seed: 42)
        try await fixture.publish(bundle)
        let responder = UIAssetResponder(cache: try fixture.cache())
        for path in ["../secret.txt", "/etc/passwd", "a/../b", "./x"] {
            let response = await responder.respond(to: request(bundle.hash, path))
            #expect(response.status == 400, "\(path)")
            #expect(bodyText(response) == "invalid path")
            #expect(response.header("Cache-Control") == "no-store")
        }
        #expect(fixture.objects.gets.withLock { $0 } == 0)
        let badHash = await responder.respond(to: AssetRequest(extensionID: "e", contentHash: "md5:abc", path: ""))
        #expect(badHash.status == 400 && bodyText(badHash) == "invalid content hash")
        let bare = await responder.respond(to: AssetRequest(extensionID: "e", contentHash: bundle.hash.hex, path: ""))
        #expect(bare.status == 400)
    }

    @Test func oversizeAssetsAre413() async throws {
        let fixture = try CacheFixture()
        let bundle = try CacheBundle(seed: 43, bigPNG: 128 * 1024)
        try await fixture.publish(bundle)
        let responder = UIAssetResponder(cache: try fixture.cache(), configuration: .fromEnvironment(["EXT_STATIC_MAX_FILE_BYTES": "1024"]))
        let big = await responder.respond(to: request(bundle.hash, "assets/big.png"))
        #expect(big.status == 413 && bodyText(big) == "asset too large")
        #expect(big.header("Cache-Control") == "no-store")
        #expect(await responder.respond(to: request(bundle.hash, "assets/app.js")).status == 200)
    }

    @Test func archiveHashMismatchIs502AndACorruptArchiveLeavesNoUI() async throws {
        let fixture = try CacheFixture()
        let bundle = try CacheBundle(seed: 44)
        var flipped = bundle.bytes
        flipped[flipped.count / 2] ^= 1
        try await fixture.objects.put(fixture.store.bundleKey(for: bundle.hash), bytes: flipped)
        let junk = [UInt8](repeating: 0x1f, count: 1_024)
        _ = try await fixture.store.putBundle(.bytes(junk), expected: ContentHash.of(junk))
        let responder = UIAssetResponder(cache: try fixture.cache())
        let mismatch = await responder.respond(to: request(bundle.hash, "index.html"))
        #expect(mismatch.status == 502)
        #expect(bodyText(mismatch) == #"{"code":"archive_hash_mismatch"}"#)
        #expect(mismatch.header("Cache-Control") == "no-store")
        let corrupt = await responder.respond(to: request(ContentHash.of(junk), "index.html"))
        #expect(corrupt.status == 500 && bodyText(corrupt) == #"{"code":"extract_failed"}"#)
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/\(ContentHash.of(junk).hex)/ui"))
        #expect(fixture.names().isEmpty)
        let missing = await responder.respond(to: request(ContentHash.of([5]), "index.html"))
        #expect(missing.status == 404 && bodyText(missing) == #"{"code":"bundle_not_found"}"#)
    }

    @Test func rangesAndContentTypes() async throws {
        let fixture = try CacheFixture()
        let bundle = try CacheBundle(seed: 45)
        try await fixture.publish(bundle)
        let responder = UIAssetResponder(cache: try fixture.cache())
        let size = bundle.index.count
        let partial = await responder.respond(to: request(bundle.hash, "index.html", [("Range", "bytes=2-5")]))
        #expect(partial.status == 206)
        #expect(partial.header("Content-Range") == "bytes 2-5/\(size)")
        #expect(bodyText(partial) == String(decoding: bundle.index[2...5], as: UTF8.self))
        let suffix = await responder.respond(to: request(bundle.hash, "index.html", [("Range", "bytes=-3")]))
        #expect(bodyText(suffix) == String(decoding: bundle.index.suffix(3), as: UTF8.self))
        let open = await responder.respond(to: request(bundle.hash, "index.html", [("Range", "bytes=10-")]))
        #expect(open.header("Content-Range") == "bytes 10-\(size - 1)/\(size)")
        let beyond = await responder.respond(to: request(bundle.hash, "index.html", [("Range", "bytes=\(size)-")]))
        #expect(beyond.status == 416 && beyond.header("Content-Range") == "bytes */\(size)")
        #expect(beyond.header("Cache-Control") == "no-store")
        let several = await responder.respond(to: request(bundle.hash, "index.html", [("Range", "bytes=0-1,3-4")]))
        #expect(several.status == 200)
        #expect(await responder.respond(to: request(bundle.hash, "assets/site.css")).header("Content-Type") == "text/css; charset=utf-8")
        for (name, type) in [
            ("a.html", "text/html; charset=utf-8"), ("a.js", "text/javascript; charset=utf-8"), ("a.css", "text/css; charset=utf-8"),
            ("a.json", "application/json"), ("a.svg", "image/svg+xml"), ("a.png", "image/png"), ("a.woff2", "font/woff2"),
            ("a.JPEG", "image/jpeg"), ("a.unknown", "application/octet-stream"),
        ] {
            #expect(UIAssetResponder.contentType(for: name) == type)
        }
    }

    @Test func thePathSanitiserCasesOfAlga() {
        #expect(UIAssetResponder.sanitize("") == [])
        #expect(UIAssetResponder.sanitize("assets//img///logo.png") == ["assets", "img", "logo.png"])
        #expect(UIAssetResponder.sanitize("assets") == ["assets"])
        #expect(UIAssetResponder.sanitize("assets/images") == ["assets", "images"])
        #expect(UIAssetResponder.sanitize("a/B.WOFF2") == ["a", "B.WOFF2"])
        for refused in [
            "/etc/passwd", "../x", "./x", "a/../b", "a/./b", ".env", "assets/.secret/file.txt", "bad.exe", "file.", "a\u{0}b", "a\u{7}b",
            "a\\b", "x.ico", "x.gif", "x.txt", "x.wasm", "x.mjs",
        ] {
            #expect(UIAssetResponder.sanitize(refused) == nil, "\(refused)")
        }
        // The allowlist is configurable.
        #expect(UIAssetResponder.sanitize("x.ico", allowedExtensions: ["ico"]) == ["x.ico"])
    }
}
