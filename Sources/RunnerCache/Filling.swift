import BundleArchive
import BundleCore
import BundleStore
import BundleVerify
import Foundation
import CoreFoundation

/// What `<root>/<hex>/.entry.json` records about a complete entry. It is written into the
/// temporary folder before the rename, so every `<hex>` folder has one.
struct EntryMetadata: Sendable, Codable, Equatable {
    /// The module's path within the entry and its size.
    struct Module: Sendable, Codable, Equatable {
        var path: String
        var size: Int64
    }

    static let fileName = ".entry.json"

    var format = 1
    var hash: String
    /// The folder of the manifest inside the entry, with a trailing `/` (`""` at the root).
    var base: String
    var module: Module?
    /// UI files by path relative to `<base>ui/`.
    var uiFiles: [String: UIFile]
    var filledAt: Date
}

/// Hashes every file under `ui/` (or `<folder>/ui/`, for a bundle whose manifest is one folder
/// down) as it streams past, so ETags are computed once, when the entry is filled.
final class UIFileHasher: ArchiveVisitor {
    private(set) var files: [String: UIFile] = [:]
    private var current: (path: String, hasher: ContentHasher)?

    static func isUIPath(_ path: String) -> Bool {
        if path.hasPrefix("ui/") { return true }
        guard let slash = path.firstIndex(of: "/") else { return false }
        return path[path.index(after: slash)...].hasPrefix("ui/")
    }

    func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError) {
        current = entry.kind == .file && Self.isUIPath(entry.path) ? (entry.path, ContentHasher()) : nil
    }

    func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        guard current != nil else { return }
        current!.hasher.update(chunk)
    }

    func visitEntryEnd() throws(ArchiveError) {
        guard let current else { return }
        files[current.path] = UIFile(size: current.hasher.byteCount, etag: "\"sha256-\(current.hasher.finalize().hex)\"")
        self.current = nil
    }
}

/// One fill: store → verifier (+ extraction and UI hashing) → temporary folder → rename.
enum Filler {
    static func fill(
        _ hash: ContentHash, root: String, store: BundleStore, verifier: any Verifier, configuration: DiskModuleCache.Configuration
    ) async throws -> DiskModuleCache.Entry {
        let hex = hash.hex
        let temporary = root + "/" + DiskLayout.temporaryName(hex)
        guard mkdir(temporary, 0o755) == 0 else {
            throw CacheError(code: .cacheFillFailed, reason: "cannot create a temporary folder", hash: hash, path: temporary,
                             underlying: String(cString: strerror(errno)))
        }
        do {
            let metadata = try await extract(hash, into: temporary, store: store, verifier: verifier, configuration: configuration)
            let metadataBytes = try JSONEncoder().encode(metadata)
            let metadataPath = temporary + "/" + EntryMetadata.fileName
            try DiskLayout.writeFile(metadataPath, Array(metadataBytes), sync: configuration.durable, hash: hash)
            let bytes = DiskLayout.size(of: temporary)
            if configuration.durable { DiskLayout.sync(temporary) }
            let final = root + "/" + hex
            if rename(temporary, final) != 0 {
                // Another process filled this hash first: adopt its entry.
                DiskLayout.remove(temporary, root: root)
                guard let existing = DiskLayout.load(folder: final, hash: hash) else {
                    throw CacheError(code: .cacheFillFailed, reason: "cannot install the entry", hash: hash, path: final,
                                     underlying: String(cString: strerror(errno)))
                }
                return DiskModuleCache.Entry(hash: hash, folder: final, metadata: existing.metadata, bytes: existing.bytes, lastUse: 0)
            }
            if configuration.durable { DiskLayout.sync(root) }
            return DiskModuleCache.Entry(hash: hash, folder: final, metadata: metadata, bytes: bytes, lastUse: 0)
        } catch {
            DiskLayout.remove(temporary, root: root)
            throw error
        }
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
        let writer: DirectoryWriter
        do {
            writer = try DirectoryWriter(root: folder, syncFiles: configuration.durable)
        } catch {
            throw failure(hash, "cannot write the entry", error)
        }
        let hasher = UIFileHasher()
        let verified: VerifiedBundle
        do {
            verified = try await verifier.verify(
                body.stream,
                request: VerificationRequest(
                    expectedHash: hash, declaredSize: body.info.size, limits: configuration.limits, requireManifest: false),
                visitor: TeeVisitor(writer, hasher))
        } catch let error as VerifyError where error.code == .verifyHashMismatch || error.code == .verifyTruncated {
            throw CacheError(code: .cacheHashMismatch, reason: "the fetched bundle does not hash to its content hash", hash: hash,
                             expected: error.expected, actual: error.actual, underlyingCode: error.code.rawValue, underlying: error.debugDescription)
        } catch {
            throw failure(hash, "the bundle could not be verified and unpacked", error)
        }
        if configuration.durable {
            do { try writer.syncDirectories() } catch { throw failure(hash, "cannot sync the entry", error) }
        }
        var base = ""
        if let manifest = verified.manifestPath, let slash = manifest.lastIndex(of: "/") { base = String(manifest[...slash]) }
        let modulePath = base + "dist/main.wasm"
        let module = verified.entries.first { $0.kind == .file && $0.path == modulePath }.map { EntryMetadata.Module(path: $0.path, size: $0.size) }
        var uiFiles: [String: UIFile] = [:]
        let uiPrefix = base + "ui/"
        for (path, file) in hasher.files where path.hasPrefix(uiPrefix) { uiFiles[String(path.dropFirst(uiPrefix.count))] = file }
        return EntryMetadata(hash: hash.prefixed, base: base, module: module, uiFiles: uiFiles, filledAt: Date())
    }

    private static func failure(_ hash: ContentHash, _ reason: String, _ error: any Error) -> CacheError {
        if let error = error as? CacheError { return error }
        let code = (error as? any ExtBundlesError)?.code.rawValue
        var path: String?
        if let archive = error as? ArchiveError { path = archive.path }
        return CacheError(code: .cacheFillFailed, reason: reason, hash: hash, path: path, underlyingCode: code, underlying: String(reflecting: error))
    }
}

/// The cache folder's names and housekeeping.
enum DiskLayout {
    struct Found {
        var hash: ContentHash
        var folder: String
        var metadata: EntryMetadata
        var bytes: Int64
        var modified: Date
    }

    static func temporaryName(_ hex: String) -> String { ".tmp-\(hex)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    /// Removes a folder without ever leaving a half-deleted entry under its own name: it is
    /// renamed to `.trash-*` first.
    static func remove(_ folder: String, root: String) {
        let trash = root + "/.trash-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        if rename(folder, trash) == 0 {
            try? FileManager.default.removeItem(atPath: trash)
        } else {
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    /// The complete entries under `root`, oldest fill first; removes temporary folders of
    /// processes that are gone, trash, and folders that are not complete entries.
    static func scan(root: String) -> [Found] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var found: [Found] = []
        for name in names {
            let path = root + "/" + name
            if name.hasPrefix(".tmp-") {
                let parts = name.split(separator: "-")
                if parts.count >= 4, let pid = Int32(parts[2]), pid != getpid(), kill(pid, 0) == 0 || errno == EPERM { continue }
                try? FileManager.default.removeItem(atPath: path)
            } else if name.hasPrefix(".trash-") {
                try? FileManager.default.removeItem(atPath: path)
            } else if name.utf8.count == 64, let hash = try? ContentHash(parsing: name, allowUppercase: false) {
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
        guard let data = FileManager.default.contents(atPath: path),
            let metadata = try? JSONDecoder().decode(EntryMetadata.self, from: data), metadata.hash == hash.prefixed
        else { return nil }
        let modified = ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
        return Found(hash: hash, folder: folder, metadata: metadata, bytes: size(of: folder), modified: modified)
    }

    /// The bytes of the files under `folder`.
    static func size(of folder: String) -> Int64 {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return 0 }
        var total: Int64 = 0
        while let relative = enumerator.nextObject() as? String {
            var info = stat()
            if lstat(folder + "/" + relative, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { total += Int64(info.st_size) }
        }
        return total
    }

    /// Writes a new file (refusing to replace one), optionally `fsync`ed.
    static func writeFile(_ path: String, _ bytes: [UInt8], sync: Bool, hash: ContentHash) throws(CacheError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            throw CacheError(code: .cacheFillFailed, reason: "cannot write the entry", hash: hash, path: path, underlying: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        let status = bytes.withUnsafeBytes { FileIO.writeAll(fd, $0) }
        guard status == 0, !sync || fsync(fd) == 0 else {
            throw CacheError(code: .cacheFillFailed, reason: "cannot write the entry", hash: hash, path: path, underlying: String(cString: strerror(errno)))
        }
    }

    static func sync(_ folder: String) {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
