import Admin
import Node
import Gateway
import JSON
import Registry
import Routing
import SIPTransaction
import SIPTransport
import Synchronization

/// The gateway under test with an in-memory transport: every send lands in the inbox of the peer it
/// is addressed to, synchronously, so a trace runs deterministically with no sockets and no sleeping.
///
/// TCP peers go through the same `StreamFramer` and frame handling as the real TCP engine.
public final class InMemoryNetwork: TraceNetwork, Transport {
    private struct State {
        var inbox: [String: [TraceEvent]] = [:]
        var connectionOfPeer: [String: ConnectionID] = [:]
        var peerOfConnection: [ConnectionID: String] = [:]
        var framers: [String: StreamFramer] = [:]
        var nextConnection: UInt64 = 1
        /// Sends to addresses no peer owns; they show up as a failure in `expect nothing`.
        var unrouted: [(Destination, [UInt8])] = []
    }

    public let peers: [Trace.Peer]
    public let listen: [ListenPoint]
    public let configuration: Configuration
    private let state = Mutex(State())
    private var gateway: Gateway!
    private var dispatcher: AdminDispatcher!
    /// Virtual time: `wait` in a trace advances it and fires every transaction timer due.
    public let timers = ManualTimers()
    /// Wall-clock time of the virtual start (2026-11-21T00:00:00Z), in milliseconds.
    public static let epoch: Int64 = 1_795_219_200_000

    /// Builds the gateway from Tandem's defaults plus the trace's `config` lines, over an in-memory
    /// SQLite registry; the wall clock follows virtual time.
    public init(trace: Trace, logger: Logger) throws {
        var overrides = trace.configuration
        overrides.append("sip.listen=" + trace.gateway.map(\.description).joined(separator: ","))
        configuration = try Configuration.parse("", file: trace.name, overrides: overrides)
        peers = trace.peers
        listen = trace.gateway
        let timers = self.timers
        let start = timers.now()
        let clock: @Sendable () -> Int64 = { Self.epoch + Int64(((timers.now() - start) * 1000).rounded()) }
        let registry = try Registry(database: try Database(path: ":memory:"), realm: configuration.effectiveRealm, clock: clock)
        // The node `tandem` runs, on this network and virtual time; maintenance on the timer's
        // thread, so a `wait` sees expiries at once.
        var options = Node.Options()
        options.maintenance = nil
        options.presence = nil
        let (node, _) = try Node.assemble(configuration: configuration, registry: registry, transport: self, timers: timers,
                                          logger: logger, clock: clock, dialplans: try Self.dialplans(of: trace), options: options)
        node.start()
        gateway = node.gateway
        dispatcher = node.dispatcher
    }

    /// The trace's `dialplan` blocks compiled; a bad rule is reported at its line in the trace.
    static func dialplans(of trace: Trace) throws -> DialplanSet {
        switch DialplanSet.compile(trace.dialplans.map { ("\($0.name).dialplan", $0.text) }) {
        case .success(let plans):
            return plans
        case .failure(let problems):
            let first = problems.errors[0]
            let start = trace.dialplans.first { "\($0.name).dialplan" == first.file }?.line ?? 0
            throw Trace.ParseError(file: trace.name, line: start + first.line, reason: "dialplan: \(first.reason)")
        }
    }

    public func admin(_ method: String, _ params: JSONValue) throws -> JSONValue {
        dispatcher.handle(request: ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]) ?? .null
    }

    public var statistics: GatewayStatistics { gateway.statistics }
    public var gatewayUnderTest: Gateway { gateway }

    // MARK: TraceNetwork

    public func address(of peer: String) -> SocketAddress {
        peers.first { $0.name == peer }!.address
    }

    public func gatewayAddress(_ transport: TransportKind, ipv6: Bool) -> SocketAddress {
        localPoint(transport, ipv6: ipv6).address
    }

    private func localPoint(_ transport: TransportKind, ipv6: Bool = false) -> ListenPoint {
        listen.first { $0.transport == transport && $0.address.isIPv6 == ipv6 }
            ?? listen.first { $0.transport == transport } ?? listen[0]
    }

    public func send(_ bytes: [UInt8], from peerName: String, chunkSize: Int?) throws {
        let peer = peers.first { $0.name == peerName }!
        switch peer.transport {
        case .udp:
            gateway.receive(InboundMessage(bytes: bytes, transport: .udp, source: peer.address,
                                           local: localPoint(.udp, ipv6: peer.address.isIPv6), connection: nil))
        case .tcp:
            let size = chunkSize ?? max(bytes.count, 1)
            var offset = 0
            while offset < bytes.count {
                deliverStream(Array(bytes[offset..<min(offset + size, bytes.count)]), from: peer)
                offset += size
            }
        }
    }

    private func deliverStream(_ chunk: [UInt8], from peer: Trace.Peer) {
        let (connection, frames): (ConnectionID, [StreamFramer.Frame]) = state.withLock { state in
            let connection: ConnectionID
            if let existing = state.connectionOfPeer[peer.name] {
                connection = existing
            } else {
                connection = ConnectionID(state.nextConnection)
                state.nextConnection += 1
                state.connectionOfPeer[peer.name] = connection
                state.peerOfConnection[connection] = peer.name
                state.framers[peer.name] = StreamFramer(maxMessageSize: configuration.maxMessageSize)
            }
            state.framers[peer.name]!.append(chunk)
            var frames: [StreamFramer.Frame] = []
            while let frame = state.framers[peer.name]!.next() { frames.append(frame) }
            return (connection, frames)
        }
        for frame in frames {
            let disposition = frame.disposition(source: peer.address, local: localPoint(.tcp, ipv6: peer.address.isIPv6), connection: connection)
            if let reply = disposition.reply { try? send(reply, to: Destination(transport: .tcp, address: peer.address, connection: connection)) }
            if let message = disposition.message { gateway.receive(message) }
            if disposition.close {
                close(connection)
                return
            }
        }
    }

    public func receive(for peer: String, timeout: Double) -> TraceEvent? {
        state.withLock { state in
            guard var queue = state.inbox[peer], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            state.inbox[peer] = queue
            return first
        }
    }

    public func receiveAny(peer: String?, within: Double) -> (peer: String, event: TraceEvent)? {
        let unrouted = state.withLock { state in state.unrouted.first }
        if let (destination, bytes) = unrouted, peer == nil {
            state.withLock { _ = $0.unrouted.removeFirst() }
            return ("\(destination.transport.rawValue):\(destination.address) (no peer)", .message(bytes))
        }
        for candidate in peers.map(\.name) where peer == nil || peer == candidate {
            if let event = receive(for: candidate, timeout: 0) { return (candidate, event) }
        }
        return nil
    }

    public func close(_ peer: String) {
        state.withLock { state in
            if let connection = state.connectionOfPeer.removeValue(forKey: peer) {
                state.peerOfConnection[connection] = nil
                state.framers[peer] = nil
            }
        }
    }

    /// Advances virtual time, firing the gateway's timers (retransmissions, timeouts, Timer C).
    public func wait(_ seconds: Double) {
        timers.advance(by: seconds)
    }

    // MARK: Transport (the gateway's side)

    public func send(_ bytes: [UInt8], to destination: Destination) throws(TransportError) {
        // Sent to one of the gateway's own addresses (a route pointing back at it): deliver it there,
        // as the network would, so loops can be observed.
        if let own = listen.first(where: { $0.transport == destination.transport && $0.address == destination.address }) {
            let source = localPoint(destination.transport, ipv6: destination.address.isIPv6).address
            gateway.receive(InboundMessage(bytes: bytes, transport: destination.transport, source: source, local: own,
                                           connection: nil))
            return
        }
        let error: TransportError? = state.withLock { state in
            if destination.transport == .tcp {
                if let connection = destination.connection, let peer = state.peerOfConnection[connection] {
                    state.inbox[peer, default: []].append(.message(bytes))
                    return nil
                }
                // No such connection: open one to the peer at that address, as the real engine would.
                guard let peer = peers.first(where: { $0.transport == .tcp && $0.address == destination.address }) else {
                    return TransportError("connection refused by \(destination.address)")
                }
                if state.connectionOfPeer[peer.name] == nil {
                    let connection = ConnectionID(state.nextConnection)
                    state.nextConnection += 1
                    state.connectionOfPeer[peer.name] = connection
                    state.peerOfConnection[connection] = peer.name
                    state.framers[peer.name] = StreamFramer(maxMessageSize: configuration.maxMessageSize)
                }
                state.inbox[peer.name, default: []].append(.message(bytes))
                return nil
            }
            guard let peer = peers.first(where: { $0.transport == .udp && $0.address == destination.address }) else {
                state.unrouted.append((destination, bytes))
                return nil
            }
            state.inbox[peer.name, default: []].append(.message(bytes))
            return nil
        }
        if let error { throw error }
    }

    public func close(_ connection: ConnectionID) {
        state.withLock { state in
            guard let peer = state.peerOfConnection.removeValue(forKey: connection) else { return }
            state.connectionOfPeer[peer] = nil
            state.framers[peer] = nil
            state.inbox[peer, default: []].append(.closed)
        }
    }
}

// The state is behind a Mutex; the gateway reference is set once in init and only read after.
extension InMemoryNetwork: @unchecked Sendable {}

