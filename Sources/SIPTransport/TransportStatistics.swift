import Synchronization

/// Counters of the transport layer; read by `stats.get`.
public final class TransportStatistics: Sendable {
    public let udpReceived = Counter()
    public let udpSent = Counter()
    public let udpSendErrors = Counter()
    public let udpKeepalives = Counter()
    public let tcpAccepted = Counter()
    /// Connections open now, inbound and outbound (a gauge).
    public let tcpOpen = Counter()
    public let tcpRejectedAtLimit = Counter()
    /// accept() refused for want of a descriptor (the process's open-files limit).
    public let tcpAcceptFailures = Counter()
    public let tcpRejectedPerSource = Counter()
    public let tcpClosedSlow = Counter()
    public let tcpClosedIdle = Counter()
    public let tcpClosedByPeer = Counter()
    public let tcpClosedMalformed = Counter()
    public let tcpClosedOversized = Counter()
    public let tcpReceived = Counter()
    public let tcpSent = Counter()
    public let tcpSendErrors = Counter()
    public let tcpPings = Counter()
    public let tcpConnected = Counter()
    public let tcpConnectFailures = Counter()

    public init() {}

    public func snapshot() -> [(String, Int)] {
        [
            ("udp.received", udpReceived.value),
            ("udp.sent", udpSent.value),
            ("udp.send_errors", udpSendErrors.value),
            ("udp.keepalives", udpKeepalives.value),
            ("tcp.accepted", tcpAccepted.value),
            ("tcp.open", tcpOpen.value),
            ("tcp.rejected_at_limit", tcpRejectedAtLimit.value),
            ("tcp.accept_failures", tcpAcceptFailures.value),
            ("tcp.rejected_per_source", tcpRejectedPerSource.value),
            ("tcp.closed_slow", tcpClosedSlow.value),
            ("tcp.closed_idle", tcpClosedIdle.value),
            ("tcp.closed_by_peer", tcpClosedByPeer.value),
            ("tcp.closed_malformed", tcpClosedMalformed.value),
            ("tcp.closed_oversized", tcpClosedOversized.value),
            ("tcp.received", tcpReceived.value),
            ("tcp.sent", tcpSent.value),
            ("tcp.send_errors", tcpSendErrors.value),
            ("tcp.pings", tcpPings.value),
            ("tcp.connected", tcpConnected.value),
            ("tcp.connect_failures", tcpConnectFailures.value),
        ]
    }
}
