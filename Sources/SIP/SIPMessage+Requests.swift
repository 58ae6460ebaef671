import COsip

extension SIPMessage {
    /// Changes a response's status line (a proxy answers a selected 503 with 500, RFC 3261 §16.7 step 6).
    public func setStatus(_ status: Int, reason: String) {
        osip_message_set_status_code(raw, Int32(status))
        tandem_osip_free(raw.pointee.reason_phrase)
        raw.pointee.reason_phrase = tandem_osip_strdup(reason)
        changed()
    }

    /// The CANCEL for this (client) INVITE, RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq
    /// number and Route set, the top Via only, method CANCEL.
    public func makeCancel() throws(SIPMessageError) -> SIPMessage {
        try makeHopRequest(method: "CANCEL", to: raw.pointee.to)
    }

    /// The ACK for a non-2xx final response to this INVITE, RFC 3261 §17.1.1.3: like the CANCEL, but
    /// with the To header of the response (it carries the tag).
    public func makeAck(for response: SIPMessage) throws(SIPMessageError) -> SIPMessage {
        try makeHopRequest(method: "ACK", to: response.raw.pointee.to ?? raw.pointee.to)
    }

    private func makeHopRequest(method: String, to: UnsafeMutablePointer<osip_to_t>?) throws(SIPMessageError) -> SIPMessage {
        let (request, pointer) = try Self.blankRequest(method: method)
        if let uri = raw.pointee.req_uri {
            var copy: UnsafeMutablePointer<osip_uri_t>? = nil
            if osip_uri_clone(uri, &copy) == OSIP_SUCCESS { pointer.pointee.req_uri = copy }
        }
        copyVias(into: pointer, topOnly: true)
        for route in osipListElements(&raw.pointee.routes, as: osip_route_t.self) {
            var copy: UnsafeMutablePointer<osip_route_t>? = nil
            if osip_from_clone(route, &copy) == OSIP_SUCCESS, let copy {
                osip_list_add(&pointer.pointee.routes, copy, -1)
            }
        }
        copyFrom(into: pointer)
        copyTo(into: pointer, from: to)
        copyCallID(into: pointer)
        if let cseq = raw.pointee.cseq {
            var copy: UnsafeMutablePointer<osip_cseq_t>? = nil
            if osip_cseq_init(&copy) == OSIP_SUCCESS, let copy {
                osip_cseq_set_number(copy, tandem_osip_strdup(string(cseq.pointee.number) ?? "1"))
                osip_cseq_set_method(copy, tandem_osip_strdup(method))
                pointer.pointee.cseq = copy
            }
        }
        _ = osip_message_set_header(pointer, "Max-Forwards", "70")
        _ = osip_message_set_content_length(pointer, "0")
        request.changed()
        return request
    }
}

extension SIPMessage {
    /// A new request Tandem sends as a user agent (a NOTIFY of its presence server): the request line
    /// and then each header as given, in order, through libosip2; `body` with its type, its
    /// Content-Length set to match. Throws naming the first value libosip2 refuses.
    public static func request(method: String, uri: String, headers: [(name: String, value: String)],
                               body: String? = nil, contentType: String? = nil) throws(SIPMessageError) -> SIPMessage {
        let (request, pointer) = try blankRequest(method: method)
        try request.setRequestURI(uri)
        for header in headers { try request.addHeader(header.name, header.value) }
        if let body, !body.isEmpty {
            if let contentType, osip_message_set_content_type(pointer, contentType) != OSIP_SUCCESS {
                throw SIPMessageError(.invalidValue, "Invalid Content-Type: \(contentType)")
            }
            let bytes = Array(body.utf8)
            let status = bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { osip_message_set_body(pointer, $0.baseAddress, buffer.count) }
            }
            guard status == OSIP_SUCCESS else { throw SIPMessageError(.invalidValue, "Invalid body") }
            _ = osip_message_set_content_length(pointer, String(bytes.count))
        } else {
            _ = osip_message_set_content_length(pointer, "0")
        }
        request.changed()
        return request
    }
}

extension SIPMessage {
    /// An empty request of `method`, version SIP/2.0, and libosip2's message under it.
    fileprivate static func blankRequest(method: String) throws(SIPMessageError) -> (SIPMessage, UnsafeMutablePointer<osip_message_t>) {
        _ = osipLibraryReady
        var pointer: UnsafeMutablePointer<osip_message_t>? = nil
        guard osip_message_init(&pointer) == OSIP_SUCCESS, let pointer else {
            throw SIPMessageError(.invalidValue, "Out of memory")
        }
        let request = SIPMessage(owning: pointer)
        osip_message_set_method(pointer, tandem_osip_strdup(method))
        osip_message_set_version(pointer, tandem_osip_strdup("SIP/2.0"))
        return (request, pointer)
    }
}
