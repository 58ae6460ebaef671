import Testing
@testable import SIP

@Suite struct SIPMessageEditingTests {
    @Test func proxyEditsSurviveSerialization() throws {
        let message = try SIPMessage.parse(invite)
        try message.pushVia("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKproxy1")
        #expect(message.decrementMaxForwards() == 69)
        try message.pushRecordRoute("<sip:192.0.2.1;lr>")
        let popped = message.popRoute()
        #expect(popped?.uri?.host == "p1.example.com")
        try message.setRequestURI("sip:bob@198.51.100.7:5062")
        try message.addHeader("X-Tandem", "yes")

        let reparsed = try SIPMessage.parse(try message.serialized())
        #expect(reparsed.vias.count == 2)
        #expect(reparsed.topVia?.branch == "z9hG4bKproxy1")
        #expect(reparsed.vias[1].branch == "z9hG4bK776asdhds")
        #expect(reparsed.maxForwards == 69)
        #expect(reparsed.recordRoutes.first?.uri?.host == "192.0.2.1")
        #expect(reparsed.routes.map { $0.uri?.host } == ["p2.example.com"])
        #expect(reparsed.requestURI?.host == "198.51.100.7")
        #expect(reparsed.requestURI?.port == 5062)
        #expect(reparsed.header("X-Tandem") == "yes")
        #expect(reparsed.contentLength == 4)
        #expect(reparsed.body == Array("v=0\r".utf8))
    }

    @Test func popViaReturnsTheTopEntry() throws {
        let message = try SIPMessage.parse(invite)
        try message.pushVia("SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp")
        #expect(message.popVia()?.host == "proxy.example.com")
        #expect(message.vias.count == 1)
        #expect(message.popVia()?.host == "pc33.atlanta.example.com")
        #expect(message.popVia() == nil)
    }

    @Test func missingMaxForwardsIsAddedOnForward() throws {
        let message = try SIPMessage.parse("OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\r\n")
        #expect(message.maxForwards == nil)
        #expect(message.decrementMaxForwards() == 70)
        #expect(try SIPMessage.parse(try message.serialized()).maxForwards == 70)
    }

    @Test func removeHeadersHandlesCompactForms() throws {
        let message = try SIPMessage.parse(
            "OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\ns: one\r\nSubject: two\r\nX-A: 1\r\n\r\n")
        #expect(message.headerValues("Subject").count == 2)
        #expect(message.removeHeaders("subject") == 2)
        #expect(message.header("s") == nil)
        #expect(message.header("X-A") == "1")
    }

    @Test func receivedAndRportStamped() throws {
        let message = try SIPMessage.parse(invite)
        message.stampTopVia(sourceHost: "203.0.113.9", sourcePort: 40123)
        let via = try #require(message.topVia)
        #expect(via.received == "203.0.113.9")
        #expect(via.rport == .some("40123"))
    }

    @Test func receivedOnlyWhenSentByDiffers() throws {
        let message = try SIPMessage.parse("OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bK1\r\n\r\n")
        message.stampTopVia(sourceHost: "10.1.1.1", sourcePort: 5060)
        #expect(message.topVia?.received == nil)
        #expect(message.topVia?.rport == nil)
        message.stampTopVia(sourceHost: "10.9.9.9", sourcePort: 5060)
        #expect(message.topVia?.received == "10.9.9.9")
    }

    @Test func invalidEditsThrow() throws {
        let message = try SIPMessage.parse(invite)
        #expect(throws: SIPMessageError.self) { try message.pushVia("not a via") }
        #expect(throws: SIPMessageError.self) { try message.setRequestURI("::::") }
        #expect(message.vias.count == 1)
    }
}

@Suite struct ResponseBuilderTests {
    @Test func responseCopiesDialogHeadersAndAddsToTag() throws {
        let request = try SIPMessage.parse(invite)
        try request.pushVia("SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp")
        let response = try request.makeResponse(status: 486, reason: "Busy Here", toTag: "t1")
        let parsed = try SIPMessage.parse(try response.serialized())
        #expect(parsed.statusCode == 486)
        #expect(parsed.reasonPhrase == "Busy Here")
        #expect(parsed.vias == request.vias)
        #expect(parsed.from == request.from)
        #expect(parsed.to?.tag == "t1")
        #expect(parsed.to?.uri == request.to?.uri)
        #expect(parsed.callID == request.callID)
        #expect(parsed.cseq == request.cseq)
        #expect(parsed.contentLength == 0)
        #expect(parsed.contacts.isEmpty)
    }

    @Test func trying100HasNoToTag() throws {
        let response = try SIPMessage.parse(invite).makeResponse(status: 100, reason: "Trying", toTag: "t1")
        #expect(response.to?.tag == nil)
    }

    @Test func existingToTagIsKept() throws {
        let request = try SIPMessage.parse(
            "BYE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:x@y>;tag=existing\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n")
        let response = try request.makeResponse(status: 200, reason: "OK", toTag: "new")
        #expect(response.to?.tag == "existing")
    }

    @Test func salvagedResponseNeedsAVia() throws {
        let lines = SIPFraming.headerLines(Array("INVITE sip:x SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKs\r\nCSeq: nonsense\r\ni: abc\r\n\r\n".utf8))
        let response = try #require(SIPMessage.salvageResponse(status: 400, reason: "Bad Request", headers: lines, toTag: "x"))
        #expect(response.topVia?.host == "10.0.0.1")
        #expect(response.callID == "abc")
        #expect(response.cseq == nil)
        #expect(SIPMessage.salvageResponse(status: 400, reason: "Bad", headers: [("CSeq", "1 INVITE")], toTag: nil) == nil)
    }
}

@Suite struct ValueTypeTests {
    @Test func uriParsing() throws {
        let uri = try #require(SIPURI(parsing: "sips:+15551234567;npdi@carrier.example.net:5061;user=phone;lr?subject=hi"))
        #expect(uri.scheme == "sips")
        #expect(uri.host == "carrier.example.net")
        #expect(uri.port == 5061)
        #expect(uri.parameters.value(named: "user") == .some("phone"))
        #expect(uri.isLooseRouter)
        #expect(uri.headers.value(named: "subject") == .some("hi"))
        #expect(SIPURI(parsing: "not a uri") == nil)
    }

    @Test func ipv6URI() throws {
        let uri = try #require(SIPURI(parsing: "sip:alice@[2001:db8::1]:5070"))
        #expect(uri.host == "2001:db8::1")
        #expect(uri.port == 5070)
    }

    @Test func headerNames() {
        #expect(HeaderName.canonical("v") == "via")
        #expect(HeaderName.canonical("Call-ID") == "call-id")
        #expect(HeaderName.compact("Content-Length") == "l")
        #expect(HeaderName.same("f", "From"))
        #expect(!HeaderName.same("t", "From"))
    }

    @Test func framingFindsTheBlankLine() {
        #expect(SIPFraming.headerSectionLength(Array("A\r\nB: c\r\n\r\nbody".utf8)) == 11)
        #expect(SIPFraming.headerSectionLength(Array("A\nB: c\n\nbody".utf8)) == 8)
        #expect(SIPFraming.headerSectionLength(Array("A\r\nB: c\r\n".utf8)) == nil)
    }
}
