import COsip
#if canImport(Glibc)
import Glibc
#endif

/// One `Authorization` or `Proxy-Authorization` value (RFC 3261 §22.4, RFC 7616 §3.4), as libosip2
/// parsed it, with quoted-string values unquoted.
public struct DigestCredentials: Sendable, Equatable {
    /// The scheme, `Digest` for every value Tandem verifies.
    public var scheme: String
    public var username: String?
    public var realm: String?
    public var nonce: String?
    public var uri: String?
    public var response: String?
    /// `MD5` when absent (RFC 7616 §3.4).
    public var algorithm: String?
    public var cnonce: String?
    public var opaque: String?
    public var qop: String?
    /// The 8 hex digits of `nc`.
    public var nonceCount: String?

    public init(scheme: String = "Digest", username: String? = nil, realm: String? = nil, nonce: String? = nil,
                uri: String? = nil, response: String? = nil, algorithm: String? = nil, cnonce: String? = nil,
                opaque: String? = nil, qop: String? = nil, nonceCount: String? = nil) {
        self.scheme = scheme
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response
        self.algorithm = algorithm
        self.cnonce = cnonce
        self.opaque = opaque
        self.qop = qop
        self.nonceCount = nonceCount
    }

    /// Parses a header value with libosip2; `nil` when libosip2 refuses it.
    public init?(parsing text: String) {
        _ = osipLibraryReady
        var header: UnsafeMutablePointer<osip_authorization_t>? = nil
        guard osip_authorization_init(&header) == OSIP_SUCCESS, let header else { return nil }
        defer { osip_authorization_free(header) }
        guard osip_authorization_parse(header, text) == OSIP_SUCCESS else { return nil }
        self.init(header)
    }

    init(_ header: UnsafeMutablePointer<osip_authorization_t>) {
        let h = header.pointee
        scheme = string(h.auth_type) ?? ""
        username = Self.unquoted(h.username)
        realm = Self.unquoted(h.realm)
        nonce = Self.unquoted(h.nonce)
        uri = Self.unquoted(h.uri)
        response = Self.unquoted(h.response)
        algorithm = Self.unquoted(h.algorithm)
        cnonce = Self.unquoted(h.cnonce)
        opaque = Self.unquoted(h.opaque)
        qop = Self.unquoted(h.message_qop)
        nonceCount = Self.unquoted(h.nonce_count)
    }

    /// libosip2 keeps the quotes of quoted-string values; they are removed here, with quoted-pair
    /// escapes (RFC 3261 §25.1) resolved.
    static func unquoted(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
        guard let pointer else { return nil }
        // Byte by byte on the C string: Foundation's string searching cost more than the digest itself.
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer))
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        guard bytes.count >= 2, bytes.first == quote, bytes.last == quote else { return String(decoding: bytes, as: UTF8.self) }
        let inner = bytes[1..<(bytes.count - 1)]
        guard inner.contains(backslash) else { return String(decoding: inner, as: UTF8.self) }
        var result: [UInt8] = []
        result.reserveCapacity(inner.count)
        var escaped = false
        for byte in inner {
            if !escaped && byte == backslash {
                escaped = true
            } else {
                result.append(byte)
                escaped = false
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}

extension SIPMessage {
    /// Every `Authorization` value (`proxy: false`, for a registrar) or `Proxy-Authorization` value.
    public func credentials(proxy: Bool) -> [DigestCredentials] {
        let elements = proxy
            ? osipListElements(&raw.pointee.proxy_authorizations, as: osip_authorization_t.self)
            : osipListElements(&raw.pointee.authorizations, as: osip_authorization_t.self)
        return elements.map { DigestCredentials($0) }
    }
}
