import COsip

/// A SIP or SIPS URI (RFC 3261 §19.1), read from libosip2's parse.
public struct SIPURI: Sendable, Hashable, CustomStringConvertible {
    public var scheme: String
    public var user: String?
    public var password: String?
    public var host: String
    public var port: Int?
    public var parameters: [SIPParameter]
    public var headers: [SIPParameter]
    /// libosip2's serialization, when it was asked for (parsing a string, or `describe: true`).
    private var text: String?

    /// The URI as libosip2 writes it; for a URI read off a message on a hot path, a rendering from
    /// its fields good for logs.
    public var description: String {
        if let text { return text }
        var rendered = scheme + ":"
        if let user { rendered += user + "@" }
        rendered += host.utf8.contains(58) ? "[\(host)]" : host
        if let port { rendered += ":\(port)" }
        for parameter in parameters { rendered += ";" + parameter.name + (parameter.value.map { "=" + $0 } ?? "") }
        return rendered
    }

    /// Parses a URI with libosip2; `nil` when it is not a valid URI.
    public init?(parsing text: String) {
        _ = osipLibraryReady
        var uri: UnsafeMutablePointer<osip_uri_t>? = nil
        guard osip_uri_init(&uri) == OSIP_SUCCESS, let uri else { return nil }
        defer { osip_uri_free(uri) }
        guard osip_uri_parse(uri, text) == OSIP_SUCCESS else { return nil }
        self.init(uri, describe: true)
        if host.isEmpty { return nil }
    }

    init(_ uri: UnsafeMutablePointer<osip_uri_t>, describe: Bool) {
        scheme = string(uri.pointee.scheme) ?? "sip"
        user = string(uri.pointee.username)
        password = string(uri.pointee.password)
        host = string(uri.pointee.host) ?? ""
        port = string(uri.pointee.port).flatMap { Int($0) }.flatMap { (0...65_535).contains($0) ? $0 : nil }
        parameters = osipParameters(&uri.pointee.url_params)
        headers = osipParameters(&uri.pointee.url_headers)
        text = describe ? osipString { osip_uri_to_str(uri, $0) } : nil
    }

    /// The `transport` URI parameter, lower-cased, if present.
    public var transport: String? {
        parameters.value(named: "transport").flatMap { $0 }?.asciiLowercased
    }

    /// `;lr`: the next hop is a loose router (RFC 3261 §16.12).
    public var isLooseRouter: Bool { parameters.contains(named: "lr") }

    /// RFC 3261 §19.1.4 equivalence: scheme and host compared without case, user and password with
    /// it, a port only equal to the same port (an omitted 5060 is not 5060), and `user`, `ttl`,
    /// `method`, `maddr` and `transport` equal when either URI has them; other parameters and
    /// headers are not compared.
    public func isEquivalent(to other: SIPURI) -> Bool {
        guard scheme.caseInsensitiveEquals(other.scheme), host.caseInsensitiveEquals(other.host),
              user == other.user, password == other.password, port == other.port else { return false }
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            let mine = parameters.value(named: name), theirs = other.parameters.value(named: name)
            if mine == nil && theirs == nil { continue }
            guard let mine, let theirs, (mine ?? "").caseInsensitiveEquals(theirs ?? "") else { return false }
        }
        return true
    }
}

extension SIPURI {
    /// Parses a URI Tandem can send requests to: `sip` or `sips`, and a `transport` parameter, if
    /// any, that Tandem speaks (udp or tcp). The error says which of those failed, for config files
    /// and admin calls alike.
    public static func nextHop(_ text: String) -> Result<SIPURI, NextHopError> {
        guard let uri = SIPURI(parsing: text), ["sip", "sips"].contains(uri.scheme.lowercased()) else {
            return .failure(NextHopError(reason: "'\(text)' is not a SIP URI"))
        }
        if let transport = uri.transport, !["udp", "tcp"].contains(transport) {
            return .failure(NextHopError(reason: "'\(text)' asks for transport \(transport); Tandem speaks udp and tcp"))
        }
        return .success(uri)
    }
}

/// Why a text is not a usable next-hop URI.
public struct NextHopError: Error, Sendable {
    public var reason: String
}
