#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gateway
import Node
import Registrar
import Registry
import SIP
import SIPTransaction
import SIPTransport
import Synchronization

/// The proxy core without the kernel: whole calls (INVITE/100/180/200/ACK/BYE/200) driven through
/// `Gateway.receive` with a transport that only records what is sent. Reports CPU time per call spent
/// inside the gateway; runs under callgrind to see where instructions go.
final class RecordingTransport: Transport {
    let sent = Mutex<[[UInt8]]>([])
    func send(_ bytes: [UInt8], to destination: Destination) throws(TransportError) {
        sent.withLock { $0.append(bytes) }
    }
    func close(_ connection: ConnectionID) {}
    func take() -> [[UInt8]] { sent.withLock { let all = $0; $0.removeAll(keepingCapacity: true); return all } }
}

enum ProxyBench {
    static func run(calls: Int) {
        let proxy = SocketAddress(host: "127.0.0.1", port: 5060)
        let uac = SocketAddress(host: "127.0.0.1", port: 5070)
        let uas = SocketAddress(host: "127.0.0.1", port: 5080)
        var configuration = Configuration()
        configuration.listen = [ListenPoint(transport: .udp, address: proxy)]
        // The proxy benchmark measures the plain proxy: its peers are trusted, as a load balancer is.
        configuration.trustedSources = [AddressBlock("127.0.0.0/8")!]
        configuration.defaultRoute = [SIPURI(parsing: "sip:127.0.0.1:5080")!]
        // TANDEM_BENCH_FLOOD_LIMIT=0 measures the call path without flood protection.
        if let limit = ProcessInfo.processInfo.environment["TANDEM_BENCH_FLOOD_LIMIT"].flatMap({ Int($0) }) {
            configuration.floodPolicy.limit = limit
        }
        let transport = RecordingTransport()
        let timers = ManualTimers()
        // The node `tandem` runs, on a recording transport and virtual timers.
        let bench = BenchRegistry()
        var options = Node.Options()
        options.maintenance = nil
        options.presence = nil
        let (node, _) = try! Node.assemble(configuration: configuration, registry: bench.registry, transport: transport, timers: timers,
                                           logger: Logger(label: "bench", threshold: .init(.error)), clock: Registry.systemClock, options: options)
        let gateway = node.gateway
        let local = ListenPoint(transport: .udp, address: proxy)
        var inside = 0.0
        func deliver(_ text: String, from source: SocketAddress) {
            let message = InboundMessage(bytes: Array(text.utf8), transport: .udp, source: source, local: local, connection: nil)
            let start = now()
            gateway.receive(message)
            inside += now() - start
        }
        func topBranch(_ bytes: [UInt8]) -> String {
            (try? SIPMessage.parse(bytes))?.topVia?.branch ?? ""
        }
        let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        let wall = now()
        for call in 0..<calls {
            let callID = "\(call)-bench@127.0.0.1"
            let fromTag = "f\(call)"
            deliver("""
            INVITE sip:service@127.0.0.1:5060 SIP/2.0\r
            Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-\(call)-0;rport\r
            From: sipp <sip:sipp@127.0.0.1:5070>;tag=\(fromTag)\r
            To: service <sip:service@127.0.0.1:5060>\r
            Call-ID: \(callID)\r
            CSeq: 1 INVITE\r
            Contact: <sip:sipp@127.0.0.1:5070>\r
            Max-Forwards: 70\r
            Subject: Performance Test\r
            Content-Type: application/sdp\r
            Content-Length: \(sdp.utf8.count)\r
            \r
            \(sdp)
            """, from: uac)
            let forwarded = transport.take().last!
            let branch = topBranch(forwarded)
            let vias = "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=\(branch);rport\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-\(call)-0;rport=5070;received=127.0.0.1\r\n"
            let dialog = "Record-Route: <sip:127.0.0.1:5060;lr>\r\nFrom: sipp <sip:sipp@127.0.0.1:5070>;tag=\(fromTag)\r\nTo: service <sip:service@127.0.0.1:5060>;tag=t\(call)\r\nCall-ID: \(callID)\r\nCSeq: 1 INVITE\r\nContact: <sip:127.0.0.1:5080;transport=UDP>\r\n"
            deliver("SIP/2.0 180 Ringing\r\n\(vias)\(dialog)Content-Length: 0\r\n\r\n", from: uas)
            deliver("SIP/2.0 200 OK\r\n\(vias)\(dialog)Content-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)", from: uas)
            let inDialog = "Route: <sip:127.0.0.1:5060;lr>\r\nFrom: sipp <sip:sipp@127.0.0.1:5070>;tag=\(fromTag)\r\nTo: service <sip:service@127.0.0.1:5060>;tag=t\(call)\r\nCall-ID: \(callID)\r\nContact: <sip:sipp@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n"
            deliver("ACK sip:127.0.0.1:5080;transport=UDP SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-\(call)-4;rport\r\n\(inDialog)CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", from: uac)
            deliver("BYE sip:127.0.0.1:5080;transport=UDP SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-\(call)-5;rport\r\n\(inDialog)CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", from: uac)
            let bye = transport.take().last!
            let byeBranch = topBranch(bye)
            deliver("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=\(byeBranch);rport\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-\(call)-5;rport=5070;received=127.0.0.1\r\nFrom: sipp <sip:sipp@127.0.0.1:5070>;tag=\(fromTag)\r\nTo: service <sip:service@127.0.0.1:5060>;tag=t\(call)\r\nCall-ID: \(callID)\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", from: uas)
            _ = transport.take()
            if call % 1000 == 999 { timers.advance(by: 1) }
        }
        let pendingTimers = timers.pending
        timers.advance(by: 200)
        let total = now() - wall
        let counts = gateway.transactionCounts
        print("proxy core: \(calls) calls, \(String(format: "%.1f", inside / Double(calls) * 1e6)) µs per call inside Gateway.receive "
              + "(\(String(format: "%.1f", total / Double(calls) * 1e6)) µs with the harness); left: \(counts.server) server, "
              + "\(counts.client) client transactions, \(counts.contexts) contexts; \(pendingTimers) timers were pending at the end of the calls")
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
