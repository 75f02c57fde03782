import Foundation
import TestSupport

/// Runs the built `extctl`.
@discardableResult
func extctl(_ arguments: String..., cwd: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
    try TestSupport.run([TestSupport.extctl] + arguments, cwd: cwd, environment: environment)
}

/// Runs the built `extctl` with an argument list.
@discardableResult
func extctl(_ arguments: [String], cwd: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
    try TestSupport.run([TestSupport.extctl] + arguments, cwd: cwd, environment: environment)
}

/// A temporary folder removed at the end of the test.
final class Scratch {
    let path: String

    init(_ label: String) throws { path = try TestSupport.makeTemporaryDirectory(label) }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func callAsFunction(_ relative: String) -> String { path + "/" + relative }
}

/// The script that crafts hostile tar streams.
let craftScript = TestSupport.repositoryRoot.appendingPathComponent("Tests/Scripts/craft_tar.py").path
