/// Turns a bundle's WebAssembly module into a runtime's precompiled form (a `.cwasm`).
///
/// Contract: `compile` is deterministic for a given (``identifier``, ``version``,
/// ``targetTriple``), which is the cache key of its output beside the content hash; a runtime
/// must only load artifacts it (or the same compiler build) wrote, so bump ``version`` whenever
/// the output could change (a new runtime release, different engine settings).
public protocol ModuleCompiler: Sendable {
    /// The compiler's name, such as `wasmkit`.
    var identifier: String { get }
    /// Its version and settings, such as `0.4.2-opt2`.
    var version: String { get }
    /// The target the artifact runs on, such as `x86_64-unknown-linux-gnu`.
    var targetTriple: String { get }
    /// Compiles the module.
    func compile(_ module: [UInt8]) async throws -> [UInt8]
}

extension ModuleCompiler {
    /// The artifact's file name: the key parts with anything but `[A-Za-z0-9._-]` replaced.
    public var artifactName: String {
        let safe = { (text: String) in
            String(text.unicodeScalars.map { scalar -> Character in
                let ok = (scalar.value < 128) && (CharacterSet.alphanumerics.contains(scalar) || "._-".unicodeScalars.contains(scalar))
                return ok ? Character(scalar) : "_"
            })
        }
        return "\(safe(identifier))--\(safe(version))--\(safe(targetTriple)).cwasm"
    }
}

import Foundation
