import Foundation
import Testing
import TestSupport

@Suite struct MemoryTests {
    /// Unpacking (and inspecting) a 200 MiB bundle keeps the peak RSS under 64 MiB: the archive is
    /// streamed, never held whole in memory.
    @Test func unpackOfA200MiBBundleStaysUnder64MiB() throws {
        let scratch = try Scratch("memory")
        try TestSupport.sh(
            """
            mkdir src && head -c 100M /dev/urandom > src/random.bin && \
            head -c 100M < <(yes 'a line of compressible text for the bundle') > src/text.txt && \
            tar -C src -cf - . | zstd -q -1 -T0 -c > big.tar.zst && rm -r src
            """, cwd: scratch.path)
        for arguments in [["unpack", scratch("big.tar.zst"), scratch("out")], ["inspect", scratch("big.tar.zst")]] {
            let result = try TestSupport.run(["/usr/bin/time", "-f", "maxrss=%M", TestSupport.extctl] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
            let line = result.stderr.split(separator: "\n").first { $0.hasPrefix("maxrss=") }
            let kilobytes = line.flatMap { Int($0.dropFirst("maxrss=".count)) }
            #expect(kilobytes != nil)
            #expect((kilobytes ?? .max) < 64 * 1024, "\(arguments[0]) peak RSS \(kilobytes ?? -1) KiB")
        }
        let size = try FileManager.default.attributesOfItem(atPath: scratch("out/random.bin"))[.size] as? Int
        #expect(size == 100 << 20)
    }
}
