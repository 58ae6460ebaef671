import Foundation
import Testing
@testable import SIP

/// Parsing only the headers a relayed response needs (`SIPMessage.parse(_:selecting:)`).
@Suite struct HeaderSelectionTests {
    static let ok = """
    SIP/2.0 200 OK\r
    v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKTx.1;rport=5060\r
    Via: SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds,\r
     SIP/2.0/TCP 198.51.100.4;branch=z9hG4bKfolded\r
    Record-Route: <sip:192.0.2.1;lr>\r
    To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r
    f: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r
    Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r
    CSeq: 314159 INVITE\r
    Contact: <sip:bob@192.0.2.4>\r
    Server: Test\r
    Content-Type: application/sdp\r
    Content-Length: 4\r
    \r
    v=0\r
    """

    @Test func theSelectedHeadersAreParsedAndTheOthersLeftOut() throws {
        let message = try SIPMessage.parse(Array(Self.ok.utf8), selecting: .relayedResponse)
        #expect(message.isPartial)
        #expect(message.statusCode == 200 && message.reasonPhrase == "OK")
        // Compact and long forms, and a folded line with its continuation.
        #expect(message.vias.map(\.branch) == ["z9hG4bKTx.1", "z9hG4bK776asdhds", "z9hG4bKfolded"])
        #expect(message.cseq?.method == "INVITE")
        #expect(message.toTag == "a6c85cf" && message.fromTag == nil)
        #expect(message.callID == "a84b4c76e66710@pc33.atlanta.example.com")
        #expect(message.contentLength == 4 && message.body == Array("v=0\r".utf8))
        #expect(message.header("Server") == nil && message.contacts.isEmpty && message.header("Record-Route") == nil)
    }

    @Test func aPartialMessageIsNeverSerialized() throws {
        let message = try SIPMessage.parse(Array(Self.ok.utf8), selecting: .relayedResponse)
        #expect(throws: SIPMessageError.self) { try message.serialized() }
        #expect(try SIPMessage.parse(Self.ok).serialized().isEmpty == false)
    }

    @Test func aMalformedHeaderOutsideTheSelectionDoesNotMatter() throws {
        let text = Self.ok.replacingOccurrences(of: "Contact: <sip:bob@192.0.2.4>", with: "Contact: <<<")
        #expect(throws: SIPMessageError.self) { try SIPMessage.parse(text) }
        #expect(try SIPMessage.parse(Array(text.utf8), selecting: .relayedResponse).toTag == "a6c85cf")
    }

    @Test func aMalformedSelectedHeaderOrAShortBodyIsRefused() {
        let badVia = Self.ok.replacingOccurrences(of: "v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKTx.1;rport=5060", with: "v: nonsense")
        #expect(throws: SIPMessageError.self) { try SIPMessage.parse(Array(badVia.utf8), selecting: .relayedResponse) }
        let short = Self.ok.replacingOccurrences(of: "Content-Length: 4", with: "Content-Length: 40")
        #expect(throws: SIPMessageError(.truncatedBody, "Body shorter than Content-Length")) {
            try SIPMessage.parse(Array(short.utf8), selecting: .relayedResponse)
        }
        let unframed = Array("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1\r\n".utf8)
        #expect(throws: SIPMessageError.self) { try SIPMessage.parse(unframed, selecting: .relayedResponse) }
    }

    @Test func bareLineFeedsAreFramedToo() throws {
        let text = Self.ok.replacingOccurrences(of: "\r\n", with: "\n")
        let message = try SIPMessage.parse(Array(text.utf8), selecting: .relayedResponse)
        #expect(message.vias.count == 3 && message.cseq?.number == 314159)
    }
}
