import Testing
@testable import SIP

@Suite struct NewRequestTests {
    @Test func aNotifyIsBuiltWithItsBody() throws {
        let body = "<?xml version=\"1.0\"?>\n<presence/>\n"
        let request = try SIPMessage.request(method: "NOTIFY", uri: "sip:bob@192.0.2.7:5062", headers: [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn1;rport"), ("Max-Forwards", "70"),
            ("From", "<sip:alice@tandem.test>;tag=t1"), ("To", "<sip:bob@tandem.test>;tag=r1"), ("Call-ID", "c1"),
            ("CSeq", "7 NOTIFY"), ("Event", "presence"), ("Subscription-State", "active;expires=60"),
        ], body: body, contentType: "application/pidf+xml")
        let text = String(decoding: try request.serialized(), as: UTF8.self)
        #expect(text.hasPrefix("NOTIFY sip:bob@192.0.2.7:5062 SIP/2.0\r\n"))
        let parsed = try SIPMessage.parse(text)
        #expect(parsed.contentLength == body.utf8.count)
        #expect(String(decoding: parsed.body, as: UTF8.self) == body)
        #expect(parsed.contentType == "application/pidf+xml")
        #expect(parsed.header("Subscription-State") == "active;expires=60")
        #expect(parsed.cseq?.number == 7)
        #expect(throws: SIPMessageError.self) { try SIPMessage.request(method: "NOTIFY", uri: "not a uri", headers: []) }
        let empty = try SIPMessage.request(method: "NOTIFY", uri: "sip:bob@192.0.2.7", headers: [("Call-ID", "c2")])
        #expect(String(decoding: try empty.serialized(), as: UTF8.self).contains("Content-Length: 0\r\n"))
    }
}

@Suite struct EventHeaderTests {
    @Test func packageAndID() throws {
        #expect(EventHeader(parsing: "presence") == EventHeader(parsing: "Presence "))
        let withID = try #require(EventHeader(parsing: "presence;id=7"))
        #expect(withID.package == "presence")
        #expect(withID.id == "7")
        #expect(EventHeader(parsing: "message-summary")?.id == nil)
        #expect(EventHeader(parsing: "") == nil)
        let message = try SIPMessage.parse("SUBSCRIBE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 SUBSCRIBE\r\no: presence;id=2\r\nContent-Length: 0\r\n\r\n")
        #expect(message.event?.package == "presence")
        #expect(message.event?.id == "2")
    }
}
