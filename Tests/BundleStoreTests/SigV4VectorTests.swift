import BundleStoreS3
import Foundation
import Testing
import TestSupport

/// Every case of the aws-c-auth SigV4 suite in ../shared/fixtures/aws-sigv4: canonical request,
/// string to sign and signature, for header and for query signing.
///
/// All 38 cases apply. The suite's `normalize` flag maps to `normalizePath` (S3 itself never
/// normalises, so S3ObjectStore signs with it off); `sign_body` maps to signing the body's hash and
/// adding `x-amz-content-sha256`; `omit_session_token` adds the token after signing.
@Suite struct SigV4VectorTests {
    static let folder = TestSupport.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/aws-sigv4")

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { FileManager.default.fileExists(atPath: folder.appendingPathComponent("\($0)/request.txt").path) }
            .sorted()
    }

    struct Context: Decodable {
        struct Credentials: Decodable {
            var access_key_id: String
            var secret_access_key: String
            var token: String?
        }

        var credentials: Credentials
        var expiration_in_seconds: Int
        var normalize: Bool
        var region: String
        var service: String
        var sign_body: Bool
        var timestamp: String
        var omit_session_token: Bool?
    }

    /// Parses `request.txt`: request line, headers (with folded continuation lines), body.
    static func parseRequest(_ text: String) -> (AWSSigV4.Request, [UInt8]) {
        let (head, body) = text.range(of: "\n\n").map { (String(text[..<$0.lowerBound]), String(text[$0.upperBound...])) } ?? (text, "")
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst()
        let method = String(requestLine.prefix { $0 != " " })
        var target = String(requestLine.dropFirst(method.count + 1))
        if let http = target.range(of: " HTTP/", options: .backwards) { target = String(target[..<http.lowerBound]) }
        var path = target
        var query: [AWSSigV4.Parameter] = []
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            for pair in target[target.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let decode = { (text: Substring) in text.removingPercentEncoding ?? String(text) }
                query.append(.init(decode(parts[0]), parts.count > 1 ? decode(parts[1]) : ""))
            }
        }
        var headers: [AWSSigV4.Parameter] = []
        for line in lines where !line.isEmpty {
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += "\n" + line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append(.init(String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
        }
        return (AWSSigV4.Request(method: method, path: path, query: query, headers: headers), Array(body.utf8))
    }

    static func read(_ name: String, _ file: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent("\(name)/\(file)"), encoding: .utf8)
    }

    @Test func theSuiteIsPresent() {
        #expect(Self.cases.count == 38, "found \(Self.cases.count) cases in \(Self.folder.path)")
    }

    @Test(arguments: cases)
    func vector(_ name: String) throws {
        let context = try JSONDecoder().decode(Context.self, from: Data(try Self.read(name, "context.json").utf8))
        let (request, body) = Self.parseRequest(try Self.read(name, "request.txt"))
        let signer = AWSSigV4(
            credentials: .init(
                accessKeyID: context.credentials.access_key_id, secretAccessKey: context.credentials.secret_access_key,
                sessionToken: context.credentials.token),
            region: context.region, service: context.service)
        let date = try #require(ISO8601DateFormatter().date(from: context.timestamp))
        let payloadHash = context.sign_body ? AWSSigV4.payloadHash(body) : AWSSigV4.emptyPayloadHash
        let omit = context.omit_session_token ?? false

        let header = signer.signHeaders(
            request, payloadHash: payloadHash, date: date, addContentHashHeader: context.sign_body,
            normalizePath: context.normalize, omitSessionToken: omit)
        #expect(header.canonicalRequest == (try Self.read(name, "header-canonical-request.txt")))
        #expect(header.stringToSign == (try Self.read(name, "header-string-to-sign.txt")))
        #expect(header.signature == (try Self.read(name, "header-signature.txt")))
        let authorization = header.headers.first { $0.name == "Authorization" }?.value ?? ""
        #expect((try Self.read(name, "header-signed-request.txt")).contains("Authorization:" + authorization))

        let query = signer.presign(
            request, payloadHash: payloadHash, date: date, expires: context.expiration_in_seconds,
            normalizePath: context.normalize, omitSessionToken: omit)
        #expect(query.canonicalRequest == (try Self.read(name, "query-canonical-request.txt")))
        #expect(query.stringToSign == (try Self.read(name, "query-string-to-sign.txt")))
        #expect(query.signature == (try Self.read(name, "query-signature.txt")))
        #expect((try Self.read(name, "query-signed-request.txt")).contains("X-Amz-Signature=" + query.signature))
    }
}
