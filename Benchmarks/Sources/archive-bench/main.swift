// archive-bench: the in-process figures that scripts/bench/archive.sh sets beside openssl and zstd.
//
//   archive-bench sha256 [MiB]      SHA-256 of an in-memory buffer in 1 MiB chunks: bytes per second
//   archive-bench walk FILE         zstd decode + tar walk of a bundle file, no hashing: seconds
//   archive-bench walk-hash FILE    the same, also hashing the compressed bytes on a third thread
//   archive-bench manifest FILE [N] validate a manifest N times: manifests per second
import BundleArchive
import BundleCore
import Foundation
import ManifestV2

final class NullVisitor: ArchiveVisitor {
    func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError) {}
    func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {}
    func visitEntryEnd() throws(ArchiveError) {}
}

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "sha256":
    let mib = arguments.count > 2 ? Int(arguments[2]) ?? 1024 : 1024
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    for index in chunk.indices { chunk[index] = UInt8(truncatingIfNeeded: index &* 2654435761 >> 13) }
    var hasher = ContentHasher()
    chunk.withUnsafeBytes { hasher.update($0) }  // warm up
    let start = now()
    hasher = ContentHasher()
    for _ in 0..<mib { chunk.withUnsafeBytes { hasher.update($0) } }
    let digest = hasher.finalize()
    let seconds = now() - start
    print(String(format: "%.0f", Double(mib << 20) / seconds), digest.hex.prefix(8))
case "walk", "walk-hash":
    let start = now()
    let summary = try BundleReader.read(
        fileAt: arguments[2], visitor: NullVisitor(), limits: .default, computeHash: arguments[1] == "walk-hash")
    print(String(format: "%.4f", now() - start), summary.decompressedBytes, summary.entryCount)
case "manifest":
    let bytes = Array(FileManager.default.contents(atPath: arguments[2]) ?? Data())
    let count = arguments.count > 3 ? Int(arguments[3]) ?? 200_000 : 200_000
    var valid = 0
    let start = now()
    for _ in 0..<count where ManifestValidator.validate(bytes).isValid { valid += 1 }
    print(String(format: "%.0f", Double(count) / (now() - start)), valid == count ? "valid" : "invalid")
default:
    FileHandle.standardError.write(Data("usage: archive-bench sha256 [MiB] | walk FILE | walk-hash FILE | manifest FILE [N]\n".utf8))
    exit(2)
}
