import COsip
#if canImport(Glibc)
import Glibc
#endif

/// A SIP request or response, parsed and serialized by libosip2.
///
/// The message owns its `osip_message_t` and frees it in `deinit` (STYLE.md §4). It is confined to
/// the thread that handles it: a worker runs one message to completion.
public final class SIPMessage {
    let raw: UnsafeMutablePointer<osip_message_t>
    /// Only some headers were parsed (`parse(_:selecting:)`): the message cannot be serialized.
    public internal(set) var isPartial = false

    init(owning raw: UnsafeMutablePointer<osip_message_t>) {
        self.raw = raw
    }

    deinit {
        osip_message_free(raw)
    }

    // MARK: Parsing

    /// Parses one complete message.
    ///
    /// Throws when libosip2 rejects the bytes or when fewer body bytes arrived than Content-Length
    /// announces (RFC 3261 §18.3). Extra bytes after the body are ignored, as §18.3 asks for UDP.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SIPMessageError) -> SIPMessage {
        _ = osipLibraryReady
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw SIPMessageError(.unparseable, "Empty message")
        }
        var pointer: UnsafeMutablePointer<osip_message_t>? = nil
        guard osip_message_init(&pointer) == OSIP_SUCCESS, let pointer else {
            throw SIPMessageError(.unparseable, "Out of memory")
        }
        let message = SIPMessage(owning: pointer)
        let status = osip_message_parse(pointer, base.assumingMemoryBound(to: CChar.self), bytes.count)
        guard status == OSIP_SUCCESS else {
            // libosip2 refuses some bodies shorter than announced; name that case precisely.
            let head = SIPFraming.headerSectionLength(bytes) ?? bytes.count
            let declared = SIPFraming.headerLines(Array(bytes[..<head]))
                .first { HeaderName.same($0.name, "Content-Length") }.flatMap { Int($0.value) }
            if let declared, declared > bytes.count - head {
                throw SIPMessageError(.truncatedBody, "Body shorter than Content-Length")
            }
            throw SIPMessageError(.unparseable, "Malformed message")
        }
        if message.raw.pointee.sip_method == nil && message.raw.pointee.status_code == 0 {
            throw SIPMessageError(.unparseable, "Malformed start line")
        }
        if message.raw.pointee.content_length?.pointee.value != nil {
            // libosip2 keeps the value as it came (a sign, letters, 30 digits): everything after
            // this point uses it as a count, so anything but 1*DIGIT is refused here (§20.14).
            guard let declared = message.contentLength else {
                throw SIPMessageError(.invalidHeader("Content-Length"), "Bad Content-Length")
            }
            if declared > 0, message.bodyLength < declared {
                // libosip2 accepts some bodies shorter than announced; RFC 3261 §18.3 rejects them.
                let available = bytes.count - (SIPFraming.headerSectionLength(bytes) ?? bytes.count)
                if declared > available {
                    throw SIPMessageError(.truncatedBody, "Body shorter than Content-Length")
                }
            }
        }
        return message
    }

    public static func parse(_ bytes: [UInt8]) throws(SIPMessageError) -> SIPMessage {
        var result: Result<SIPMessage, SIPMessageError> = .failure(SIPMessageError(.unparseable, "Empty message"))
        bytes.withUnsafeBytes { buffer in
            do { result = .success(try parse(buffer)) } catch let error as SIPMessageError {
                result = .failure(error)
            } catch {
                result = .failure(SIPMessageError(.unparseable, "Malformed message"))
            }
        }
        return try result.get()
    }

    public static func parse(_ text: String) throws(SIPMessageError) -> SIPMessage {
        try parse(Array(text.utf8))
    }

    // MARK: Start line

    public var isRequest: Bool { raw.pointee.sip_method != nil }
    public var isResponse: Bool { !isRequest }

    /// The request method, upper-case as sent (methods are case-sensitive, RFC 3261 §7.1).
    public var method: String? { string(raw.pointee.sip_method) }

    public var requestURI: SIPURI? { raw.pointee.req_uri.map { SIPURI($0, describe: false) } }

    /// The Request-URI exactly as libosip2 serializes it.
    public var requestURIText: String? {
        guard let uri = raw.pointee.req_uri else { return nil }
        return osipString { osip_uri_to_str(uri, $0) }
    }

    public var statusCode: Int { Int(raw.pointee.status_code) }

    // MARK: Cheap accessors for the forwarding path (no value types, no serialization)

    /// The top Via exactly as libosip2 serializes it (after `stampTopVia`, with received/rport).
    public var topViaText: String? {
        guard let first = osip_list_get(&raw.pointee.vias, 0) else { return nil }
        return osipString { osip_via_to_str(first.assumingMemoryBound(to: osip_via_t.self), $0) }
    }

    /// The `branch` of the top Via.
    public var topViaBranch: String? {
        guard let first = osip_list_get(&raw.pointee.vias, 0) else { return nil }
        let via = first.assumingMemoryBound(to: osip_via_t.self)
        return string(tandem_osip_param_value(&via.pointee.via_params, "branch"))
    }

    /// `received` and `rport` values of the top Via (after `stampTopVia`).
    public var topViaReceived: String? {
        guard let first = osip_list_get(&raw.pointee.vias, 0) else { return nil }
        return string(tandem_osip_param_value(&first.assumingMemoryBound(to: osip_via_t.self).pointee.via_params, "received"))
    }

    public var topViaRport: String? {
        guard let first = osip_list_get(&raw.pointee.vias, 0) else { return nil }
        return string(tandem_osip_param_value(&first.assumingMemoryBound(to: osip_via_t.self).pointee.via_params, "rport"))
    }

    public var fromTag: String? {
        guard let from = raw.pointee.from else { return nil }
        return string(tandem_osip_param_value(&from.pointee.gen_params, "tag"))
    }

    public var toTag: String? {
        guard let to = raw.pointee.to else { return nil }
        return string(tandem_osip_param_value(&to.pointee.gen_params, "tag"))
    }

    public var routeCount: Int { Int(osip_list_size(&raw.pointee.routes)) }
    public var viaCount: Int { Int(osip_list_size(&raw.pointee.vias)) }

    /// The URI of the first Route, if any.
    public var firstRouteURI: SIPURI? {
        guard let first = osip_list_get(&raw.pointee.routes, 0),
              let url = first.assumingMemoryBound(to: osip_route_t.self).pointee.url else { return nil }
        return SIPURI(url, describe: false)
    }

    public var reasonPhrase: String? { string(raw.pointee.reason_phrase) }

    // MARK: Headers with meaning

    /// Via entries, topmost first; a header carrying several comma-separated values yields several.
    public var vias: [Via] {
        osipListElements(&raw.pointee.vias, as: osip_via_t.self).map { Via($0, describe: false) }
    }

    public var topVia: Via? {
        guard let first = osip_list_get(&raw.pointee.vias, 0) else { return nil }
        return Via(first.assumingMemoryBound(to: osip_via_t.self), describe: false)
    }

    public var from: NameAddress? { raw.pointee.from.map { NameAddress($0, describe: false) } }
    public var to: NameAddress? { raw.pointee.to.map { NameAddress($0, describe: false) } }

    /// Call-ID as `number@host` (the two parts libosip2 keeps), built without its serializer.
    public var callID: String? {
        guard let callID = raw.pointee.call_id, let number = string(callID.pointee.number) else { return nil }
        guard let host = string(callID.pointee.host) else { return number }
        return number + "@" + host
    }

    public var cseq: CSeq? {
        guard let cseq = raw.pointee.cseq,
              let number = string(cseq.pointee.number).flatMap({ UInt32($0) }),
              let method = string(cseq.pointee.method) else { return nil }
        return CSeq(number: number, method: method)
    }

    /// Max-Forwards; `nil` when absent or not a number.
    public var maxForwards: Int? {
        guard let header = maxForwardsHeader, let value = header.pointee.hvalue else { return nil }
        return Self.decimal(value)
    }

    /// libosip2 keeps Max-Forwards as a generic header under its lower-case name.
    var maxForwardsHeader: UnsafeMutablePointer<osip_header_t>? {
        var header: UnsafeMutablePointer<osip_header_t>? = nil
        guard tandem_osip_header_get_byname(raw, "max-forwards", 0, &header) >= 0 else { return nil }
        return header
    }

    /// A non-negative decimal from a C string, white space around it allowed; no String on the way.
    static func decimal(_ text: UnsafePointer<CChar>) -> Int? {
        var pointer = text
        while pointer.pointee == 0x20 || pointer.pointee == 0x09 { pointer += 1 }
        var value = 0
        var digits = 0
        while pointer.pointee >= 0x30 && pointer.pointee <= 0x39 {
            value = value &* 10 &+ Int(pointer.pointee - 0x30)
            digits += 1
            if digits > 9 { return nil }
            pointer += 1
        }
        while pointer.pointee == 0x20 || pointer.pointee == 0x09 { pointer += 1 }
        return digits > 0 && pointer.pointee == 0 ? value : nil
    }

    public var contacts: [NameAddress] {
        osipListElements(&raw.pointee.contacts, as: osip_contact_t.self).map { NameAddress($0, describe: false) }
    }

    public var routes: [NameAddress] {
        osipListElements(&raw.pointee.routes, as: osip_route_t.self).map { NameAddress($0, describe: false) }
    }

    public var recordRoutes: [NameAddress] {
        osipListElements(&raw.pointee.record_routes, as: osip_record_route_t.self).map { NameAddress($0, describe: false) }
    }

    public var expires: Int? {
        headerValues("Expires").first.flatMap { Int($0.trimmingSpaces) }
    }

    public var contentType: String? {
        guard let type = raw.pointee.content_type else { return nil }
        return osipString { osip_content_type_to_str(type, $0) }
    }

    /// The Content-Length, only when it is `1*DIGIT` (a parsed message's always is); read from
    /// libosip2's bytes, no String made on the way (parse and forwarding both ask).
    public var contentLength: Int? {
        guard let value = raw.pointee.content_length?.pointee.value else { return nil }
        let count = strlen(value)
        return value.withMemoryRebound(to: UInt8.self, capacity: count) {
            SIPFraming.contentLength(bytes: UnsafeBufferPointer(start: $0, count: count))
        }
    }

    /// Total body bytes as libosip2 holds them.
    var bodyLength: Int {
        osipListElements(&raw.pointee.bodies, as: osip_body_t.self).reduce(0) { $0 + $1.pointee.length }
    }

    /// The body bytes (every attachment, as libosip2 holds them).
    public var body: [UInt8] {
        var result: [UInt8] = []
        for body in osipListElements(&raw.pointee.bodies, as: osip_body_t.self) {
            if let data = body.pointee.body {
                let bytes = UnsafeRawBufferPointer(start: data, count: body.pointee.length)
                result.append(contentsOf: bytes)
            }
        }
        return result
    }

    // MARK: Any header by name

    /// Every value of a header, in order, whichever form (long or compact) it was sent in.
    ///
    /// Values come from libosip2's own serialization of the header, so formatting may differ from the
    /// received bytes (LIBOSIP2.md pitfall 6).
    public func headerValues(_ name: String) -> [String] {
        let canonical = HeaderName.canonical(name)
        let m = raw
        switch canonical {
        case "via": return strings(&m.pointee.vias, osip_via_t.self) { osip_via_to_str($0, $1) }
        case "from": return single(m.pointee.from) { osip_from_to_str($0, $1) }
        case "to": return single(m.pointee.to) { osip_to_to_str($0, $1) }
        case "call-id": return single(m.pointee.call_id) { osip_call_id_to_str($0, $1) }
        case "cseq": return single(m.pointee.cseq) { osip_cseq_to_str($0, $1) }
        case "content-type": return single(m.pointee.content_type) { osip_content_type_to_str($0, $1) }
        case "content-length": return single(m.pointee.content_length) { osip_content_length_to_str($0, $1) }
        case "mime-version": return single(m.pointee.mime_version) { osip_content_length_to_str($0, $1) }
        case "contact": return strings(&m.pointee.contacts, osip_contact_t.self) { osip_contact_to_str($0, $1) }
        case "route": return strings(&m.pointee.routes, osip_route_t.self) { osip_route_to_str($0, $1) }
        case "record-route":
            return strings(&m.pointee.record_routes, osip_record_route_t.self) { osip_record_route_to_str($0, $1) }
        case "accept": return strings(&m.pointee.accepts, osip_accept_t.self) { osip_accept_to_str($0, $1) }
        case "accept-encoding":
            return strings(&m.pointee.accept_encodings, osip_accept_encoding_t.self) { osip_accept_encoding_to_str($0, $1) }
        case "accept-language":
            return strings(&m.pointee.accept_languages, osip_accept_encoding_t.self) { osip_accept_encoding_to_str($0, $1) }
        case "alert-info": return strings(&m.pointee.alert_infos, osip_call_info_t.self) { osip_call_info_to_str($0, $1) }
        case "call-info": return strings(&m.pointee.call_infos, osip_call_info_t.self) { osip_call_info_to_str($0, $1) }
        case "error-info": return strings(&m.pointee.error_infos, osip_call_info_t.self) { osip_call_info_to_str($0, $1) }
        case "allow": return strings(&m.pointee.allows, osip_content_length_t.self) { osip_content_length_to_str($0, $1) }
        case "content-encoding":
            return strings(&m.pointee.content_encodings, osip_content_length_t.self) { osip_content_length_to_str($0, $1) }
        case "authorization":
            return strings(&m.pointee.authorizations, osip_authorization_t.self) { osip_authorization_to_str($0, $1) }
        case "proxy-authorization":
            return strings(&m.pointee.proxy_authorizations, osip_authorization_t.self) { osip_authorization_to_str($0, $1) }
        case "www-authenticate":
            return strings(&m.pointee.www_authenticates, osip_www_authenticate_t.self) { osip_www_authenticate_to_str($0, $1) }
        case "proxy-authenticate":
            return strings(&m.pointee.proxy_authenticates, osip_www_authenticate_t.self) { osip_www_authenticate_to_str($0, $1) }
        case "authentication-info":
            return strings(&m.pointee.authentication_infos, osip_authentication_info_t.self) { osip_authentication_info_to_str($0, $1) }
        case "proxy-authentication-info":
            return strings(&m.pointee.proxy_authentication_infos, osip_authentication_info_t.self) {
                osip_authentication_info_to_str($0, $1)
            }
        default:
            let compact = HeaderName.compact(canonical)
            return osipListElements(&m.pointee.headers, as: osip_header_t.self).compactMap { header in
                guard let name = string(header.pointee.hname) else { return nil }
                guard name == canonical || name == compact || name.caseInsensitiveEquals(canonical) else { return nil }
                return string(header.pointee.hvalue) ?? ""
            }
        }
    }

    /// The first value of a header, if present.
    public func header(_ name: String) -> String? { headerValues(name).first }

    public func hasHeader(_ name: String) -> Bool {
        switch HeaderName.canonical(name) {
        case "from": return raw.pointee.from != nil
        case "to": return raw.pointee.to != nil
        case "call-id": return raw.pointee.call_id != nil
        case "cseq": return raw.pointee.cseq != nil
        case "via": return osip_list_size(&raw.pointee.vias) > 0
        default: return !headerValues(name).isEmpty
        }
    }

    public var hasFrom: Bool { raw.pointee.from != nil }
    public var hasTo: Bool { raw.pointee.to != nil }
    public var hasCallID: Bool { raw.pointee.call_id != nil }
    public var hasCSeq: Bool { raw.pointee.cseq != nil }

    /// A 64-bit FNV-1a fingerprint of the values that decide where a request goes (RFC 3261 §16.6
    /// step 8): Request-URI parts, From and To tags, Call-ID, CSeq number and `extra`. Read straight
    /// from libosip2's fields, with no Swift strings on the way.
    public func routingFingerprint(seed: UInt64, extra: String = "") -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        func mix(_ pointer: UnsafePointer<CChar>?) {
            if var p = pointer {
                while p.pointee != 0 {
                    hash ^= UInt64(UInt8(bitPattern: p.pointee))
                    hash = hash &* 0x100_0000_01b3
                    p += 1
                }
            }
            hash ^= 0xff
            hash = hash &* 0x100_0000_01b3
        }
        func mix(_ pointer: UnsafeMutablePointer<CChar>?) { mix(UnsafePointer(pointer)) }
        if let uri = raw.pointee.req_uri {
            mix(uri.pointee.scheme); mix(uri.pointee.username); mix(uri.pointee.host); mix(uri.pointee.port)
        }
        if let from = raw.pointee.from { mix(tandem_osip_param_value(&from.pointee.gen_params, "tag")) }
        if let to = raw.pointee.to { mix(tandem_osip_param_value(&to.pointee.gen_params, "tag")) }
        if let callID = raw.pointee.call_id { mix(callID.pointee.number); mix(callID.pointee.host) }
        if let cseq = raw.pointee.cseq { mix(cseq.pointee.number) }
        extra.withCString { mix($0) }
        return hash
    }

    private func strings<T>(
        _ list: UnsafeMutablePointer<osip_list_t>, _: T.Type,
        _ toString: (UnsafeMutablePointer<T>, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32
    ) -> [String] {
        osipListElements(list, as: T.self).compactMap { element in osipString { toString(element, $0) } }
    }

    private func single<T>(
        _ element: UnsafeMutablePointer<T>?,
        _ toString: (UnsafeMutablePointer<T>, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32
    ) -> [String] {
        guard let element, let value = osipString({ toString(element, $0) }) else { return [] }
        return [value]
    }

    // MARK: Serialization

    /// The message as bytes, with a Content-Length matching the body.
    public func serialized() throws(SIPMessageError) -> [UInt8] {
        guard !isPartial else { throw SIPMessageError(.invalidValue, "Only some headers were parsed") }
        var out: UnsafeMutablePointer<CChar>? = nil
        var length = 0
        guard osip_message_to_str(raw, &out, &length) == OSIP_SUCCESS, let out else {
            throw SIPMessageError(.invalidValue, "Message cannot be serialized")
        }
        defer { tandem_osip_free(out) }
        return Array(UnsafeRawBufferPointer(start: out, count: length))
    }

    /// Marks the cached bytes stale after an edit of the structure (LIBOSIP2.md pitfall 7).
    func changed() {
        tandem_osip_message_force_update(raw)
    }
}

@available(*, unavailable, message: "A SIPMessage belongs to the thread handling it")
extension SIPMessage: Sendable {}

extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
