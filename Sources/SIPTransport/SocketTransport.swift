/// The real network: UDP listeners and the TCP engine behind the `Transport` protocol.
public final class SocketTransport: Transport {
    /// Keys of the `[sip]` section that shape the transport (docs/configuration.md).
    public struct Options: Sendable {
        public var listen: [ListenPoint]
        public var udpWorkers: Int
        public var udpReceiveBuffer: Int
        public var maxMessageSize: Int
        public var tcpIdleTimeout: Double
        public var tcpMaxConnections: Int
        public var tcpMaxConnectionsPerSource: Int
        public var tcpMessageTimeout: Double

        public init(listen: [ListenPoint], udpWorkers: Int, udpReceiveBuffer: Int, maxMessageSize: Int,
                    tcpIdleTimeout: Double, tcpMaxConnections: Int, tcpMaxConnectionsPerSource: Int = 128,
                    tcpMessageTimeout: Double = 10) {
            self.listen = listen
            self.udpWorkers = udpWorkers
            self.udpReceiveBuffer = udpReceiveBuffer
            self.maxMessageSize = maxMessageSize
            self.tcpIdleTimeout = tcpIdleTimeout
            self.tcpMaxConnections = tcpMaxConnections
            self.tcpMaxConnectionsPerSource = tcpMaxConnectionsPerSource
            self.tcpMessageTimeout = tcpMessageTimeout
        }
    }

    public let statistics: TransportStatistics
    private let udp: [UDPListener]
    private let tcp: TCPEngine?
    private let options: Options

    /// Binds every listen point; throws before anything listens if one cannot be bound.
    public init(options: Options, statistics: TransportStatistics = TransportStatistics()) throws(TransportError) {
        self.options = options
        self.statistics = statistics
        var udp: [UDPListener] = []
        for point in options.listen where point.transport == .udp {
            udp.append(try UDPListener(point: point, receiveBuffer: options.udpReceiveBuffer, statistics: statistics))
        }
        let tcpPoints = options.listen.filter { $0.transport == .tcp }
        if tcpPoints.isEmpty {
            tcp = nil
        } else {
            do {
                tcp = try TCPEngine(
                    points: tcpPoints,
                    options: .init(maxMessageSize: options.maxMessageSize, idleTimeout: options.tcpIdleTimeout,
                                   maxConnections: options.tcpMaxConnections,
                                   maxConnectionsPerSource: options.tcpMaxConnectionsPerSource,
                                   messageTimeout: options.tcpMessageTimeout),
                    statistics: statistics)
            } catch {
                for listener in udp { listener.stop() }
                throw error
            }
        }
        self.udp = udp
    }

    /// The addresses actually bound (a configured port 0 becomes the kernel's choice).
    public var listenPoints: [ListenPoint] { udp.map(\.point) + (tcp?.points ?? []) }

    /// Called with the address of an outbound TCP connection that failed after `send` returned, so the
    /// requests queued on it can be failed over at once instead of timing out.
    public func onConnectFailure(_ handler: @escaping @Sendable (SocketAddress) -> Void) {
        tcp?.connectFailures.withLock { $0 = handler }
    }

    public func start(handler: @escaping @Sendable (InboundMessage) -> Void) {
        for listener in udp { listener.start(workers: options.udpWorkers, handler: handler) }
        tcp?.start(handler: handler)
    }

    public func send(_ bytes: [UInt8], to destination: Destination) throws(TransportError) {
        switch destination.transport {
        case .udp:
            let family = destination.address.isIPv6
            let listener = udp.first { $0.point == destination.local }
                ?? udp.first { $0.point.address.isIPv6 == family }
            guard let listener else {
                throw TransportError("no UDP listen address of the family of \(destination.address)")
            }
            try listener.send(bytes, to: destination.address)
        case .tcp:
            guard let tcp else { throw TransportError("no TCP listen address") }
            if let connection = destination.connection {
                do {
                    try tcp.send(bytes, on: connection)
                    return
                } catch {
                    // The connection closed meanwhile: RFC 3261 §18.2.2 falls back to a new one.
                }
            }
            try tcp.send(bytes, to: destination.address)
        }
    }

    public func close(_ connection: ConnectionID) {
        tcp?.close(connection)
    }

    public var openConnections: Int { tcp?.connectionCount ?? 0 }

    public func stop() {
        for listener in udp { listener.stop() }
        tcp?.stop()
    }
}
