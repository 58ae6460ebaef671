// libFuzzer entry point for the SIP layer: compiled together with Sources/SIP by tools/fuzz/run.
// Every input goes through the header-selecting parse of relayed responses, parse, every typed accessor, the proxy edits, serialization and a
// re-parse; inputs libosip2 refuses go through the salvage path that answers 400.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let headers = SIPFraming.headerLines(bytes)
    _ = SIPMessage.salvageResponse(status: 400, reason: "Bad Request", headers: headers, toTag: "fuzz")
    // The relayed-response path: only the selected headers framed and parsed.
    if let partial = try? SIPMessage.parse(bytes, selecting: .relayedResponse) {
        _ = partial.vias
        _ = partial.cseq
        _ = partial.toTag
        _ = partial.reasonPhrase
        _ = partial.contentLength
        _ = partial.body
        _ = try? partial.serialized()
    }
    guard let message = try? SIPMessage.parse(bytes) else { return 0 }
    _ = message.method
    _ = message.requestURI
    _ = message.statusCode
    _ = message.vias
    _ = message.from
    _ = message.to
    _ = message.callID
    _ = message.cseq
    _ = message.maxForwards
    _ = message.contacts
    _ = message.routes
    _ = message.recordRoutes
    _ = message.expires
    _ = message.contentType
    _ = message.body
    for name in ["Subject", "Allow", "Accept", "Authorization", "Proxy-Authenticate", "X-Unknown", "k"] {
        _ = message.headerValues(name)
    }
    if message.isRequest {
        _ = try? message.makeResponse(status: 200, reason: "OK", toTag: "t")
        message.stampTopVia(sourceHost: "192.0.2.1", sourcePort: 5060)
        message.decrementMaxForwards()
        try? message.pushVia("SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKfuzz")
        try? message.pushRecordRoute("<sip:192.0.2.2;lr>")
        _ = message.popRoute()
        _ = message.removeHeaders("Subject")
    } else {
        _ = message.popVia()
    }
    if let out = try? message.serialized() {
        _ = try? SIPMessage.parse(out)
    }
    return 0
}
