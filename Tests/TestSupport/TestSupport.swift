import ExtBundlesTesting
import Foundation

/// The result of running a process.
public struct ProcessResult: Sendable {
    /// Exit status (or 128 + signal).
    public var status: Int32
    /// Standard output.
    public var stdout: String
    /// Standard error.
    public var stderr: String
}

/// Helpers shared by the test targets: temporary folders, running real tools, comparing trees.
public enum TestSupport {
    /// The folder of the test build products (where `extctl` is built).
    public static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The `extctl` binary built with the tests (override with `EXTCTL`).
    public static var extctl: String {
        ProcessInfo.processInfo.environment["EXTCTL"] ?? productsDirectory.appendingPathComponent("extctl").path
    }

    /// The repository root (two levels above this file's folder).
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A fresh empty folder under the system temporary folder.
    public static func makeTemporaryDirectory(_ label: String = "test") throws -> String {
        let base = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/extbundles-\(label)-XXXXXX"
        var template = Array(base.utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw POSIXError(.EIO)
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs `arguments[0]` (looked up on PATH) with the rest as arguments.
    @discardableResult
    public static func run(
        _ arguments: [String], cwd: String? = nil, environment: [String: String] = [:], stdin: Data? = nil
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        let errData = LockedData()
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return ProcessResult(
            status: status, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.value, as: UTF8.self))
    }

    /// Runs a shell command line with `bash -c`, failing the caller if it exits non-zero.
    @discardableResult
    public static func sh(_ script: String, cwd: String? = nil, environment: [String: String] = [:]) throws -> String {
        let result = try run(["bash", "-c", "set -euo pipefail; " + script], cwd: cwd, environment: environment)
        guard result.status == 0 else {
            throw CommandFailed(command: script, result: result)
        }
        return result.stdout
    }

    /// Writes `contents` at `root/relative`, creating folders.
    public static func write(_ contents: [UInt8], to relative: String, in root: String) throws {
        let url = URL(fileURLWithPath: root).appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(contents).write(to: url)
    }

    /// Deterministic pseudo-random bytes (SplitMix64), incompressible.
    public static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] { Conformance.randomBytes(count, seed: seed) }

    /// Every regular file under `root` (relative path → bytes), and every directory (value nil).
    public static func snapshot(_ root: String) throws -> [String: [UInt8]?] {
        var result: [String: [UInt8]?] = [:]
        let rootURL = URL(fileURLWithPath: root)
        guard let walker = FileManager.default.enumerator(atPath: root) else { return result }
        while let relative = walker.nextObject() as? String {
            let url = rootURL.appendingPathComponent(relative)
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
            result[relative] = isDirectory.boolValue ? .some(nil) : .some(Array(try Data(contentsOf: url)))
        }
        return result
    }

    /// Every name under `root` (recursively, by raw `readdir` bytes: Foundation's path helpers
    /// mangle names that start with a combining mark), as relative paths with a trailing `/` for
    /// folders.
    public static func rawTree(_ root: String) -> [[UInt8]] {
        var out: [[UInt8]] = []
        func walk(_ folder: [UInt8], _ relative: [UInt8]) {
            guard let dir = opendir(String(decoding: folder, as: UTF8.self)) else { return }
            defer { closedir(dir) }
            while let item = readdir(dir) {
                let name = withUnsafeBytes(of: item.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
                if name == [0x2e] || name == [0x2e, 0x2e] { continue }
                let path = folder + [0x2f] + name
                let child = relative.isEmpty ? name : relative + [0x2f] + name
                var info = stat()
                guard lstat(String(decoding: path, as: UTF8.self), &info) == 0 else { continue }
                if (info.st_mode & S_IFMT) == S_IFDIR {
                    out.append(child + [0x2f])
                    walk(path, child)
                } else {
                    out.append(child)
                }
            }
        }
        walk(Array(root.utf8), [])
        return out.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// The regular files only (relative path → bytes).
    public static func files(_ root: String) throws -> [String: [UInt8]] {
        try snapshot(root).compactMapValues { $0 }
    }

    /// Writes an extension-like tree exercising the tar corner cases (a name of exactly 100 bytes,
    /// a long name that fits the ustar prefix split, one that needs pax, non-ASCII names, an empty
    /// file, an empty folder, an executable) and returns its files (relative path → bytes).
    public static func makeSampleTree(at root: String) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [
            "manifest.json": Array(#"{"name":"com.example.sample","publisher":"Example","version":"1.0.0"}"#.utf8),
            "ui/index.html": Array("<!doctype html><title>sample</title>\n".utf8),
            "ui/assets/app.js": Array(String(repeating: "export const x = 1;\n", count: 5_000).utf8),
            "ui/assets/blob.bin": randomBytes(400_000, seed: 11),
            "ui/empty.txt": [],
            "ui/ünïcødé ✓/файл.txt": Array("utf-8 name\n".utf8),
            "ui/" + String(repeating: "n", count: 93) + ".txt": Array("a name of exactly 100 bytes\n".utf8),
            "ui/" + String(repeating: "a", count: 120) + "/" + String(repeating: "b", count: 99) + ".txt": Array("split\n".utf8),
            "ui/" + String(repeating: "c", count: 200) + "/" + String(repeating: "d", count: 180) + ".txt": Array("pax\n".utf8),
            "dist/main.wasm": randomBytes(10_000, seed: 12),
        ]
        for (path, data) in files { try write(data, to: path, in: root) }
        try write(Array("#!/bin/sh\necho hi\n".utf8), to: "bin/tool", in: root)
        chmod(root + "/bin/tool", 0o700)
        files["bin/tool"] = Array("#!/bin/sh\necho hi\n".utf8)
        try FileManager.default.createDirectory(atPath: root + "/ui/empty-dir", withIntermediateDirectories: true)
        return files
    }

    /// Names in `directory` (not recursive), sorted.
    public static func listing(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }
}

/// A shell command that exited non-zero.
public struct CommandFailed: Error, CustomStringConvertible {
    /// The command line.
    public var command: String
    /// What it printed and returned.
    public var result: ProcessResult

    /// The command, status and stderr.
    public var description: String { "command failed (\(result.status)): \(command)\n\(result.stderr)" }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?

    func set(_ value: Data) { lock.withLock { data = value } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}
