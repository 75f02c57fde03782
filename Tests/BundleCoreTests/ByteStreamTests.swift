import BundleCore
import Testing

@Suite struct ByteStreamTests {
    struct Refused: Error {}

    @Test func checkingBeforeEndReleasesTheLastChunkOnlyAfterTheCheck() async throws {
        let checked = LockedValue(0)
        let stream = ByteStream.bytes([1, 2, 3, 4, 5, 6, 7], chunkSize: 3).checkingBeforeEnd {
            checked.withLock { $0 += 1 }
        }
        var chunks: [[UInt8]] = []
        for try await chunk in stream {
            // The check runs before the last chunk is handed out, never earlier.
            #expect(checked.withLock { $0 } == (chunks.count == 2 ? 1 : 0))
            chunks.append(chunk)
        }
        #expect(chunks == [[1, 2, 3], [4, 5, 6], [7]])
        #expect(checked.withLock { $0 } == 1)
    }

    @Test func aFailedCheckWithholdsTheLastChunk() async throws {
        let stream = ByteStream.bytes([1, 2, 3, 4, 5, 6, 7], chunkSize: 3).checkingBeforeEnd { throw Refused() }
        var received: [UInt8] = []
        await #expect(throws: Refused.self) {
            for try await chunk in stream { received += chunk }
        }
        #expect(received == [1, 2, 3, 4, 5, 6])
        let empty = ByteStream.bytes([]).checkingBeforeEnd { throw Refused() }
        await #expect(throws: Refused.self) { try await empty.collect(upTo: 10) }
    }

    @Test func concatenatingAndObserving() async throws {
        let seen = LockedValue(0)
        let stream = ByteStream.concatenating([.bytes([1, 2]), .bytes([]), .bytes([3], chunkSize: 1)])
            .observing { chunk in seen.withLock { $0 += chunk.count } }
        #expect(try await stream.collect(upTo: 10) == [1, 2, 3])
        #expect(seen.withLock { $0 } == 3)
        await #expect(throws: StreamLimitExceeded.self) { try await ByteStream.bytes([1, 2, 3]).collect(upTo: 2) }
    }
}
