import BundleCore
import BundleStore
@testable import BundleStoreS3
import Foundation
import Testing
import TestSupport

/// Against the real SeaweedFS server, with real peers: the aws CLI and curl.
@Suite(.enabled(if: Backend.s3Configured || Backend.s3Required))
struct S3InteropTests {
    let configuration: S3ObjectStore.Configuration
    let store: S3ObjectStore
    let awsEnvironment: [String: String]

    init() throws {
        configuration = try Backend.s3Configuration()
        store = try S3ObjectStore(configuration: configuration)
        awsEnvironment = [
            "AWS_ACCESS_KEY_ID": configuration.credentials.accessKeyID,
            "AWS_SECRET_ACCESS_KEY": configuration.credentials.secretAccessKey,
            "AWS_DEFAULT_REGION": configuration.region, "AWS_EC2_METADATA_DISABLED": "true",
        ]
    }

    var endpoint: String { configuration.endpoint!.absoluteString }
    func s3URL(_ key: String) -> String { "s3://\(configuration.bucket)/\(configuration.keyPrefix)\(key)" }

    @Test func theAwsCLIReadsWhatWeWriteAndWeReadWhatItWrites() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("aws")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // Ours, as a multipart upload (unknown length), read back by `aws s3 cp`.
        let ours = TestSupport.randomBytes(18 << 20 + 7, seed: 21)
        try await store.put("interop/ours.bin", body: .bytes(ours), length: nil, condition: .createOnly)
        try TestSupport.sh("aws --endpoint-url \(endpoint) s3 cp '\(s3URL("interop/ours.bin"))' '\(scratch)/ours.bin' --only-show-errors", environment: awsEnvironment)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: scratch + "/ours.bin"))) == ours)
        // Theirs: `aws s3 cp` uploads in 8 MiB multipart chunks; we read it back.
        let theirs = TestSupport.randomBytes(20 << 20 + 3, seed: 22)
        try TestSupport.write(theirs, to: "theirs.bin", in: scratch)
        try TestSupport.sh("aws --endpoint-url \(endpoint) s3 cp '\(scratch)/theirs.bin' '\(s3URL("interop/theirs.bin"))' --only-show-errors", environment: awsEnvironment)
        let info = try #require(try await store.head("interop/theirs.bin"))
        #expect(info.size == Int64(theirs.count))
        #expect(info.etag?.hasSuffix("-3") == true, "aws multipart ETag \(info.etag ?? "")")
        #expect(try await contents(store, "interop/theirs.bin") == theirs)
        #expect(try await store.get("interop/theirs.bin", range: .suffix(3)).stream.collect(upTo: 10) == Array(theirs.suffix(3)))
        let listing = try TestSupport.sh("aws --endpoint-url \(endpoint) s3 ls '\(s3URL("interop/"))'", environment: awsEnvironment)
        #expect(listing.contains("ours.bin") && listing.contains("theirs.bin"))
    }

    @Test func presignedURLsWorkWithCurlAndExpiredOrTamperedOnesAreRefused() async throws {
        let bytes = TestSupport.randomBytes(100_000, seed: 23)
        try await store.put("presign/get.bin", bytes: bytes)
        let get = try #require(try await store.presignedURL(for: .get, key: "presign/get.bin", expires: 300))
        let fetched = try TestSupport.run(["curl", "-sf", get.absoluteString])
        #expect(fetched.status == 0)
        #expect(Array(fetched.stdout.utf8).count > 0)
        let scratch = try TestSupport.makeTemporaryDirectory("presign")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try TestSupport.sh("curl -sf -o '\(scratch)/got.bin' '\(get.absoluteString)'")
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: scratch + "/got.bin"))) == bytes)

        try TestSupport.write(Array("uploaded with curl".utf8), to: "up.txt", in: scratch)
        try TestSupport.write(Array("something else".utf8), to: "other.txt", in: scratch)
        let put = try #require(try await store.presignedURL(for: .put, key: "presign/put.txt", expires: 300))
        // If-None-Match is signed into the URL: without it the signature does not match.
        #expect(try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' -X PUT --upload-file '\(scratch)/up.txt' '\(put.absoluteString)'") == "403")
        #expect(try await store.head("presign/put.txt") == nil)
        try TestSupport.sh("curl -sf -X PUT -H 'If-None-Match: *' --upload-file '\(scratch)/up.txt' '\(put.absoluteString)'")
        #expect(try await contents(store, "presign/put.txt") == Array("uploaded with curl".utf8))
        // The same URL can never replace the object: other bytes are refused, the object stays.
        let again = try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'If-None-Match: *' --upload-file '\(scratch)/other.txt' '\(put.absoluteString)'")
        #expect(again == "412")
        #expect(try await contents(store, "presign/put.txt") == Array("uploaded with curl".utf8))

        var tampered = get.absoluteString
        let last = tampered.removeLast()
        tampered.append(last == "0" ? "1" : "0")
        #expect(try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' '\(tampered)'") == "403")
        let expiring = try #require(try await store.presignedURL(for: .get, key: "presign/get.bin", expires: 1))
        try await Task.sleep(nanoseconds: 2_500_000_000)
        #expect(try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' '\(expiring.absoluteString)'") == "403")
    }

    @Test func presignedPutsOfExtctlAreCreateOnly() async throws {
        // `extctl store presign --put` signs a PUT to a canonical key: a second upload with the
        // same URL and other bytes is refused, and the stored bundle is unchanged.
        let scratch = try TestSupport.makeTemporaryDirectory("presign-cli")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let environment = try Self.cliEnvironment()
        let hash = String(repeating: "ab", count: 32)
        let url = try TestSupport.run(
            [TestSupport.extctl, "store", "presign", hash, "--put", "--store", "s3://\(store.configuration.bucket)/\(store.configuration.keyPrefix)"],
            environment: environment)
        #expect(url.status == 0, "\(url.stderr)")
        #expect(url.stderr.contains("If-None-Match"))
        let presigned = url.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let checksum = PresignedOperation.checksumHeader(try ContentHash(parsing: hash))
        #expect(url.stderr.contains("\(checksum.name): \(checksum.value)"))
        let headers = "-H 'If-None-Match: *' -H '\(checksum.name): \(checksum.value)'"
        try TestSupport.write(Array("first".utf8), to: "a", in: scratch)
        try TestSupport.write(Array("second, longer".utf8), to: "b", in: scratch)
        // Bytes that do not hash to the URL's hash are refused, with or without the header's help.
        #expect(try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' -X PUT \(headers) --upload-file '\(scratch)/a' '\(presigned)'") == "400")
        #expect(try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'If-None-Match: *' --upload-file '\(scratch)/a' '\(presigned)'") == "403")
        #expect(try await store.head("sha256/\(hash)/bundle.tar.zst") == nil)
        // The URL of the real bytes' hash stores them once; a second upload is refused.
        let real = Array("first".utf8)
        let realHash = ContentHash.of(real)
        let realChecksum = PresignedOperation.checksumHeader(realHash)
        let realURL = try #require(try await store.presignedURL(for: .putChecked(realHash), key: "sha256/\(realHash.hex)/bundle.tar.zst", expires: 300))
        let realHeaders = "-H 'If-None-Match: *' -H '\(realChecksum.name): \(realChecksum.value)'"
        #expect(try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' -X PUT \(realHeaders) --upload-file '\(scratch)/a' '\(realURL.absoluteString)'") == "200")
        #expect(try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' -X PUT \(realHeaders) --upload-file '\(scratch)/a' '\(realURL.absoluteString)'") == "412")
        #expect(try TestSupport.sh("curl -s -o /dev/null -w '%{http_code}' -X PUT \(realHeaders) --upload-file '\(scratch)/b' '\(realURL.absoluteString)'") != "200")
        #expect(try await contents(store, "sha256/\(realHash.hex)/bundle.tar.zst") == real)
    }

    static func cliEnvironment() throws -> [String: String] {
        let environment = ProcessInfo.processInfo.environment
        guard let endpoint = environment["EXTBUNDLES_S3_ENDPOINT"] else { throw S3NotConfigured() }
        return [
            "STORAGE_S3_ENDPOINT": endpoint, "STORAGE_S3_ACCESS_KEY": environment["EXTBUNDLES_S3_ACCESS_KEY"] ?? "",
            "STORAGE_S3_SECRET_KEY": environment["EXTBUNDLES_S3_SECRET_KEY"] ?? "", "STORAGE_S3_REGION": environment["EXTBUNDLES_S3_REGION"] ?? "us-east-1",
        ]
    }

    @Test func presignedUploadPartsCompleteAnUpload() async throws {
        let key = "presign/parts.bin"
        let uploadID = try await store.createMultipartUpload(key)
        let scratch = try TestSupport.makeTemporaryDirectory("parts")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let first = TestSupport.randomBytes(5 << 20, seed: 24)
        let second = TestSupport.randomBytes(1_000, seed: 25)
        var parts: [UploadedPart] = []
        for (number, bytes) in [(1, first), (2, second)] {
            try TestSupport.write(bytes, to: "part\(number)", in: scratch)
            let url = try #require(try await store.presignedURL(for: .uploadPart(uploadID: uploadID, partNumber: number), key: key, expires: 300))
            let headers = try TestSupport.sh("curl -sf -D - -o /dev/null -X PUT --upload-file '\(scratch)/part\(number)' '\(url.absoluteString)'")
            let etag = try #require(headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("etag:") })
            parts.append(.init(number: number, etag: String(etag.dropFirst(5)).trimmingCharacters(in: CharacterSet(charactersIn: " \""))))
        }
        try await store.completeMultipartUpload(key, uploadID: uploadID, parts: parts, condition: .createOnly)
        #expect(try await contents(store, key) == first + second)
    }

    @Test func aSmallPartInTheMiddleIsATypedError() async throws {
        // Through the optional capability, as a host that only holds `any ObjectStore` would.
        let objects: any ObjectStore = store
        let store = try #require(objects as? any MultipartObjectStore)
        let key = "multipart/small"
        let uploadID = try await store.createMultipartUpload(key)
        let one = try await store.uploadPart(key, uploadID: uploadID, number: 1, bytes: TestSupport.randomBytes(1 << 20, seed: 1))
        let two = try await store.uploadPart(key, uploadID: uploadID, number: 2, bytes: TestSupport.randomBytes(1 << 20, seed: 2))
        let error = await #expect(throws: StoreError.self) {
            try await store.completeMultipartUpload(key, uploadID: uploadID, parts: [one, two], condition: .createOnly)
        }
        #expect(error?.code == .storeInvalidArgument)
        #expect(error?.backendCode == "EntityTooSmall")
        #expect(error?.key == key)
        try await store.abortMultipartUpload(key, uploadID: uploadID)
        #expect(try await store.head(key) == nil)
        let gone = await #expect(throws: StoreError.self) {
            try await store.uploadPart(key, uploadID: uploadID, number: 3, bytes: [1])
        }
        #expect(gone?.code == .storeNoSuchUpload)
    }

    @Test func wrongCredentialsAreRefusedWithoutLeakingTheSecret() async throws {
        var wrongSecret = configuration
        wrongSecret.credentials.secretAccessKey = "not-the-secret-value"
        // HEAD answers carry no body, so the S3 code comes from a GET.
        let headError = await #expect(throws: StoreError.self) {
            try await S3ObjectStore(configuration: wrongSecret).head("anything")
        }
        #expect(headError?.code == .storeAccessDenied)
        let secretError = await #expect(throws: StoreError.self) {
            try await S3ObjectStore(configuration: wrongSecret).get("anything")
        }
        #expect(secretError?.code == .storeAccessDenied)
        #expect(secretError?.backendCode == "SignatureDoesNotMatch")
        #expect(secretError?.httpStatus == 403)
        #expect(secretError.map { !$0.description.contains("not-the-secret-value") && !$0.debugDescription.contains("not-the-secret-value") } == true)
        var wrongKey = configuration
        wrongKey.credentials.accessKeyID = "UNKNOWNKEY"
        let keyError = await #expect(throws: StoreError.self) {
            try await S3ObjectStore(configuration: wrongKey).put("x", bytes: [1])
        }
        #expect(keyError?.code == .storeAccessDenied)
        #expect(keyError?.backendCode == "InvalidAccessKeyId")
    }

    @Test func createOnlyCopyIsRefusedByTheServer() async throws {
        // The server itself enforces If-None-Match on CopyObject: no HEAD pre-check is involved.
        try await store.put("copy/src", bytes: [1])
        try await store.put("copy/dst", bytes: [2])
        let error = await #expect(throws: StoreError.self) { try await store.copy(from: "copy/src", to: "copy/dst", condition: .createOnly) }
        #expect(error?.code == .storeAlreadyExists)
        #expect(error?.httpStatus == 412)
        #expect(try await contents(store, "copy/dst") == [2])
    }
}

@Suite struct S3ContentRangeTests {
    /// A hostile or broken server's Content-Range is refused, never trusted into a range that traps.
    @Test func contentRangesAreCheckedBeforeUse() {
        #expect(S3ObjectStore.parseContentRange("bytes 0-9/10")?.range == 0...9)
        #expect(S3ObjectStore.parseContentRange("bytes 5-5/6")?.total == 6)
        for bad in [
            "bytes 9-3/10", "bytes 0-9223372036854775807/1", "bytes 0-10/10", "bytes -1-3/10", "bytes 0-3/*", "bytes 3/10", "0-3/10",
            "bytes 0-99999999999999999999/100000000000000000000", "bytes +1-3/10", "bytes 1-3/10/4", "",
        ] {
            #expect(S3ObjectStore.parseContentRange(bad) == nil, "\(bad)")
        }
    }
}

@Suite struct S3ConfigurationTests {
    @Test func readsAlgasVariables() throws {
        let configuration = try S3ObjectStore.Configuration.fromEnvironment([
            "STORAGE_S3_ENDPOINT": "http://127.0.0.1:9000", "STORAGE_S3_ACCESS_KEY": "ak", "STORAGE_S3_SECRET_KEY": "sk",
            "STORAGE_S3_BUCKET": "main-bucket", "STORAGE_S3_BUNDLE_BUCKET": "bundles",
        ])
        #expect(configuration.bucket == "bundles")
        #expect(configuration.region == "us-east-1")
        #expect(configuration.forcePathStyle)
        #expect(configuration.credentials == .init(accessKeyID: "ak", secretAccessKey: "sk"))
        let aws = try S3ObjectStore.Configuration.fromEnvironment([
            "STORAGE_S3_BUCKET": "b1b", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "STORAGE_S3_FORCE_PATH_STYLE": "false",
        ])
        #expect(aws.region == "eu-west-1")
        #expect(aws.endpoint == nil)
        #expect(!aws.forcePathStyle)
        #expect(try S3ObjectStore.Configuration.fromEnvironment([
            "STORAGE_S3_BUCKET": "b1b", "STORAGE_S3_REGION": "ap-south-1", "AWS_REGION": "x", "AWS_ACCESS_KEY_ID": "a",
            "AWS_SECRET_ACCESS_KEY": "s",
        ]).region == "ap-south-1")
    }

    @Test(arguments: [
        ([String: String](), "STORAGE_S3_BUCKET"),
        (["STORAGE_S3_BUCKET": "b1b", "STORAGE_S3_ENDPOINT": "http://h:1", "STORAGE_S3_SECRET_KEY": "s"], "STORAGE_S3_ACCESS_KEY"),
        (["STORAGE_S3_BUCKET": "b1b", "STORAGE_S3_ENDPOINT": "http://h:1", "STORAGE_S3_ACCESS_KEY": "a"], "STORAGE_S3_SECRET_KEY"),
        (["STORAGE_S3_BUCKET": "b1b", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"], "STORAGE_S3_REGION"),
        (["STORAGE_S3_BUCKET": "b1b", "STORAGE_S3_ENDPOINT": "ftp://h", "STORAGE_S3_ACCESS_KEY": "a", "STORAGE_S3_SECRET_KEY": "s"], "STORAGE_S3_ENDPOINT"),
    ])
    func refusesIncompleteConfiguration(environment: [String: String], names: String) {
        let error = #expect(throws: StoreError.self) { try S3ObjectStore.Configuration.fromEnvironment(environment) }
        #expect(error?.code == .storeConfiguration)
        #expect(error?.reason.contains(names) == true)
    }

    @Test func refusesASmallPartSize() {
        let configuration = S3ObjectStore.Configuration(
            endpoint: URL(string: "http://127.0.0.1:1"), region: "us-east-1", bucket: "bkt",
            credentials: .init(accessKeyID: "a", secretAccessKey: "s"), partSize: 1 << 20)
        #expect(throws: StoreError.self) { try S3ObjectStore(configuration: configuration) }
    }

    @Test func anUnreachableEndpointIsATypedErrorAfterRetries() async throws {
        let configuration = S3ObjectStore.Configuration(
            endpoint: URL(string: "http://127.0.0.1:9"), region: "us-east-1", bucket: "bkt",
            credentials: .init(accessKeyID: "a", secretAccessKey: "secret-value"), maxAttempts: 2, baseRetryDelay: 0.01)
        let error = await #expect(throws: StoreError.self) { try await S3ObjectStore(configuration: configuration).head("k") }
        #expect(error?.code == .storeUnreachable)
        #expect(error?.description.contains("secret-value") == false)
    }
}

/// Retries against a flaky local server: 5xx and 429 are retried with backoff, other 4xx never.
@Suite struct S3RetryTests {
    @Test func retriesServerErrorsButNotClientErrors() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("flaky")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let script = TestSupport.repositoryRoot.appendingPathComponent("Tests/Scripts/flaky_s3.py").path
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", script, scratch + "/port", "2"]
        try server.run()
        defer { server.terminate() }
        var port = ""
        // Python may start slowly on a loaded machine: wait up to a minute for it.
        for _ in 0..<1_200 where port.isEmpty {
            port = (try? String(contentsOfFile: scratch + "/port", encoding: .utf8)) ?? ""
            if port.isEmpty { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        try #require(!port.isEmpty, "the flaky server did not start")
        let configuration = S3ObjectStore.Configuration(
            endpoint: URL(string: "http://127.0.0.1:\(port)"), region: "us-east-1", bucket: "bkt",
            credentials: .init(accessKeyID: "a", secretAccessKey: "s"), maxAttempts: 4, baseRetryDelay: 0.01)
        let store = try S3ObjectStore(configuration: configuration)
        func count() throws -> Int { Int(try TestSupport.sh("curl -s http://127.0.0.1:\(port)/count")) ?? -1 }

        let info = try await store.head("object")  // 503, 503, then 200
        #expect(info?.size == 5)
        #expect(info?.etag == "abc")
        #expect(try count() == 3)
        let client = await #expect(throws: StoreError.self) { try await store.head("always400") }
        #expect(client?.code == .storeInvalidArgument)
        #expect(client?.httpStatus == 400)
        #expect(try count() == 4)  // one request: never retried
        let throttled = await #expect(throws: StoreError.self) { try await store.head("always429") }
        #expect(throttled?.code == .storeBackend)
        #expect(throttled?.httpStatus == 429)
        #expect(try count() == 8)  // four attempts
    }
}
