import COsip

extension SIPMessage {
    /// Builds a response to this request as RFC 3261 §8.2.6 requires: the Via list, From, Call-ID and
    /// CSeq copied, To copied with a tag added (except for 100, §8.2.6.2), Content-Length 0.
    ///
    /// Headers missing from the request are left out, so a 400 can answer a malformed request.
    public func makeResponse(status: Int, reason: String, toTag: String?) throws(SIPMessageError) -> SIPMessage {
        var pointer: UnsafeMutablePointer<osip_message_t>? = nil
        guard osip_message_init(&pointer) == OSIP_SUCCESS, let pointer else {
            throw SIPMessageError(.invalidValue, "Out of memory")
        }
        let response = SIPMessage(owning: pointer)
        osip_message_set_version(pointer, tandem_osip_strdup("SIP/2.0"))
        osip_message_set_status_code(pointer, Int32(status))
        osip_message_set_reason_phrase(pointer, tandem_osip_strdup(reason))

        copyVias(into: pointer, topOnly: false)
        copyFrom(into: pointer)
        if let to = copyTo(into: pointer), status > 100, let toTag,
           tandem_osip_has_param(&to.pointee.gen_params, "tag") == 0 {
            _ = tandem_osip_param_add(&to.pointee.gen_params, "tag", toTag)
        }
        copyCallID(into: pointer)
        if let cseq = raw.pointee.cseq {
            var copy: UnsafeMutablePointer<osip_cseq_t>? = nil
            if osip_cseq_clone(cseq, &copy) == OSIP_SUCCESS { pointer.pointee.cseq = copy }
        }
        _ = osip_message_set_content_length(pointer, "0")
        response.changed()
        return response
    }

    /// Builds a response from loose header values, for a request libosip2 refused as a whole: each
    /// value is parsed on its own and any that fails is left out. `nil` when no Via survives, since
    /// then there is nowhere to send a response (RFC 3261 §18.2.2).
    public static func salvageResponse(
        status: Int, reason: String, headers: [(name: String, value: String)], toTag: String?
    ) -> SIPMessage? {
        _ = osipLibraryReady
        var pointer: UnsafeMutablePointer<osip_message_t>? = nil
        guard osip_message_init(&pointer) == OSIP_SUCCESS, let pointer else { return nil }
        let response = SIPMessage(owning: pointer)
        osip_message_set_version(pointer, tandem_osip_strdup("SIP/2.0"))
        osip_message_set_status_code(pointer, Int32(status))
        osip_message_set_reason_phrase(pointer, tandem_osip_strdup(reason))
        for (name, value) in headers {
            switch HeaderName.canonical(name) {
            case "via":
                _ = osip_message_set_via(pointer, value)
            case "from" where pointer.pointee.from == nil:
                _ = osip_message_set_from(pointer, value)
            case "to" where pointer.pointee.to == nil:
                if osip_message_set_to(pointer, value) == OSIP_SUCCESS, let to = pointer.pointee.to, status > 100,
                   let toTag, tandem_osip_has_param(&to.pointee.gen_params, "tag") == 0 {
                    _ = tandem_osip_param_add(&to.pointee.gen_params, "tag", toTag)
                }
            case "call-id" where pointer.pointee.call_id == nil:
                _ = osip_message_set_call_id(pointer, value)
            case "cseq" where pointer.pointee.cseq == nil:
                _ = osip_message_set_cseq(pointer, value)
            default:
                continue
            }
        }
        guard osip_list_size(&pointer.pointee.vias) > 0 else { return nil }
        _ = osip_message_set_content_length(pointer, "0")
        response.changed()
        return response
    }
}
