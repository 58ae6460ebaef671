import Registry
import SIP
import SIPTransport

/// One received request on its way through the stages — admit, route, forward: what was read from it
/// and about it once (method, stamped Via, transaction key, the trusted party its source is, the
/// registry snapshot it is decided on), handed from stage to stage as one value.
struct RequestContext {
    let message: SIPMessage
    let inbound: InboundMessage
    let settings: Gateway.Settings
    let method: SIPMethod
    /// The top Via, read after received/rport were stamped on it (RFC 3581).
    let via: Via
    /// The server transaction the request belongs to (§17.2.3); an ACK's is its INVITE's.
    let key: ServerKey
    /// The app provider or peer the source address is trusted as, if any.
    let trusted: Caller?
    let snapshot: RegistrySnapshot
    /// How the forwarded bytes are built from the received ones.
    var plan: ForwardPlan

    /// Out of dialog: no To-tag (RFC 3261 §12.1).
    var isInitial: Bool { message.toTag == nil }
}

extension Gateway {
    /// Answers a request statelessly (see `respond(to:_:status:reason:_:_:)`).
    func respond(to context: RequestContext, status: Int, reason: String, _ decorate: (SIPMessage) throws -> Void = { _ in }) {
        respond(to: context.message, context.inbound, status: status, reason: reason, context.settings, decorate)
    }
}
