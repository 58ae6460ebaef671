#if canImport(Glibc)
import Glibc
#endif
import Gateway
import Node
import Registrar
import Registry
import SIP
import SIPTransaction
import SIPTransport

/// The proxy over real loopback sockets with the production transport and timer thread, driven by
/// one client thread playing caller and callee in turn: shows what the kernel and threads add to
/// the in-process figure, and runs under callgrind (the server binary's dispatch main loop does not).
enum ProxySocketBench {
    static func socketBound() -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        _ = SocketAddress(host: "127.0.0.1", port: 0).withSockAddr { bind(fd, $0, $1) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, SocketAddress(&storage)!.port)
    }

    static func run(calls: Int, workers: Int) {
        let (uac, uacPort) = socketBound()
        let (uas, uasPort) = socketBound()
        var configuration = Configuration()
        configuration.listen = [ListenPoint(transport: .udp, address: SocketAddress(host: "127.0.0.1", port: 0))]
        // The proxy benchmark measures the plain proxy: its peers are trusted, as a load balancer is.
        configuration.trustedSources = [AddressBlock("127.0.0.0/8")!]
        configuration.defaultRoute = [SIPURI(parsing: "sip:127.0.0.1:\(uasPort)")!]
        let transport = try! SocketTransport(options: .init(
            listen: configuration.listen, udpWorkers: workers, udpReceiveBuffer: 4 << 20, maxMessageSize: 65_535,
            tcpIdleTimeout: 60, tcpMaxConnections: 16))
        configuration.listen = transport.listenPoints
        let proxyPort = transport.listenPoints[0].address.port
        let timers = TimerThread()
        let manual = ManualTimers()
        let useManual = getenv("BENCH_MANUAL_TIMERS") != nil
        let bench = BenchRegistry()
        let (node, _) = try! Node.assemble(configuration: configuration, registry: bench.registry, transport: transport,
                                           transportStatistics: transport.statistics, timers: useManual ? manual as any TimerService : timers,
                                           logger: Logger(label: "bench", threshold: .init(.error)), clock: Registry.systemClock)
        node.start()
        transport.start { node.receive($0) }
        let proxy = SocketAddress(host: "127.0.0.1", port: proxyPort)
        func send(_ fd: Int32, _ text: String) {
            let bytes = Array(text.utf8)
            _ = proxy.withSockAddr { address, length in bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address, length) } }
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        func receive(_ fd: Int32) -> SIPMessage? {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            return try? SIPMessage.parse(Array(buffer[0..<count]))
        }
        func cpu() -> Double {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        }
        let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        let startCPU = cpu(), start = ProxyBench.now()
        var failures = 0
        for call in 0..<calls {
            let callID = "\(call)-sock@127.0.0.1", fromTag = "f\(call)"
            send(uac, "INVITE sip:service@127.0.0.1:\(proxyPort) SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:\(uacPort);branch=z9hG4bK-\(call)-0;rport\r\nFrom: <sip:sipp@127.0.0.1:\(uacPort)>;tag=\(fromTag)\r\nTo: <sip:service@127.0.0.1:\(proxyPort)>\r\nCall-ID: \(callID)\r\nCSeq: 1 INVITE\r\nContact: <sip:sipp@127.0.0.1:\(uacPort)>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)")
            _ = receive(uac)  // 100 Trying
            guard let invite = receive(uas), let branch = invite.topViaBranch else { failures += 1; continue }
            let vias = "Via: SIP/2.0/UDP 127.0.0.1:\(proxyPort);branch=\(branch);rport\r\nVia: SIP/2.0/UDP 127.0.0.1:\(uacPort);branch=z9hG4bK-\(call)-0;rport=\(uacPort);received=127.0.0.1\r\n"
            let dialog = "Record-Route: <sip:127.0.0.1:\(proxyPort);lr>\r\nFrom: <sip:sipp@127.0.0.1:\(uacPort)>;tag=\(fromTag)\r\nTo: <sip:service@127.0.0.1:\(proxyPort)>;tag=t\(call)\r\nCall-ID: \(callID)\r\nCSeq: 1 INVITE\r\nContact: <sip:127.0.0.1:\(uasPort)>\r\n"
            send(uas, "SIP/2.0 180 Ringing\r\n\(vias)\(dialog)Content-Length: 0\r\n\r\n")
            _ = receive(uac)
            send(uas, "SIP/2.0 200 OK\r\n\(vias)\(dialog)Content-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)")
            _ = receive(uac)
            let inDialog = "Route: <sip:127.0.0.1:\(proxyPort);lr>\r\nFrom: <sip:sipp@127.0.0.1:\(uacPort)>;tag=\(fromTag)\r\nTo: <sip:service@127.0.0.1:\(proxyPort)>;tag=t\(call)\r\nCall-ID: \(callID)\r\nMax-Forwards: 70\r\n"
            send(uac, "ACK sip:127.0.0.1:\(uasPort) SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:\(uacPort);branch=z9hG4bK-\(call)-4;rport\r\n\(inDialog)CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
            _ = receive(uas)
            send(uac, "BYE sip:127.0.0.1:\(uasPort) SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:\(uacPort);branch=z9hG4bK-\(call)-5;rport\r\n\(inDialog)CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
            guard let bye = receive(uas), let byeBranch = bye.topViaBranch else { failures += 1; continue }
            send(uas, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:\(proxyPort);branch=\(byeBranch);rport\r\nVia: SIP/2.0/UDP 127.0.0.1:\(uacPort);branch=z9hG4bK-\(call)-5;rport=\(uacPort);received=127.0.0.1\r\nFrom: <sip:sipp@127.0.0.1:\(uacPort)>;tag=\(fromTag)\r\nTo: <sip:service@127.0.0.1:\(proxyPort)>;tag=t\(call)\r\nCall-ID: \(callID)\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
            _ = receive(uac)
        }
        let seconds = ProxyBench.now() - start
        let usedCPU = cpu() - startCPU
        transport.stop()
        timers.stop()
        print("proxy over UDP loopback (\(workers) workers): \(calls) calls in \(String(format: "%.2f", seconds)) s, "
              + "\(String(format: "%.0f", usedCPU / Double(calls) * 1e6)) µs CPU per call (whole process, client included), \(failures) failures")
    }
}
