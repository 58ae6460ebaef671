import COsip

/// One Via entry (RFC 3261 §20.42) with the parameters a proxy acts on.
public struct Via: Sendable, Hashable, CustomStringConvertible {
    /// `UDP`, `TCP`, `TLS`, … as written, upper-cased.
    public var transport: String
    public var host: String
    public var port: Int?
    public var parameters: [SIPParameter]
    public var description: String

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
        self.init(via)
        if host.isEmpty { return nil }
    }

    init(_ via: UnsafeMutablePointer<osip_via_t>) {
        transport = (string(via.pointee.protocol) ?? "").uppercased()
        host = string(via.pointee.host) ?? ""
        port = string(via.pointee.port).flatMap { Int($0) }
        parameters = osipParameters(&via.pointee.via_params)
        description = osipString { osip_via_to_str(via, $0) } ?? ""
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
