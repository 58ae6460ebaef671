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

    /// Fires what a wheel holds when moved to `time`, recording the names in order.
    private func advance(_ wheel: inout TimerWheel, to time: Double, _ fired: borrowing Mutex<[String]>) -> [String] {
        var due: [@Sendable () -> Void] = []
        wheel.advance(to: time, into: &due)
        fired.withLock { $0.removeAll() }
        for body in due { body() }
        return fired.withLock { $0 }
    }

    @Test func wheelFiresAtTheTickOfTheDeadlineInTickThenInsertionOrder() {
        var wheel = TimerWheel(tick: 0.01, buckets: 8, start: 100)
        let fired = Mutex<[String]>([])
        for (name, deadline) in [("c", 100.035), ("a", 100.02), ("b", 100.015), ("d", 100.035), ("e", 100.05)] {
            wheel.insert(TimerID(UInt64(name.unicodeScalars.first!.value)), deadline: deadline) { fired.withLock { $0.append(name) } }
        }
        #expect(wheel.count == 5)
        // Never early: 100.015 is due at the 100.02 tick, not the 100.01 one.
        #expect(advance(&wheel, to: 100.0101, fired) == [])
        #expect(advance(&wheel, to: 100.0201, fired) == ["a", "b"])
        #expect(advance(&wheel, to: 100.0401, fired) == ["c", "d"])
        #expect(wheel.count == 1)
        #expect(advance(&wheel, to: 100.05, fired) == ["e"])
        #expect(wheel.count == 0)
    }

    @Test func wheelKeepsTimersBeyondOneTurnUntilTheirTick() {
        // 8 buckets of 10 ms: one turn is 80 ms; a 250 ms timer shares its bucket with earlier ones.
        var wheel = TimerWheel(tick: 0.01, buckets: 8, start: 0)
        let fired = Mutex<[String]>([])
        wheel.insert(TimerID(1), deadline: 0.25) { fired.withLock { $0.append("long") } }
        wheel.insert(TimerID(2), deadline: 0.09) { fired.withLock { $0.append("short") } }
        var seen: [String] = []
        var time = 0.0
        while time < 0.3 {
            time += 0.01
            for name in advance(&wheel, to: time + 0.0001, fired) { seen.append("\(name)@\(Int((time * 100).rounded()))") }
        }
        #expect(seen == ["short@9", "long@25"])
    }

    @Test func wheelAfterAStallFiresEverythingDueOnce() {
        var wheel = TimerWheel(tick: 0.01, buckets: 8, start: 0)
        let fired = Mutex<[String]>([])
        for index in 1...20 {
            wheel.insert(TimerID(UInt64(index)), deadline: Double(index) * 0.05) { fired.withLock { $0.append("t\(index)") } }
        }
        // Two seconds without a tick (the machine was suspended): more than a turn of the wheel.
        let late = advance(&wheel, to: 0.52, fired)
        #expect(Set(late) == Set((1...10).map { "t\($0)" }))
        #expect(late.count == 10)
        #expect(wheel.count == 10)
        #expect(advance(&wheel, to: 2, fired).count == 10)
    }

    @Test func wheelCancelsAndReplacesByIDAndReusesSlots() {
        var wheel = TimerWheel(tick: 0.01, buckets: 16, start: 0)
        let fired = Mutex<[String]>([])
        for index in 1...100 {
            wheel.insert(TimerID(UInt64(index)), deadline: 0.001 * Double(index)) { fired.withLock { $0.append("\(index)") } }
        }
        for index in stride(from: 2, through: 100, by: 2) { wheel.remove(TimerID(UInt64(index))) }
        wheel.remove(TimerID(999))
        #expect(wheel.count == 50)
        // Scheduling an id again replaces its timer.
        wheel.insert(TimerID(1), deadline: 0.5) { fired.withLock { $0.append("1 again") } }
        #expect(wheel.count == 50)
        let first = advance(&wheel, to: 0.2, fired)
        #expect(first == stride(from: 3, through: 99, by: 2).map { "\($0)" })
        #expect(advance(&wheel, to: 0.6, fired) == ["1 again"])
        // A timer scheduled in the past fires at the next tick, not in one already processed.
        wheel.insert(TimerID(7), deadline: 0.1) { fired.withLock { $0.append("late") } }
        #expect(advance(&wheel, to: 0.6, fired) == [])
        #expect(advance(&wheel, to: 0.61, fired) == ["late"])
        #expect(wheel.count == 0)
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

    @Test func timerThreadCancelsAcrossItsWheels() async throws {
        let timers = TimerThread(shards: 4)
        defer { timers.stop() }
        let fired = Atomic<Int>(0)
        for id in 1...40 {
            timers.schedule(TimerID(UInt64(id)), after: 0.02) { fired.add(1, ordering: .relaxed) }
        }
        for id in stride(from: 1, through: 40, by: 4) { timers.cancel(TimerID(UInt64(id))) }
        #expect(timers.pending == 30)
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(fired.load(ordering: .relaxed) == 30)
        #expect(timers.pending == 0)
    }
}
