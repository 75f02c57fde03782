public import AsyncHTTPClient
public import BundleCore
public import BundleStore
import Crypto
public import Foundation
import NIOCore
import NIOHTTP1

/// An ``ObjectStore`` on S3 or an S3-compatible server (SeaweedFS, MinIO, ...).
///
/// - Create-only writes send `If-None-Match: *` on PUT, CopyObject and CompleteMultipartUpload.
/// - A body of known length up to ``Configuration/multipartThreshold`` is streamed in one PUT
///   without buffering; larger or unknown-length bodies go up as multipart uploads of
///   ``Configuration/partSize`` parts, ``Configuration/partConcurrency`` at a time. A failed
///   multipart upload is aborted, so nothing becomes visible.
/// - Requests whose body can be replayed are retried with exponential backoff and full jitter on
///   5xx, 429 and connection failures; other 4xx are never retried.
/// - S3 XML errors become ``StoreError``s with the S3 code, HTTP status and request id.
public struct S3ObjectStore: MultipartObjectStore {
    /// Where and how to reach the bucket.
    public struct Configuration: Sendable, Equatable {
        /// The endpoint, e.g. `http://127.0.0.1:8333`; nil for AWS (`https://s3.<region>.amazonaws.com`).
        public var endpoint: URL?
        /// The region.
        public var region: String
        /// The bucket.
        public var bucket: String
        /// Credentials.
        public var credentials: AWSSigV4.Credentials
        /// Path-style URLs (`endpoint/bucket/key`) instead of virtual-hosted (`bucket.endpoint/key`).
        public var forcePathStyle: Bool
        /// A prefix put before every key (for `s3://bucket/prefix`), ending in `/` or empty.
        public var keyPrefix: String
        /// Multipart part size in bytes; at least 5 MiB. Default 8 MiB.
        public var partSize: Int
        /// Known-length bodies up to this size go up in one streamed PUT, in constant memory.
        /// Default 256 MiB, above Alga's 200 MiB bundle cap; lower it (over a slow link, say) to
        /// get parallel parts that are retried one by one.
        public var multipartThreshold: Int64
        /// Parts uploaded at once. Default 3 (with 8 MiB parts: under 64 MiB of RSS in all).
        public var partConcurrency: Int
        /// Attempts per request, the first included. Default 4.
        public var maxAttempts: Int
        /// The first retry delay in seconds (doubling, capped by ``maxRetryDelay``). Default 0.1.
        public var baseRetryDelay: Double
        /// The largest retry delay in seconds. Default 2.
        public var maxRetryDelay: Double
        /// Timeout of one request in seconds. Default 300.
        public var requestTimeout: Int64

        /// Creates a configuration.
        public init(
            endpoint: URL?, region: String, bucket: String, credentials: AWSSigV4.Credentials,
            forcePathStyle: Bool? = nil, keyPrefix: String = "", partSize: Int = 8 << 20,
            multipartThreshold: Int64 = 256 << 20, partConcurrency: Int = 3, maxAttempts: Int = 4,
            baseRetryDelay: Double = 0.1, maxRetryDelay: Double = 2, requestTimeout: Int64 = 300
        ) {
            self.endpoint = endpoint
            self.region = region
            self.bucket = bucket
            self.credentials = credentials
            self.forcePathStyle = forcePathStyle ?? (endpoint != nil)
            self.keyPrefix = keyPrefix
            self.partSize = partSize
            self.multipartThreshold = multipartThreshold
            self.partConcurrency = partConcurrency
            self.maxAttempts = maxAttempts
            self.baseRetryDelay = baseRetryDelay
            self.maxRetryDelay = maxRetryDelay
            self.requestTimeout = requestTimeout
        }

        /// Reads Alga's variables: `STORAGE_S3_BUCKET` (or `STORAGE_S3_BUNDLE_BUCKET`),
        /// `STORAGE_S3_ENDPOINT`, `STORAGE_S3_ACCESS_KEY`, `STORAGE_S3_SECRET_KEY` (required with an
        /// endpoint; otherwise `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`), the region from
        /// `STORAGE_S3_REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION`, then `us-east-1` when an endpoint
        /// is set, and `STORAGE_S3_FORCE_PATH_STYLE` (default true with an endpoint).
        public static func fromEnvironment(
            _ environment: [String: String] = ProcessInfo.processInfo.environment, bucket: String? = nil,
            keyPrefix: String = ""
        ) throws(StoreError) -> Configuration {
            func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
            func missing(_ what: String) -> StoreError {
                StoreError(code: .storeConfiguration, reason: "\(what) is not set")
            }
            guard let bucket = bucket ?? value("STORAGE_S3_BUNDLE_BUCKET") ?? value("STORAGE_S3_BUCKET") else {
                throw missing("STORAGE_S3_BUCKET")
            }
            var endpoint: URL?
            if let text = value("STORAGE_S3_ENDPOINT") {
                guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                    throw StoreError(code: .storeConfiguration, reason: "STORAGE_S3_ENDPOINT is not an http(s) URL")
                }
                endpoint = url
            }
            let accessKey = value("STORAGE_S3_ACCESS_KEY") ?? (endpoint == nil ? value("AWS_ACCESS_KEY_ID") : nil)
            let secretKey = value("STORAGE_S3_SECRET_KEY") ?? (endpoint == nil ? value("AWS_SECRET_ACCESS_KEY") : nil)
            guard let accessKey else { throw missing("STORAGE_S3_ACCESS_KEY") }
            guard let secretKey else { throw missing("STORAGE_S3_SECRET_KEY") }
            let region = value("STORAGE_S3_REGION") ?? value("AWS_REGION") ?? value("AWS_DEFAULT_REGION")
                ?? (endpoint != nil ? "us-east-1" : nil)
            guard let region else { throw missing("STORAGE_S3_REGION") }
            var pathStyle = endpoint != nil
            if let flag = value("STORAGE_S3_FORCE_PATH_STYLE") { pathStyle = ["1", "true", "yes"].contains(flag.lowercased()) }
            return Configuration(
                endpoint: endpoint, region: region, bucket: bucket,
                credentials: .init(accessKeyID: accessKey, secretAccessKey: secretKey, sessionToken: value("AWS_SESSION_TOKEN")),
                forcePathStyle: pathStyle, keyPrefix: keyPrefix)
        }
    }

    /// The settings.
    public let configuration: Configuration
    private let client: HTTPClient
    private let signer: AWSSigV4
    private let scheme: String
    private let host: String
    private let basePath: String

    /// The process-wide client the stores use unless given one. Never shut down.
    ///
    /// A refused connection fails at once (this store retries with its own backoff, instead of
    /// AsyncHTTPClient retrying until the request deadline); up to 64 connections per host, so
    /// parallel parts and concurrent callers rarely queue; waiting for a connection (queueing
    /// included) is bounded by the 30-second connect timeout.
    public static let defaultHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(30), read: .seconds(120)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Creates the store.
    /// - Parameter httpClient: the client to use; default ``defaultHTTPClient``.
    /// - Throws: `STORE_CONFIGURATION` for a part size under 5 MiB or an invalid bucket or prefix.
    public init(configuration: Configuration, httpClient: HTTPClient = S3ObjectStore.defaultHTTPClient) throws(StoreError) {
        guard configuration.partSize >= 5 << 20 else {
            throw StoreError(code: .storeConfiguration, reason: "partSize must be at least 5 MiB (S3's minimum)")
        }
        try Self.checkRanges(configuration)
        guard configuration.bucket.utf8.count >= 3, configuration.bucket.utf8.count <= 63,
            configuration.bucket.utf8.allSatisfy({ Self.isNameByte($0) })
        else {
            throw StoreError(code: .storeConfiguration, reason: "invalid bucket name '\(configuration.bucket)'")
        }
        if !configuration.keyPrefix.isEmpty {
            guard configuration.keyPrefix.utf8.last == BytePath.slash else {
                throw StoreError(code: .storeConfiguration, reason: "the key prefix must end with '/'")
            }
            try ObjectKey.validatePrefix(configuration.keyPrefix)
        }
        self.configuration = configuration
        self.client = httpClient
        self.signer = AWSSigV4(credentials: configuration.credentials, region: configuration.region)
        guard !configuration.region.isEmpty, configuration.region.utf8.allSatisfy({ Self.isNameByte($0) && $0 != 0x2e }) else {
            throw StoreError(code: .storeConfiguration, reason: "invalid region '\(Printable.escape(configuration.region))'")
        }
        guard let endpoint = configuration.endpoint ?? URL(string: "https://s3.\(configuration.region).amazonaws.com") else {
            throw StoreError(code: .storeConfiguration, reason: "no endpoint for region '\(configuration.region)'")
        }
        scheme = endpoint.scheme ?? "https"
        var authority = endpoint.host ?? ""
        if let port = endpoint.port { authority += ":\(port)" }
        if configuration.forcePathStyle {
            host = authority
            basePath = "/" + configuration.bucket
        } else {
            host = configuration.bucket + "." + authority
            basePath = ""
        }
    }

    // MARK: - ObjectStore

    /// HEAD; 404 is nil.
    public func head(_ key: String) async throws -> ObjectInfo? {
        try ObjectKey.validate(key)
        let response = try await send("HEAD", key: key, acceptable: [200, 404])
        guard response.status == 200 else { return nil }
        return info(key: key, headers: response.headers, size: response.contentLength)
    }

    /// GET, with a `Range` header for a range; the body streams as it arrives.
    public func get(_ key: String, range: ByteRange?) async throws -> ObjectBody {
        try ObjectKey.validate(key)
        var headers: [AWSSigV4.Parameter] = []
        if let range { headers.append(.init("Range", range.headerValue)) }
        let response = try await send("GET", key: key, headers: headers, acceptable: [200, 206], streamBody: true)
        var size = response.contentLength ?? 0
        var resolved: ClosedRange<Int64>?
        if response.status == 206 {
            guard let header = response.headers.first(name: "content-range"), let parsed = Self.parseContentRange(header) else {
                throw StoreError(
                    code: .storeBackend, reason: "the S3 endpoint answered 206 with a missing or malformed Content-Range", key: key,
                    httpStatus: 206, actual: response.headers.first(name: "content-range").map { String($0.prefix(100)) })
            }
            resolved = parsed.range
            size = parsed.total
        }
        let body = response.body!
        let iterator = BufferIterator(body.makeAsyncIterator())
        return ObjectBody(
            info: info(key: key, headers: response.headers, size: size), range: resolved,
            stream: ByteStream(unfolding: { try await iterator.next() }))
    }

    /// PUT (streamed) or a multipart upload, with `If-None-Match: *` for create-only writes.
    @discardableResult
    public func put(_ key: String, body: ByteStream, length: Int64?, condition: WriteCondition) async throws -> ObjectInfo {
        try ObjectKey.validate(key)
        // The server takes the first `length` bytes as the whole object: a body that is longer
        // must fail before its last byte is sent, one that is shorter before its end is.
        let body = length.map { Self.exactly(body, length: $0, key: key) } ?? body
        if let length, length <= configuration.multipartThreshold {
            var headers = [AWSSigV4.Parameter("Content-Length", String(length))]
            if condition == .createOnly { headers.append(.init("If-None-Match", "*")) }
            // No request before the body's first byte is in hand (or the body is known empty):
            // SeaweedFS stores an empty object when a PUT ends before any body byte.
            let started = try await body.startingWithFirstChunk() ?? .bytes([])
            let sequence = BufferSequence(base: started)
            let response = try await send(
                "PUT", key: key, headers: headers, body: .stream(.stream(sequence, length: .known(length))),
                payloadHash: AWSSigV4.unsignedPayload, retryable: false)
            return ObjectInfo(key: key, size: length, etag: response.etag, lastModified: Date())
        }
        if condition == .createOnly, try await head(key) != nil { throw StoreError.alreadyExists(key) }
        return try await multipartPut(key, body: body, condition: condition)
    }

    /// `body`, failing with `STORE_SIZE_MISMATCH` as soon as it passes `length` bytes, and
    /// holding its last chunk back until it is known to end at exactly `length`.
    static func exactly(_ body: ByteStream, length: Int64, key: String) -> ByteStream {
        let seen = LockedValue<Int64>(0)
        @Sendable func mismatch(_ actual: String) -> StoreError {
            StoreError(
                code: .storeSizeMismatch, reason: "the body does not have the declared length", key: key, expected: String(length), actual: actual)
        }
        return body.observing { chunk in
            let total = seen.withLock { value -> Int64 in
                value += Int64(chunk.count)
                return value
            }
            if total > length { throw mismatch("more than \(length)") }
        }.checkingBeforeEnd {
            let total = seen.withLock { $0 }
            if total != length { throw mismatch(String(total)) }
        }
    }

    /// CopyObject, with `If-None-Match: *` for create-only copies.
    @discardableResult
    public func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo {
        try ObjectKey.validate(source)
        try ObjectKey.validate(destination)
        var headers = [AWSSigV4.Parameter("x-amz-copy-source", AWSSigV4.uriEncode("/\(configuration.bucket)/\(configuration.keyPrefix)\(source)", encodeSlash: false))]
        if condition == .createOnly { headers.append(.init("If-None-Match", "*")) }
        if let sourceETag { headers.append(.init("x-amz-copy-source-if-match", "\"\(sourceETag)\"")) }
        do {
            let response = try await send("PUT", key: destination, headers: headers)
            let xml = XMLElement.parse(response.bytes)
            if let xml, xml.name == "Error" { throw error(from: xml, status: 200, key: destination) }
        } catch let failure as StoreError where failure.code == .storeNotFound && failure.backendCode != "NoSuchBucket" {
            if let sourceETag { throw StoreError.sourceChanged(source, expected: sourceETag, actual: nil) }
            throw StoreError.notFound(source)
        } catch let failure as StoreError where failure.code == .storeAlreadyExists && sourceETag != nil {
            // S3 answers 412 for both conditions: tell them apart by the source's ETag now.
            let current = try await head(source)?.etag
            if current != sourceETag { throw StoreError.sourceChanged(source, expected: sourceETag ?? "", actual: current) }
            throw failure
        }
        guard let info = try await head(destination) else { throw StoreError.notFound(destination) }
        return info
    }

    /// DELETE; a missing object is fine.
    public func delete(_ key: String) async throws {
        try ObjectKey.validate(key)
        _ = try await send("DELETE", key: key, acceptable: [200, 204, 404])
    }

    /// ListObjectsV2 with `start-after` = the continuation (the last key of the previous page).
    public func list(prefix: String, continuation: String?, limit: Int) async throws -> ObjectListing {
        try ObjectKey.validatePrefix(prefix)
        var query = [
            AWSSigV4.Parameter("list-type", "2"), .init("prefix", configuration.keyPrefix + prefix),
            .init("max-keys", String(max(1, min(limit, 1_000)))),
        ]
        if let continuation { query.append(.init("start-after", configuration.keyPrefix + continuation)) }
        let response = try await send("GET", key: nil, query: query)
        guard let xml = XMLElement.parse(response.bytes) else {
            throw StoreError(code: .storeBackend, reason: "ListObjectsV2 answered something that is not XML")
        }
        let objects = xml.all("Contents").compactMap { element -> ObjectInfo? in
            guard let fullKey = element["Key"], BytePath.hasPrefix(fullKey, configuration.keyPrefix) else { return nil }
            let key = BytePath.dropPrefix(fullKey, bytes: configuration.keyPrefix.utf8.count)
            // Only what this store could have written: a key from a foreign writer that breaks
            // the key rules (`..`, control characters) is not listed.
            guard (try? ObjectKey.validate(key)) != nil else { return nil }
            return ObjectInfo(
                key: key, size: Self.decimal(Substring(element["Size"] ?? "")) ?? 0,
                etag: element["ETag"].map(Self.unquote), lastModified: element["LastModified"].flatMap(Self.parseISODate))
        }
        let truncated = xml["IsTruncated"] == "true"
        // Resume after the last key the server sent, listed or not.
        let last = xml.all("Contents").last?["Key"].flatMap { key in
            BytePath.hasPrefix(key, configuration.keyPrefix) ? BytePath.dropPrefix(key, bytes: configuration.keyPrefix.utf8.count) : nil
        }
        return ObjectListing(objects: objects, continuation: truncated ? last : nil)
    }

    /// Presigned GET, PUT or UploadPart URLs (`UNSIGNED-PAYLOAD`).
    ///
    /// A presigned PUT is create-only: `If-None-Match: *` is a signed header of the URL, so the
    /// uploader must send it, and S3 refuses the upload (412) when an object is already at the
    /// key. A URL can therefore never replace an object, however often it is used. A
    /// `putChecked` URL also signs `x-amz-checksum-sha256`, so S3 stores only bytes with that
    /// SHA-256 (other bytes: 400 `BadDigest`). GET and UploadPart URLs sign `host` only.
    public func presignedURL(for operation: PresignedOperation, key: String, expires: Int) async throws -> URL? {
        try ObjectKey.validate(key)
        guard (1...604_800).contains(expires) else {
            throw StoreError(code: .storeInvalidArgument, reason: "expires must be 1 to 604800 seconds", key: key)
        }
        var method = "GET"
        var query: [AWSSigV4.Parameter] = []
        switch operation {
        case .get: break
        case .put, .putChecked: method = "PUT"
        case .uploadPart(let uploadID, let number):
            method = "PUT"
            query = [.init("partNumber", String(number)), .init("uploadId", uploadID)]
        }
        let path = objectPath(key)
        var signed = [AWSSigV4.Parameter("host", host)]
        switch operation {
        case .put:
            signed.append(.init("if-none-match", "*"))
        case .putChecked(let hash):
            signed.append(.init("if-none-match", "*"))
            let header = PresignedOperation.checksumHeader(hash)
            signed.append(.init(header.name, header.value))
        case .get, .uploadPart:
            break
        }
        let request = AWSSigV4.Request(method: method, path: path, query: query, headers: signed)
        let signature = signer.presign(request, date: Date(), expires: expires)
        return URL(string: "\(scheme)://\(host)\(AWSSigV4.uriEncode(path, encodeSlash: false))?\(Self.queryString(query + signature.query))")
    }

    // MARK: - Multipart

    /// Starts a multipart upload and returns its id.
    public func createMultipartUpload(_ key: String) async throws -> String {
        try ObjectKey.validate(key)
        let response = try await send("POST", key: key, query: [.init("uploads", "")])
        guard let id = XMLElement.parse(response.bytes)?["UploadId"] else {
            throw StoreError(code: .storeBackend, reason: "CreateMultipartUpload answered no UploadId", key: key)
        }
        return id
    }

    /// Uploads one part (retried; the bytes are in memory) and returns its record.
    public func uploadPart(_ key: String, uploadID: String, number: Int, bytes: [UInt8]) async throws -> UploadedPart {
        try await uploadPart(key, uploadID: uploadID, number: number, buffer: ByteBuffer(bytes: bytes))
    }

    private func uploadPart(_ key: String, uploadID: String, number: Int, buffer: ByteBuffer) async throws -> UploadedPart {
        let response = try await send(
            "PUT", key: key, query: [.init("partNumber", String(number)), .init("uploadId", uploadID)],
            headers: [.init("Content-Length", String(buffer.readableBytes))], body: .buffer(buffer),
            payloadHash: AWSSigV4.unsignedPayload)
        guard let etag = response.etag else {
            throw StoreError(code: .storeBackend, reason: "UploadPart answered no ETag", key: key)
        }
        return UploadedPart(number: number, etag: etag)
    }

    /// Completes an upload from its parts (sorted by number), create-only if asked.
    @discardableResult
    public func completeMultipartUpload(
        _ key: String, uploadID: String, parts: [UploadedPart], condition: WriteCondition
    ) async throws -> ObjectInfo {
        let items = parts.sorted { $0.number < $1.number }.map {
            "<Part><PartNumber>\($0.number)</PartNumber><ETag>\"\(XMLElement.escape($0.etag))\"</ETag></Part>"
        }
        let document = Array("<CompleteMultipartUpload>\(items.joined())</CompleteMultipartUpload>".utf8)
        var headers = [AWSSigV4.Parameter("Content-Length", String(document.count))]
        if condition == .createOnly { headers.append(.init("If-None-Match", "*")) }
        let response = try await send(
            "POST", key: key, query: [.init("uploadId", uploadID)], headers: headers, body: .bytes(document),
            payloadHash: AWSSigV4.hex(SHA256.hash(data: document)))
        if let xml = XMLElement.parse(response.bytes), xml.name == "Error" {
            throw error(from: xml, status: 200, key: key)
        }
        guard let info = try await head(key) else { throw StoreError.notFound(key) }
        return info
    }

    /// Aborts an upload, discarding its parts.
    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        _ = try await send("DELETE", key: key, query: [.init("uploadId", uploadID)], acceptable: [200, 204, 404])
    }

    private func multipartPut(_ key: String, body: ByteStream, condition: WriteCondition) async throws -> ObjectInfo {
        let uploadID = try await createMultipartUpload(key)
        do {
            let parts = try await uploadParts(key, uploadID: uploadID, body: body)
            return try await completeMultipartUpload(key, uploadID: uploadID, parts: parts, condition: condition)
        } catch {
            try? await abortMultipartUpload(key, uploadID: uploadID)
            throw error
        }
    }

    /// Cuts the body into parts and uploads up to `partConcurrency` at once.
    private func uploadParts(_ key: String, uploadID: String, body: ByteStream) async throws -> [UploadedPart] {
        let partSize = configuration.partSize
        var iterator = body.makeAsyncIterator()
        var carry: ArraySlice<UInt8> = []
        var finished = false
        // Each part is filled straight into one buffer, the only copy of its bytes in memory.
        func nextPart() async throws -> ByteBuffer? {
            var part = ByteBufferAllocator().buffer(capacity: partSize)
            while part.readableBytes < partSize {
                if carry.isEmpty {
                    guard !finished, let chunk = try await iterator.next() else {
                        finished = true
                        break
                    }
                    carry = chunk[...]
                }
                let take = min(partSize - part.readableBytes, carry.count)
                part.writeBytes(carry.prefix(take))
                carry = carry.dropFirst(take)
            }
            return part.readableBytes > 0 ? part : nil
        }
        return try await withThrowingTaskGroup(of: UploadedPart.self) { group in
            var parts: [UploadedPart] = []
            var number = 0
            var inFlight = 0
            while let part = try await nextPart() {
                number += 1
                let partNumber = number
                if inFlight == configuration.partConcurrency {
                    if let done = try await group.next() { parts.append(done) }
                    inFlight -= 1
                }
                group.addTask { try await uploadPart(key, uploadID: uploadID, number: partNumber, buffer: part) }
                inFlight += 1
            }
            if number == 0 {
                group.addTask { try await uploadPart(key, uploadID: uploadID, number: 1, bytes: []) }
            }
            for try await done in group { parts.append(done) }
            return parts
        }
    }

    // MARK: - Requests

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var bytes: [UInt8]
        var body: HTTPClientResponse.Body?

        /// A Content-Length of digits only (a negative or malformed one is no length).
        var contentLength: Int64? { headers.first(name: "content-length").flatMap { S3ObjectStore.decimal(Substring($0)) } }
        var etag: String? { headers.first(name: "etag").map(S3ObjectStore.unquote) }
    }

    private func objectPath(_ key: String?) -> String {
        guard let key else { return basePath.isEmpty ? "/" : basePath }
        return basePath + "/" + configuration.keyPrefix + key
    }

    /// Signs and sends one request, retrying what may be retried.
    private func send(
        _ method: String, key: String?, query: [AWSSigV4.Parameter] = [], headers: [AWSSigV4.Parameter] = [],
        body: RequestBody = .none, payloadHash: String? = nil, acceptable: Set<Int> = [200, 204], streamBody: Bool = false,
        retryable: Bool = true
    ) async throws -> Response {
        let path = objectPath(key)
        var attempt = 0
        while true {
            attempt += 1
            let signed = signer.signHeaders(
                .init(method: method, path: path, query: query, headers: [.init("host", host)] + headers),
                payloadHash: payloadHash ?? AWSSigV4.emptyPayloadHash, date: Date())
            let queryText = query.isEmpty ? "" : "?" + Self.queryString(query)
            var request = HTTPClientRequest(url: "\(scheme)://\(host)\(AWSSigV4.uriEncode(path, encodeSlash: false))\(queryText)")
            request.method = HTTPMethod(rawValue: method)
            request.headers.add(name: "Host", value: host)
            for header in headers + signed.headers where header.name.lowercased() != "content-length" {
                request.headers.add(name: header.name, value: header.value)
            }
            switch body {
            case .none: break
            case .bytes(let bytes): request.body = .bytes(bytes)
            case .buffer(let buffer): request.body = .bytes(buffer)
            case .stream(let stream): request.body = stream
            }
            let canRetry = retryable && attempt < configuration.maxAttempts
            do {
                let response = try await client.execute(request, timeout: .seconds(configuration.requestTimeout))
                let status = Int(response.status.code)
                if acceptable.contains(status) {
                    if streamBody {
                        return Response(status: status, headers: response.headers, bytes: [], body: response.body)
                    }
                    var buffer = try await response.body.collect(upTo: 16 << 20)
                    return Response(status: status, headers: response.headers, bytes: buffer.readBytes(length: buffer.readableBytes) ?? [], body: nil)
                }
                var buffer = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
                let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
                let failure = error(from: XMLElement.parse(bytes), status: status, key: key, headers: response.headers)
                if canRetry && (status >= 500 || status == 429 || failure.backendCode == "SlowDown") {
                    try await backoff(attempt)
                    continue
                }
                throw failure
            } catch let failure as StoreError {
                throw failure
            } catch let failure as BodyFailure {
                throw failure.underlying  // the caller's body failed, not the endpoint
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                if canRetry {
                    try await backoff(attempt)
                    continue
                }
                throw StoreError(
                    code: .storeUnreachable, reason: "the S3 endpoint could not be reached: \(Self.describe(error))", key: key)
            }
        }
    }

    enum RequestBody {
        case none
        case bytes([UInt8])
        case buffer(ByteBuffer)
        case stream(HTTPClientRequest.Body)
    }

    /// The numeric settings, checked once so that no request can trap on them.
    private static func checkRanges(_ configuration: Configuration) throws(StoreError) {
        func refuse(_ name: String, _ range: String, _ value: String) -> StoreError {
            StoreError(code: .storeConfiguration, reason: "\(name) must be \(range)", expected: range, actual: value)
        }
        guard configuration.partSize <= 5 << 30 else { throw refuse("partSize", "at most 5 GiB (S3's maximum)", "\(configuration.partSize)") }
        guard (1...256).contains(configuration.partConcurrency) else {
            throw refuse("partConcurrency", "from 1 to 256", "\(configuration.partConcurrency)")
        }
        guard (1...100).contains(configuration.maxAttempts) else { throw refuse("maxAttempts", "from 1 to 100", "\(configuration.maxAttempts)") }
        guard (1...604_800).contains(configuration.requestTimeout) else {
            throw refuse("requestTimeout", "from 1 to 604800 seconds", "\(configuration.requestTimeout)")
        }
        for (name, value) in [("baseRetryDelay", configuration.baseRetryDelay), ("maxRetryDelay", configuration.maxRetryDelay)] {
            guard value.isFinite, value >= 0, value <= 3_600 else { throw refuse(name, "from 0 to 3600 seconds", "\(value)") }
        }
    }

    private func backoff(_ attempt: Int) async throws {
        let exponential = configuration.baseRetryDelay * pow(2, Double(min(max(attempt - 1, 0), 62)))
        var ceiling = min(configuration.maxRetryDelay, exponential)
        // Whatever the configuration says (NaN, infinity, negative), sleep between 1 ms and an hour.
        ceiling = ceiling.isNaN ? 0.001 : min(max(ceiling, 0.001), 3_600)
        let delay = Double.random(in: 0...ceiling)
        try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
    }

    private func error(from xml: XMLElement?, status: Int, key: String?, headers: HTTPHeaders? = nil) -> StoreError {
        let s3Code = xml?["Code"]
        let message = xml?["Message"]
        let requestID = xml?["RequestId"] ?? headers?.first(name: "x-amz-request-id")
        let code: ErrorCode
        var reason: String
        switch (status, s3Code) {
        case (_, "NoSuchUpload"):
            code = .storeNoSuchUpload
            reason = "no such multipart upload"
        case (404, _), (_, "NoSuchKey"), (_, "NoSuchBucket"):
            code = .storeNotFound
            reason = s3Code == "NoSuchBucket" ? "no such bucket '\(configuration.bucket)'" : "no such object"
        case (412, _), (_, "PreconditionFailed"):
            code = .storeAlreadyExists
            reason = "an object already exists and is never overwritten"
        case (403, _), (401, _):
            code = .storeAccessDenied
            reason = "access denied by the S3 endpoint"
        case (416, _), (_, "InvalidRange"):
            code = .storeRangeNotSatisfiable
            reason = "the range is outside the object"
        case (429, _), (_, "SlowDown"):
            code = .storeBackend
            reason = "the S3 endpoint is throttling requests"
        case (_, "EntityTooSmall"):
            code = .storeInvalidArgument
            reason = "a multipart part other than the last is smaller than 5 MiB"
        case (400..<500, _):
            code = .storeInvalidArgument
            reason = "the S3 endpoint refused the request"
        default:
            code = .storeBackend
            reason = "the S3 endpoint failed"
        }
        if let message, !message.isEmpty { reason += ": \(message)" }
        return StoreError(code: code, reason: reason, key: key, httpStatus: status, backendCode: s3Code, requestID: requestID)
    }

    private func info(key: String, headers: HTTPHeaders, size: Int64?) -> ObjectInfo {
        ObjectInfo(
            key: key, size: size ?? 0, etag: headers.first(name: "etag").map(Self.unquote),
            lastModified: headers.first(name: "last-modified").flatMap(Self.parseHTTPDate))
    }

    /// Letters, digits, `-`, `_` and `.`: the bytes of bucket names (legacy ones included) and regions.
    static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2d || byte == 0x5f
            || byte == 0x2e
    }

    /// `bytes first-last/total` with `0 <= first <= last < total`; nil for anything else.
    static func parseContentRange(_ header: String) -> (range: ClosedRange<Int64>, total: Int64)? {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = text.dropFirst("bytes ".count)
        let halves = spec.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2 else { return nil }
        let bounds = halves[0].split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = Self.decimal(bounds[0]), let last = Self.decimal(bounds[1]),
            let total = Self.decimal(halves[1]), first <= last, last < total
        else { return nil }
        return (first...last, total)
    }

    /// Digits only (no sign, no spaces), fitting an `Int64`.
    static func decimal(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }

    static func unquote(_ etag: String) -> String {
        var value = Substring(etag)
        if value.hasPrefix("W/") { value = value.dropFirst(2) }
        return String(value.trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
    }

    static func queryString(_ query: [AWSSigV4.Parameter]) -> String {
        query.map { "\(AWSSigV4.uriEncode($0.name, encodeSlash: true))=\(AWSSigV4.uriEncode($0.value, encodeSlash: true))" }
            .joined(separator: "&")
    }

    static func parseISODate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }

    static func parseHTTPDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    static func describe(_ error: any Error) -> String {
        String(describing: error).prefix(200).description
    }
}

/// An error thrown by the request body the caller supplied, told apart from transport errors.
struct BodyFailure: Error {
    var underlying: any Error
}

/// The upload body AsyncHTTPClient reads: the caller's `ByteStream` as `ByteBuffer`s, with the
/// stream's own failures marked as ``BodyFailure``.
struct BufferSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: ByteStream

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: ByteStream.AsyncIterator

        mutating func next() async throws -> ByteBuffer? {
            do {
                return try await base.next().map { ByteBuffer(bytes: $0) }
            } catch {
                throw BodyFailure(underlying: error)
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }
}

/// Holds a response body iterator for the single consumer of a `ByteStream`.
final class BufferIterator: @unchecked Sendable {
    private var iterator: HTTPClientResponse.Body.AsyncIterator

    init(_ iterator: HTTPClientResponse.Body.AsyncIterator) { self.iterator = iterator }

    func next() async throws -> [UInt8]? {
        guard var buffer = try await iterator.next() else { return nil }
        return buffer.readBytes(length: buffer.readableBytes)
    }
}
