#if canImport(Glibc)
import Glibc
#endif
import Admin
import Foundation
import JSON
import SIPTransport

/// Plays a trace over real UDP and TCP sockets against a running `tandem` (used by `tandem-replay`).
///
/// UDP peers bind their declared host with a port from the kernel (traces refer to `${peer.port}`),
/// so replays never collide with other processes; TCP peers connect to the target on first send.
public final class SocketNetwork: TraceNetwork {
    private struct PeerSocket {
        var peer: Trace.Peer
        var fd: Int32 = -1
        /// TCP peers listen on their declared address, so Tandem can connect to them.
        var listener: Int32 = -1
        var address: SocketAddress
        var framer: StreamFramer
        var pending: [TraceEvent] = []
        var closed = false
    }

    private var sockets: [String: PeerSocket] = [:]
    private let targets: [ListenPoint]
    private let adminSocket: String?
    private var adminClient: AdminClient?

    /// - Parameter adminSocket: the running tandem's admin socket, for traces that provision.
    public init(trace: Trace, targets: [ListenPoint], adminSocket: String? = nil) throws {
        self.targets = targets
        self.adminSocket = adminSocket
        for peer in trace.peers {
            var entry = PeerSocket(peer: peer, address: peer.address, framer: StreamFramer(maxMessageSize: 1 << 20))
            if peer.transport == .udp {
                let family = peer.address.isIPv6 ? AF_INET6 : AF_INET
                let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
                guard fd >= 0 else { throw TransportError("socket: \(String(cString: strerror(errno)))") }
                guard peer.address.withSockAddr({ bind(fd, $0, $1) }) == 0 else {
                    throw TransportError("bind \(peer.address) for peer \(peer.name): \(String(cString: strerror(errno)))")
                }
                entry.fd = fd
                entry.address = Self.localAddress(fd) ?? peer.address
            } else {
                let fd = socket(peer.address.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                guard peer.address.withSockAddr({ bind(fd, $0, $1) }) == 0, listen(fd, 8) == 0 else {
                    throw TransportError("listen on \(peer.address) for peer \(peer.name): \(String(cString: strerror(errno)))")
                }
                entry.listener = fd
            }
            sockets[peer.name] = entry
        }
    }

    public func admin(_ method: String, _ params: JSONValue) throws -> JSONValue {
        if adminClient == nil {
            guard let adminSocket else { throw TransportError("this trace provisions through the admin socket; pass --admin SOCKET") }
            adminClient = try AdminClient(socketPath: adminSocket)
        }
        return try adminClient!.call(method, params)
    }

    deinit {
        for entry in sockets.values {
            if entry.fd >= 0 { Glibc.close(entry.fd) }
            if entry.listener >= 0 { Glibc.close(entry.listener) }
        }
    }

    static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 ? SocketAddress(&storage) : nil
    }

    public func address(of peer: String) -> SocketAddress {
        sockets[peer]!.address
    }

    /// The target of the transport and address family asked for; with no exact match, the same
    /// host and port on the other transport.
    public func gatewayAddress(_ transport: TransportKind, ipv6: Bool) -> SocketAddress {
        (targets.first { $0.transport == transport && $0.address.isIPv6 == ipv6 }
            ?? targets.first { $0.address.isIPv6 == ipv6 }
            ?? targets.first { $0.transport == transport }
            ?? targets[0]).address
    }

    private func connect(_ name: String) throws {
        guard var entry = sockets[name] else { return }
        let target = gatewayAddress(.tcp, ipv6: entry.peer.address.isIPv6)
        let fd = socket(target.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TransportError("socket: \(String(cString: strerror(errno)))") }
        guard target.withSockAddr({ Glibc.connect(fd, $0, $1) }) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TransportError("connect to \(target) for peer \(name): \(reason)")
        }
        entry.fd = fd
        entry.closed = false
        entry.framer = StreamFramer(maxMessageSize: 1 << 20)
        sockets[name] = entry
    }

    public func send(_ bytes: [UInt8], from peer: String, chunkSize: Int?) throws {
        guard let entry = sockets[peer] else { return }
        switch entry.peer.transport {
        case .udp:
            let target = gatewayAddress(.udp, ipv6: entry.peer.address.isIPv6)
            let sent = target.withSockAddr { address, length in
                bytes.withUnsafeBytes { sendto(entry.fd, $0.baseAddress, $0.count, 0, address, length) }
            }
            guard let sent, sent == bytes.count else {
                throw TransportError("sendto \(target): \(String(cString: strerror(errno)))")
            }
        case .tcp:
            if entry.fd < 0 || entry.closed { try connect(peer) }
            let fd = sockets[peer]!.fd
            let size = chunkSize ?? max(bytes.count, 1)
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + size, bytes.count)
                let written = bytes[offset..<end].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { throw TransportError("send: \(String(cString: strerror(errno)))") }
                offset += written
                if chunkSize != nil { usleep(2_000) }
            }
        }
    }

    /// Reads whatever arrives for a peer within the timeout and turns it into events.
    private func poll(_ name: String, timeout: Double) {
        guard var entry = sockets[name] else { return }
        if entry.peer.transport == .tcp, entry.fd < 0 || entry.closed, entry.listener >= 0 {
            // Tandem opens the connection to a TCP peer it forwards to.
            var descriptor = pollfd(fd: entry.listener, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&descriptor, 1, Int32(timeout * 1000)) > 0 else { return }
            let fd = accept(entry.listener, nil, nil)
            guard fd >= 0 else { return }
            entry.fd = fd
            entry.closed = false
            entry.framer = StreamFramer(maxMessageSize: 1 << 20)
            sockets[name] = entry
            return
        }
        guard entry.fd >= 0, !entry.closed else { return }
        var descriptor = pollfd(fd: entry.fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&descriptor, 1, Int32(timeout * 1000)) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = buffer.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, 0) }
        if entry.peer.transport == .udp {
            if count > 0 { entry.pending.append(.message(Array(buffer[0..<count]))) }
        } else if count <= 0 {
            entry.closed = true
            entry.pending.append(.closed)
        } else {
            let chunk = Array(buffer[0..<count])
            if chunk == [0x0D, 0x0A] && entry.framer.pendingCount == 0 {
                entry.pending.append(.message(chunk))  // a keep-alive pong
            } else {
                entry.framer.append(chunk)
                while let frame = entry.framer.next() {
                    if case .message(let bytes) = frame { entry.pending.append(.message(bytes)) }
                }
            }
        }
        sockets[name] = entry
    }

    public func receive(for peer: String, timeout: Double) -> TraceEvent? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if var entry = sockets[peer], !entry.pending.isEmpty {
                let event = entry.pending.removeFirst()
                sockets[peer] = entry
                return event
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            poll(peer, timeout: min(left, 0.05))
        }
    }

    public func receiveAny(peer: String?, within: Double) -> (peer: String, event: TraceEvent)? {
        let names = sockets.keys.sorted().filter { peer == nil || $0 == peer }
        let deadline = Date().addingTimeInterval(within)
        repeat {
            for name in names {
                if let event = receive(for: name, timeout: 0.01) { return (name, event) }
            }
        } while deadline.timeIntervalSinceNow > 0
        return nil
    }

    public func close(_ peer: String) {
        guard var entry = sockets[peer], entry.peer.transport == .tcp, entry.fd >= 0 else { return }
        Glibc.close(entry.fd)
        entry.fd = -1
        entry.closed = true
        sockets[peer] = entry
    }

    public func wait(_ seconds: Double) {
        usleep(UInt32(seconds * 1_000_000))
    }
}
