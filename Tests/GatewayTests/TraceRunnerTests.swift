import Gateway
import GatewayTesting
import Testing

/// The runner must fail when the gateway does not do what a trace says, and say why.
@Suite struct TraceRunnerTests {
    func run(_ text: String) throws -> TraceResult {
        let trace = try Trace.parse(text, name: "inline.trace")
        let network = try InMemoryNetwork(trace: trace, logger: Logger(label: "t", threshold: .init(.error)))
        return TraceRunner(trace: trace, network: network).run()
    }

    let options = """
    peer alice udp 127.0.0.1:5070
    send alice
    OPTIONS sip:${gateway.addr} SIP/2.0
    Via: SIP/2.0/UDP ${alice.addr};branch=${branch}
    From: <sip:alice@example.com>;tag=${tag}
    To: <sip:${gateway.addr}>
    Call-ID: ${call_id}
    CSeq: 1 OPTIONS
    Content-Length: auto
    .

    """

    @Test func wrongStatusFailsWithALadder() throws {
        let result = try run(options + "expect alice\nSIP/2.0 404 *\n.\n")
        #expect(!result.passed)
        let text = try #require(result.failure)
        #expect(text.contains("inline.trace:11"))
        #expect(text.contains("expected 'SIP/2.0 404 *', received 'SIP/2.0 200 OK'"))
        #expect(text.contains("alice      ──▶ tandem   OPTIONS sip:127.0.0.1:5060 SIP/2.0"))
        #expect(text.contains("alice      ◀── tandem   SIP/2.0 200 OK"))
    }

    @Test func headerMismatchesAreListed() throws {
        let result = try run(options + "expect alice\nSIP/2.0 200 OK\nCall-ID: wrong\nContact: *\nServer: !\nCSeq: ~ ^2 \n.\n")
        let text = try #require(result.failure)
        #expect(text.contains("Call-ID: expected 'wrong'"))
        #expect(text.contains("Contact: expected present"))
        #expect(text.contains("Server: expected absent"))
        #expect(text.contains("CSeq: expected to match /^2/"))
    }

    @Test func unexpectedMessageFailsExpectNothing() throws {
        let result = try run(options + "expect nothing\n")
        #expect(result.failure?.contains("expected nothing, but alice received") == true)
    }

    @Test func missingMessageFails() throws {
        let result = try run("peer alice udp 127.0.0.1:5070\nexpect alice\nSIP/2.0 200 OK\n.\n")
        #expect(result.failure?.contains("received nothing") == true)
    }

    @Test func capturesBecomeVariables() throws {
        let result = try run(options + """
        expect alice
        SIP/2.0 200 OK
        To: ~ tag=(?<t>[a-z0-9]+)
        .
        set seen = ${t}
        """)
        #expect(result.passed, "\(result)")
    }

    @Test func badTraceFilesAreReportedWithTheirLine() {
        #expect(throws: Trace.ParseError.self) { _ = try Trace.parse("peer alice udp 127.0.0.1:5070\nsend bob\nX\n.\n", name: "x") }
        #expect(throws: Trace.ParseError.self) { _ = try Trace.parse("peer alice udp 127.0.0.1:5070\nsend alice\nX\n", name: "x") }
        #expect(throws: Trace.ParseError.self) { _ = try Trace.parse("frobnicate\n", name: "x") }
        do {
            _ = try Trace.parse("\n\npeer alice sctp 1.2.3.4:5\n", name: "x.trace")
        } catch let error as Trace.ParseError {
            #expect(error.description.hasPrefix("x.trace:3:"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
