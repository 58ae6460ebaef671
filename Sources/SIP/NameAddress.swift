import COsip

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route, Record-Route.
public struct NameAddress: Sendable, Hashable, CustomStringConvertible {
    public var displayName: String?
    public var uri: SIPURI?
    public var parameters: [SIPParameter]
    private var text: String?

    /// The value as libosip2 writes it (or, read off a message on a hot path, a rendering for logs).
    public var description: String {
        if let text { return text }
        var rendered = displayName.map { $0 + " " } ?? ""
        rendered += "<" + (uri?.description ?? "") + ">"
        for parameter in parameters { rendered += ";" + parameter.name + (parameter.value.map { "=" + $0 } ?? "") }
        return rendered
    }

    /// `Contact: *` (RFC 3261 §10.2.2): remove every binding.
    public var isWildcard: Bool { displayName == "*" && uri == nil }

    /// The `tag` parameter of From and To (RFC 3261 §19.3).
    public var tag: String? { parameters.value(named: "tag").flatMap { $0 } }

    /// Parses a name-addr with libosip2 (the From grammar serves every name-addr header).
    public init?(parsing text: String) {
        _ = osipLibraryReady
        var from: UnsafeMutablePointer<osip_from_t>? = nil
        guard osip_from_init(&from) == OSIP_SUCCESS, let from else { return nil }
        defer { osip_from_free(from) }
        guard osip_from_parse(from, text) == OSIP_SUCCESS else { return nil }
        self.init(from, describe: true)
    }

    /// From, To, Contact, Route and Record-Route all share libosip2's `osip_from_t` layout.
    init(_ from: UnsafeMutablePointer<osip_from_t>, describe: Bool) {
        displayName = string(from.pointee.displayname)
        uri = from.pointee.url.map { SIPURI($0, describe: describe) }
        parameters = osipParameters(&from.pointee.gen_params)
        text = describe ? osipString { osip_from_to_str(from, $0) } : nil
    }
}
