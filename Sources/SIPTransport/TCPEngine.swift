#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import CLinux

/// Every TCP listen socket and connection, served by one epoll thread that accepts, reads and frames;
/// complete messages go to the same handler as UDP (DESIGN.md "Threads and state").
final class TCPEngine: Sendable {
    struct Options: Sendable {
        var maxMessageSize: Int
        var idleTimeout: Double
        var maxConnections: Int
        /// Most connections one remote address may open to Tandem; 0: no limit.
        var maxConnectionsPerSource: Int = 0
        /// Seconds a message may take to arrive once its first byte has: a peer trickling a message
        /// a byte at a time (slowloris) keeps its connection active but never completes one.
        var messageTimeout: Double = 10
        /// A peer that does not read its responses is cut off past this many unsent bytes.
        var maxPendingOutput: Int = 1 << 20
    }

    private struct Connection {
        let fd: Int32
        let peer: SocketAddress
        let local: ListenPoint
        var framer: StreamFramer
        var lastActivity: Double
        var pendingOutput: [UInt8] = []
        /// An outbound connection whose non-blocking connect has not completed yet.
        var connecting = false
        /// Opened by the peer (counted against its address's limit).
        var inbound = true
        /// When the bytes of a message still incomplete began to arrive.
        var partialSince: Double?
    }

    private struct Table {
        var connections: [UInt64: Connection] = [:]
        /// Open connections by remote address, inbound and outbound alike: a request towards an
        /// address reuses the connection it already has (RFC 3261 §18.1.1).
        var byPeer: [SocketAddress: UInt64] = [:]
        /// Inbound connections open per remote host.
        var perSource: [String: Int] = [:]
        var nextID: UInt64 = 1

        mutating func remove(_ id: UInt64) -> Connection? {
            guard let entry = connections.removeValue(forKey: id) else { return nil }
            if byPeer[entry.peer] == id { byPeer[entry.peer] = nil }
            if entry.inbound {
                let left = (perSource[entry.peer.host] ?? 1) - 1
                perSource[entry.peer.host] = left > 0 ? left : nil
            }
            return entry
        }
    }

    private enum Admission { case admitted(UInt64), atLimit, atSourceLimit }

    private let epollFD: Int32
    private let listeners: [(fd: Int32, point: ListenPoint)]
    private let table = Mutex(Table())
    private let stopping = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let options: Options
    private let statistics: TransportStatistics
    /// Told when an outbound connection fails after connect() returned (the bytes queued on it are lost).
    let connectFailures = Mutex<(@Sendable (SocketAddress) -> Void)?>(nil)
    /// Listener identifiers in epoll's data field sit above every connection identifier.
    private static let listenerBase: UInt64 = 1 << 62

    var points: [ListenPoint] { listeners.map(\.point) }

    init(points: [ListenPoint], options: Options, statistics: TransportStatistics) throws(TransportError) {
        self.options = options
        self.statistics = statistics
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw Socket.errnoText("epoll_create1") }
        var opened: [(Int32, ListenPoint)] = []
        var failure: TransportError?
        for point in points {
            let fd: Int32
            do { fd = try Socket.bound(point, receiveBuffer: 0) } catch {
                failure = error
                break
            }
            guard listen(fd, 1024) == 0 else {
                failure = Socket.errnoText("listen \(point)")
                Glibc.close(fd)
                break
            }
            Socket.setNonBlocking(fd)
            var actual = point
            if let local = Socket.localAddress(fd) { actual.address.port = local.port }
            var event = epoll_event()
            event.events = tandem_epollin()
            event.data.u64 = Self.listenerBase + UInt64(opened.count)
            epoll_ctl(epollFD, Int32(EPOLL_CTL_ADD), fd, &event)
            opened.append((fd, actual))
        }
        if let failure {
            for (fd, _) in opened { Glibc.close(fd) }
            Glibc.close(epollFD)
            throw failure
        }
        listeners = opened.map { (fd: $0.0, point: $0.1) }
    }

    func start(handler: @escaping @Sendable (InboundMessage) -> Void) {
        let thread = Thread { [self] in
            tandem_pthread_setname_np(pthread_self(), "tcp")
            self.run(handler)
            self.stopped.store(true, ordering: .releasing)
        }
        thread.name = "tcp"
        thread.start()
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func run(_ handler: @Sendable (InboundMessage) -> Void) {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var readBuffer = [UInt8](repeating: 0, count: 65_536)
        var lastSweep = Self.now()
        // Listeners taken out of epoll while the process has no descriptor left, and when to retry.
        var paused: [(index: Int, until: Double)] = []
        while !stopping.load(ordering: .relaxed) {
            let count = epoll_wait(epollFD, &events, Int32(events.count), paused.isEmpty ? 200 : 50)
            if count > 0 {
                for index in 0..<Int(count) {
                    let event = events[index]
                    let id = event.data.u64
                    if id >= Self.listenerBase {
                        let listenerIndex = Int(id - Self.listenerBase)
                        if !accept(listenerIndex: listenerIndex) {
                            // A listener with a connection waiting stays readable: left in epoll, it
                            // would spin this thread while no descriptor is free.
                            setWatched(listener: listenerIndex, false)
                            paused.append((listenerIndex, Self.now() + 0.25))
                        }
                        continue
                    }
                    if event.events & tandem_epollout() != 0 { flush(id) }
                    if event.events & (tandem_epollin() | tandem_epollhup() | tandem_epollerr() | tandem_epollrdhup()) != 0 {
                        read(id, buffer: &readBuffer, handler: handler)
                    }
                }
            }
            let now = Self.now()
            if !paused.isEmpty {
                for entry in paused where entry.until <= now { setWatched(listener: entry.index, true) }
                paused.removeAll { $0.until <= now }
            }
            if now - lastSweep >= 1 {
                lastSweep = now
                closeIdle(now: now)
            }
        }
        let fds = table.withLock { table in
            let fds = table.connections.values.map(\.fd)
            table.connections.removeAll()
            table.byPeer.removeAll()
            return fds
        }
        for fd in fds { Glibc.close(fd) }
        for listener in listeners { Glibc.close(listener.fd) }
        Glibc.close(epollFD)
    }

    private func setWatched(listener index: Int, _ watched: Bool) {
        var event = epoll_event()
        event.events = watched ? tandem_epollin() : 0
        event.data.u64 = Self.listenerBase + UInt64(index)
        epoll_ctl(epollFD, Int32(EPOLL_CTL_MOD), listeners[index].fd, &event)
    }

    /// Accepts every waiting connection; false when the process (or system) is out of descriptors
    /// or memory for another one, which `accept` reports without taking the connection.
    private func accept(listenerIndex: Int) -> Bool {
        let listener = listeners[listenerIndex]
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    tandem_accept4(listener.fd, $0, &length, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
                }
            }
            guard fd >= 0 else {
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    statistics.tcpAcceptFailures.increment()
                    return false
                }
                return true
            }
            guard let peer = SocketAddress(&storage) else {
                Glibc.close(fd)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            switch admit(fd: fd, peer: peer, local: listener.point) {
            case .admitted: statistics.tcpAccepted.increment()
            case .atLimit:
                statistics.tcpRejectedAtLimit.increment()
                Glibc.close(fd)
            case .atSourceLimit:
                statistics.tcpRejectedPerSource.increment()
                Glibc.close(fd)
            }
        }
    }

    /// Enters a connection in the table and in epoll, unless `sip.tcp_max_connections` are open or
    /// (for one the peer opened) its address holds `sip.tcp_max_connections_per_source`. An outbound
    /// connection (`pending` bytes) is watched for writability until connect() completes.
    private func admit(fd: Int32, peer: SocketAddress, local: ListenPoint, pending: [UInt8]? = nil) -> Admission {
        table.withLock { table in
            guard table.connections.count < options.maxConnections else { return .atLimit }
            let inbound = pending == nil
            if inbound {
                let open = table.perSource[peer.host] ?? 0
                if options.maxConnectionsPerSource > 0, open >= options.maxConnectionsPerSource { return .atSourceLimit }
                table.perSource[peer.host] = open + 1
            }
            let id = table.nextID
            table.nextID += 1
            table.connections[id] = Connection(
                fd: fd, peer: peer, local: local, framer: StreamFramer(maxMessageSize: options.maxMessageSize),
                lastActivity: Self.now(), pendingOutput: pending ?? [], connecting: !inbound, inbound: inbound)
            table.byPeer[peer] = id
            watch(fd, id, writable: !inbound, operation: Int32(EPOLL_CTL_ADD))
            statistics.tcpOpen.add(1)
            return .admitted(id)
        }
    }

    /// Registers or updates a connection's epoll interest: always readable, writable while output waits.
    private func watch(_ fd: Int32, _ id: UInt64, writable: Bool, operation: Int32) {
        var event = epoll_event()
        event.events = tandem_epollin() | tandem_epollrdhup() | (writable ? tandem_epollout() : 0)
        event.data.u64 = id
        epoll_ctl(epollFD, operation, fd, &event)
    }

    private enum ReadOutcome { case open, closedByPeer }

    private func read(_ id: UInt64, buffer: inout [UInt8], handler: @Sendable (InboundMessage) -> Void) {
        guard let (fd, peer, local) = table.withLock({ table in
            table.connections[id].map { ($0.fd, $0.peer, $0.local) }
        }) else { return }
        var outcome = ReadOutcome.open
        var received: [UInt8] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                received.append(contentsOf: buffer[0..<count])
                if received.count > options.maxMessageSize * 2 { break }
                continue
            }
            if count == 0 { outcome = .closedByPeer }
            else if errno == EINTR { continue }
            else if errno != EAGAIN && errno != EWOULDBLOCK { outcome = .closedByPeer }
            break
        }
        var frames: [StreamFramer.Frame] = []
        table.withLock { table in
            guard table.connections[id] != nil else { return }
            let now = Self.now()
            table.connections[id]!.lastActivity = now
            table.connections[id]!.framer.append(received)
            while let frame = table.connections[id]!.framer.next() { frames.append(frame) }
            // The clock of a message starts with its first byte and stops when no part is left over.
            if table.connections[id]!.framer.pendingCount == 0 {
                table.connections[id]!.partialSince = nil
            } else if table.connections[id]!.partialSince == nil {
                table.connections[id]!.partialSince = now
            }
        }
        let connection = ConnectionID(id)
        for frame in frames {
            switch frame {
            case .message: statistics.tcpReceived.increment()
            case .ping: statistics.tcpPings.increment()
            case .oversized: statistics.tcpClosedOversized.increment()
            case .malformed: statistics.tcpClosedMalformed.increment()
            }
            let disposition = frame.disposition(source: peer, local: local, connection: connection)
            if let reply = disposition.reply { try? send(reply, on: connection) }
            if let message = disposition.message { handler(message) }
            if disposition.close {
                close(connection)
                return
            }
        }
        if outcome == .closedByPeer {
            let wasConnecting = table.withLock { $0.connections[id]?.connecting ?? false }
            statistics.tcpClosedByPeer.increment()
            close(connection)
            if wasConnecting {
                statistics.tcpConnectFailures.increment()
                if let handler = connectFailures.withLock({ $0 }) { handler(peer) }
            }
        }
    }

    func send(_ bytes: [UInt8], on connection: ConnectionID) throws(TransportError) {
        let error: TransportError? = table.withLock { table -> TransportError? in
            guard var entry = table.connections[connection.rawValue] else {
                return TransportError("\(connection) is closed")
            }
            if entry.pendingOutput.isEmpty && !entry.connecting {
                let written = bytes.withUnsafeBytes { Glibc.send(entry.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written == bytes.count { return nil }
                if written < 0 && errno != EAGAIN && errno != EWOULDBLOCK {
                    return Socket.errnoText("send on \(connection)")
                }
                entry.pendingOutput.append(contentsOf: bytes[max(written, 0)...])
            } else {
                entry.pendingOutput.append(contentsOf: bytes)
            }
            if entry.pendingOutput.count > options.maxPendingOutput {
                return TransportError("\(connection) does not read: \(entry.pendingOutput.count) bytes unsent")
            }
            watch(entry.fd, connection.rawValue, writable: true, operation: Int32(EPOLL_CTL_MOD))
            table.connections[connection.rawValue] = entry
            return nil
        }
        if let error {
            statistics.tcpSendErrors.increment()
            throw error
        }
        statistics.tcpSent.increment()
    }

    /// Sends on the open connection to `address`, or opens one (non-blocking) and queues the bytes
    /// until it is established.
    func send(_ bytes: [UInt8], to address: SocketAddress) throws(TransportError) {
        if let existing = table.withLock({ $0.byPeer[address] }) {
            try send(bytes, on: ConnectionID(existing))
            return
        }
        guard let listener = listeners.first(where: { $0.point.address.isIPv6 == address.isIPv6 }) ?? listeners.first else {
            throw TransportError("no TCP listen address")
        }
        let fd = socket(address.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Socket.errnoText("socket") }
        let result = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        guard let result else {
            Glibc.close(fd)
            throw TransportError("cannot connect to \(address): not an IP address")
        }
        if result != 0 && errno != EINPROGRESS {
            let error = Socket.errnoText("connect \(address)")
            Glibc.close(fd)
            statistics.tcpConnectFailures.increment()
            throw error
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        guard case .admitted = admit(fd: fd, peer: address, local: listener.point, pending: bytes) else {
            Glibc.close(fd)
            statistics.tcpRejectedAtLimit.increment()
            throw TransportError("connection limit reached; cannot connect to \(address)")
        }
        statistics.tcpConnected.increment()
        statistics.tcpSent.increment()
    }

    private func flush(_ id: UInt64) {
        var failed = false
        table.withLock { table in
            guard var entry = table.connections[id] else { return }
            if entry.connecting {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(entry.fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error != 0 {
                    failed = true
                    return
                }
                entry.connecting = false
            }
            guard !entry.pendingOutput.isEmpty else {
                watch(entry.fd, id, writable: false, operation: Int32(EPOLL_CTL_MOD))
                table.connections[id] = entry
                return
            }
            let written = entry.pendingOutput.withUnsafeBytes {
                Glibc.send(entry.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written > 0 { entry.pendingOutput.removeFirst(written) }
            if entry.pendingOutput.isEmpty {
                watch(entry.fd, id, writable: false, operation: Int32(EPOLL_CTL_MOD))
            }
            table.connections[id] = entry
        }
        if failed {
            statistics.tcpConnectFailures.increment()
            let peer = table.withLock { $0.connections[id]?.peer }
            close(ConnectionID(id))
            if let peer, let handler = connectFailures.withLock({ $0 }) { handler(peer) }
        }
    }

    func close(_ connection: ConnectionID) {
        let fd: Int32? = table.withLock { table in table.remove(connection.rawValue)?.fd }
        guard let fd else { return }
        statistics.tcpOpen.add(-1)
        epoll_ctl(epollFD, Int32(EPOLL_CTL_DEL), fd, nil)
        Glibc.close(fd)
    }

    /// Closes connections idle past `sip.tcp_idle_timeout` and those holding part of a message for
    /// longer than `sip.tcp_message_timeout`.
    private func closeIdle(now: Double) {
        let (idle, slow) = table.withLock { table -> ([UInt64], [UInt64]) in
            var idle: [UInt64] = [], slow: [UInt64] = []
            for (id, entry) in table.connections {
                if now - entry.lastActivity > options.idleTimeout { idle.append(id) }
                else if let since = entry.partialSince, now - since > options.messageTimeout { slow.append(id) }
            }
            return (idle, slow)
        }
        for id in idle {
            statistics.tcpClosedIdle.increment()
            close(ConnectionID(id))
        }
        for id in slow {
            statistics.tcpClosedSlow.increment()
            close(ConnectionID(id))
        }
    }

    var connectionCount: Int { table.withLock { $0.connections.count } }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        while !stopped.load(ordering: .acquiring) { usleep(10_000) }
    }
}
