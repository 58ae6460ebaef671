/// A client transaction (RFC 3261 §17.1) as a value: events in, actions out.
///
/// INVITE transactions follow Figure 5 with RFC 6026's correction left out (a 2xx terminates the
/// transaction and further 2xx are passed up by the proxy statelessly); non-INVITE ones Figure 6.
public struct ClientTransaction: Sendable {
    public enum State: Sendable, Equatable { case calling, trying, proceeding, completed, terminated }

    public enum Action: Sendable, Equatable {
        /// Send (or re-send) the request bytes.
        case sendRequest
        /// Send the ACK for a non-2xx final response (§17.1.1.3); the core builds it.
        case sendAck
        case startTimer(TransactionTimer, after: Double)
        /// Hand a response to the proxy core.
        case passUp(status: Int)
        /// No final response arrived (Timer B or F): the core acts as if a 408 had arrived (§16.7 step 2).
        case timedOut
        case terminated
    }

    public let isInvite: Bool
    public let reliable: Bool
    public let timers: TransactionTimers
    public private(set) var state: State
    private var retransmitInterval: Double

    public init(isInvite: Bool, reliable: Bool, timers: TransactionTimers) {
        self.isInvite = isInvite
        self.reliable = reliable
        self.timers = timers
        state = isInvite ? .calling : .trying
        retransmitInterval = timers.t1
    }

    /// Starts the transaction: the request goes out, with its retransmission and timeout timers.
    public mutating func start() -> [Action] {
        var actions: [Action] = [.sendRequest]
        if isInvite {
            if !reliable { actions.append(.startTimer(.a, after: retransmitInterval)) }
            actions.append(.startTimer(.b, after: timers.sixtyFourT1))
        } else {
            if !reliable { actions.append(.startTimer(.e, after: retransmitInterval)) }
            actions.append(.startTimer(.f, after: timers.sixtyFourT1))
        }
        return actions
    }

    public mutating func receiveResponse(status: Int) -> [Action] {
        switch state {
        case .calling, .trying, .proceeding:
            if status < 200 {
                state = .proceeding
                return [.passUp(status: status)]
            }
            if isInvite && status < 300 {
                state = .terminated
                return [.passUp(status: status), .terminated]
            }
            state = .completed
            if isInvite {
                return [.sendAck, .passUp(status: status), .startTimer(.d, after: timers.timerD(reliable: reliable))]
            }
            return [.passUp(status: status), .startTimer(.k, after: reliable ? 0 : timers.t4)]
        case .completed:
            // A retransmitted final response: re-ACK it (INVITE), absorb it otherwise.
            return isInvite && status >= 300 ? [.sendAck] : []
        case .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> [Action] {
        switch (timer, state) {
        case (.a, .calling):
            retransmitInterval *= 2
            return [.sendRequest, .startTimer(.a, after: retransmitInterval)]
        case (.b, .calling):
            state = .terminated
            return [.timedOut, .terminated]
        case (.e, .trying), (.e, .proceeding):
            // §17.1.2.2: in Proceeding the interval is T2.
            retransmitInterval = state == .trying ? min(retransmitInterval * 2, timers.t2) : timers.t2
            return [.sendRequest, .startTimer(.e, after: retransmitInterval)]
        case (.f, .trying), (.f, .proceeding):
            state = .terminated
            return [.timedOut, .terminated]
        case (.d, .completed), (.k, .completed):
            state = .terminated
            return [.terminated]
        default:
            return []
        }
    }

    /// The transport could not send the request (§17.1.4): treated as a 503 by the core (§16.7 step 2
    /// asks for 408 on timeouts; a refused connection is a 503 Service Unavailable).
    public mutating func transportError() -> [Action] {
        guard state != .terminated, state != .completed else { return [] }
        state = .terminated
        return [.terminated]
    }
}
