import Synchronization
import Testing
@testable import SIPTransaction

@Suite struct TimerTests {
    @Test func heapPopsInDeadlineThenInsertionOrder() {
        var heap = TimerHeap()
        let fired = Mutex<[Int]>([])
        for (deadline, id) in [(5.0, 1), (1.0, 2), (3.0, 3), (1.0, 4), (9.0, 5)] {
            heap.insert(deadline: deadline) { fired.withLock { $0.append(id) } }
        }
        while let body = heap.popDue(6) { body() }
        #expect(fired.withLock { $0 } == [2, 4, 3, 1])
        #expect(heap.count == 1)
    }

    @Test func cancelledTimersNeverFireAndFreeTheirSlot() {
        var heap = TimerHeap()
        let fired = Mutex<[Int]>([])
        for id in 1...100 {
            heap.insert(TimerID(UInt64(id)), deadline: Double(101 - id)) { fired.withLock { $0.append(id) } }
        }
        for id in stride(from: 2, through: 100, by: 2) { heap.remove(TimerID(UInt64(id))) }
        heap.remove(TimerID(999))
        #expect(heap.count == 50)
        while let body = heap.popDue(1_000) { body() }
        #expect(fired.withLock { $0 } == Array(stride(from: 99, through: 1, by: -2)))
    }

    @Test func manualTimersFireOnlyWhenAdvanced() {
        let timers = ManualTimers()
        let fired = Mutex<[String]>([])
        timers.schedule(TimerID(1), after: 2) { fired.withLock { $0.append("two") } }
        timers.schedule(TimerID(2), after: 0.5) {
            fired.withLock { $0.append("half") }
            timers.schedule(TimerID(3), after: 0.5) { fired.withLock { $0.append("one") } }
        }
        timers.schedule(TimerID(4), after: 1) { fired.withLock { $0.append("cancelled") } }
        timers.cancel(TimerID(4))
        timers.advance(by: 0.4)
        #expect(fired.withLock { $0 } == [])
        timers.advance(by: 1.6)
        #expect(fired.withLock { $0 } == ["half", "one", "two"])
    }

    @Test func timerThreadFires() async throws {
        let timers = TimerThread()
        defer { timers.stop() }
        let fired = Atomic<Int>(0)
        timers.schedule(TimerID(1), after: 0.05) { fired.add(1, ordering: .relaxed) }
        timers.schedule(TimerID(2), after: 0.01) { fired.add(10, ordering: .relaxed) }
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(fired.load(ordering: .relaxed) == 11)
    }
}
