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
            let name = "udp-\(point.address.port)-\(index)"
            let thread = Thread { [self] in
                // The kernel's name for the thread (top -H, /proc/PID/task): Foundation sets only its own.
                tandem_pthread_setname_np(pthread_self(), String(name.prefix(15)))
                self.run(handler)
                self.running.wrappingSubtract(1, ordering: .relaxed)
            }
            thread.name = "udp-\(point.address.port)-\(index)"
            thread.start()
        }
    }

    /// Datagrams taken from the socket per system call when several are waiting (recvmmsg with
    /// MSG_WAITFORONE: block for the first, take what else is there).
    static let batch = 16

    private func run(_ handler: @Sendable (InboundMessage) -> Void) {
        let batch = Self.batch
        // One datagram can be at most 65,535 bytes.
        let size = 65_536
        let buffers = UnsafeMutableRawPointer.allocate(byteCount: batch * size, alignment: 16)
        let addresses = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: batch)
        let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: batch)
        let headers = UnsafeMutablePointer<tandem_mmsghdr>.allocate(capacity: batch)
        defer {
            buffers.deallocate()
            addresses.deallocate()
            vectors.deallocate()
            headers.deallocate()
        }
        while !stopping.load(ordering: .relaxed) {
            for index in 0..<batch {
                vectors[index] = iovec(iov_base: buffers + index * size, iov_len: size)
                headers[index] = tandem_mmsghdr()
                headers[index].msg_hdr.msg_name = UnsafeMutableRawPointer(addresses + index)
                headers[index].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                headers[index].msg_hdr.msg_iov = vectors + index
                headers[index].msg_hdr.msg_iovlen = 1
            }
            let received = tandem_recvmmsg(fd, headers, UInt32(batch), tandem_msg_waitforone(), nil)
            if received <= 0 { continue }  // timeout (EAGAIN) or EINTR: check the stop flag
            for index in 0..<Int(received) {
                let count = Int(headers[index].msg_len)
                guard let source = SocketAddress(addresses + index) else { continue }
                statistics.udpReceived.increment()
                let bytes = UnsafeRawBufferPointer(start: buffers + index * size, count: count)
                if isKeepalive(bytes) {
                    statistics.udpKeepalives.increment()
                    continue
                }
                handler(InboundMessage(bytes: Array(bytes), transport: .udp, source: source, local: point, connection: nil))
            }
        }
    }

    /// NAT keep-alives of CRLFs (or empty datagrams) carry no message and get no answer.
    private func isKeepalive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count <= 4 else { return false }
        return bytes.allSatisfy { $0 == 0x0D || $0 == 0x0A }
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
