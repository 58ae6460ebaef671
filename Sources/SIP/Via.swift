import COsip

/// One Via entry (RFC 3261 §20.42) with the parameters a proxy acts on.
public struct Via: Sendable, Hashable, CustomStringConvertible {
    /// `UDP`, `TCP`, `TLS`, … as written, upper-cased.
    public var transport: String
    public var host: String
    public var port: Int?
    public var parameters: [SIPParameter]
    private var text: String?

    /// The value as libosip2 writes it (or, read off a message on a hot path, a rendering for logs).
    public var description: String {
        if let text { return text }
        var rendered = "SIP/2.0/\(transport) " + (host.utf8.contains(58) ? "[\(host)]" : host)
        if let port { rendered += ":\(port)" }
        for parameter in parameters { rendered += ";" + parameter.name + (parameter.value.map { "=" + $0 } ?? "") }
        return rendered
    }

    public var branch: String? { parameters.value(named: "branch").flatMap { $0 } }
    public var received: String? { parameters.value(named: "received").flatMap { $0 } }
    /// `.some(nil)` when `rport` is present without a value (the client asks for it, RFC 3581 §3).
    public var rport: String?? { parameters.value(named: "rport") }

    /// Parses a single Via value with libosip2.
    public init?(parsing text: String) {
        _ = osipLibraryReady
        var via: UnsafeMutablePointer<osip_via_t>? = nil
        guard osip_via_init(&via) == OSIP_SUCCESS, let via else { return nil }
        defer { osip_via_free(via) }
        guard osip_via_parse(via, text) == OSIP_SUCCESS else { return nil }
        self.init(via, describe: true)
        if host.isEmpty { return nil }
    }

    init(_ via: UnsafeMutablePointer<osip_via_t>, describe: Bool) {
        transport = (string(via.pointee.protocol) ?? "").uppercased()
        host = string(via.pointee.host) ?? ""
        port = string(via.pointee.port).flatMap { Int($0) }.flatMap { (0...65_535).contains($0) ? $0 : nil }
        parameters = osipParameters(&via.pointee.via_params)
        text = describe ? osipString { osip_via_to_str(via, $0) } : nil
    }

    /// The RFC 3261 magic cookie marks branches that are unique per transaction (§8.1.1.7).
    public var hasRFC3261Branch: Bool { branch?.hasPrefix("z9hG4bK") ?? false }
}

/// The CSeq header: sequence number and method (RFC 3261 §20.16).
public struct CSeq: Sendable, Hashable {
    public var number: UInt32
    public var method: String

    public init(number: UInt32, method: String) {
        self.number = number
        self.method = method
    }
}
