import BundleArchive
import BundleCore
import BundleStore
import BundleVerify
import CoreFoundation
import Foundation
import ManifestV2

/// What `<root>/<hex>/meta.json` records about a complete entry. It is written into the
/// temporary folder before the rename, so every `<hex>` folder has one. It sits beside the
/// archive's files (which are under `bundle/`), where no archive path can reach.
struct EntryMetadata: Sendable, Codable, Equatable {
    /// The module's path within `bundle/` and its size.
    struct Module: Sendable, Codable, Equatable {
        var path: String
        var size: Int64
    }

    static let fileName = "meta.json"
    /// The layout version of entries; entries of other versions are removed at start-up.
    static let currentFormat = 2

    var format = currentFormat
    var hash: String
    /// Where the manifest, module and UI are, as the verifier found them.
    var layout: BundleLayout
    var module: Module?
    /// UI files by path relative to the layout's `ui/` folder.
    var uiFiles: [String: UIFile]
    /// The key ids whose signatures were verified when the entry was filled (empty: unverified).
    var signers: [String]
    var filledAt: Date
}

/// Hashes every file that may be a UI file (``BundleArchive/BundleLayout/isPossibleUIPath(_:)``)
/// as it streams past, so ETags are computed once, when the entry is filled; the layout picks
/// the UI's files among them once the whole archive was read.
final class UIFileHasher: ArchiveVisitor {
    private(set) var files: [[UInt8]: (path: String, file: UIFile)] = [:]
    private var current: (path: String, hasher: ContentHasher)?

    func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError) {
        current = entry.kind == .file && BundleLayout.isPossibleUIPath(entry.path) ? (entry.path, ContentHasher()) : nil
    }

    func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        guard current != nil else { return }
        current!.hasher.update(chunk)
    }

    func visitEntryEnd() throws(ArchiveError) {
        guard let current else { return }
        files[BytePath.key(current.path)] = (
            current.path, UIFile(size: current.hasher.byteCount, etag: "\"sha256-\(current.hasher.finalize().hex)\"")
        )
        self.current = nil
    }

    /// The UI files of `layout`, by path relative to its `ui/` folder.
    func uiFiles(of layout: BundleLayout) -> [String: UIFile] {
        var result: [String: UIFile] = [:]
        for (path, file) in files.values {
            if let relative = layout.uiRelativePath(path) { result[relative] = file }
        }
        return result
    }
}

/// One fill: store → verifier (+ extraction and UI hashing) → temporary folder → rename.
enum Filler {
    static func fill(
        _ hash: ContentHash, root: String, store: BundleStore, verifier: any Verifier, configuration: DiskModuleCache.Configuration
    ) async throws -> DiskModuleCache.Entry {
        let hex = hash.hex
        let temporary = root + "/" + DiskLayout.temporaryName(hex)
        try await BlockingIO.shared.run {
            guard mkdir(temporary, 0o755) == 0, mkdir(temporary + "/" + DiskLayout.bundleFolder, 0o755) == 0 else {
                throw CacheError(
                    code: .cacheFillFailed, reason: "cannot create a temporary folder", hash: hash, path: temporary,
                    underlying: String(cString: strerror(errno)))
            }
        }
        do {
            let metadata = try await extract(hash, into: temporary, store: store, verifier: verifier, configuration: configuration)
            let metadataBytes = Array(try JSONEncoder().encode(metadata))
            return try await BlockingIO.shared.run {
                try install(temporary, hash: hash, root: root, metadata: metadata, metadataBytes: metadataBytes, durable: configuration.durable)
            }
        } catch {
            await BlockingIO.shared.run { DiskLayout.remove(temporary, root: root) }
            throw error
        }
    }

    /// Writes the metadata and renames the finished folder to `<root>/<hex>`.
    private static func install(
        _ temporary: String, hash: ContentHash, root: String, metadata: EntryMetadata, metadataBytes: [UInt8], durable: Bool
    ) throws -> DiskModuleCache.Entry {
        try DiskLayout.writeFile(temporary + "/" + EntryMetadata.fileName, metadataBytes, sync: durable, hash: hash)
        let bytes = DiskLayout.size(of: temporary)
        if durable { FileIO.syncDirectory(temporary) }
        let final = root + "/" + hash.hex
        if rename(temporary, final) != 0 {
            // Another process filled this hash first: adopt its entry.
            let code = errno
            DiskLayout.remove(temporary, root: root)
            guard let existing = DiskLayout.load(folder: final, hash: hash) else {
                throw CacheError(
                    code: .cacheFillFailed, reason: "cannot install the entry", hash: hash, path: final, underlying: String(cString: strerror(code)))
            }
            return DiskModuleCache.Entry(hash: hash, folder: final, metadata: existing.metadata, bytes: existing.bytes, lastUse: 0)
        }
        if durable { FileIO.syncDirectory(root) }
        return DiskModuleCache.Entry(hash: hash, folder: final, metadata: metadata, bytes: bytes, lastUse: 0)
    }

    private static func extract(
        _ hash: ContentHash, into folder: String, store: BundleStore, verifier: any Verifier, configuration: DiskModuleCache.Configuration
    ) async throws -> EntryMetadata {
        let body: ObjectBody
        do {
            body = try await store.getBundle(hash)
        } catch let error as StoreError where error.code == .storeNotFound {
            throw CacheError(code: .cacheNotFound, reason: "the store has no bundle with this hash", hash: hash, path: error.key,
                             underlyingCode: error.code.rawValue, underlying: error.debugDescription)
        } catch {
            throw failure(hash, "the bundle could not be fetched", error)
        }
        // After the bundle was found: a hash that is not in the store costs one request.
        let published = try await signatures(of: hash, store: store, verifier: verifier, configuration: configuration)
        let writer: DirectoryWriter
        do {
            let root = folder + "/" + DiskLayout.bundleFolder
            let durable = configuration.durable
            writer = try await BlockingIO.shared.run { WriterBox(writer: try DirectoryWriter(root: root, syncFiles: durable)) }.writer
        } catch {
            throw failure(hash, "cannot write the entry", error)
        }
        let hasher = UIFileHasher()
        let verified: VerifiedBundle
        do {
            verified = try await verifier.verify(
                body.stream,
                request: VerificationRequest(
                    expectedHash: hash, declaredSize: body.info.size, limits: configuration.limits, signatures: published.signatures,
                    publishTime: published.publishedAt ?? Date(), requireManifest: false, publisher: published.publisher),
                visitor: TeeVisitor(writer, hasher))
        } catch let error as VerifyError where error.code == .verifyHashMismatch || error.code == .verifyTruncated {
            throw CacheError(code: .cacheHashMismatch, reason: "the fetched bundle does not hash to its content hash", hash: hash,
                             expected: error.expected, actual: error.actual, underlyingCode: error.code.rawValue, underlying: error.debugDescription)
        } catch let error as VerifyError {
            throw CacheError(
                code: .cacheSignatureRefused, reason: "the bundle's signatures do not satisfy the trust bundle: \(error.description)",
                hash: hash, expected: error.expected, actual: error.actual, underlyingCode: error.code.rawValue,
                underlying: error.debugDescription)
        } catch {
            throw failure(hash, "the bundle could not be verified and unpacked", error)
        }
        if configuration.durable {
            let box = WriterBox(writer: writer)
            do { try await BlockingIO.shared.run { try box.writer.syncDirectories() } } catch { throw failure(hash, "cannot sync the entry", error) }
        }
        let layout = verified.layout
        let module = verified.module.map { EntryMetadata.Module(path: $0.path, size: $0.size) }
        let signers: [String]
        switch verified.signature {
        case .unverified: signers = []
        case .verified(let keyIDs): signers = keyIDs
        }
        return EntryMetadata(
            hash: hash.prefixed, layout: layout, module: module, uiFiles: hasher.uiFiles(of: layout), signers: signers, filledAt: Date())
    }

    /// The signatures a fill verifies with: the configured source, else the `bundle.sig` side
    /// object (none when it is missing), published when that write-once object was written.
    private static func signatures(
        of hash: ContentHash, store: BundleStore, verifier: any Verifier, configuration: DiskModuleCache.Configuration
    ) async throws -> PublishedSignatures {
        do {
            if let source = configuration.signatures { return try await source(hash) }
            // Without a trust bundle signatures decide nothing: no round trip for them.
            if let streaming = verifier as? StreamingBundleVerifier, streaming.trust == nil { return PublishedSignatures([]) }
            // The publisher finalize registered (its `manifest.json`, which may override the
            // archive's): a key bound to publishers must allow it too, as finalize required.
            let manifest = try await store.sideObject(.manifest, of: hash, limit: ManifestValidator.Options().maxBytes)
            let publisher = manifest.flatMap(ManifestValidator.declaredPublisher(in:))
            guard let side = try await store.sideObjectWithInfo(.signatures, of: hash, limit: SignatureFile.maxBytes) else {
                return PublishedSignatures([], publisher: publisher)
            }
            return PublishedSignatures(try SignatureFile.parse(side.bytes), publishedAt: side.info.lastModified, publisher: publisher)
        } catch let error as VerifyError {
            throw CacheError(
                code: .cacheSignatureRefused, reason: "the bundle's signature file is unusable: \(error.description)", hash: hash,
                underlyingCode: error.code.rawValue, underlying: error.debugDescription)
        } catch {
            throw failure(hash, "the bundle's signatures could not be fetched", error)
        }
    }

    private static func failure(_ hash: ContentHash, _ reason: String, _ error: any Error) -> CacheError {
        if let error = error as? CacheError { return error }
        let code = (error as? any ExtBundlesError)?.code.rawValue
        var path: String?
        if let archive = error as? ArchiveError { path = archive.path }
        return CacheError(code: .cacheFillFailed, reason: reason, hash: hash, path: path, underlyingCode: code, underlying: String(reflecting: error))
    }
}

/// Carries a writer to the pool thread that finishes it; one thread uses it at a time.
private struct WriterBox: @unchecked Sendable {
    let writer: DirectoryWriter
}

/// The cache folder's names and housekeeping. Every function here blocks: callers run them on
/// ``BundleCore/BlockingIO/shared`` (or at start-up).
enum DiskLayout {
    /// The folder inside an entry that holds the archive's files.
    static let bundleFolder = "bundle"
    /// The folder inside an entry that holds compiled modules.
    static let compiledFolder = "compiled"

    struct Found {
        var hash: ContentHash
        var folder: String
        var metadata: EntryMetadata
        var bytes: Int64
        var modified: Date
    }

    /// `.tmp-<hex>-<pid>-<random>`: a fill's folder; start-up removes those of dead processes.
    static func temporaryName(_ hex: String) -> String { ".tmp-\(hex)-" + FileIO.uniqueSuffix() }

    /// Removes a folder without ever leaving a half-deleted entry under its own name: it is
    /// renamed to `.trash-*` first.
    static func remove(_ folder: String, root: String) {
        let trash = root + "/.trash-" + FileIO.uniqueSuffix()
        if rename(folder, trash) == 0 {
            try? FileManager.default.removeItem(atPath: trash)
        } else {
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    /// The marker of a cache folder.
    static let marker = ".extbundles-cache"

    /// Makes sure `root` is a cache folder (marked) and marks it when it is empty. A folder that
    /// holds anything and is not marked is never taken: a content-addressed store's `sha256/`
    /// folder holds only 64-hex names too, and a cache cleans what it does not know.
    static func claim(root: String) throws(CacheError) {
        let markerPath = root + "/" + marker
        var info = stat()
        if lstat(markerPath, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                throw CacheError(code: .cacheRootNotACache, reason: "the cache marker is not a regular file", path: root)
            }
            return
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard names.isEmpty else {
            throw CacheError(
                code: .cacheRootNotACache,
                reason: "the folder is not a cache (it holds '\(Printable.escape(names.sorted()[0]))' and no \(marker)); give the cache a folder of its own",
                path: root)
        }
        let fd = open(markerPath, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            throw CacheError(code: .cacheFillFailed, reason: "cannot mark the cache folder", path: root, underlying: String(cString: strerror(errno)))
        }
        close(fd)
    }

    /// The complete entries under `root`, oldest fill first; removes temporary folders of
    /// processes that are gone, trash, and folders that are not complete entries of the current
    /// layout.
    static func scan(root: String) -> [Found] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var found: [Found] = []
        for name in names {
            let path = root + "/" + name
            if BytePath.hasPrefix(name, ".tmp-") {
                // `.tmp-<64 hex>-<pid>-<random>`; a name of another shape is not a fill's and goes.
                let owner = name.utf8.dropFirst(".tmp-".utf8.count + 65)
                if FileIO.temporaryOwnerIsAlive(owner) == true { continue }
                try? FileManager.default.removeItem(atPath: path)
            } else if BytePath.hasPrefix(name, ".trash-") {
                try? FileManager.default.removeItem(atPath: path)
            } else if name.utf8.count == 64, let hash = try? ContentHash(parsing: name, allowUppercase: false) {
                // An entry is a folder the cache made, never a link to one somewhere else: the
                // link itself goes (unlink, which never touches what it points at).
                var info = stat()
                guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                    unlink(path)
                    continue
                }
                if let loaded = load(folder: path, hash: hash) {
                    found.append(loaded)
                } else {
                    remove(path, root: root)
                }
            }
        }
        return found.sorted { ($0.modified, $0.hash.hex) < ($1.modified, $1.hash.hex) }
    }

    static func load(folder: String, hash: ContentHash) -> Found? {
        let path = folder + "/" + EntryMetadata.fileName
        guard let data = try? BoundedFile.read(path, limit: 64 << 20),
            let metadata = try? JSONDecoder().decode(EntryMetadata.self, from: Data(data)), metadata.format == EntryMetadata.currentFormat,
            metadata.hash == hash.prefixed, metadata.uiFiles.values.allSatisfy({ $0.size >= 0 }), (metadata.module?.size ?? 0) >= 0
        else { return nil }
        let modified = ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
        return Found(hash: hash, folder: folder, metadata: metadata, bytes: size(of: folder), modified: modified)
    }

    /// The bytes of the files under `folder` (saturating).
    static func size(of folder: String) -> Int64 {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return 0 }
        var total: Int64 = 0
        while let relative = enumerator.nextObject() as? String {
            var info = stat()
            if lstat(folder + "/" + relative, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                total = total.addingSaturating(Int64(info.st_size))
            }
        }
        return total
    }

    /// Writes a new file (refusing to replace one), optionally `fsync`ed.
    static func writeFile(_ path: String, _ bytes: [UInt8], sync: Bool, hash: ContentHash) throws(CacheError) {
        let failure = FileIO.writeNewFile(path, bytes, mode: 0o644, sync: sync)
        guard failure == 0 else {
            throw CacheError(code: .cacheFillFailed, reason: "cannot write the entry", hash: hash, path: path, underlying: String(cString: strerror(failure)))
        }
    }

    /// The bytes of a file (at most 1 GiB), or nil when it is missing.
    static func readFile(_ path: String) throws -> [UInt8]? {
        guard access(path, F_OK) == 0 else { return nil }
        return try BoundedFile.read(path, limit: 1 << 30)
    }

    /// Writes `bytes` to `path` through a temporary file renamed into place (creating the
    /// folder); false when that fails.
    static func replaceFile(_ path: String, _ bytes: [UInt8], sync: Bool) -> Bool {
        guard let folder = BytePath.parent(path) else { return false }
        mkdir(folder, 0o755)
        return FileIO.replaceFile(path, with: bytes, sync: sync) == 0
    }

}
