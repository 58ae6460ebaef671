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

    @Test func manualTimersFireOnlyWhenAdvanced() {
        let timers = ManualTimers()
        let fired = Mutex<[String]>([])
        timers.schedule(after: 2) { fired.withLock { $0.append("two") } }
        timers.schedule(after: 0.5) {
            fired.withLock { $0.append("half") }
            timers.schedule(after: 0.5) { fired.withLock { $0.append("one") } }
        }
        timers.advance(by: 0.4)
        #expect(fired.withLock { $0 } == [])
        timers.advance(by: 1.6)
        #expect(fired.withLock { $0 } == ["half", "one", "two"])
    }

    @Test func timerThreadFires() async throws {
        let timers = TimerThread()
        defer { timers.stop() }
        let fired = Atomic<Int>(0)
        timers.schedule(after: 0.05) { fired.add(1, ordering: .relaxed) }
        timers.schedule(after: 0.01) { fired.add(10, ordering: .relaxed) }
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(fired.load(ordering: .relaxed) == 11)
    }
}
