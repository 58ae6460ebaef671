import COsip

/// Copies of headers from this message into a new one, shared by the response builder (§8.2.6) and
/// the hop-by-hop CANCEL and ACK (§9.1, §17.1.1.3). A header missing here is left out there.
extension SIPMessage {
    func copyVias(into target: UnsafeMutablePointer<osip_message_t>, topOnly: Bool) {
        for via in osipListElements(&raw.pointee.vias, as: osip_via_t.self) {
            var copy: UnsafeMutablePointer<osip_via_t>? = nil
            if osip_via_clone(via, &copy) == OSIP_SUCCESS, let copy {
                osip_list_add(&target.pointee.vias, copy, -1)
            }
            if topOnly { return }
        }
    }

    func copyFrom(into target: UnsafeMutablePointer<osip_message_t>) {
        guard let from = raw.pointee.from else { return }
        var copy: UnsafeMutablePointer<osip_from_t>? = nil
        if osip_from_clone(from, &copy) == OSIP_SUCCESS { target.pointee.from = copy }
    }

    /// Copies `to` (this message's To unless another is given); returns the copy so a tag can be added.
    @discardableResult
    func copyTo(into target: UnsafeMutablePointer<osip_message_t>,
                from source: UnsafeMutablePointer<osip_to_t>? = nil) -> UnsafeMutablePointer<osip_to_t>? {
        guard let to = source ?? raw.pointee.to else { return nil }
        var copy: UnsafeMutablePointer<osip_to_t>? = nil
        guard osip_to_clone(to, &copy) == OSIP_SUCCESS else { return nil }
        target.pointee.to = copy
        return copy
    }

    func copyCallID(into target: UnsafeMutablePointer<osip_message_t>) {
        guard let callID = raw.pointee.call_id else { return }
        var copy: UnsafeMutablePointer<osip_call_id_t>? = nil
        if osip_call_id_clone(callID, &copy) == OSIP_SUCCESS { target.pointee.call_id = copy }
    }
}
