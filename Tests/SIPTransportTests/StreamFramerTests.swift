import Testing
@testable import SIPTransport

@Suite struct StreamFramerTests {
    let options = Array("OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n".utf8)
    let message = Array("MESSAGE sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\nl: 5\r\n\r\nhello".utf8)

    @Test func pipelinedMessagesAreSplit() {
        var framer = StreamFramer(maxMessageSize: 65_535)
        framer.append(options + message + options)
        #expect(framer.next() == .message(options))
        #expect(framer.next() == .message(message))
        #expect(framer.next() == .message(options))
        #expect(framer.next() == nil)
    }

    @Test func byteByByteDeliveryReassembles() {
        var framer = StreamFramer(maxMessageSize: 65_535)
        var frames: [StreamFramer.Frame] = []
        for byte in message + options {
            framer.append([byte])
            while let frame = framer.next() { frames.append(frame) }
        }
        #expect(frames == [.message(message), .message(options)])
        #expect(framer.pendingCount == 0)
    }

    @Test func keepalivePingAndLoneCRLF() {
        var framer = StreamFramer(maxMessageSize: 65_535)
        framer.append(Array("\r\n\r\n".utf8))
        #expect(framer.next() == .ping)
        framer.append(Array("\r\n".utf8))
        #expect(framer.next() == nil)
        framer.append(options)
        #expect(framer.next() == .message(options))
    }

    @Test func missingContentLengthIsMalformed() {
        var framer = StreamFramer(maxMessageSize: 65_535)
        framer.append(Array("OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n".utf8))
        guard case .malformed(_, let reason) = framer.next() else { Issue.record("not malformed"); return }
        #expect(reason.contains("Content-Length"))
        framer.append(options)
        #expect(framer.next() == nil)
    }

    @Test func conflictingContentLengthsAreMalformed() {
        var framer = StreamFramer(maxMessageSize: 65_535)
        framer.append(Array("OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\nl: 4\r\n\r\n".utf8))
        guard case .malformed = framer.next() else { Issue.record("not malformed"); return }
    }

    @Test func announcedSizeOverLimitIsOversized() {
        var framer = StreamFramer(maxMessageSize: 600)
        framer.append(Array("MESSAGE sip:a SIP/2.0\r\nContent-Length: 5000\r\n\r\n".utf8))
        guard case .oversized(let head) = framer.next() else { Issue.record("not oversized"); return }
        #expect(head != nil)
    }

    @Test func endlessHeaderIsOversized() {
        var framer = StreamFramer(maxMessageSize: 600)
        framer.append([UInt8](repeating: 0x41, count: 700))
        #expect(framer.next() == .oversized(head: nil))
    }
}

@Suite struct ListenPointTests {
    @Test func parsing() throws {
        #expect(try ListenPoint(parsing: "udp:127.0.0.1:5060").description == "udp:127.0.0.1:5060")
        #expect(try ListenPoint(parsing: "TCP:[::1]:5070").description == "tcp:[::1]:5070")
        #expect(try ListenPoint(parsing: "udp:10.0.0.1").address.port == 5060)
        #expect(try ListenPoint(parsing: "tcp:[2001:db8::1]").address.host == "2001:db8::1")
        #expect(throws: TransportError.self) { try ListenPoint(parsing: "127.0.0.1:5060") }
        #expect(throws: TransportError.self) { try ListenPoint(parsing: "udp:[::1:5060") }
        #expect(throws: TransportError.self) { try ListenPoint(parsing: "udp:host.example:5060") }
    }
}
