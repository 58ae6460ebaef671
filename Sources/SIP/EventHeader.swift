import COsip

/// An Event header (RFC 6665 §8.2.1): the event package and its `id` parameter.
public struct EventHeader: Sendable, Equatable {
    /// Lower-cased: packages are compared case-insensitively (RFC 6665 §8.2.1, token).
    public var package: String
    public var id: String?

    /// `presence;id=7` → package `presence`, id `7`; nil when libosip2 refuses the value. The
    /// grammar (a token and generic parameters) is Content-Disposition's, so its parser reads it.
    public init?(parsing value: String) {
        _ = osipLibraryReady
        var header: UnsafeMutablePointer<osip_content_disposition_t>? = nil
        guard osip_call_info_init(&header) == OSIP_SUCCESS, let header else { return nil }
        defer { osip_call_info_free(header) }
        guard osip_content_disposition_parse(header, value) == OSIP_SUCCESS, let element = header.pointee.element else { return nil }
        let package = String(cString: element).lowercased()
        guard !package.isEmpty else { return nil }
        self.package = package
        id = tandem_osip_param_value(&header.pointee.gen_params, "id").map { String(cString: $0) }
    }
}

extension SIPMessage {
    /// The Event header (long or compact form `o`), if any.
    public var event: EventHeader? { header("Event").flatMap(EventHeader.init(parsing:)) }
}
