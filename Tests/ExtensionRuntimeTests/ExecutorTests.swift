import BundleCore
import ExtensionRuntime
import Foundation
import Logging
import MetricsTestKit
import RunnerCache
import Testing
import WAT

@Suite("WasmKitExecutor: the wasm-core@1 contract")
struct ExecutorContractTests {
    @Test func theGuestReadsTheRequestDocumentAndAnOpaqueAnswerIsTheBody() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.echo)
        let request = Harness.request(hash, method: "POST", path: "/a/b", body: "aGk=", config: ["greeting": "Howdy"])
        let response = await harness.executor.execute(request)
        #expect(response.error == nil)
        #expect(response.status == 200)
        #expect(response.headers.isEmpty)
        let document = try jsonObject(response)
        let context = try #require(document["context"] as? [String: Any])
        #expect(context["tenant_id"] as? String == "t1")
        #expect(context["extension_id"] as? String == "e1")
        #expect(context["request_id"] as? String == "r1")
        #expect(context["content_hash"] as? String == hash.prefixed)
        #expect((context["config"] as? [String: String]) == ["greeting": "Howdy"])
        let http = try #require(document["http"] as? [String: Any])
        #expect(http["method"] as? String == "POST")
        #expect(http["path"] as? String == "/a/b")
        #expect(http["body_b64"] as? String == "aGk=")
        #expect((http["query"] as? [String: String]) == ["q": "1"])
        #expect((http["headers"] as? [String: String]) == ["accept": "application/json"])
    }

    @Test func aResponseDocumentGivesStatusHeadersAndBody() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.constant(#"{"status":201,"headers":{"X-Thing":"b","content-type":"text/plain"},"body_b64":"aGk="}"#))
        let response = await harness.executor.execute(Harness.request(hash))
        #expect(response == ExecuteResponse(status: 201, headers: ["x-thing": "b", "content-type": "text/plain"], bodyB64: "aGk=", error: nil))
        // The wire form writes every key.
        let wire = try #require(try JSONSerialization.jsonObject(with: response.jsonData()) as? [String: Any])
        #expect(Set(wire.keys) == ["status", "headers", "body_b64", "error"])
        #expect(wire["error"] is NSNull)
    }

    @Test(arguments: [
        (#"{"status":"200"}"#, "bad response: status must be an integer from 100 to 599"),
        (#"{"status":99}"#, "bad response: status must be an integer from 100 to 599"),
        (#"{"status":200.5}"#, "bad response: status must be an integer from 100 to 599"),
        (#"{"status":200,"headers":[]}"#, "bad response: headers must be an object of strings"),
        (#"{"status":200,"headers":{"a":1}}"#, "bad response: header a is not a string"),
        (#"{"status":200,"headers":{"x":"a\r\nset-cookie: y"}}"#, "bad response: header x is not a valid HTTP header"),
        (#"{"status":200,"headers":{"bad name":"v"}}"#, "bad response: header bad name is not a valid HTTP header"),
        (#"{"status":200,"body_b64":"***"}"#, "bad response: body_b64 is not standard base64"),
    ])
    func aMalformedResponseDocumentIsRefusedByName(document: String, message: String) async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.constant(document))
        let response = await harness.executor.execute(Harness.request(hash))
        #expect(response.status == 500)
        #expect(response.error == "execute_failed: " + message)
    }

    @Test func bytesThatAreNotAResponseDocumentAreAnOpaqueBody() async throws {
        let harness = try Harness()
        for text in ["plain text, not JSON", #"{"message":"no status here"}"#, "[1,2,3]", ""] {
            let hash = try harness.add(Guests.constant(text))
            let response = await harness.executor.execute(Harness.request(hash))
            #expect(response == ExecuteResponse(status: 200, headers: [:], body: Array(text.utf8)), "\(text)")
        }
    }

    @Test func everyRequestGetsAFreshInstance() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.counter)
        for _ in 0..<3 {
            let response = await harness.executor.execute(Harness.request(hash))
            #expect(response.status == 201)
        }
        await withTaskGroup(of: Int.self) { group in
            for index in 0..<16 {
                group.addTask { await harness.executor.execute(Harness.request(hash, tenant: "t\(index % 3)")).status }
            }
            for await status in group { #expect(status == 201) }
        }
        #expect(harness.modules.lookups == 1)
        #expect(await harness.executor.stats().modules == 1)
    }

    @Test func pooledInstancesArePutBackAsInstantiationLeftThem() async throws {
        let harness = try Harness()
        let engine = harness.executor.engine
        // Memory, globals (counter, and the allocator's heap pointer) are restored: every answer is
        // the first one.
        for wat in [Guests.memoryCounter, Guests.counter] {
            let guest = try GuestModule.load(try wat2wasm(wat), engine: engine)
            #expect(guest.isPooled)
            let hash = try harness.add(wat)
            for _ in 0..<5 { #expect(await harness.executor.execute(Harness.request(hash)).status == 201) }
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<12 { group.addTask { await harness.executor.execute(Harness.request(hash)).status } }
                for await status in group { #expect(status == 201) }
            }
        }
        // A module that changes its tables is never pooled; one whose memory is past the snapshot
        // limit neither.
        #expect(try !GuestModule.load(try wat2wasm(Guests.tableGrower), engine: engine).isPooled)
        // A start function would run with the first request's host state: never pooled, and it
        // runs for every request.
        let started = Guests.memoryCounter.replacingOccurrences(
            of: "(func (export \"dealloc\")", with: "(start $begin) (func $begin (i32.store (i32.const 3000) (i32.const 4))) (func (export \"dealloc\")")
        #expect(try !GuestModule.load(try wat2wasm(started), engine: engine).isPooled)
        let startedHash = try harness.add(started)
        for _ in 0..<3 { #expect(await harness.executor.execute(Harness.request(startedHash)).status == 205) }
        let big = Guests.echo.replacingOccurrences(of: "(memory (export \"memory\") 1)", with: "(memory (export \"memory\") 17)")
        #expect(try !GuestModule.load(try wat2wasm(big), engine: engine).isPooled)
        // After a trap, a timeout and a memory growth (instances dropped), the next answers are right.
        let modes = try harness.add(Modes.wat)
        #expect(await harness.executor.execute(Harness.request(modes, body: Modes.trap)).error == "execute_failed: trap: unreachable")
        #expect(await harness.executor.execute(Harness.request(modes, body: Modes.growUntilRefused, limits: .init(memoryMb: 3))).headers["x-pages"] == "00033")
        let echoed = await harness.executor.execute(Harness.request(modes, body: Modes.echo, limits: .init(memoryMb: 3)))
        #expect(echoed.status == 200)
        #expect(try jsonObject(echoed)["http"] != nil)
    }

    @Test func aNonZeroHandlerResultIsAnApplicationError() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.returnsSeven)
        let response = await harness.executor.execute(Harness.request(hash))
        #expect(response == ExecuteResponse(status: 500, error: "execute_failed: handler returned 7"))
    }

    @Test func responsesOutsideMemoryOrPastTheCapAreRefused() async throws {
        let harness = try Harness { $0.maxResponseBytes = 1 << 20 }
        let outside = await harness.executor.execute(Harness.request(try harness.add(Guests.badOutPointer)))
        #expect(outside.status == 500)
        #expect(outside.error?.hasPrefix("execute_failed: the response (8 bytes at 4294967280) is outside memory") == true)
        let huge = await harness.executor.execute(Harness.request(try harness.add(Guests.hugeLength)))
        #expect(huge.error == "execute_failed: response too large")
        let badAlloc = await harness.executor.execute(Harness.request(try harness.add(Guests.badAlloc)))
        #expect(badAlloc.error?.hasPrefix("execute_failed: alloc(") == true)
        #expect(badAlloc.error?.contains("outside memory") == true)
    }

    @Test func modulesOutsideTheContractAreNamedAndNeverRun() async throws {
        let harness = try Harness()
        let cases: [([UInt8], String)] = [
            (Guests.component, "execute_failed: components are not supported yet"),
            (Array("not wasm at all".utf8), "execute_failed: the module is not WebAssembly (no \\0asm header)"),
            (try wat2wasm(Guests.wasiImport), "execute_failed: the module imports wasi_snapshot_preview1.fd_write, which the runner does not provide"),
            (try wat2wasm(Guests.noHandler), "execute_failed: the module does not export the function `handler`"),
            (
                try wat2wasm(Guests.wrongHandlerType),
                "execute_failed: the module's `handler` has the wrong type (the contract is (i32, i32, i32) -> i32)"
            ),
            ([0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0xFF], "execute_failed: the module does not parse"),
            ([0x00, 0x61, 0x73, 0x6D, 0x02, 0x00, 0x00, 0x00], "execute_failed: the module has an unknown WebAssembly version 2.0.0.0"),
            (try wat2wasm(Guests.wrongImportType), "execute_failed: the module imports alga.log_info with the wrong type"),
            (try wat2wasm(Guests.manyTables), "execute_failed: the module's tables are larger than 100000 elements"),
            (try wat2wasm(Guests.exceptions), "execute_failed: the module does not"),
            (
                try wat2wasm(Guests.wrongDeallocType),
                "execute_failed: the module's `dealloc` has the wrong type (the contract is (i32, i32) -> ())"
            ),
        ]
        for (bytes, expected) in cases {
            let hash = try harness.modules.add(bytes)
            let response = await harness.executor.execute(Harness.request(hash))
            #expect(response.status == 500)
            #expect(response.error?.hasPrefix(expected) == true, "\(response.error ?? "nil") for \(expected)")
            // A module that does not load is remembered: the second request does not fetch it again.
            let lookups = harness.modules.lookups
            #expect(await harness.executor.execute(Harness.request(hash)).error == response.error)
            #expect(harness.modules.lookups == lookups)
        }
    }

    @Test func parsedModulesAreKeptForTheMostRecentlyUsedHashesOnly() async throws {
        let harness = try Harness { $0.moduleCapacity = 2 }
        let a = try harness.add(Guests.echo)
        let b = try harness.add(Guests.counter)
        let c = try harness.add(Guests.returnsSeven)
        for hash in [a, b, a, a] { _ = await harness.executor.execute(Harness.request(hash)) }
        #expect(harness.modules.lookups == 2)
        _ = await harness.executor.execute(Harness.request(c))  // b is the least recently used: it goes
        #expect(await harness.executor.stats().modules == 2)
        _ = await harness.executor.execute(Harness.request(a))
        #expect(harness.modules.lookups == 3)
        _ = await harness.executor.execute(Harness.request(b))
        #expect(harness.modules.lookups == 4)
        await harness.executor.purgeModules()
        #expect(await harness.executor.stats().modules == 0)
    }

    @Test func modulesPastTheSizeCapAreRefused() async throws {
        let harness = try Harness { $0.maxModuleBytes = 100 }
        let response = await harness.executor.execute(Harness.request(try harness.add(Guests.echo)))
        #expect(response.error?.hasPrefix("execute_failed: the module is larger than 100 bytes") == true)
    }

    @Test func framingHeadersOfAGuestsAnswerAreDropped() async throws {
        let harness = try Harness()
        let hash = try harness.add(
            Guests.constant(#"{"status":200,"headers":{"Content-Length":"5","transfer-encoding":"chunked","Connection":"close","x-kept":"1"}}"#))
        #expect(await harness.executor.execute(Harness.request(hash)).headers == ["x-kept": "1"])
    }

    @Test func anImportCalledFromTheAllocOfAnotherImportIsRefused() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.reentrantAlloc)
        let envelope = ExecuteRequest.SecretEnvelope(ciphertextB64: Data(#"{"x":"y"}"#.utf8).base64EncodedString())
        let response = await harness.executor.execute(Harness.request(hash, providers: ["cap:secrets.get"], secrets: envelope))
        #expect(response.error == nil)
        #expect(response.status == 200)
    }

    @Test func theConfigurationReadsTheEnvironment() {
        let configuration = WasmKitExecutor.Configuration.fromEnvironment([
            "EXT_EGRESS_ALLOWLIST": "api.example.com", "EXT_EXECUTE_TIMEOUT_MS": "250", "EXT_EXECUTE_MEMORY_MB": "64",
            "EXT_EXECUTE_CONCURRENCY": "3",
        ])
        #expect(configuration.egress.allowlist == ["api.example.com"])
        #expect(configuration.defaultTimeoutMs == 250)
        #expect(configuration.defaultMemoryMb == 64)
        #expect(configuration.maxConcurrentExecutions == 3)
        let defaults = WasmKitExecutor.Configuration.fromEnvironment(["EXT_EXECUTE_TIMEOUT_MS": "0", "EXT_EXECUTE_MEMORY_MB": "lots"])
        #expect(defaults.defaultTimeoutMs == 5_000)
        #expect(defaults.defaultMemoryMb == 256)
    }

    @Test func aRequestDocumentPastTheCapIsRefused() async throws {
        let harness = try Harness { $0.maxRequestBytes = 600 }
        let hash = try harness.add(Guests.echo)
        #expect(await harness.executor.execute(Harness.request(hash)).status == 200)
        let big = Data(repeating: 0x61, count: 400).base64EncodedString()
        #expect(await harness.executor.execute(Harness.request(hash, body: big)) == ExecuteResponse(status: 500, error: "execute_failed: request too large"))
    }

    @Test func bundleProblemsAre502() async throws {
        let harness = try Harness()
        var request = Harness.request(ContentHash.of([1, 2, 3]))
        let missing = await harness.executor.execute(request)
        #expect(missing.status == 502)
        #expect(missing.error?.hasPrefix("bundle_fetch_failed: CACHE_NOT_FOUND") == true)
        request.context.contentHash = "sha256:xyz"
        let invalid = await harness.executor.execute(request)
        #expect(invalid.status == 502)
        #expect(invalid.error == "bundle_fetch_failed: content_hash is not a SHA-256 hash (sha256:<64 hex> or 64 hex)")
        request.context.contentHash = String(repeating: "ab", count: 32)
        #expect(await harness.executor.execute(request).status == 502)
    }

    @Test func aBadRequestBodyIsRefusedBeforeTheGuestRuns() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.echo)
        let response = await harness.executor.execute(Harness.request(hash, body: "not base64!"))
        #expect(response == ExecuteResponse(status: 500, error: "execute_failed: body_b64 is not standard base64"))
        #expect(await harness.executor.execute(Harness.request(hash, body: "")).status == 200)
    }
}

@Suite("WasmKitExecutor: limits")
struct ExecutorLimitTests {
    @Test func aHandlerThatNeverReturnsTimesOutAndTheModuleServesTheNextRequest() async throws {
        let harness = try Harness()
        let hash = try harness.add(Modes.wat)
        let response = await harness.executor.execute(Harness.request(hash, body: Modes.loop, limits: .init(timeoutMs: 200)))
        #expect(response == ExecuteResponse(status: 500, error: "execute_failed: timeout"))
        let next = await harness.executor.execute(Harness.request(hash, body: Modes.echo))
        #expect(next.status == 200)
        #expect(next.error == nil)
    }

    @Test func theDefaultTimeoutAppliesWhenTheRequestHasNone() async throws {
        let harness = try Harness { $0.defaultTimeoutMs = 150 }
        let hash = try harness.add(Modes.wat)
        #expect(await harness.executor.execute(Harness.request(hash, body: Modes.loop)).error == "execute_failed: timeout")
    }

    @Test func fuelRunsOut() async throws {
        let harness = try Harness()
        let hash = try harness.add(Modes.wat)
        let response = await harness.executor.execute(Harness.request(hash, body: Modes.loop, limits: .init(timeoutMs: 60_000, fuel: 10_000)))
        #expect(response == ExecuteResponse(status: 500, error: "execute_failed: out of fuel"))
        // Enough fuel for the echo.
        #expect(await harness.executor.execute(Harness.request(hash, body: Modes.echo, limits: .init(fuel: 100_000))).status == 200)
    }

    @Test func memoryGrowthStopsAtTheCapInsideTheGuest() async throws {
        let harness = try Harness()
        let hash = try harness.add(Modes.wat)
        let capped = await harness.executor.execute(Harness.request(hash, body: Modes.growUntilRefused, limits: .init(memoryMb: 3)))
        #expect(capped.error == nil)
        // 3 MiB is 48 pages; the guest grows 16 at a time from 1, so it stops at 33.
        #expect(capped.headers["x-pages"] == "00033")
        let byDefault = await harness.executor.execute(Harness.request(hash, body: Modes.growUntilRefused))
        #expect(byDefault.headers["x-pages"] == "04081")  // 256 MiB = 4096 pages
        let forever = await harness.executor.execute(Harness.request(hash, body: Modes.growForever, limits: .init(timeoutMs: 300, memoryMb: 8)))
        #expect(forever.error == "execute_failed: timeout")
        #expect(await harness.executor.execute(Harness.request(hash, body: Modes.echo)).status == 200)
    }

    @Test func aModuleWhoseInitialMemoryIsPastTheCapDoesNotStart() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.echo.replacingOccurrences(of: "(memory (export \"memory\") 1)", with: "(memory (export \"memory\") 100)"))
        let response = await harness.executor.execute(Harness.request(hash, limits: .init(memoryMb: 2)))
        #expect(response.error == "execute_failed: the module's initial memory is larger than memory_mb")
        #expect(await harness.executor.execute(Harness.request(hash, limits: .init(memoryMb: 8))).status == 200)
    }

    @Test func tableGrowthStopsAtTheCap() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.tableGrower)
        #expect(await harness.executor.execute(Harness.request(hash)).error == "execute_failed: handler returned -1")
        let roomy = try Harness { $0.maxTableElements = 300_000 }
        #expect(await roomy.executor.execute(Harness.request(try roomy.add(Guests.tableGrower))).error == "execute_failed: handler returned 1")
    }

    @Test func limitsAskedForPastTheExecutorsCeilingsAreClamped() async throws {
        let harness = try Harness {
            $0.maxMemoryMb = 2
            $0.maxTimeoutMs = 100
        }
        let hash = try harness.add(Modes.wat)
        // 2 MiB is 32 pages: from 1, sixteen at a time, the guest stops at 17.
        let memory = await harness.executor.execute(Harness.request(hash, body: Modes.growUntilRefused, limits: .init(memoryMb: 1_000)))
        #expect(memory.headers["x-pages"] == "00017")
        let time = await harness.executor.execute(Harness.request(hash, body: Modes.loop, limits: .init(timeoutMs: 3_600_000)))
        #expect(time.error == "execute_failed: timeout")
    }

    @Test func trapsAndStackExhaustionAreAnswersAndTheHostGoesOn() async throws {
        let harness = try Harness()
        let hash = try harness.add(Modes.wat)
        #expect(await harness.executor.execute(Harness.request(hash, body: Modes.trap)).error == "execute_failed: trap: unreachable")
        #expect(await harness.executor.execute(Harness.request(hash, body: Modes.recurse)).error == "execute_failed: trap: call stack exhausted")
        #expect(await harness.executor.execute(Harness.request(hash, body: Modes.echo)).status == 200)
    }

    @Test func failuresAndExecutionsAreCounted() async throws {
        let harness = try Harness()
        let hash = try harness.add(Modes.wat)
        _ = await harness.executor.execute(Harness.request(hash, body: Modes.echo))
        _ = await harness.executor.execute(Harness.request(hash, body: Modes.trap))
        _ = await harness.executor.execute(Harness.request(hash, providers: ["cap:nope"]))
        #expect(try harness.metrics.expectCounter("extbundles_execute_total").totalValue == 3)
        #expect(try harness.metrics.expectCounter("extbundles_execute_failures_total", [("kind", "execute_failed")]).totalValue == 1)
        #expect(try harness.metrics.expectCounter("extbundles_execute_failures_total", [("kind", "unknown_capabilities")]).totalValue == 1)
        #expect(try harness.metrics.expectTimer("extbundles_execute_duration_seconds").values.count == 3)
    }
}

@Suite("WasmKitExecutor: capabilities, secrets, logs, idempotency")
struct ExecutorHostTests {
    @Test func unknownCapabilitiesAreRefusedBeforeAnythingRuns() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.echo)
        let response = await harness.executor.execute(Harness.request(hash, providers: ["cap:http.fetch", "storage.kv", "cap:nope", " CAP:NOPE "]))
        #expect(response == ExecuteResponse(status: 400, error: "unknown_capabilities: cap:nope,storage.kv"))
        #expect(harness.modules.lookups == 0)
        let normalised = await harness.executor.execute(Harness.request(hash, providers: [" CAP:HTTP.FETCH\t", "cap:storage.kv"]))
        #expect(normalised.status == 200)
        #expect(try Capability.granted(by: [" Cap:Secrets.Get "]) == Capability.defaults.union([.secretsGet]))
    }

    @Test func guestLogsCarryTheRequestsIdsAndBadRangesAreDropped() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.logger("hello from the guest"))
        let forged = try harness.add(Guests.logger("line\n2026-01-01 error forged\u{1B}[31m"))
        _ = await harness.executor.execute(Harness.request(forged))
        #expect(harness.logs.records.contains { $0.message == "line\\u{a}2026-01-01 error forged\\u{1b}[31m" })
        let response = await harness.executor.execute(Harness.request(hash, tenant: "acme", extensionID: "ext-9", requestID: "req-42"))
        #expect(response.status == 204)
        let lines = harness.logs.records.filter { $0.metadata["source"] == "guest" && $0.level == .info && $0.metadata["request_id"] == "req-42" }
        #expect(lines.map(\.message) == ["hello from the guest"])
        let errors = harness.logs.records.filter { $0.metadata["source"] == "guest" && $0.level == .error && $0.metadata["request_id"] == "req-42" }
        #expect(errors.map(\.message) == ["hello"])
        let line = try #require(lines.first)
        #expect(line.metadata["tenant"] == "acme")
        #expect(line.metadata["extension"] == "ext-9")
        #expect(line.metadata["request_id"] == "req-42")
    }

    @Test func longLogLinesAreCut() async throws {
        let harness = try Harness { $0.maxLogLineBytes = 8 }
        let hash = try harness.add(Guests.logger("a line longer than eight bytes"))
        _ = await harness.executor.execute(Harness.request(hash))
        let lines = harness.logs.records.filter { $0.metadata["source"] == "guest" && $0.level == .info }
        #expect(lines.map(\.message) == ["a line l…"])
    }

    @Test func logLinesPastTheBudgetAreDropped() async throws {
        let harness = try Harness { $0.maxLogLines = 1 }
        let hash = try harness.add(Guests.logger("only once"))
        _ = await harness.executor.execute(Harness.request(hash))
        let guestLines = harness.logs.records.filter { $0.metadata["source"] == "guest" }
        #expect(guestLines.filter { $0.level == .info }.count == 1)
        #expect(guestLines.contains { $0.level == .warning && $0.message.contains("dropped") })
    }

    @Test func inlineSecretsReachAGuestThatHoldsTheCapability() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.secretReader("api_key"))
        let envelope = ExecuteRequest.SecretEnvelope(ciphertextB64: Data(#"{"api_key":"s3cr3t"}"#.utf8).base64EncodedString())
        let granted = await harness.executor.execute(Harness.request(hash, providers: ["cap:secrets.get"], secrets: envelope))
        #expect(granted == ExecuteResponse(status: 200, headers: [:], body: Array("s3cr3t".utf8)))
        let denied = await harness.executor.execute(Harness.request(hash, secrets: envelope))
        #expect(denied.error == "execute_failed: handler returned -2")
        let other = ExecuteRequest.SecretEnvelope(ciphertextB64: Data(#"{"other":"x"}"#.utf8).base64EncodedString())
        let missing = await harness.executor.execute(Harness.request(hash, providers: ["cap:secrets.get"], secrets: other))
        #expect(missing.error == "execute_failed: handler returned -6")
        // An empty ciphertext is an empty map, whatever the algorithm (as in Alga).
        let empty = ExecuteRequest.SecretEnvelope(ciphertextB64: "", algorithm: "vault-transit")
        #expect(await harness.executor.execute(Harness.request(hash, providers: ["cap:secrets.get"], secrets: empty)).error == "execute_failed: handler returned -6")
        for bad in [
            ExecuteRequest.SecretEnvelope(ciphertextB64: "%%%"), ExecuteRequest.SecretEnvelope(ciphertextB64: Data("[1]".utf8).base64EncodedString()),
            ExecuteRequest.SecretEnvelope(ciphertextB64: "AAAA", algorithm: "vault-transit-v1"),
        ] {
            let response = await harness.executor.execute(Harness.request(hash, providers: ["cap:secrets.get"], secrets: bad))
            #expect(response == ExecuteResponse(status: 500, error: "secret_decrypt_failed"))
        }
    }

    @Test func aVaultDecrypterCanBeInjected() async throws {
        struct FakeVault: SecretDecrypter {
            func decrypt(_ envelope: ExecuteRequest.SecretEnvelope, context: ExecuteRequest.Context) async throws -> [String: String] {
                ["api_key": "from-vault-for-\(context.tenantID)"]
            }
        }
        let harness = try Harness { $0.secrets = InlineSecretDecrypter(vault: FakeVault()) }
        let hash = try harness.add(Guests.secretReader("api_key"))
        let envelope = ExecuteRequest.SecretEnvelope(ciphertextB64: "vault:v1:abc", algorithm: "vault-transit")
        let response = await harness.executor.execute(Harness.request(hash, tenant: "acme", providers: ["cap:secrets.get"], secrets: envelope))
        #expect(response.body == Array("from-vault-for-acme".utf8))
    }

    @Test func idempotentResponsesAreScopedByTenantAndExtension() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.echo)
        func requestID(of response: ExecuteResponse) throws -> String? {
            let document = try JSONSerialization.jsonObject(with: Data(try #require(response.body))) as? [String: Any]
            return (document?["context"] as? [String: Any])?["request_id"] as? String
        }
        let key = ExecuteOptions(idempotencyKey: "k1")
        let first = await harness.executor.execute(Harness.request(hash, requestID: "first"), options: key)
        let again = await harness.executor.execute(Harness.request(hash, requestID: "second"), options: key)
        #expect(try requestID(of: first) == "first")
        #expect(try requestID(of: again) == "first")
        let otherTenant = await harness.executor.execute(Harness.request(hash, tenant: "t2", requestID: "third"), options: key)
        #expect(try requestID(of: otherTenant) == "third")
        let otherExtension = await harness.executor.execute(Harness.request(hash, extensionID: "e2", requestID: "fourth"), options: key)
        #expect(try requestID(of: otherExtension) == "fourth")
        // Runner-side failures are not kept.
        let refused = await harness.executor.execute(Harness.request(hash, requestID: "fifth", providers: ["cap:x"]), options: .init(idempotencyKey: "k2"))
        #expect(refused.status == 400)
        let retried = await harness.executor.execute(Harness.request(hash, requestID: "sixth"), options: .init(idempotencyKey: "k2"))
        #expect(try requestID(of: retried) == "sixth")
        #expect(await harness.executor.stats().idempotentResponses == 4)
    }

    @Test func idempotentResponsesExpireAndAreBounded() async throws {
        let clock = LockedValue(Date(timeIntervalSince1970: 1_800_000_000))
        let harness = try Harness {
            $0.idempotencyTTL = 60
            $0.idempotencyCapacity = 10
            $0.now = { clock.withLock { $0 } }
        }
        let hash = try harness.add(Guests.echo)
        for index in 0..<25 {
            _ = await harness.executor.execute(Harness.request(hash), options: .init(idempotencyKey: "k\(index)"))
        }
        #expect(await harness.executor.stats().idempotentResponses <= 10)
        let before = await harness.executor.execute(Harness.request(hash, requestID: "a"), options: .init(idempotencyKey: "late"))
        clock.withLock { $0 += 61 }
        let after = await harness.executor.execute(Harness.request(hash, requestID: "b"), options: .init(idempotencyKey: "late"))
        #expect(before != after)
    }

    @Test func largeAnswersAreNotKeptAndTheKeyIsScopedByUserMethodAndPath() async throws {
        let harness = try Harness { $0.idempotencyMaxResponseBytes = 100 }
        let hash = try harness.add(Guests.echo)
        _ = await harness.executor.execute(Harness.request(hash), options: .init(idempotencyKey: "big"))
        #expect(await harness.executor.stats().idempotentResponses == 0)
        let roomy = try Harness()
        let echo = try roomy.add(Guests.echo)
        let alice = ExecuteRequest.User(userID: "alice", userEmail: "a@x", userName: "A", userType: "internal")
        let bob = ExecuteRequest.User(userID: "bob", userEmail: "b@x", userName: "B", userType: "internal")
        let key = ExecuteOptions(idempotencyKey: "k")
        _ = await roomy.executor.execute(Harness.request(echo, requestID: "a", user: alice), options: key)
        let other = await roomy.executor.execute(Harness.request(echo, requestID: "b", user: bob), options: key)
        #expect(try (jsonObject(other)["context"] as? [String: Any])?["request_id"] as? String == "b")
        let otherPath = await roomy.executor.execute(Harness.request(echo, path: "/y", requestID: "c", user: alice), options: key)
        #expect(try (jsonObject(otherPath)["context"] as? [String: Any])?["request_id"] as? String == "c")
    }

    @Test func concurrentRequestsWithOneKeyRunTheHandlerOnce() async throws {
        let harness = try Harness()
        let hash = try harness.add(Guests.echo)
        let bodies = await withTaskGroup(of: [UInt8]?.self) { group in
            for index in 0..<8 {
                group.addTask {
                    await harness.executor.execute(Harness.request(hash, requestID: "r\(index)"), options: .init(idempotencyKey: "same")).body
                }
            }
            var bodies: [[UInt8]?] = []
            for await body in group { bodies.append(body) }
            return bodies
        }
        #expect(Set(bodies.compactMap { $0 }).count == 1)
    }
}

@Suite("Execute model")
struct ExecuteModelTests {
    @Test func decodesWhatAlgasGatewaySends() throws {
        let json = """
            {"context":{"request_id":"r","tenant_id":"t","extension_id":"e","install_id":"i","content_hash":"sha256:\(String(repeating: "a", count: 64))",
              "version_id":"v","config":{"k":"v"},"unknown":1},
             "http":{"method":"POST","path":"/p","query":{"a":"b"},"headers":{"h":"v"},"body_b64":"","url":"/p?a=b"},
             "endpoint":"ui-proxy:/p",
             "limits":{"timeout_ms":30000,"memory_mb":null},
             "providers":["cap:http.fetch"],
             "secret_envelope":{"ciphertext_b64":"","version":3,"algorithm":"inline"},
             "user":{"user_id":"u","user_email":"u@x","user_name":"U","user_type":"internal","company_name":"Acme","additional_fields":{"x":"y"}}}
            """
        let request = try ExecuteRequest.decode(json: Data(json.utf8))
        #expect(request.context.installID == "i")
        #expect(request.http.bodyB64 == "")
        #expect(request.limits == .init(timeoutMs: 30_000))
        #expect(request.secretEnvelope?.version == "3")
        #expect(request.user?.clientName == "Acme")
        #expect(request.user?.additionalFields == ["x": "y"])
        let round = try ExecuteRequest.decode(json: try JSONEncoder().encode(request))
        #expect(round == request)
    }

    @Test(arguments: [
        #"{"context":{"extension_id":"e","content_hash":"h"},"http":{"method":"GET","path":"/"}}"#,
        #"{"context":{"tenant_id":"t","extension_id":"e","content_hash":"h"},"http":{"path":"/"}}"#,
        #"{"context":{"tenant_id":"t","extension_id":"e","content_hash":"h"},"http":{"method":"GET","path":"/"},"limits":{"timeout_ms":-1}}"#,
        #"{"context":{"tenant_id":"t","extension_id":"e","content_hash":"h"},"http":{"method":"GET","path":"/"},"user":{"user_id":"u"}}"#,
        #"[]"#,
    ])
    func refusesTheWrongShape(json: String) {
        #expect(throws: DecodingError.self) { try ExecuteRequest.decode(json: Data(json.utf8)) }
    }

    @Test func failuresHaveTheirRowOfTheTable() {
        #expect(ExecuteResponse(failure: .timeout) == ExecuteResponse(status: 500, error: "execute_failed: timeout"))
        #expect(ExecuteResponse(failure: ExecuteFailure(.missingRoutingHeaders)) == ExecuteResponse(status: 400, error: "missing_routing_headers"))
        #expect(ExecuteFailure(.bundleFetchFailed, "x").kind.status == 502)
        #expect(ExecuteFailure(.engineInitFailed, "x").code.rawValue == "ENGINE_INIT_FAILED")
        #expect(ExecuteFailure.Kind(rawValue: "secret_decrypt_failed").status == 500)
        #expect(ExecuteFailure.Kind(rawValue: "unknown_capabilities").status == 400)
    }

    @Test func theStubRecordsAndChecksCapabilities() async {
        let stub = StubExecutor(always: ExecuteResponse(status: 200, body: Array("ok".utf8)))
        let hash = ContentHash.of([1])
        #expect(await stub.execute(Harness.request(hash), options: .init(idempotencyKey: "k")).status == 200)
        #expect(await stub.execute(Harness.request(hash, providers: ["cap:zzz"])).status == 400)
        #expect(await stub.requests.count == 2)
        #expect(await stub.options.first?.idempotencyKey == "k")
    }
}
