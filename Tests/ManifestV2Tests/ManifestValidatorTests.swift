import Foundation
import ManifestV2
import Testing
import TestSupport

@Suite struct ManifestFixtureTests {
    static let folder = TestSupport.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/alga-manifests")
    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    @Test func theFixturesArePresent() {
        #expect(Self.files.filter { $0.hasPrefix("valid-") }.count >= 4)
        #expect(Self.files.filter { $0.hasPrefix("invalid-") }.count >= 2)
    }

    /// `valid-*` pass; `invalid-*` fail with the issues of reference 3.7, in document order.
    @Test(arguments: files)
    func fixture(_ name: String) throws {
        let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent(name)))
        let result = ManifestValidator.validate(bytes)
        let expected: [String: [ManifestIssue]] = [
            "invalid-component-basic-entry.json": [ManifestIssue(path: "entry", message: "Unknown top-level field 'entry'.")],
            "invalid-docs-example-v2.json": [
                ManifestIssue(path: "events", message: "Unknown top-level field 'events'."),
                ManifestIssue(path: "entry", message: "Unknown top-level field 'entry'."),
                ManifestIssue(path: "sbom", message: "Unknown top-level field 'sbom'."),
            ],
        ]
        if name.hasPrefix("valid-") {
            #expect(result.issues == [])
            #expect(result.manifest != nil)
        } else {
            #expect(result.issues == expected[name], "\(result.issues)")
        }
    }

    @Test func wildcardAndEndpointsOfTheRealManifests() throws {
        let reporting = ManifestValidator.validate(Array(try Data(contentsOf: Self.folder.appendingPathComponent("valid-nineminds-reporting-wildcard.json"))))
        #expect(reporting.manifest?.isWildcardVersion == true)
        #expect(reporting.manifest?.precompiled["x86_64-linux-gnu"] == "precompiled/x86_64-linux-gnu.cwasm")
        let scheduler = ManifestValidator.validate(Array(try Data(contentsOf: Self.folder.appendingPathComponent("valid-scheduler-demo.json"))))
        #expect(scheduler.manifest?.endpoints.count == 5)
        #expect(scheduler.manifest?.endpoints.last == .init(method: "POST", path: "/api/heartbeat", handler: "dist/main"))
        #expect(scheduler.manifest?.ui?.appMenuLabel == "Scheduler Demo")
    }
}

@Suite struct ManifestMessageTests {
    static let base = #""name":"com.example.app","version":"1.0.0","runtime":"wasm-js@1""#

    func issues(_ json: String, strict: Bool = false) -> [ManifestIssue] {
        ManifestValidator.validate(Array(json.utf8), options: .init(strict: strict)).issues
    }

    /// Every message of reference 3.6, with its path.
    @Test(arguments: [
        ("[]", "$", "Manifest must be a JSON object."),
        ("null", "$", "Manifest must be a JSON object."),
        ("\"text\"", "$", "Manifest must be a JSON object."),
        (#"{\#(base),"extra":1}"#, "extra", "Unknown top-level field 'extra'."),
        (#"{"version":"1.0.0","runtime":"wasm-js@1"}"#, "name", "Field 'name' is required and must be a non-empty string."),
        (#"{"name":"  ","version":"1.0.0","runtime":"wasm-js@1"}"#, "name", "Field 'name' is required and must be a non-empty string."),
        (#"{"name":"a","runtime":"wasm-js@1"}"#, "version", "Field 'version' is required and must be a string."),
        (#"{"name":"a","version":1,"runtime":"wasm-js@1"}"#, "version", "Field 'version' is required and must be a string."),
        (#"{"name":"a","version":"1.0","runtime":"wasm-js@1"}"#, "version", "Field 'version' must be a semver-like string (e.g., 1.2.3, 1.2.3-beta, 1.2.3+build)."),
        (#"{"name":"a","version":"1.0.0-","runtime":"wasm-js@1"}"#, "version", "Field 'version' must be a semver-like string (e.g., 1.2.3, 1.2.3-beta, 1.2.3+build)."),
        (#"{"name":"a","version":"1.*.*","runtime":"wasm-js@1"}"#, "version", "Field 'version' must be a semver-like string (e.g., 1.2.3, 1.2.3-beta, 1.2.3+build)."),
        (#"{"name":"a","version":"1.0.0"}"#, "runtime", "Field 'runtime' is required and must be a string."),
        (#"{"name":"a","version":"1.0.0","runtime":"node"}"#, "runtime", "Field 'runtime' must be a non-empty string containing '@' or '-'."),
        (#"{"name":"a","version":"1.0.0","runtime":" "}"#, "runtime", "Field 'runtime' must be a non-empty string containing '@' or '-'."),
        (#"{\#(base),"publisher":""}"#, "publisher", "Field 'publisher', if provided, must be a non-empty string."),
        (#"{\#(base),"publisher":7}"#, "publisher", "Field 'publisher', if provided, must be a non-empty string."),
        (#"{\#(base),"capabilities":"cap:log.emit"}"#, "capabilities", "Field 'capabilities' must be an array of non-empty strings if provided."),
        (#"{\#(base),"capabilities":["cap:log.emit",""]}"#, "capabilities[1]", "Each capability must be a non-empty string."),
        (#"{\#(base),"assets":{}}"#, "assets", "Field 'assets' must be an array of non-empty strings if provided."),
        (#"{\#(base),"assets":[3]}"#, "assets[0]", "Each asset must be a non-empty string."),
        (#"{\#(base),"precompiled":[]}"#, "precompiled", "Field 'precompiled' must be an object mapping non-empty keys to non-empty strings."),
        (#"{\#(base),"precompiled":null}"#, "precompiled", "Field 'precompiled' must be an object mapping non-empty keys to non-empty strings."),
        (#"{\#(base),"precompiled":{"":"x"}}"#, "precompiled", "Field 'precompiled' has an empty key which is not allowed."),
        (#"{\#(base),"precompiled":{"x86":""}}"#, "precompiled.x86", "Each precompiled mapping value must be a non-empty string."),
        (#"{\#(base),"ui":"iframe"}"#, "ui", "Field 'ui' must be an object if provided."),
        (#"{\#(base),"ui":{"type":"page","entry":"ui/index.html"}}"#, "ui.type", "Field 'ui.type' must be exactly 'iframe' when 'ui' is provided."),
        (#"{\#(base),"ui":{"type":"iframe"}}"#, "ui.entry", "Field 'ui.entry' is required and must be a non-empty string when 'ui' is provided."),
        (#"{\#(base),"ui":{"type":"iframe","entry":"../x.html"}}"#, "ui.entry", "Field 'ui.entry' must not contain '..'."),
        (#"{\#(base),"ui":{"type":"iframe","entry":"i.html","hooks":[]}}"#, "ui.hooks", "Field 'ui.hooks' must be an object if provided."),
        (#"{\#(base),"ui":{"type":"iframe","entry":"i.html","hooks":{"appMenu":"x"}}}"#, "ui.hooks.appMenu", "Field 'ui.hooks.appMenu' must be an object if provided."),
        (#"{\#(base),"ui":{"type":"iframe","entry":"i.html","hooks":{"appMenu":{}}}}"#, "ui.hooks.appMenu.label", "Field 'ui.hooks.appMenu.label' is required and must be a non-empty string."),
        (#"{\#(base),"ui":{"type":"iframe","entry":"i.html","hooks":{"clientPortalMenu":1}}}"#, "ui.hooks.clientPortalMenu", "Field 'ui.hooks.clientPortalMenu' must be an object if provided."),
        (#"{\#(base),"ui":{"type":"iframe","entry":"i.html","hooks":{"clientPortalMenu":{"label":" "}}}}"#, "ui.hooks.clientPortalMenu.label", "Field 'ui.hooks.clientPortalMenu.label' is required and must be a non-empty string."),
        (#"{\#(base),"api":[]}"#, "api", "Field 'api' must be an object if provided."),
        (#"{\#(base),"api":{}}"#, "api.endpoints", "Field 'api.endpoints' is required when 'api' is provided."),
        (#"{\#(base),"api":{"endpoints":{}}}"#, "api.endpoints", "Field 'api.endpoints' must be an array."),
        (#"{\#(base),"api":{"endpoints":[1]}}"#, "api.endpoints[0]", "Each endpoint must be an object."),
        (#"{\#(base),"api":{"endpoints":[{"path":"/a","handler":"h"}]}}"#, "api.endpoints[0].method", "Endpoint 'method' is required and must be a non-empty string."),
        (#"{\#(base),"api":{"endpoints":[{"method":"TRACE","path":"/a","handler":"h"}]}}"#, "api.endpoints[0].method", "Endpoint 'method' must be one of: GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD (case-insensitive)."),
        (#"{\#(base),"api":{"endpoints":[{"method":"GET","handler":"h"}]}}"#, "api.endpoints[0].path", "Endpoint 'path' is required and must be a non-empty string starting with '/'."),
        (#"{\#(base),"api":{"endpoints":[{"method":"GET","path":"/a b","handler":"h"}]}}"#, "api.endpoints[0].path", "Endpoint 'path' must not contain spaces."),
        (#"{\#(base),"api":{"endpoints":[{"method":"GET","path":"/a/../b","handler":"h"}]}}"#, "api.endpoints[0].path", "Endpoint 'path' must not contain '..'."),
        (#"{\#(base),"api":{"endpoints":[{"method":"GET","path":"/a"}]}}"#, "api.endpoints[0].handler", "Endpoint 'handler' is required and must be a non-empty string."),
        (#"{\#(base),"api":{"endpoints":[{"method":"GET","path":"/a","handler":"../h"}]}}"#, "api.endpoints[0].handler", "Endpoint 'handler' must not contain '..'."),
    ])
    func message(json: String, path: String, message: String) {
        let found = issues(json)
        #expect(found == [ManifestIssue(path: path, message: message)], "\(found)")
    }

    @Test func allIssuesAreCollected() {
        let found = issues(#"{"x":1,"name":"","version":"v1","runtime":"node","capabilities":[""],"api":{"endpoints":[{"method":"get"}]}}"#)
        #expect(found.map(\.path) == ["x", "name", "version", "runtime", "capabilities[0]", "api.endpoints[0].path", "api.endpoints[0].handler"])
    }

    @Test func whatFinalizeAccepts() {
        for json in [
            #"{"name":"a","version":" 01.2.3 ","runtime":"node@1"}"#,  // trimmed, leading zeros allowed
            #"{"name":"a","version":"1.2.3-beta.1+build-7","runtime":"x-y"}"#,
            #"{"name":"a","version":"0.3.*","runtime":"wasm-js@1","api":{"endpoints":[]}}"#,
            #"{"name":"a","version":"1.0.0","runtime":"wasm-js@1","api":{"endpoints":[{"method":"get","path":"no-slash","handler":"h","schedulable":true}]}}"#,
            #"{"name":"__PACKAGE_NAME__","version":"1.0.0","runtime":"wasm-js@1","ui":{"type":"iframe","entry":"i.html","routes":[],"hooks":{"other":1}}}"#,
            #"{"name":"a","version":"1.0.0","runtime":"wasm-js@1","api":{"endpoints":[{"method":"poſt","path":"/a","handler":"h"}]}}"#,  // JS toUpperCase: POST
        ] {
            #expect(issues(json) == [], "\(json)")
        }
    }
}

@Suite struct ManifestNormalisationTests {
    @Test func theExamplesOfReference33() throws {
        let json = #"{"name":" app ","version":"1.0.0","runtime":"wasm-js@1","ui":{"type":"iframe","entry":"./ui//index.html","hooks":{"appMenu":{"label":" Menu "},"clientPortalMenu":{"label":"Portal"}}},"api":{"endpoints":[{"method":"post","path":".//a//b","handler":"./dist//main"}]}}"#
        let manifest = try #require(ManifestValidator.validate(Array(json.utf8)).manifest)
        #expect(manifest.endpoints == [.init(method: "POST", path: "/a/b", handler: "dist/main")])
        #expect(manifest.ui == .init(type: "iframe", entry: "ui/index.html", appMenuLabel: "Menu", clientPortalMenuLabel: "Portal"))
        #expect(manifest.name == "app")
        #expect(ManifestValidator.sanitizePath("././a///b/../c") == "a/b/../c")
        #expect(ManifestValidator.normalizedEndpointPath("x") == "/x")
    }

    @Test func wildcardResolutionOfReference34() {
        let existing = ["1.2.0", "1.2.4", "1.2.10-beta", "1.3.0", "1.2.7+b"]
        #expect(ManifestValidator.resolveWildcard("1.2.*", existing: existing) == "1.2.5")
        #expect(ManifestValidator.resolveWildcard("1.4.*", existing: existing) == "1.4.0")
        #expect(ManifestValidator.resolveWildcard("0.3.*", existing: []) == "0.3.0")
        #expect(ManifestValidator.resolveWildcard("1.2.*", existing: ["1.2.9", "1.2.10", "11.2.99"]) == "1.2.11")
        #expect(ManifestValidator.resolveWildcard("1.2.3", existing: existing) == "1.2.3")
    }

    @Test func capabilityVocabularyOfReference35() {
        #expect(Capabilities.known.count == 11)
        #expect(Capabilities.normalize([]) == ["cap:context.read", "cap:log.emit", "cap:user.read"])
        #expect(Capabilities.normalize([" CAP:HTTP.fetch ", "http.fetch", "storage.kv", "cap:unknown", "cap:log.emit"])
            == ["cap:context.read", "cap:http.fetch", "cap:log.emit", "cap:user.read"])
    }
}

@Suite struct ManifestStrictModeTests {
    @Test func strictModeAddsIssuesWithoutChangingTheCompatibleVerdict() {
        let json = #"{"name":"__PACKAGE_NAME__","version":"01.2.3","runtime":"wasm-js@1","capabilities":["http.fetch"],"api":{"endpoints":[{"method":"GET","path":"/a","handler":"h"},{"method":"get","path":"a","handler":"h"}]}}"#
        #expect(ManifestValidator.validate(Array(json.utf8)).isValid)
        let strict = ManifestValidator.validate(Array(json.utf8), options: .init(strict: true)).issues
        #expect(strict.map(\.path) == ["name", "version", "capabilities[0]", "api.endpoints[1]"])
        #expect(strict.first?.message == #"name must be a reverse-domain identifier like "com.example.app""#)
        #expect(ManifestValidator.validate(Array(#"{"name":"com.example.app","version":"1.0.0-rc.1","runtime":"wasm-js@1","capabilities":["cap:log.emit"]}"#.utf8), options: .init(strict: true)).isValid)
        #expect(!ManifestValidator.isStrictSemver("1.0.0-01"))
        #expect(ManifestValidator.isReverseDomain("com.alga.sample.hello-world"))
        #expect(!ManifestValidator.isReverseDomain("Com.example"))
        #expect(!ManifestValidator.isReverseDomain("single"))
    }
}

@Suite struct ManifestHostileInputTests {
    @Test(arguments: [
        ("not json", "Unexpected token in JSON at position 0"),
        ("{", "Expected property name or '}' in JSON at position 1"),
        ("{\"a\":1,}", "Expected property name or '}' in JSON at position 7"),
        ("{} x", "Unexpected non-whitespace character after JSON at position 3"),
        ("", "Unexpected end of JSON input at position 0"),
        ("{\"a\":\"\u{01}\"}", "Bad control character in string literal in JSON at position 6"),
    ])
    func notJSON(_ text: String, message: String) {
        let result = ManifestValidator.validate(Array(text.utf8))
        #expect(result.issues == [ManifestIssue(path: "$", message: message)])
    }

    @Test func tooLargeAndTooDeepAreRefusedWithoutParsing() {
        let large = Array("{\"name\":\"".utf8) + [UInt8](repeating: 0x61, count: 10_000_000) + Array("\"}".utf8)
        #expect(ManifestValidator.validate(large).issues == [ManifestIssue(path: "$", message: "Manifest is larger than 1048576 bytes.")])
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(ManifestValidator.validate(Array(deep.utf8)).issues.first?.message.hasPrefix("JSON nests deeper than 64 levels") == true)
        let deepObject = String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        #expect(ManifestValidator.validate(Array(deepObject.utf8)).issues.first?.message.hasPrefix("JSON nests deeper than 64 levels") == true)
    }

    @Test func jsonStringsAndNumbers() throws {
        let value = try JSONReader.parse(Array(#"{"s":"a\"b\\c\/d\u00e9\ud83d\ude00\n","n":-12.5e3,"t":true,"z":null,"e":[]}"#.utf8))
        #expect(value["s"]?.string == "a\"b\\c/dé😀\n")
        #expect(value["n"] == .number("-12.5e3"))
        #expect(value["t"] == .bool(true))
        #expect(value["z"] == .null)
        #expect(value["e"] == .array([]))
        for bad in ["01", "-", "1.", "1e", "\"\\x\"", "\"\\u12\"", "[1 2]", "tru"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONReader.parse(Array(bad.utf8)) }
        }
    }

    @Test func wildcardPatchesNeverOverflow() {
        #expect(ManifestValidator.resolveWildcard("1.2.*", existing: ["1.2.9223372036854775807"]) == "1.2.9223372036854775808")
        #expect(ManifestValidator.resolveWildcard("1.2.*", existing: ["1.2.99999999999999999999", "1.2.5"]) == "1.2.100000000000000000000")
        #expect(ManifestValidator.resolveWildcard("1.2.*", existing: ["1.2.007", "1.2.8", "1.2.x", "1.2.", "1.2.-1"]) == "1.2.9")
        #expect(ManifestValidator.resolveWildcard("1.2.*", existing: ["1.2.0", "1.2.00"]) == "1.2.1")
        #expect(ManifestValidator.resolveWildcard("1.2.*", existing: ["1.2.18446744073709551615"]) == "1.2.18446744073709551616")
    }

    @Test func duplicateKeysReadAsJavaScriptReadsThem() throws {
        // Compatible mode: the last value wins, at the first key's place (JSON.parse).
        let text = #"{"name":"first","version":"1.0.0","name":"com.acme.last","runtime":"wasm-js@1","ui":{"type":"iframe","entry":"../x","entry":"ui/index.html"}}"#
        let compatible = ManifestValidator.validate(Array(text.utf8))
        #expect(compatible.isValid, "\(compatible.issues)")
        #expect(compatible.manifest?.name == "com.acme.last")
        #expect(compatible.manifest?.ui?.entry == "ui/index.html")
        if case .object(let members)? = compatible.manifest?.json { #expect(members.map(\.key) == ["name", "version", "runtime", "ui"]) }
        // A later invalid value makes it invalid, as in Alga.
        let invalid = ManifestValidator.validate(Array(#"{"name":"ok","name":"","version":"1.0.0","runtime":"wasm-js@1"}"#.utf8))
        #expect(invalid.issues.map(\.path) == ["name"])
        // Strict mode: each repeated key is an issue, with its path.
        let strict = ManifestValidator.validate(Array(text.utf8), options: .init(strict: true))
        #expect(strict.issues.filter { $0.message == "duplicate key" }.map(\.path) == ["name", "ui.entry"])
        #expect(strict.manifest == nil)
        let nested = try JSONReader.parseDocument(Array(#"{"api":{"endpoints":[{"path":"/a","path":"/b"}]},"é":1,"e\u0301":2}"#.utf8))
        #expect(nested.duplicateKeys == ["api.endpoints[0].path"])
        if case .object(let members) = nested.value { #expect(members.count == 3, "NFC and NFD keys are two keys, as in JavaScript") }
        #expect(ManifestValidator.declaredPublisher(in: Array(#"{"publisher":"a","publisher":" b "}"#.utf8)) == "b")
    }

    /// A megabyte that repeats one key a hundred thousand times under sixty levels of
    /// 2,000-byte keys: naming every repeat by its full path took gigabytes. The list is bounded.
    @Test func repeatedKeysUnderLongPathsAreReportedBoundedly() throws {
        let key = String(repeating: "k", count: 2_000)
        var text = ""
        for _ in 0..<60 { text += "{\"\(key)\":" }
        text += "{" + Array(repeating: #""a":1"#, count: 100_000).joined(separator: ",") + "}"
        text += String(repeating: "}", count: 60)
        let document = try JSONReader.parseDocument(Array(text.utf8), maxDepth: 100)
        #expect(document.duplicateKeys.count == JSONReader.maxReportedDuplicates)
        #expect(document.duplicateKeys.allSatisfy { $0.utf8.count <= 512 && $0.hasSuffix("…") })
        let strict = ManifestValidator.validate(Array(text.utf8), options: .init(strict: true, maxDepth: 100))
        #expect(!strict.isValid)
        #expect(strict.issues.filter { $0.message == "duplicate key" }.count == JSONReader.maxReportedDuplicates)
    }
}
