import SIP
import SIPTransport
import Testing
@testable import Gateway

/// The registrar's answers kept for retransmissions: at least Timer J, at most one and a half, and
/// dropped a generation at a time.
@Suite struct AnsweredRequestsTests {
    let destination = Destination(transport: .udp, address: SocketAddress(host: "192.0.2.1", port: 5060))

    func key(_ n: Int) -> ServerKey {
        ServerKey(branch: "z9hG4bK\(n)", sentBy: "192.0.2.1:5060", method: .register, shard: 0)
    }

    @Test func anAnswerIsKeptForTimerJAndGoneByOneAndAHalf() {
        var answered = AnsweredRequests()
        // Generations of 16 s from 100: key 1 at its start, key 2 at its very end, key 3 in the next.
        answered.remember(key(1), .init(bytes: [1], destination: destination), now: 100, timerJ: 32)
        answered.remember(key(2), .init(bytes: [2], destination: destination), now: 115.9, timerJ: 32)
        answered.remember(key(3), .init(bytes: [3], destination: destination), now: 116.5, timerJ: 32)
        // Each is there a whole Timer J after it was remembered.
        #expect(answered.answer(to: key(1), now: 132, timerJ: 32)?.bytes == [1])
        #expect(answered.answer(to: key(2), now: 147.8, timerJ: 32)?.bytes == [2])
        #expect(answered.answer(to: key(4), now: 147.8, timerJ: 32) == nil)
        // The first generation goes whole at 148 (key 1 after 48 s, key 2 after 32.1 s).
        #expect(answered.answer(to: key(1), now: 148, timerJ: 32) == nil)
        #expect(answered.answer(to: key(2), now: 148, timerJ: 32) == nil)
        #expect(answered.answer(to: key(3), now: 148, timerJ: 32)?.bytes == [3])
        #expect(answered.answer(to: key(3), now: 164, timerJ: 32) == nil)
        #expect(answered.count == 0)
    }

    @Test func aLongPauseDropsEverything() {
        var answered = AnsweredRequests()
        for n in 0..<100 { answered.remember(key(n), .init(bytes: [UInt8(n)], destination: destination), now: Double(n) / 10, timerJ: 32) }
        #expect(answered.count == 100)
        #expect(answered.answer(to: key(99), now: 10_000, timerJ: 32) == nil)
        #expect(answered.count == 0)
        // And it starts over from then.
        answered.remember(key(7), .init(bytes: [7], destination: destination), now: 10_001, timerJ: 32)
        #expect(answered.answer(to: key(7), now: 10_033, timerJ: 32)?.bytes == [7])
    }
}
