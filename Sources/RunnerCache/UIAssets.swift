import BundleCore
import BundleStore
public import Foundation

/// A request for a UI asset, as an HTTP layer received it:
/// `GET /ext-ui/{extensionId}/{contentHash}/{path…}`.
public struct AssetRequest: Sendable {
    /// The extension id from the URL (passed through; tenancy checks belong to the host).
    public var extensionID: String
    /// The content hash from the URL, `sha256:<hex>` (percent-decoded).
    public var contentHash: String
    /// The path tail after the hash, without a leading `/` (empty for the root).
    public var path: String
    /// The request headers; names are matched case-insensitively.
    public var headers: [(name: String, value: String)]

    /// Creates a request.
    public init(extensionID: String, contentHash: String, path: String, headers: [(name: String, value: String)] = []) {
        self.extensionID = extensionID
        self.contentHash = contentHash
        self.path = path
        self.headers = headers
    }

    /// The first value of a header.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// A response any HTTP server can send: a status, headers, and a body that is empty, a few bytes,
/// or a region of a file.
public struct AssetResponse: Sendable {
    /// The body.
    public enum Body: Sendable, Equatable {
        /// No body.
        case empty
        /// A short body (errors).
        case bytes([UInt8])
        /// `length` bytes of the file at `path` from `offset`.
        case file(path: String, offset: Int64, length: Int64)
    }

    /// The HTTP status.
    public var status: Int
    /// The headers, in order.
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: Body
    /// Keeps the cache entry of a file body until the response is dropped (after sending).
    public var lease: CacheLease?

    /// The first value of a header.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// Answers UI asset requests from a ``ModuleCache`` following Alga's runner (reference 6.4),
/// with its gaps fixed: ETags are computed once per entry, never per request; `Range` is
/// supported; `Cache-Control: public, max-age=31536000, immutable` is sent on successful asset
/// responses only and errors get `no-store`; the path is checked before anything is fetched.
public struct UIAssetResponder: Sendable {
    /// Settings.
    public struct Configuration: Sendable, Equatable {
        /// Alga's default CSP for HTML.
        public static let defaultContentSecurityPolicy =
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"
        /// Alga's allowlist of file extensions.
        public static let defaultAllowedExtensions: Set<String> = [
            "html", "js", "css", "json", "map", "svg", "png", "jpg", "jpeg", "webp", "woff", "woff2",
        ]

        /// File extensions that may be served (lowercase, no dot).
        public var allowedExtensions: Set<String>
        /// Files larger than this get 413 (`EXT_STATIC_MAX_FILE_BYTES`); nil means no cap.
        public var maxFileBytes: Int64?
        /// The CSP of HTML responses (`EXT_UI_CONTENT_SECURITY_POLICY` replaces it).
        public var contentSecurityPolicy: String
        /// Appended as `; frame-ancestors <value>` unless the CSP was replaced (`EXT_UI_FRAME_ANCESTORS`).
        public var frameAncestors: String?

        /// Creates a configuration.
        public init(
            allowedExtensions: Set<String> = defaultAllowedExtensions, maxFileBytes: Int64? = nil,
            contentSecurityPolicy: String = defaultContentSecurityPolicy, frameAncestors: String? = nil
        ) {
            self.allowedExtensions = allowedExtensions
            self.maxFileBytes = maxFileBytes
            self.contentSecurityPolicy = contentSecurityPolicy
            self.frameAncestors = frameAncestors
        }

        /// Alga's variables: `EXT_STATIC_MAX_FILE_BYTES`, `EXT_UI_CONTENT_SECURITY_POLICY` (non-blank
        /// replaces the CSP), `EXT_UI_FRAME_ANCESTORS` (non-blank, appended when the CSP was not replaced).
        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Configuration {
            var configuration = Configuration()
            if let text = environment["EXT_STATIC_MAX_FILE_BYTES"], let cap = Int64(text.trimmingCharacters(in: .whitespaces)), cap >= 0 {
                configuration.maxFileBytes = cap
            }
            let csp = environment["EXT_UI_CONTENT_SECURITY_POLICY"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let ancestors = environment["EXT_UI_FRAME_ANCESTORS"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if !csp.isEmpty {
                configuration.contentSecurityPolicy = csp
            } else if !ancestors.isEmpty {
                configuration.frameAncestors = ancestors
            }
            return configuration
        }

        /// The CSP sent with HTML.
        public var effectiveContentSecurityPolicy: String {
            frameAncestors.map { contentSecurityPolicy + "; frame-ancestors " + $0 } ?? contentSecurityPolicy
        }
    }

    /// The cache answers come from.
    public let cache: any ModuleCache
    /// The settings.
    public let configuration: Configuration

    /// Creates a responder.
    public init(cache: any ModuleCache, configuration: Configuration = .init()) {
        self.cache = cache
        self.configuration = configuration
    }

    /// Answers one request.
    public func respond(to request: AssetRequest) async -> AssetResponse {
        // 1. The hash: sha256:<64 hex>.
        guard request.contentHash.lowercased().hasPrefix(ContentHash.algorithmPrefix),
            let hash = try? ContentHash(parsing: request.contentHash)
        else { return Self.error(400, text: "invalid content hash") }
        // 2. The path, checked before anything is fetched.
        guard let segments = Self.sanitize(request.path, allowedExtensions: configuration.allowedExtensions) else {
            return Self.error(400, text: "invalid path")
        }
        // 3. The entry.
        let ui: UIHandle
        do {
            ui = try await cache.ensureUiCached(hash)
        } catch let error as CacheError {
            switch error.code {
            case .cacheHashMismatch: return Self.error(502, json: "archive_hash_mismatch")
            case .cacheSignatureRefused: return Self.error(502, json: "signature_refused")
            case .cacheNotFound: return Self.error(404, json: "bundle_not_found")
            default: return Self.error(500, json: "extract_failed")
            }
        } catch {
            return Self.error(500, json: "extract_failed")
        }
        // 4. The file, with the SPA fallback to index.html for the root, folders and missing files.
        //    Names match byte for byte, as on disk.
        let relative = segments.joined(separator: "/")
        guard let (path, file) = ui.file(at: relative) ?? ui.file(at: "index.html") else { return Self.error(404, text: "not found") }
        if let cap = configuration.maxFileBytes, file.size > cap { return Self.error(413, text: "asset too large") }
        let type = Self.contentType(for: path)
        let isHTML = type.hasPrefix("text/html")
        var headers: [(name: String, value: String)] = [("ETag", file.etag), ("Cache-Control", Self.immutable)]
        if isHTML { headers.append(("Content-Security-Policy", configuration.effectiveContentSecurityPolicy)) }
        headers.append(("X-Content-Type-Options", "nosniff"))
        // 5. Conditional request.
        if let match = request.header("If-None-Match"), Self.matches(match, etag: file.etag) {
            return AssetResponse(status: 304, headers: headers, body: .empty, lease: nil)
        }
        headers.append(("Content-Type", type))
        headers.append(("Accept-Ranges", "bytes"))
        let filePath = ui.path(of: path)
        // 6. Range: one `bytes=` range; anything else is ignored and the whole file is sent.
        if let rangeHeader = request.header("Range"), let range = ByteRange.parse(httpHeader: rangeHeader) {
            guard let resolved = range.resolve(size: file.size) else {
                var response = Self.error(416, text: "range not satisfiable")
                response.headers.append(("Content-Range", "bytes */\(file.size)"))
                return response
            }
            let length = resolved.upperBound - resolved.lowerBound + 1
            headers.append(("Content-Range", "bytes \(resolved.lowerBound)-\(resolved.upperBound)/\(file.size)"))
            headers.append(("Content-Length", String(length)))
            return AssetResponse(
                status: 206, headers: headers, body: .file(path: filePath, offset: resolved.lowerBound, length: length), lease: ui.lease)
        }
        headers.append(("Content-Length", String(file.size)))
        return AssetResponse(status: 200, headers: headers, body: .file(path: filePath, offset: 0, length: file.size), lease: ui.lease)
    }

    static let immutable = "public, max-age=31536000, immutable"

    /// Alga's path sanitiser (reference 6.4 step 5), on the path's bytes: the normalised
    /// segments, or nil when refused. Empty means the root. Refused: a leading `/`, control
    /// characters and NUL, `\`, `.` and `..` segments, hidden segments, a trailing dot, and a
    /// last segment whose extension is not allowed. A path that is accepted never contains a
    /// `..` segment or leaves the UI folder, whatever combining marks or invisible characters it
    /// holds.
    public static func sanitize(_ path: String, allowedExtensions: Set<String> = Configuration.defaultAllowedExtensions) -> [String]? {
        let bytes = Array(path.utf8)
        if bytes.first == BytePath.slash { return nil }
        if BytePath.containsControl(bytes) || bytes.contains(UInt8(ascii: "\\")) { return nil }
        let segments = BytePath.segments(bytes).filter { !$0.isEmpty }
        for segment in segments where segment.first == BytePath.dot { return nil }  // ".", "..", hidden files
        if let last = segments.last, let dot = last.lastIndex(of: BytePath.dot) {
            let ext = String(decoding: last[last.index(after: dot)...], as: UTF8.self).lowercased()
            if ext.isEmpty || !allowedExtensions.contains(ext) { return nil }
        }
        return segments.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The content type of a file name, `charset=utf-8` for text.
    public static func contentType(for path: String) -> String {
        let name = Array(BytePath.lastSegment(path).utf8)
        let ext = name.lastIndex(of: BytePath.dot).map { String(decoding: name[($0 + 1)...], as: UTF8.self).lowercased() } ?? ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json", "map": return "application/json"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "webp": return "image/webp"
        case "gif": return "image/gif"
        case "ico": return "image/x-icon"
        case "woff": return "font/woff"
        case "woff2": return "font/woff2"
        case "txt": return "text/plain; charset=utf-8"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }

    static func matches(_ header: String, etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            let value = candidate.trimmingCharacters(in: .whitespaces)
            return value == "*" || value == etag || value == "W/" + etag
        }
    }

    static func error(_ status: Int, text: String) -> AssetResponse {
        AssetResponse(
            status: status,
            headers: [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")],
            body: .bytes(Array(text.utf8)), lease: nil)
    }

    static func error(_ status: Int, json code: String) -> AssetResponse {
        AssetResponse(
            status: status,
            headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")],
            body: .bytes(Array("{\"code\":\"\(code)\"}".utf8)), lease: nil)
    }
}
