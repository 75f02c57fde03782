import BundleCore
import BundleStore
import ExtBundlesTesting
import Foundation
import StoreTestSupport
import Testing
import TestSupport

/// The `ObjectStore` contract (ExtBundlesTesting's `ObjectStoreConformance`), run against every
/// backend: memory, filesystem and S3 (SeaweedFS).
@Suite struct ObjectStoreConformanceTests {
    @Test(arguments: Backend.available, ObjectStoreConformance.Check.allCases)
    func conformance(_ backend: Backend, _ check: ObjectStoreConformance.Check) async throws {
        let fixtures = LockedValue<[StoreFixture]>([])
        defer { _ = fixtures }
        let traits = ObjectStoreConformance.Traits(listsInByteOrder: backend != .s3, presigns: backend == .s3, multipart: backend == .s3)
        try await ObjectStoreConformance(traits: traits) {
            let fixture = try backend.make()
            fixtures.withLock { $0.append(fixture) }
            return fixture.store
        }.run(check)
    }
}

@Suite struct FileSystemRaceTests {
    /// Deletes prune the folders they empty while other writers create folders beside them: a
    /// writer whose new folder is pruned under it starts again instead of failing.
    @Test func writersSurviveConcurrentPruning() async throws {
        let fixture = try Backend.filesystem.make()
        let store = fixture.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for round in 0..<150 {
                        let key = "shared/parent/\(worker)-\(round)/object"
                        try await store.put(key, bytes: [UInt8(truncatingIfNeeded: round)])
                        try await store.delete(key)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.listAll(prefix: "shared/").isEmpty)
    }
}
