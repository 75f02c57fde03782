import Foundation
import TestSupport

/// Runs the built `extctl`.
@discardableResult
func extctl(_ arguments: String..., cwd: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
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

/// A tree of files exercising long, nested, non-ASCII, empty and executable entries.
func makeSampleTree(at root: String) throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [
        "manifest.json": Array(#"{"name":"com.example.sample","publisher":"Example","version":"1.0.0"}"#.utf8),
        "ui/index.html": Array("<!doctype html><title>sample</title>\n".utf8),
        "ui/assets/app.js": Array(String(repeating: "export const x = 1;\n", count: 5_000).utf8),
        "ui/assets/blob.bin": TestSupport.randomBytes(400_000, seed: 11),
        "ui/empty.txt": [],
        "ui/ünïcødé ✓/файл.txt": Array("utf-8 name\n".utf8),
        "ui/" + String(repeating: "a", count: 120) + "/" + String(repeating: "b", count: 99) + ".txt": Array("split\n".utf8),
        "ui/" + String(repeating: "c", count: 200) + "/" + String(repeating: "d", count: 180) + ".txt": Array("pax\n".utf8),
        "dist/main.wasm": TestSupport.randomBytes(10_000, seed: 12),
    ]
    for (path, data) in files { try TestSupport.write(data, to: path, in: root) }
    try TestSupport.write(Array("#!/bin/sh\n".utf8), to: "bin/tool", in: root)
    chmod(root + "/bin/tool", 0o755)
    files["bin/tool"] = Array("#!/bin/sh\n".utf8)
    try FileManager.default.createDirectory(atPath: root + "/ui/empty-dir", withIntermediateDirectories: true)
    return files
}
