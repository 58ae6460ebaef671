import Gateway
import GatewayTesting
import SIPTransport
import Testing

/// Every bad input is counted: nothing is dropped silently.
@Suite struct GatewayStatisticsTests {
    @Test func dropsAndAnswersAreCounted() throws {
        let trace = try Trace.parse("peer alice udp 127.0.0.1:5070\npeer bob tcp 127.0.0.1:5071\n", name: "stats")
        let network = try InMemoryNetwork(trace: trace, logger: Logger(label: "t", threshold: .init(.error)))
        try network.send(Array("not sip at all\r\n\r\n".utf8), from: "alice", chunkSize: nil)
        try network.send(Array("OPTIONS sip:x SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@b\r\n\r\n".utf8),
                         from: "alice", chunkSize: nil)
        try network.send(Array("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".utf8),
                         from: "alice", chunkSize: nil)
        try network.send(Array("junk\r\n\r\n".utf8), from: "bob", chunkSize: nil)
        let counters = Dictionary(uniqueKeysWithValues: network.statistics.snapshot())
        #expect(counters["gateway.malformed_dropped"] == 1)
        #expect(counters["gateway.malformed_answered"] == 1)
        #expect(counters["gateway.stray_responses"] == 1)
        #expect(counters["gateway.unframeable"] == 1)
        #expect(network.receive(for: "alice", timeout: 0) != nil)
        #expect(network.receive(for: "bob", timeout: 0) == .closed)
    }
}
