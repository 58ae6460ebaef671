import Testing
@testable import SIPTransaction

@Suite struct ServerTransactionTests {
    let timers = TransactionTimers()
    let ringing = Array("SIP/2.0 180 Ringing".utf8)
    let busy = Array("SIP/2.0 486 Busy Here".utf8)
    let ok = Array("SIP/2.0 200 OK".utf8)

    @Test func inviteRetransmissionGetsTheLastResponse() {
        var tx = ServerTransaction(isInvite: true, reliable: false, timers: timers)
        #expect(tx.receiveRetransmission() == [])
        #expect(tx.sendResponse(status: 180, bytes: ringing) == [.send(ringing)])
        #expect(tx.receiveRetransmission() == [.send(ringing)])
    }

    @Test func invite2xxTerminatesAtOnce() {
        var tx = ServerTransaction(isInvite: true, reliable: false, timers: timers)
        #expect(tx.sendResponse(status: 200, bytes: ok) == [.send(ok), .terminated])
        #expect(tx.state == .terminated)
    }

    @Test func inviteNon2xxRetransmitsWithTimerGUntilAck() {
        var tx = ServerTransaction(isInvite: true, reliable: false, timers: timers)
        #expect(tx.sendResponse(status: 486, bytes: busy) == [.send(busy), .startTimer(.h, after: 32), .startTimer(.g, after: 0.5)])
        #expect(tx.timerFired(.g) == [.send(busy), .startTimer(.g, after: 1)])
        #expect(tx.timerFired(.g) == [.send(busy), .startTimer(.g, after: 2)])
        #expect(tx.timerFired(.g) == [.send(busy), .startTimer(.g, after: 4)])
        #expect(tx.timerFired(.g) == [.send(busy), .startTimer(.g, after: 4)])  // capped at T2
        #expect(tx.receiveAck() == [.startTimer(.i, after: 5)])
        #expect(tx.state == .confirmed)
        #expect(tx.timerFired(.g) == [])  // stale timer after ACK
        #expect(tx.receiveAck() == [])    // ACK retransmission absorbed
        #expect(tx.timerFired(.i) == [.terminated])
    }

    @Test func inviteWithoutAckTimesOut() {
        var tx = ServerTransaction(isInvite: true, reliable: true, timers: timers)
        #expect(tx.sendResponse(status: 486, bytes: busy) == [.send(busy), .startTimer(.h, after: 32)])
        #expect(tx.timerFired(.h) == [.timedOut, .terminated])
    }

    @Test func nonInviteAbsorbsRetransmissionsUntilTimerJ() {
        var tx = ServerTransaction(isInvite: false, reliable: false, timers: timers)
        #expect(tx.state == .trying)
        #expect(tx.receiveRetransmission() == [])
        #expect(tx.sendResponse(status: 200, bytes: ok) == [.send(ok), .startTimer(.j, after: 32)])
        #expect(tx.receiveRetransmission() == [.send(ok)])
        #expect(tx.sendResponse(status: 500, bytes: busy) == [])
        #expect(tx.timerFired(.j) == [.terminated])
    }

    @Test func reliableNonInviteEndsAtOnce() {
        var tx = ServerTransaction(isInvite: false, reliable: true, timers: timers)
        #expect(tx.sendResponse(status: 200, bytes: ok) == [.send(ok), .startTimer(.j, after: 0)])
    }
}

@Suite struct ClientTransactionTests {
    let timers = TransactionTimers()

    @Test func inviteRetransmitsWithTimerAThenTimesOutWithB() {
        var tx = ClientTransaction(isInvite: true, reliable: false, timers: timers)
        #expect(tx.start() == [.sendRequest, .startTimer(.a, after: 0.5), .startTimer(.b, after: 32)])
        #expect(tx.timerFired(.a) == [.sendRequest, .startTimer(.a, after: 1)])
        #expect(tx.timerFired(.a) == [.sendRequest, .startTimer(.a, after: 2)])
        #expect(tx.timerFired(.b) == [.timedOut, .terminated])
        #expect(tx.timerFired(.a) == [])
    }

    @Test func provisionalStopsRetransmissions() {
        var tx = ClientTransaction(isInvite: true, reliable: false, timers: timers)
        _ = tx.start()
        #expect(tx.receiveResponse(status: 100) == [.passUp(status: 100)])
        #expect(tx.timerFired(.a) == [])
        #expect(tx.timerFired(.b) == [])  // §17.1.1.2: Timer B only matters in Calling
    }

    @Test func inviteNon2xxIsAckedAndRetransmissionsReAcked() {
        var tx = ClientTransaction(isInvite: true, reliable: false, timers: timers)
        _ = tx.start()
        #expect(tx.receiveResponse(status: 486) == [.sendAck, .passUp(status: 486), .startTimer(.d, after: 32)])
        #expect(tx.receiveResponse(status: 486) == [.sendAck])
        #expect(tx.timerFired(.d) == [.terminated])
    }

    @Test func invite2xxTerminates() {
        var tx = ClientTransaction(isInvite: true, reliable: true, timers: timers)
        #expect(tx.start() == [.sendRequest, .startTimer(.b, after: 32)])
        #expect(tx.receiveResponse(status: 200) == [.passUp(status: 200), .terminated])
    }

    @Test func nonInviteUsesTimersEAndFAndK() {
        var tx = ClientTransaction(isInvite: false, reliable: false, timers: timers)
        #expect(tx.start() == [.sendRequest, .startTimer(.e, after: 0.5), .startTimer(.f, after: 32)])
        #expect(tx.timerFired(.e) == [.sendRequest, .startTimer(.e, after: 1)])
        #expect(tx.receiveResponse(status: 100) == [.passUp(status: 100)])
        #expect(tx.timerFired(.e) == [.sendRequest, .startTimer(.e, after: 4)])
        #expect(tx.receiveResponse(status: 200) == [.passUp(status: 200), .startTimer(.k, after: 5)])
        #expect(tx.receiveResponse(status: 200) == [])
        #expect(tx.timerFired(.k) == [.terminated])
    }

    @Test func nonInviteTimeout() {
        var tx = ClientTransaction(isInvite: false, reliable: true, timers: timers)
        #expect(tx.start() == [.sendRequest, .startTimer(.f, after: 32)])
        #expect(tx.timerFired(.f) == [.timedOut, .terminated])
    }

    @Test func transportErrorTerminates() {
        var tx = ClientTransaction(isInvite: true, reliable: true, timers: timers)
        _ = tx.start()
        #expect(tx.transportError() == [.terminated])
        #expect(tx.state == .terminated)
    }
}
