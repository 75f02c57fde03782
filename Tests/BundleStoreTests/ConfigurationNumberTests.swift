import BundleCore
import BundleStore
import BundleStoreS3
import Foundation
import Testing

/// Numbers a host takes from its configuration (environment, files) never trap: out-of-range
/// settings are `STORE_CONFIGURATION` at construction, and sizes are clamped where a range is
/// natural.
@Suite struct ConfigurationNumberTests {
    static func s3(_ change: (inout S3ObjectStore.Configuration) -> Void) -> S3ObjectStore.Configuration {
        var configuration = S3ObjectStore.Configuration(
            endpoint: URL(string: "http://127.0.0.1:1"), region: "us-east-1", bucket: "bucket",
            credentials: .init(accessKeyID: "a", secretAccessKey: "b"))
        change(&configuration)
        return configuration
    }

    @Test(arguments: [
        ("partSize", ConfigurationNumberTests.s3 { $0.partSize = Int.max }),
        ("partConcurrency", ConfigurationNumberTests.s3 { $0.partConcurrency = 0 }),
        ("partConcurrency", ConfigurationNumberTests.s3 { $0.partConcurrency = -3 }),
        ("maxAttempts", ConfigurationNumberTests.s3 { $0.maxAttempts = 0 }),
        ("maxAttempts", ConfigurationNumberTests.s3 { $0.maxAttempts = Int.max }),
        ("requestTimeout", ConfigurationNumberTests.s3 { $0.requestTimeout = Int64.max }),
        ("requestTimeout", ConfigurationNumberTests.s3 { $0.requestTimeout = 0 }),
        ("baseRetryDelay", ConfigurationNumberTests.s3 { $0.baseRetryDelay = .nan }),
        ("maxRetryDelay", ConfigurationNumberTests.s3 { $0.maxRetryDelay = .infinity }),
        ("maxRetryDelay", ConfigurationNumberTests.s3 { $0.maxRetryDelay = -1 }),
        ("baseRetryDelay", ConfigurationNumberTests.s3 { $0.baseRetryDelay = 1e300 }),
    ])
    func s3SettingsOutOfRangeAreTypedErrors(name: String, configuration: S3ObjectStore.Configuration) {
        let error = #expect(throws: StoreError.self) { _ = try S3ObjectStore(configuration: configuration) }
        #expect(error?.code == .storeConfiguration)
        #expect(error?.reason.hasPrefix(name) == true, "\(String(describing: error))")
    }

    @Test func retriesWithTheLargestSettingsStayBounded() async throws {
        // Nothing listens on port 1: every attempt fails at once and is retried after a backoff
        // that the largest accepted delays and attempt counts cannot overflow.
        let store = try S3ObjectStore(configuration: Self.s3 {
            $0.maxAttempts = 2
            $0.baseRetryDelay = 0
            $0.maxRetryDelay = 0
        })
        await #expect(throws: StoreError.self) { _ = try await store.head("k") }
    }

    @Test(arguments: [0, -1, Int.min, Int.max, 1, 3])
    func chunkSizesAreClamped(chunkSize: Int) async throws {
        let bytes = (0..<1_000).map { UInt8(truncatingIfNeeded: $0) }
        var out: [UInt8] = []
        for try await chunk in ByteStream.bytes(bytes, chunkSize: chunkSize) {
            #expect(!chunk.isEmpty && chunk.count <= max(1, chunkSize))
            out += chunk
        }
        #expect(out == bytes)
        let file = NSTemporaryDirectory() + "chunks-\(UUID().uuidString)"
        defer { unlink(file) }
        #expect(FileManager.default.createFile(atPath: file, contents: Data(bytes)))
        #expect(try await ByteStream.file(at: file, chunkSize: chunkSize).collect(upTo: 10_000) == bytes)
    }
}
