/// RFC 3261 timer values (§17.1.1.1, Table 4), configurable as `sip.t1`, `sip.t2`, `sip.t4`, `sip.timer_c`.
public struct TransactionTimers: Sendable, Equatable {
    /// RTT estimate (default 500 ms).
    public var t1: Double
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    public var t2: Double
    /// Maximum time a message stays in the network (default 5 s).
    public var t4: Double
    /// Proxy INVITE transaction timeout (§16.6 step 11, default 180 s).
    public var timerC: Double

    public init(t1: Double = 0.5, t2: Double = 4, t4: Double = 5, timerC: Double = 180) {
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.timerC = timerC
    }

    /// Timers B, F, H and J: 64·T1.
    public var sixtyFourT1: Double { 64 * t1 }
    /// Timer D: at least 32 s for unreliable transports, 0 for reliable ones.
    public func timerD(reliable: Bool) -> Double { reliable ? 0 : max(32, sixtyFourT1) }
}

/// The RFC 3261 §17 timers by name.
public enum TransactionTimer: String, Sendable, Hashable {
    /// Client INVITE retransmission (UDP).
    case a = "A"
    /// Client INVITE timeout.
    case b = "B"
    /// Client INVITE: wait for response retransmissions after a non-2xx.
    case d = "D"
    /// Client non-INVITE retransmission (UDP).
    case e = "E"
    /// Client non-INVITE timeout.
    case f = "F"
    /// Server INVITE response retransmission (UDP).
    case g = "G"
    /// Server INVITE: wait for ACK.
    case h = "H"
    /// Server INVITE: absorb ACK retransmissions.
    case i = "I"
    /// Server non-INVITE: absorb request retransmissions.
    case j = "J"
    /// Client non-INVITE: absorb response retransmissions.
    case k = "K"
}
