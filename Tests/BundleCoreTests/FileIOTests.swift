import BundleCore
import Foundation
import Testing
import TestSupport

@Suite struct FileIOTests {
    @Test func replacingAFileSwapsItWholeAndLeavesNoTemporaryFile() throws {
        let folder = try TestSupport.makeTemporaryDirectory("fileio")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/out.bin"
        // Nothing there yet, then something to replace, then a file held open by a reader.
        #expect(FileIO.replaceFile(path, with: Array("first".utf8)) == 0)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: path))) == Array("first".utf8))
        let reader = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? reader.close() }
        #expect(FileIO.replaceFile(path, with: Array("second, longer".utf8)) == 0)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: path))) == Array("second, longer".utf8))
        // The reader keeps the file it opened, whole.
        #expect(try reader.readToEnd() == Data("first".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["out.bin"])
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o644)
    }

    @Test func aMoveThatCannotHappenSaysWhyAndCleansUp() throws {
        let folder = try TestSupport.makeTemporaryDirectory("fileio")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The target's folder does not exist: ENOENT, and the temporary file is gone.
        #expect(FileIO.replaceFile(folder + "/missing/out.bin", with: [1], temporaryBesides: folder + "/out.bin") == ENOENT)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
        // A folder at the target is not replaced by a file.
        try FileManager.default.createDirectory(atPath: folder + "/dir", withIntermediateDirectories: false)
        try Data([1]).write(to: URL(fileURLWithPath: folder + "/file"))
        #expect(FileIO.moveIntoPlace(folder + "/file", folder + "/dir") != 0)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: folder + "/dir", isDirectory: &isDirectory) && isDirectory.boolValue)
    }
}

@Suite struct BlockingIOTests {
    final class Payload: Sendable {}

    @Test func aFinishedJobKeepsNothingItCaptured() async throws {
        // Each job captures a payload; once the jobs ran, none may be alive (a pool that kept
        // finished closures kept every chunk they wrote, tens of MiB per upload).
        weak var last: Payload?
        let pool = BlockingIO(maximumThreads: 2)
        for _ in 0..<10 {
            let payload = Payload()
            last = payload
            try await pool.run { withExtendedLifetime(payload) {} }
        }
        #expect(last == nil)
    }
}
