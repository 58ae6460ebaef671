import Testing
@testable import SIP

@Suite struct SIPEditsTests {
    let response = Array("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p.example.com;branch=z9hG4bKp\r\nv: SIP/2.0/UDP a.example.com;branch=z9hG4bKa\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhiEXTRA".utf8)

    @Test func removingTheTopViaKeepsEverythingElse() throws {
        let bytes = try #require(SIPEdits.responseWithoutTopVia(response, contentLength: 2))
        let message = try SIPMessage.parse(bytes)
        #expect(message.vias.map(\.host) == ["a.example.com"])
        #expect(message.body == Array("hi".utf8))
        #expect(!String(decoding: bytes, as: UTF8.self).contains("EXTRA"))
        #expect(message.header("Call-ID") == "x")
    }

    @Test func severalValuesOnOneLineFallBack() {
        let bytes = Array("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKp, SIP/2.0/UDP a;branch=z9hG4bKa\r\nContent-Length: 0\r\n\r\n".utf8)
        #expect(SIPEdits.responseWithoutTopVia(bytes, contentLength: 0) == nil)
    }

    @Test func requestEdits() throws {
        let invite = Array("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKa;rport\r\nRoute: <sip:proxy;lr>\r\nroute: <sip:next;lr>\r\nMax-Forwards: 70\r\nSubject: folded,\r\n  line\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n".utf8)
        let edits = SIPEdits.RequestEdits(
            topVia: "SIP/2.0/UDP a;branch=z9hG4bKa;rport=5070;received=10.0.0.1", removeRoutes: 1, maxForwards: 69,
            insert: ["Via: SIP/2.0/UDP proxy;branch=z9hG4bKnew;rport", "Record-Route: <sip:proxy;lr>"])
        let bytes = try #require(SIPEdits.request(invite, contentLength: 0, edits))
        let message = try SIPMessage.parse(bytes)
        #expect(message.vias.map(\.host) == ["proxy", "a"])
        #expect(message.vias[1].received == "10.0.0.1")
        #expect(message.routes.map { $0.uri?.host } == ["next"])
        #expect(message.recordRoutes.first?.uri?.host == "proxy")
        #expect(message.maxForwards == 69)
        #expect(message.header("Subject")?.hasPrefix("folded") == true)
    }

    @Test func missingMaxForwardsIsAdded() throws {
        let bytes = try #require(SIPEdits.request(
            Array("OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKa\r\n\r\n".utf8), contentLength: nil,
            .init(topVia: nil, removeRoutes: 0, maxForwards: 70, insert: [])))
        #expect(try SIPMessage.parse(bytes).maxForwards == 70)
    }

    @Test func tooFewRoutesOrBareLineFeedsFallBack() {
        let invite = Array("INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nRoute: <sip:a;lr>, <sip:b;lr>\r\n\r\n".utf8)
        #expect(SIPEdits.request(invite, contentLength: 0, .init(topVia: nil, removeRoutes: 1, maxForwards: nil, insert: [])) == nil)
        #expect(SIPEdits.responseWithoutTopVia(Array("SIP/2.0 200 OK\nVia: x\n\n".utf8), contentLength: 0) == nil)
    }
}
