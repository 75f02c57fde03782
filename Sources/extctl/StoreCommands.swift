import ArgumentParser
import BundleArchive
import BundleCore
import BundleStore
import BundleStoreS3
import Foundation

/// Options that pick the bundle store.
struct StoreOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "file:///PATH (or a plain path) or s3://BUCKET[/PREFIX]; S3 endpoint and credentials come from STORAGE_S3_*.",
            valueName: "url"))
    var store: String = ProcessInfo.processInfo.environment["EXT_STORE_URL"] ?? ".ext-data/store"

    @Option(help: "Key prefix of canonical bundles (BUNDLE_STORE_BASE).")
    var base: String = ProcessInfo.processInfo.environment["BUNDLE_STORE_BASE"] ?? "sha256/"

    func objectStore() throws -> any ObjectStore { try StoreOptions.objectStore(url: store) }

    /// The object store a URL names: `file:///PATH` (or a plain path) or `s3://BUCKET[/PREFIX]`.
    /// Parsed on bytes, so a `/` followed by a combining mark still ends the bucket name.
    static func objectStore(url store: String) throws -> any ObjectStore {
        if BytePath.hasPrefix(store, "s3://") {
            let rest = Array(store.utf8.dropFirst("s3://".utf8.count))
            let bucket = String(decoding: rest.prefix { $0 != BytePath.slash }, as: UTF8.self)
            var prefix = Array(rest.dropFirst(bucket.utf8.count))[...]
            while prefix.first == BytePath.slash { prefix = prefix.dropFirst() }
            while prefix.last == BytePath.slash { prefix = prefix.dropLast() }
            let keyPrefix = prefix.isEmpty ? "" : String(decoding: prefix, as: UTF8.self) + "/"
            let configuration = try S3ObjectStore.Configuration.fromEnvironment(bucket: bucket, keyPrefix: keyPrefix)
            return try S3ObjectStore(configuration: configuration)
        }
        var path = store
        if BytePath.hasPrefix(path, "file://") {
            // file://HOST/PATH: only the local host (empty or `localhost`) is this machine.
            path = BytePath.dropPrefix(path, bytes: "file://".utf8.count)
            if BytePath.hasPrefix(path, "localhost/") { path = BytePath.dropPrefix(path, bytes: "localhost".utf8.count) }
            guard path.utf8.first == BytePath.slash else {
                throw StoreError(
                    code: .storeConfiguration,
                    reason: "file:// URLs name a local path as file:///PATH (a host is not supported): '\(Printable.escape(store))'")
            }
        } else if BytePath.hasPrefix(path, "file:") {
            path = BytePath.dropPrefix(path, bytes: "file:".utf8.count)
        }
        guard !path.isEmpty, !BytePath.contains(store, "://") || BytePath.hasPrefix(store, "file://") else {
            throw StoreError(
                code: .storeConfiguration, reason: "unsupported store URL '\(Printable.escape(store))' (use file:///PATH or s3://BUCKET)")
        }
        return try FileSystemObjectStore(root: path)
    }

    /// Whether the store is reached over the network.
    var isRemote: Bool { BytePath.hasPrefix(store, "s3://") }

    func bundleStore() throws -> BundleStore {
        try BundleStore(objects: objectStore(), configuration: .init(layout: .contentAddressed(base: base)))
    }
}

struct Store: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Operate the content-addressed bundle store (filesystem or S3).",
        subcommands: [PutBundle.self, GetBundle.self, HeadBundle.self, Presign.self, List.self, Sweep.self])

    struct Sweep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sweep",
            abstract: "Remove what interrupted uploads left: staging sessions older than --older-than, and a filesystem store's temporary files of writers that are gone.")

        @Option(help: "Seconds after which an untouched staging session is abandoned.")
        var olderThan: Double = 86_400

        @OptionGroup var options: StoreOptions

        func validate() throws {
            guard olderThan.isFinite, olderThan >= 0, olderThan <= 315_360_000 else {
                throw ValidationError("--older-than must be a number of seconds from 0 to 315360000")
            }
        }

        func run() async throws {
            let store = try options.bundleStore()
            let sessions = try await store.sweepStaging(olderThan: olderThan)
            var files = 0
            if let local = store.objects as? FileSystemObjectStore {
                let age = olderThan
                files = await BlockingIO.shared.run { local.removeTemporaryFiles(olderThan: age) }
            }
            Console.out("removed \(sessions.count) staging session\(sessions.count == 1 ? "" : "s") and \(files) temporary file\(files == 1 ? "" : "s")")
        }
    }

    struct PutBundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "put-bundle",
            abstract: "Store a bundle write-once under its content hash; prints sha256:<hex> and stored or already present.")

        @Argument(help: "The bundle file.")
        var file: String

        @Option(help: "Refuse unless the file hashes to this (bare hex or sha256:<hex>).")
        var expectHash: String?

        @Option(help: "Refuse bundles larger than this many bytes (default 209715200, Alga's cap).")
        var maxBytes: Int64 = 209_715_200

        @OptionGroup var options: StoreOptions

        func validate() throws {
            guard maxBytes > 0 else { throw ValidationError("--max-bytes must be positive") }
        }

        func run() async throws {
            let expected = try expectHash.map { try ContentHash(parsing: $0) }
            var info = stat()
            guard stat(file, &info) == 0 else { throw FileError("open", path: file, errno: errno) }
            let type = info.st_mode & S_IFMT
            guard type == S_IFREG || type == S_IFIFO || type == S_IFCHR else {
                throw FileError("read", path: file, errno: type == S_IFDIR ? EISDIR : EINVAL)
            }
            let isRegular = type == S_IFREG
            if isRegular, Int64(info.st_size) > maxBytes {
                throw StoreError(
                    code: .storeTooLarge, reason: "the bundle is larger than the limit (--max-bytes)", key: file,
                    expected: "at most \(maxBytes) bytes", actual: "\(info.st_size) bytes")
            }
            // For a remote store, hash the local file first: the upload then goes straight to its
            // canonical key (and is skipped when already there) instead of staging plus a
            // server-side copy, which rewrites every byte on some servers.
            var knownHash = expected
            if knownHash == nil, isRegular, options.isRemote {
                let file = file
                knownHash = try await BlockingIO.shared.run { try FileHashing.hash(fileAt: file) }
            }
            let stored = try await options.bundleStore().putBundle(
                .file(at: file), length: isRegular ? Int64(info.st_size) : nil, expected: knownHash, maxBytes: maxBytes)
            Console.out("\(stored.hash.prefixed)  \(stored.outcome.rawValue)")
        }
    }

    struct GetBundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get-bundle", abstract: "Download a bundle, checking its hash while it is written.")

        @Argument(help: "The content hash.")
        var hash: String

        @Option(name: .shortAndLong, help: "Where to write it.")
        var output: String

        @OptionGroup var options: StoreOptions

        func run() async throws {
            let hash = try ContentHash(parsing: hash)
            if let kind = FileIO.nonFileAt(output) {
                throw StoreError(code: .storeIO, reason: "the output is a \(kind), not a file; it is never replaced", key: Printable.escape(output))
            }
            let body = try await options.bundleStore().getBundle(hash)
            // A new file of our own (O_EXCL, O_NOFOLLOW: never through a planted link), renamed
            // into place only when the hash matched.
            let temporary = FileIO.temporaryName(besides: output, marker: ".part-")
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw FileError("create", path: temporary, errno: errno) }
            var isOpen = true
            var hasher = ContentHasher()
            do {
                for try await chunk in body.stream {
                    hasher.update(chunk)
                    let failure = await BlockingIO.shared.run { chunk.withUnsafeBytes { FileIO.writeAll(fd, $0) } }
                    guard failure == 0 else { throw FileError("write", path: temporary, errno: failure) }
                }
                isOpen = false
                guard close(fd) == 0 else { throw FileError("close", path: temporary, errno: errno) }
                guard hasher.finalize() == hash else {
                    throw StoreError(
                        code: .storeCorruptObject, reason: "the stored bundle does not match its hash", key: hash.hex,
                        expected: hash.prefixed, actual: hasher.finalize().prefixed)
                }
                let moved = FileIO.moveIntoPlace(temporary, output)
                guard moved == 0 else {
                    throw StoreError(code: .storeIO, reason: "cannot move the file into place: \(String(cString: strerror(moved)))", key: output)
                }
            } catch {
                if isOpen { close(fd) }
                unlink(temporary)
                throw error
            }
            Console.out("\(hash.prefixed)  \(hasher.byteCount) bytes  \(output)")
        }
    }

    struct HeadBundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "head-bundle", abstract: "Show a stored bundle's key, size and ETag.")

        @Argument(help: "The content hash.")
        var hash: String

        @OptionGroup var options: StoreOptions

        func run() async throws {
            let hash = try ContentHash(parsing: hash)
            let store = try options.bundleStore()
            guard let info = try await store.headBundle(hash) else { throw StoreError.notFound(store.bundleKey(for: hash)) }
            Console.out("key:  \(info.key)")
            Console.out("size: \(info.size)")
            if let etag = info.etag { Console.out("etag: \(etag)") }
            if let modified = info.lastModified { Console.out("modified: \(ISO8601DateFormatter().string(from: modified))") }
        }
    }

    struct Presign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "presign", abstract: "Print a presigned GET (or PUT) URL for a bundle.")

        @Argument(help: "The content hash.")
        var hash: String

        @Flag(help: "Presign a create-only upload of exactly these bytes instead of a download (the uploader must send If-None-Match: * and x-amz-checksum-sha256).")
        var put = false

        @Option(help: "Seconds the URL stays valid (1-604800).")
        var expires: Int = 900

        @OptionGroup var options: StoreOptions

        func run() async throws {
            let hash = try ContentHash(parsing: hash)
            let store = try options.bundleStore()
            let key = store.bundleKey(for: hash)
            guard let url = try await store.objects.presignedURL(for: put ? .putChecked(hash) : .get, key: key, expires: expires) else {
                throw StoreError(code: .storeUnsupported, reason: "this store cannot presign URLs (use an s3:// store)", key: key)
            }
            Console.out(url.absoluteString)
            if put {
                let checksum = PresignedOperation.checksumHeader(hash)
                Console.error(
                    "note: upload with the headers 'If-None-Match: *' and '\(checksum.name): \(checksum.value)' (both are signed into the URL); "
                        + "only bytes with this SHA-256 are stored, and an existing bundle is never replaced")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List keys with their sizes.")

        @Option(help: "Only keys starting with this.")
        var prefix: String = ""

        @OptionGroup var options: StoreOptions

        func run() async throws {
            for object in try await options.objectStore().listAll(prefix: prefix) {
                Console.out("\(String(repeating: " ", count: max(0, 12 - String(object.size).count)))\(object.size)  \(object.key)")
            }
        }
    }
}
