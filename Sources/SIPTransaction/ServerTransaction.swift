/// A server transaction (RFC 3261 §17.2) as a value: events in, actions out. No sockets, no clock.
///
/// INVITE transactions follow Figure 7 (proceeding → completed → confirmed → terminated, with 2xx
/// ending the transaction at once, as §17.2.1 asks); non-INVITE ones follow Figure 8.
public struct ServerTransaction: Sendable {
    public enum State: Sendable, Equatable { case trying, proceeding, completed, confirmed, terminated }

    public enum Action: Sendable, Equatable {
        /// Send these bytes to the transaction's peer.
        case send([UInt8])
        case startTimer(TransactionTimer, after: Double)
        /// The ACK for a non-2xx final response never came (Timer H): tell the proxy core.
        case timedOut
        /// The transaction is over; remove it from the table.
        case terminated
    }

    public let isInvite: Bool
    public let reliable: Bool
    public let timers: TransactionTimers
    public private(set) var state: State
    /// The last response sent, re-sent on a request retransmission (§17.2.1, §17.2.2).
    public private(set) var lastResponse: [UInt8]?
    public private(set) var lastStatus: Int = 0
    private var timerGInterval: Double

    public init(isInvite: Bool, reliable: Bool, timers: TransactionTimers) {
        self.isInvite = isInvite
        self.reliable = reliable
        self.timers = timers
        state = isInvite ? .proceeding : .trying
        timerGInterval = timers.t1
    }

    /// The same request arrived again.
    public mutating func receiveRetransmission() -> [Action] {
        switch state {
        case .proceeding, .completed:
            return lastResponse.map { [.send($0)] } ?? []
        case .trying, .confirmed, .terminated:
            return []
        }
    }

    /// The core sends a response through this transaction.
    public mutating func sendResponse(status: Int, bytes: [UInt8]) -> [Action] {
        switch state {
        case .trying, .proceeding:
            lastResponse = bytes
            lastStatus = status
            if status < 200 {
                state = .proceeding
                return [.send(bytes)]
            }
            if isInvite {
                if status < 300 {
                    // §17.2.1: a 2xx ends the server INVITE transaction; the proxy forwards any
                    // retransmitted 2xx statelessly and the ACK goes end to end.
                    state = .terminated
                    return [.send(bytes), .terminated]
                }
                state = .completed
                var actions: [Action] = [.send(bytes), .startTimer(.h, after: timers.sixtyFourT1)]
                if !reliable { actions.append(.startTimer(.g, after: timerGInterval)) }
                return actions
            }
            state = .completed
            return [.send(bytes), .startTimer(.j, after: reliable ? 0 : timers.sixtyFourT1)]
        case .completed, .confirmed, .terminated:
            return []
        }
    }

    /// An ACK matched this INVITE transaction (only a non-2xx final response is ACKed hop by hop).
    public mutating func receiveAck() -> [Action] {
        guard isInvite, state == .completed else { return [] }
        state = .confirmed
        return [.startTimer(.i, after: reliable ? 0 : timers.t4)]
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> [Action] {
        switch (timer, state) {
        case (.g, .completed):
            timerGInterval = min(timerGInterval * 2, timers.t2)
            return (lastResponse.map { [.send($0)] } ?? []) + [.startTimer(.g, after: timerGInterval)]
        case (.h, .completed):
            state = .terminated
            return [.timedOut, .terminated]
        case (.i, .confirmed), (.j, .completed):
            state = .terminated
            return [.terminated]
        default:
            return []
        }
    }

    /// The transport could not deliver a response (§17.2.4).
    public mutating func transportError() -> [Action] {
        guard state != .terminated else { return [] }
        state = .terminated
        return [.terminated]
    }
}
