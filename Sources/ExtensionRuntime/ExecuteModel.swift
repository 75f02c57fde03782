public import Foundation

/// The body of `POST /v1/execute`, as Alga's gateways send it (reference 6.5).
///
/// Decoding follows Alga's runner: `context.tenant_id`, `context.extension_id`,
/// `context.content_hash`, `http.method` and `http.path` are required; everything else is
/// optional, and unknown keys are ignored (the ext-proxy gateway also sends `http.url` and
/// `endpoint`). Encoding writes the same snake-case keys, so a request a Swift host builds can be
/// sent to Alga's runner as is.
public struct ExecuteRequest: Codable, Sendable, Equatable {
    /// Who is asking, for what.
    public var context: Context
    /// The HTTP request the handler answers.
    public var http: HTTPRequest
    /// Limits for this call; nil fields take the executor's defaults.
    public var limits: Limits?
    /// The capabilities the install grants (normalised and joined with the defaults before use).
    public var providers: [String]?
    /// The install's secrets, encrypted.
    public var secretEnvelope: SecretEnvelope?
    /// The signed-in user, when there is one.
    public var user: User?

    /// Creates a request.
    public init(
        context: Context, http: HTTPRequest, limits: Limits? = nil, providers: [String]? = nil, secretEnvelope: SecretEnvelope? = nil,
        user: User? = nil
    ) {
        self.context = context
        self.http = http
        self.limits = limits
        self.providers = providers
        self.secretEnvelope = secretEnvelope
        self.user = user
    }

    enum CodingKeys: String, CodingKey {
        case context, http, limits, providers
        case secretEnvelope = "secret_envelope"
        case user
    }

    /// The request's `context`.
    public struct Context: Codable, Sendable, Equatable {
        /// The request id (for logs), when the gateway sent one.
        public var requestID: String?
        /// The tenant.
        public var tenantID: String
        /// The extension's registry id.
        public var extensionID: String
        /// The install, when known.
        public var installID: String?
        /// The bundle: `sha256:<hex>` or bare hex.
        public var contentHash: String
        /// The registry version id, when known.
        public var versionID: String?
        /// The install's configuration (string values only).
        public var config: [String: String]?

        /// Creates a context.
        public init(
            requestID: String? = nil, tenantID: String, extensionID: String, installID: String? = nil, contentHash: String,
            versionID: String? = nil, config: [String: String]? = nil
        ) {
            self.requestID = requestID
            self.tenantID = tenantID
            self.extensionID = extensionID
            self.installID = installID
            self.contentHash = contentHash
            self.versionID = versionID
            self.config = config
        }

        enum CodingKeys: String, CodingKey {
            case requestID = "request_id"
            case tenantID = "tenant_id"
            case extensionID = "extension_id"
            case installID = "install_id"
            case contentHash = "content_hash"
            case versionID = "version_id"
            case config
        }
    }

    /// The request's `http`.
    public struct HTTPRequest: Codable, Sendable, Equatable {
        /// The method, such as `GET`.
        public var method: String
        /// The path the handler sees, such as `/agreements/sync`.
        public var path: String
        /// Query parameters.
        public var query: [String: String]?
        /// Request headers.
        public var headers: [String: String]?
        /// Standard base64 of the body; nil when there is none, `""` when it is empty.
        public var bodyB64: String?

        /// Creates a request.
        public init(method: String, path: String, query: [String: String]? = nil, headers: [String: String]? = nil, bodyB64: String? = nil) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.bodyB64 = bodyB64
        }

        enum CodingKeys: String, CodingKey {
            case method, path, query, headers
            case bodyB64 = "body_b64"
        }
    }

    /// The request's `limits`.
    public struct Limits: Codable, Sendable, Equatable {
        /// Wall-clock budget of the call in milliseconds.
        public var timeoutMs: UInt64?
        /// Linear memory cap in MiB.
        public var memoryMb: UInt64?
        /// Fuel budget (about one unit per WebAssembly operator).
        public var fuel: UInt64?

        /// Creates limits.
        public init(timeoutMs: UInt64? = nil, memoryMb: UInt64? = nil, fuel: UInt64? = nil) {
            self.timeoutMs = timeoutMs
            self.memoryMb = memoryMb
            self.fuel = fuel
        }

        enum CodingKeys: String, CodingKey {
            case timeoutMs = "timeout_ms"
            case memoryMb = "memory_mb"
            case fuel
        }
    }

    /// The request's `secret_envelope`.
    public struct SecretEnvelope: Codable, Sendable, Equatable {
        /// The ciphertext: for the inline kind, standard base64 of a JSON `{string: string}` map.
        public var ciphertextB64: String
        /// The secrets' version (a string or a number on the wire).
        public var version: String?
        /// `vault-transit...` for Vault; anything else is the inline kind.
        public var algorithm: String?
        /// When the decrypted secrets stop being valid (RFC 3339).
        public var expiresAt: String?
        /// Vault's key path.
        public var keyPath: String?
        /// Vault's mount.
        public var mount: String?

        /// Creates an envelope.
        public init(
            ciphertextB64: String, version: String? = nil, algorithm: String? = nil, expiresAt: String? = nil, keyPath: String? = nil,
            mount: String? = nil
        ) {
            self.ciphertextB64 = ciphertextB64
            self.version = version
            self.algorithm = algorithm
            self.expiresAt = expiresAt
            self.keyPath = keyPath
            self.mount = mount
        }

        enum CodingKeys: String, CodingKey {
            case ciphertextB64 = "ciphertext_b64"
            case version, algorithm
            case expiresAt = "expires_at"
            case keyPath = "key_path"
            case mount
        }

        /// Decodes the envelope; `version` may be a string or a number.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            ciphertextB64 = try container.decode(String.self, forKey: .ciphertextB64)
            if let text = try? container.decodeIfPresent(String.self, forKey: .version) {
                version = text
            } else if let number = try? container.decodeIfPresent(Int64.self, forKey: .version) {
                version = String(number)
            } else {
                version = nil
            }
            algorithm = try container.decodeIfPresent(String.self, forKey: .algorithm)
            expiresAt = try container.decodeIfPresent(String.self, forKey: .expiresAt)
            keyPath = try container.decodeIfPresent(String.self, forKey: .keyPath)
            mount = try container.decodeIfPresent(String.self, forKey: .mount)
        }
    }

    /// The request's `user`.
    public struct User: Codable, Sendable, Equatable {
        /// The user's id.
        public var userID: String
        /// Their email address.
        public var userEmail: String
        /// Their display name.
        public var userName: String
        /// `internal` or `client`.
        public var userType: String
        /// The client's name (`company_name` is read too); empty when absent.
        public var clientName: String
        /// The client's id.
        public var clientID: String?
        /// Anything else the host passes along.
        public var additionalFields: [String: String]?

        /// Creates a user.
        public init(
            userID: String, userEmail: String, userName: String, userType: String, clientName: String = "", clientID: String? = nil,
            additionalFields: [String: String]? = nil
        ) {
            self.userID = userID
            self.userEmail = userEmail
            self.userName = userName
            self.userType = userType
            self.clientName = clientName
            self.clientID = clientID
            self.additionalFields = additionalFields
        }

        enum CodingKeys: String, CodingKey {
            case userID = "user_id"
            case userEmail = "user_email"
            case userName = "user_name"
            case userType = "user_type"
            case clientName = "client_name"
            case companyName = "company_name"
            case clientID = "client_id"
            case additionalFields = "additional_fields"
        }

        /// Decodes a user; `company_name` is an alias of `client_name`.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            userID = try container.decode(String.self, forKey: .userID)
            userEmail = try container.decode(String.self, forKey: .userEmail)
            userName = try container.decode(String.self, forKey: .userName)
            userType = try container.decode(String.self, forKey: .userType)
            clientName =
                try container.decodeIfPresent(String.self, forKey: .clientName) ?? container.decodeIfPresent(String.self, forKey: .companyName)
                ?? ""
            clientID = try container.decodeIfPresent(String.self, forKey: .clientID)
            additionalFields = try container.decodeIfPresent([String: String].self, forKey: .additionalFields)
        }

        /// Encodes the user with `client_name`.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(userID, forKey: .userID)
            try container.encode(userEmail, forKey: .userEmail)
            try container.encode(userName, forKey: .userName)
            try container.encode(userType, forKey: .userType)
            try container.encode(clientName, forKey: .clientName)
            try container.encodeIfPresent(clientID, forKey: .clientID)
            try container.encodeIfPresent(additionalFields, forKey: .additionalFields)
        }
    }
}

extension ExecuteRequest {
    /// Decodes a request from the JSON body of `POST /v1/execute`.
    public static func decode(json: some DataProtocol) throws -> ExecuteRequest {
        try JSONDecoder().decode(ExecuteRequest.self, from: Data(json))
    }
}

/// The body of the answer to `POST /v1/execute` (always sent with HTTP 200; reference 6.5).
///
/// On success `status`, `headers` and `body_b64` are the handler's and `error` is null; a
/// runner-side failure has the status and `error` of ``ExecuteFailure``. Every key is always
/// written, `null` when it has no value, as Alga's runner does.
public struct ExecuteResponse: Codable, Sendable, Equatable {
    /// The HTTP status for the end user.
    public var status: Int
    /// Response headers.
    public var headers: [String: String]
    /// Standard base64 of the body, or nil.
    public var bodyB64: String?
    /// The runner-side error (`execute_failed: timeout`, ...), or nil.
    public var error: String?

    /// Creates a response.
    public init(status: Int, headers: [String: String] = [:], bodyB64: String? = nil, error: String? = nil) {
        self.status = status
        self.headers = headers
        self.bodyB64 = bodyB64
        self.error = error
    }

    /// A response carrying `body`.
    public init(status: Int, headers: [String: String] = [:], body: [UInt8]?) {
        self.init(status: status, headers: headers, bodyB64: body.map { Data($0).base64EncodedString() }, error: nil)
    }

    /// The answer for a runner-side failure.
    public init(failure: ExecuteFailure) {
        self.init(status: failure.kind.status, headers: [:], bodyB64: nil, error: failure.wireMessage)
    }

    enum CodingKeys: String, CodingKey {
        case status, headers
        case bodyB64 = "body_b64"
        case error
    }

    /// Decodes a response; missing `headers` is an empty map.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decode(Int.self, forKey: .status)
        headers = try container.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
        bodyB64 = try container.decodeIfPresent(String.self, forKey: .bodyB64)
        error = try container.decodeIfPresent(String.self, forKey: .error)
    }

    /// Encodes every key, `null` for absent values.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        try container.encode(headers, forKey: .headers)
        try container.encode(bodyB64, forKey: .bodyB64)
        try container.encode(error, forKey: .error)
    }

    /// The decoded body (nil when there is none or it is not base64).
    public var body: [UInt8]? {
        bodyB64.flatMap { Data(base64Encoded: $0) }.map { Array($0) }
    }

    /// The JSON body of the HTTP answer, with sorted keys.
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data(#"{"status":500,"headers":{},"body_b64":null,"error":"execute_failed: encoding"}"#.utf8)
    }
}
