import ArgumentParser
import BundleArchive
import BundleCore
import BundleVerify
import Foundation

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a signing key: KEY.pem (PKCS#8) and KEY.pub.pem; prints the key id.")

    @Option(help: "ed25519 or p256.")
    var algorithm: String = "ed25519"

    @Option(name: .shortAndLong, help: "The private key file to write.")
    var output: String

    func run() throws {
        let kind: SignatureAlgorithm
        switch algorithm.lowercased() {
        case "ed25519": kind = .ed25519
        case "p256", "p-256", "ecdsa-p256-sha256": kind = .ecdsaP256SHA256
        default: throw ValidationError("--algorithm must be ed25519 or p256")
        }
        let key = SigningKey(generating: kind)
        let publicPath = (BytePath.hasSuffix(output, ".pem") ? String(decoding: output.utf8.dropLast(4), as: UTF8.self) : output) + ".pub.pem"
        // The private key is created with mode 0600 and O_EXCL in one step: never readable by
        // others, not even for a moment, and never over an existing file.
        try Self.create(output, contents: Array(key.pem.utf8), mode: 0o600)
        do {
            try Self.create(publicPath, contents: Array(key.publicKey.pem.utf8), mode: 0o644)
        } catch {
            unlink(output)
            throw error
        }
        Console.out("\(key.publicKey.keyID)  \(output)  \(publicPath)")
    }

    /// Creates a new file with `mode` (refusing an existing one) and writes `contents`.
    static func create(_ path: String, contents: [UInt8], mode: mode_t) throws {
        let failure = FileIO.writeNewFile(path, contents, mode: mode, sync: true)
        if failure == EEXIST { throw RefusedInput(message: "KEY_EXISTS: '\(Printable.escape(path))' exists; not overwriting a key") }
        guard failure == 0 else { throw FileError("create", path: path, errno: failure) }
    }
}

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a bundle with a private key; adds the signature to BUNDLE.sig (or -o FILE).")

    @Argument(help: "The bundle.tar.zst file.")
    var bundle: String

    @Option(help: "The private key (PEM: PKCS#8 Ed25519 or P-256, or SEC1 EC).")
    var key: String

    @Option(name: .shortAndLong, help: "The signature file (default BUNDLE.sig).")
    var output: String?

    func run() throws {
        let pem = try BoundedFile.read(key, limit: 64 << 10)
        let signingKey = try SigningKey(pem: String(decoding: pem, as: UTF8.self))
        let hasher = try FileHashing.hasher(fileAt: bundle)
        let hash = hasher.finalize()
        let signature = try signingKey.sign(digest: hasher.digest256, hash: hash)
        let path = output ?? bundle + ".sig"
        var all = (try SignatureFile.loadExisting(path) ?? []).filter { $0.keyID != signature.keyID }
        // A file verify would refuse is never written.
        guard all.count < SignatureFile.maxSignatures else {
            throw VerifyError(
                code: .signatureMalformed, reason: "the signature file already holds \(all.count) signatures (at most \(SignatureFile.maxSignatures))",
                expected: "at most \(SignatureFile.maxSignatures)", actual: "\(all.count + 1)")
        }
        all.append(signature)
        // The temporary file has the bundle's temporary prefix, which packing leaves out.
        let failure = FileIO.replaceFile(path, with: SignatureFile.encode(all), temporaryBesides: output == nil ? bundle : path)
        guard failure == 0 else {
            throw RefusedInput(message: "SIGNATURE_IO: cannot write '\(Printable.escape(path))': \(String(cString: strerror(failure)))")
        }
        Console.out("\(hash.prefixed)  signed by \(signingKey.publicKey.keyID)  \(path)")
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a bundle in one pass: hash, size cap, archive, manifest, signatures.",
        discussion: """
            Strict when a trust bundle is given (--trust-bundle or SIGNING_TRUST_BUNDLE): unsigned, \
            unknown, revoked or expired keys and bad signatures are refused. Without one, unsigned \
            bundles pass as unverified. Exit 0 when verified, 1 when refused.
            """)

    @Argument(help: "The bundle.tar.zst file.")
    var bundle: String

    @Option(help: "The signature file (default BUNDLE.sig when it exists).")
    var signature: String?

    @Option(help: "Trusted keys: a PEM or JSON file (default SIGNING_TRUST_BUNDLE).")
    var trustBundle: String?

    @Option(help: "The content hash the bundle must have.")
    var expectHash: String?

    @Flag(help: "Print JSON.")
    var json = false

    struct Report: Encodable {
        var contentHash: String
        var size: Int64
        var manifestPath: String?
        var signers: [String]
        var signature: String
    }

    func run() async throws {
        let (bundle, signature, trustBundle) = (self.bundle, self.signature, self.trustBundle)
        let (trust, signatures) = try await BlockingIO.shared.run {
            (try trustBundle.map { try TrustBundle.load($0) } ?? TrustBundle.fromEnvironment(), try SignatureFile.load(for: bundle, explicit: signature))
        }
        var info = stat()
        guard stat(bundle, &info) == 0 else { throw RefusedInput(message: "VERIFY_IO: cannot read '\(bundle)'") }
        let request = VerificationRequest(
            expectedHash: try expectHash.map { try ContentHash(parsing: $0) }, declaredSize: Int64(info.st_size), signatures: signatures)
        let result = try await StreamingBundleVerifier(trust: trust).verify(fileAt: bundle, request: request)
        let signers: [String]
        switch result.signature {
        case .unverified: signers = []
        case .verified(let keyIDs): signers = keyIDs
        }
        if json {
            try Console.json(
                Report(
                    contentHash: result.hash.prefixed, size: result.size, manifestPath: result.manifestPath, signers: signers,
                    signature: signers.isEmpty ? "unverified" : "verified"))
        } else {
            Console.out("verified \(result.hash.prefixed)  \(result.size) bytes")
            Console.out(signers.isEmpty ? "signature: unverified (no trust bundle configured)" : "signed by: " + signers.joined(separator: ", "))
        }
    }
}

extension SignatureFile {
    /// The signatures of `bundle`: from `explicit` when given, else from `BUNDLE.sig` when it
    /// exists, else none.
    /// The signatures of `bundle`: from `explicit` when given, else from `BUNDLE.sig` when that
    /// exists, which must then be a regular file (a FIFO or a device found there by accident is
    /// refused, never waited on or read without end).
    static func load(for bundle: String, explicit: String?) throws -> [DetachedSignature] {
        if let explicit { return try load(explicit) }
        return try loadExisting(bundle + ".sig") ?? []
    }

    /// The signatures in the signature file at `path`, nil when there is none; a file that is
    /// there but not a regular file is refused.
    static func loadExisting(_ path: String) throws -> [DetachedSignature]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw VerifyError(
                code: .signatureMalformed, reason: "the signature file '\(Printable.escape(path))' is not a regular file",
                actual: FileIO.typeName(info.st_mode))
        }
        return try load(path)
    }
}
