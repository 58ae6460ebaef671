import Dispatch
import SIPTransport
import Synchronization
import Testing
@testable import Gateway

/// A transaction's responses leave in the order the proxy decided them, whichever worker decided
/// each (a 180 never after the 200 it preceded).
@Suite struct OutboxTests {
    let caller = Destination(transport: .udp, address: SocketAddress(host: "127.0.0.1", port: 5070))

    @Test func oneWorkerFlushesAndLaterMessagesJoinItsFlush() {
        var outbox = Outbox<String, Int>()
        let first = outbox.queue(180, to: caller, for: "tx")
        // Another worker decides the 200 while the first is sending the 180: it only queues.
        let second = outbox.queue(200, to: caller, for: "tx")
        #expect(first && !second)
        let batch = outbox.take("tx")?.map(\.0)
        #expect(batch == [180, 200])
        let retransmission = outbox.queue(200, to: caller, for: "tx")
        #expect(!retransmission)
        let again = outbox.take("tx")?.map(\.0)
        #expect(again == [200])
        let done = outbox.take("tx")
        #expect(done == nil && outbox.isEmpty)
        // The flush over, the next message starts a new one; other keys never wait on this one.
        let restarted = outbox.queue(100, to: caller, for: "tx")
        let other = outbox.queue(100, to: caller, for: "other")
        #expect(restarted && other)
    }

    /// Many workers deciding and flushing at once: what is sent for each key is exactly what was
    /// queued for it, in queue order, once each.
    @Test func concurrentWorkersSendInDecisionOrder() {
        let state = Mutex(Outbox<Int, Int>())
        let decided = Mutex([Int: [Int]]())
        let sent = Mutex([Int: [Int]]())
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<5_000 {
                let value = next.add(1, ordering: .relaxed).newValue
                let key = value % 4
                // Deciding and queueing happen under one lock, as in the proxy.
                let mustFlush = state.withLock { outbox in
                    decided.withLock { $0[key, default: []].append(value) }
                    return outbox.queue(value, to: caller, for: key)
                }
                guard mustFlush else { continue }
                while let batch = state.withLock({ $0.take(key) }) {
                    sent.withLock { $0[key, default: []] += batch.map(\.0) }
                }
            }
        }
        let expected = decided.withLock { $0 }
        let actual = sent.withLock { $0 }
        #expect(actual == expected)
        #expect(actual.values.map(\.count).reduce(0, +) == 40_000)
        #expect(state.withLock { $0.isEmpty })
    }
}
