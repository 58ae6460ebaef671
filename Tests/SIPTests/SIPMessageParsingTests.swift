import Testing
@testable import SIP

let invite = """
INVITE sip:bob@biloxi.example.com;transport=tcp SIP/2.0\r
Via: SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds;rport\r
Max-Forwards: 70\r
To: Bob <sip:bob@biloxi.example.com>\r
From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=1928301774\r
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r
CSeq: 314159 INVITE\r
Contact: <sip:alice@pc33.atlanta.example.com>;expires=60\r
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r
Expires: 120\r
X-Account: 42\r
Content-Type: application/sdp\r
Content-Length: 4\r
\r
v=0\r
"""

@Suite struct SIPMessageParsingTests {
    @Test func requestLineAndURI() throws {
        let message = try SIPMessage.parse(invite)
        #expect(message.isRequest)
        #expect(message.method == "INVITE")
        let uri = try #require(message.requestURI)
        #expect(uri.scheme == "sip")
        #expect(uri.user == "bob")
        #expect(uri.host == "biloxi.example.com")
        #expect(uri.port == nil)
        #expect(uri.transport == "tcp")
    }

    @Test func typedHeaders() throws {
        let message = try SIPMessage.parse(invite)
        let via = try #require(message.topVia)
        #expect(via.transport == "UDP")
        #expect(via.host == "pc33.atlanta.example.com")
        #expect(via.port == 5066)
        #expect(via.branch == "z9hG4bK776asdhds")
        #expect((via.rport ?? "absent") == nil)
        #expect(via.hasRFC3261Branch)
        #expect(message.from?.displayName == "\"Alice Liddell\"")
        #expect(message.from?.tag == "1928301774")
        #expect(message.from?.uri?.user == "alice")
        #expect(message.to?.tag == nil)
        #expect(message.callID == "a84b4c76e66710@pc33.atlanta.example.com")
        #expect(message.cseq == CSeq(number: 314159, method: "INVITE"))
        #expect(message.maxForwards == 70)
        #expect(message.expires == 120)
        #expect(message.contacts.first?.uri?.host == "pc33.atlanta.example.com")
        #expect(message.contacts.first?.parameters.value(named: "expires") == .some("60"))
        #expect(message.routes.count == 2)
        #expect(message.routes.first?.uri?.isLooseRouter == true)
        #expect(message.contentType == "application/sdp")
        #expect(message.contentLength == 4)
        #expect(message.body == Array("v=0\r".utf8))
        #expect(message.header("x-account") == "42")
    }

    @Test func responseStatusLine() throws {
        let message = try SIPMessage.parse(
            "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
        #expect(message.isResponse)
        #expect(message.statusCode == 486)
        #expect(message.reasonPhrase == "Busy Here")
        #expect(message.to?.tag == "2")
    }

    @Test func compactFormsReadAsLongForms() throws {
        let message = try SIPMessage.parse("""
        OPTIONS sip:gw.example.com SIP/2.0\r
        v: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKc1\r
        f: <sip:alice@example.com>;tag=a\r
        t: <sip:gw.example.com>\r
        i: compact-1\r
        CSeq: 7 OPTIONS\r
        m: <sip:alice@10.0.0.1:5070>\r
        s: lunch\r
        k: path\r
        l: 0\r
        \r

        """)
        #expect(message.topVia?.branch == "z9hG4bKc1")
        #expect(message.from?.tag == "a")
        #expect(message.callID == "compact-1")
        #expect(message.contacts.count == 1)
        #expect(message.header("Subject") == "lunch")
        #expect(message.header("s") == "lunch")
        #expect(message.header("Supported") == "path")
        #expect(message.contentLength == 0)
    }

    @Test func foldedHeaderIsUnfolded() throws {
        let message = try SIPMessage.parse("""
        OPTIONS sip:gw.example.com SIP/2.0\r
        Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKf\r
        From: <sip:a@example.com>;tag=a\r
        To: <sip:gw.example.com>\r
        Call-ID: folded\r
        CSeq: 1 OPTIONS\r
        Subject: I know you're there,\r
         pick up the phone\r
        Content-Length: 0\r
        \r

        """)
        let subject = try #require(message.header("Subject"))
        #expect(subject.hasPrefix("I know you're there,"))
        #expect(subject.hasSuffix("pick up the phone"))
    }

    @Test func severalValuesInOneHeader() throws {
        let message = try SIPMessage.parse("""
        OPTIONS sip:gw.example.com SIP/2.0\r
        Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/TCP b.example.com:5080;branch=z9hG4bKb\r
        Via: SIP/2.0/UDP c.example.com;branch=z9hG4bKc\r
        From: <sip:a@example.com>;tag=a\r
        To: <sip:gw.example.com>\r
        Call-ID: multi\r
        CSeq: 1 OPTIONS\r
        Contact: <sip:a@1.2.3.4>;q=0.5, <sip:a@5.6.7.8>;q=1.0\r
        Content-Length: 0\r
        \r

        """)
        #expect(message.vias.map(\.host) == ["a.example.com", "b.example.com", "c.example.com"])
        #expect(message.vias[1].transport == "TCP")
        #expect(message.vias[1].port == 5080)
        #expect(message.contacts.count == 2)
        #expect(message.contacts[1].parameters.value(named: "q") == .some("1.0"))
    }

    @Test func roundTripKeepsMeaning() throws {
        let first = try SIPMessage.parse(invite)
        let second = try SIPMessage.parse(try first.serialized())
        #expect(second.method == first.method)
        #expect(second.requestURI == first.requestURI)
        #expect(second.vias == first.vias)
        #expect(second.from == first.from)
        #expect(second.to == first.to)
        #expect(second.callID == first.callID)
        #expect(second.cseq == first.cseq)
        #expect(second.routes == first.routes)
        #expect(second.body == first.body)
        #expect(second.header("X-Account") == "42")
        let third = try SIPMessage.parse(try second.serialized())
        #expect(try third.serialized() == second.serialized())
    }

    @Test func wildcardContact() throws {
        let message = try SIPMessage.parse("""
        REGISTER sip:example.com SIP/2.0\r
        Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKr\r
        From: <sip:a@example.com>;tag=a\r
        To: <sip:a@example.com>\r
        Call-ID: reg\r
        CSeq: 2 REGISTER\r
        Contact: *\r
        Expires: 0\r
        Content-Length: 0\r
        \r

        """)
        #expect(message.contacts.first?.isWildcard == true)
        #expect(message.expires == 0)
    }
}

@Suite struct SIPMessageBadInputTests {
    @Test(arguments: [
        "",
        "hello world\r\n\r\n",
        "INVITE sip:x SIP/2.0\r\nVia: garbage\r\nCSeq: notanumber\r\n\r\n",
        "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\nFrom: <sip:a@b\r\n\r\n",
        "\u{0}\u{1}\u{2}\u{3}",
        "SIP/2.0 abc Bad\r\n\r\n",
    ])
    func unparseableBytesThrow(_ text: String) {
        #expect(throws: SIPMessageError.self) { _ = try SIPMessage.parse(text) }
    }

    @Test func bodyShorterThanContentLengthIsRejected() {
        let text = "MESSAGE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nContent-Length: 10\r\n\r\nabc"
        #expect(throws: SIPMessageError(.truncatedBody, "Body shorter than Content-Length")) {
            _ = try SIPMessage.parse(text)
        }
    }

    @Test func extraBytesAfterBodyAreIgnored() throws {
        let text = "MESSAGE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabcdef"
        let message = try SIPMessage.parse(text)
        #expect(message.body == Array("abc".utf8))
    }

    @Test func missingMandatoryHeadersStillParse() throws {
        // Deciding what is missing is the gateway's job (it answers 400 naming the header).
        let message = try SIPMessage.parse("INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\r\n")
        #expect(message.from == nil)
        #expect(message.callID == nil)
        #expect(message.cseq == nil)
    }
}
