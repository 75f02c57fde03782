import BenchSupport
import Benchmark
import BundleArchive
import BundleCore
import BundleVerify
import Foundation

/// Throughput of the two hot paths every bundle goes through: SHA-256 of the compressed bytes,
/// and zstd decoding plus the tar walk with the safety rules. Compare the same figures with the
/// system tools in ../scripts/bench/archive.sh.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident], maxDuration: .seconds(5), maxIterations: 1_000)

    let chunk = benchRandomBytes(1 << 20, seed: 1)
    Benchmark("SHA-256, 1 MiB per iteration", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            var hasher = ContentHasher()
            chunk.withUnsafeBytes { hasher.update($0) }
            blackHole(hasher.finalize())
        }
    }

    let bundle = BenchData.bundle()
    Benchmark("zstd decode + tar walk, \(bundle.tarSize >> 20) MiB of tar per iteration") { benchmark in
        for _ in benchmark.scaledIterations {
            let reader = try BundleReader(visitor: NullVisitor(), limits: .default, computeHash: false)
            try bundle.bytes.withUnsafeBytes { try reader.consume($0) }
            blackHole(try reader.finish())
        }
    }

    Benchmark("zstd decode only, \(bundle.tarSize >> 20) MiB of tar per iteration") { benchmark in
        for _ in benchmark.scaledIterations {
            let decoder = try ZstdDecoder()
            var total = 0
            try bundle.bytes.withUnsafeBytes { raw in try decoder.decode(raw) { total += $0.count } }
            blackHole(total)
        }
    }

    // Verification = hash + size cap + decode + walk + policy; compare with "zstd decode only".
    let request = VerificationRequest(requireManifest: false)
    Benchmark("verify from an async stream, \(bundle.tarSize >> 20) MiB of tar per iteration") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try await StreamingBundleVerifier(trust: nil).verify(.bytes(bundle.bytes, chunkSize: 1 << 20), request: request))
        }
    }

    let file = FileManager.default.temporaryDirectory.appendingPathComponent("extbundles-bench-verify.tar.zst").path
    _ = FileManager.default.createFile(atPath: file, contents: Data(bundle.bytes))
    Benchmark("verify a file (read+hash thread, decode+walk thread), \(bundle.tarSize >> 20) MiB of tar per iteration") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try await StreamingBundleVerifier(trust: nil).verify(fileAt: file, request: request))
        }
    }
}

enum BenchData {
    /// A 32 MiB tar of mixed incompressible and text-like files, zstd level 3.
    static func bundle() -> (bytes: [UInt8], tarSize: Int64) {
        var tar: [UInt8] = []
        let words = (0..<512).map { "w\($0 * 7919 % 10007)" }
        for index in 0..<32 {
            let data: [UInt8]
            if index % 2 == 0 {
                data = benchRandomBytes(1 << 20, seed: UInt64(index))
            } else {
                var text = ""
                var position = index
                while text.utf8.count < 1 << 20 {
                    position = (position &* 1103515245 &+ 12345) & 0x7fff_ffff
                    text += words[position % words.count] + (position % 13 == 0 ? ";\n" : " ")
                }
                data = Array(text.utf8.prefix(1 << 20))
            }
            tar += TarWriter.header(path: Array("f/\(index)".utf8), isDirectory: false, size: Int64(data.count), mode: 0o644, mtime: 0)
            tar += data
        }
        tar += TarWriter.endOfArchive
        let encoder = try! ZstdEncoder(configuration: .init(level: 3, workers: 2))
        var out: [UInt8] = []
        tar.withUnsafeBytes { raw in try! encoder.encode(raw) { out.append(contentsOf: $0) } }
        try! encoder.finish { out.append(contentsOf: $0) }
        return (out, Int64(tar.count))
    }
}
