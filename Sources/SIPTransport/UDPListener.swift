#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import CLinux

/// One UDP socket read by several worker threads, each running a message to completion
/// (DESIGN.md "Threads and state"), so both cores serve traffic.
final class UDPListener: Sendable {
    let point: ListenPoint
    let fd: Int32
    private let stopping = Atomic<Bool>(false)
    private let running = Atomic<Int>(0)
    private let statistics: TransportStatistics

    init(point: ListenPoint, receiveBuffer: Int, statistics: TransportStatistics) throws(TransportError) {
        fd = try Socket.bound(point, receiveBuffer: receiveBuffer)
        var actual = point
        if let local = Socket.localAddress(fd) { actual.address.port = local.port }
        self.point = actual
        self.statistics = statistics
        // Workers wake up this often to notice a stop request.
        Socket.setReceiveTimeout(fd, milliseconds: 200)
    }

    func start(workers: Int, handler: @escaping @Sendable (InboundMessage) -> Void) {
        for index in 0..<max(workers, 1) {
            running.wrappingAdd(1, ordering: .relaxed)
            let thread = Thread { [self] in
                self.run(handler)
                self.running.wrappingSubtract(1, ordering: .relaxed)
            }
            thread.name = "udp-\(point.address.port)-\(index)"
            thread.start()
        }
    }

    private func run(_ handler: @Sendable (InboundMessage) -> Void) {
        // One datagram can be at most 65,535 bytes; MSG_TRUNC reports a longer one's real size.
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var storage = sockaddr_storage()
        while !stopping.load(ordering: .relaxed) {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &length)
                    }
                }
            }
            if count < 0 { continue }  // timeout (EAGAIN) or EINTR: check the stop flag
            guard let source = SocketAddress(&storage) else { continue }
            statistics.udpReceived.increment()
            if isKeepalive(buffer, count) {
                statistics.udpKeepalives.increment()
                continue
            }
            let message = InboundMessage(
                bytes: Array(buffer[0..<count]), transport: .udp, source: source, local: point, connection: nil)
            handler(message)
        }
    }

    /// NAT keep-alives of CRLFs (or empty datagrams) carry no message and get no answer.
    private func isKeepalive(_ buffer: [UInt8], _ count: Int) -> Bool {
        if count == 0 { return true }
        guard count <= 4 else { return false }
        return buffer[0..<count].allSatisfy { $0 == 0x0D || $0 == 0x0A }
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) throws(TransportError) {
        // After stop() the descriptor is closed and its number may already belong to another socket.
        guard !stopping.load(ordering: .relaxed) else { throw TransportError("UDP \(point) is stopped") }
        let result = address.withSockAddr { sockaddr, length in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddr, length) }
        }
        guard let result else {
            statistics.udpSendErrors.increment()
            throw TransportError("cannot send to \(address): not an IP address")
        }
        guard result >= 0 else {
            statistics.udpSendErrors.increment()
            throw Socket.errnoText("sendto \(address)")
        }
        statistics.udpSent.increment()
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        while running.load(ordering: .relaxed) > 0 { usleep(10_000) }
        Glibc.close(fd)
    }
}
