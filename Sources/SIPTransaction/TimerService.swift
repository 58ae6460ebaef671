#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Schedules callbacks on a monotonic clock. The proxy receives one from the executable: the real
/// `TimerThread` in production, a manual clock in tests, so timer behaviour is tested without sleeping.
public protocol TimerService: Sendable {
    /// Monotonic seconds.
    func now() -> Double
    /// Runs `body` once, `after` seconds from now, on the service's thread.
    func schedule(after: Double, _ body: @escaping @Sendable () -> Void)
}

/// A binary min-heap of deadlines, shared by the real and the manual timer services.
public struct TimerHeap: Sendable {
    struct Entry: Sendable {
        var deadline: Double
        var sequence: UInt64
        var body: @Sendable () -> Void
    }

    private var entries: [Entry] = []
    private var sequence: UInt64 = 0

    public init() {}

    public var count: Int { entries.count }
    public var nextDeadline: Double? { entries.first?.deadline }

    public mutating func insert(deadline: Double, _ body: @escaping @Sendable () -> Void) {
        sequence += 1
        entries.append(Entry(deadline: deadline, sequence: sequence, body: body))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry due at or before `time`.
    public mutating func popDue(_ time: Double) -> (@Sendable () -> Void)? {
        guard let first = entries.first, first.deadline <= time else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < entries.count, less(left, smallest) { smallest = left }
                if right < entries.count, less(right, smallest) { smallest = right }
                if smallest == parent { break }
                entries.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first.body
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        entries[a].deadline < entries[b].deadline
            || (entries[a].deadline == entries[b].deadline && entries[a].sequence < entries[b].sequence)
    }
}

/// The production timer service: one thread waking on a fixed tick (10 ms by default) and running
/// every timer due. SIP timers are at least T1 (500 ms) apart, so a tick costs no accuracy that
/// matters, and scheduling never wakes the thread: no context switch per message (Kamailio's timer
/// works on ticks the same way).
public final class TimerThread: TimerService {
    private let heap = Mutex(TimerHeap())
    private let condition = NSCondition()
    private let stopping = Atomic<Bool>(false)
    private let tick: Double

    public init(tick: Double = 0.01) {
        self.tick = tick
        let thread = Thread { [self] in self.run() }
        thread.name = "timers"
        thread.start()
    }

    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public func schedule(after: Double, _ body: @escaping @Sendable () -> Void) {
        let deadline = now() + max(after, 0)
        heap.withLock { $0.insert(deadline: deadline, body) }
    }

    public var pending: Int { heap.withLock { $0.count } }

    private func run() {
        while !stopping.load(ordering: .relaxed) {
            let time = now()
            while let body = heap.withLock({ $0.popDue(time) }) { body() }
            condition.lock()
            _ = condition.wait(until: Date(timeIntervalSinceNow: tick))
            condition.unlock()
        }
    }

    public func stop() {
        stopping.store(true, ordering: .relaxed)
        condition.lock()
        condition.signal()
        condition.unlock()
    }
}

// NSCondition is thread-safe by design; the heap is behind a Mutex.
extension TimerThread: @unchecked Sendable {}

/// Virtual time for tests: nothing fires until `advance(by:)` moves the clock past a deadline.
public final class ManualTimers: TimerService {
    private struct State: Sendable {
        var now: Double = 1_000
        var heap = TimerHeap()
    }
    private let state = Mutex(State())

    public init() {}

    public func now() -> Double { state.withLock { $0.now } }

    public func schedule(after: Double, _ body: @escaping @Sendable () -> Void) {
        state.withLock { $0.heap.insert(deadline: $0.now + max(after, 0), body) }
    }

    public var pending: Int { state.withLock { $0.heap.count } }

    /// Moves time forward, firing every timer due on the way in deadline order (timers scheduled by
    /// those callbacks fire too when they fall within the interval).
    public func advance(by seconds: Double) {
        let target = state.withLock { $0.now + seconds }
        while true {
            let due: (@Sendable () -> Void)? = state.withLock { state in
                guard let deadline = state.heap.nextDeadline, deadline <= target else { return nil }
                state.now = max(state.now, deadline)
                return state.heap.popDue(deadline)
            }
            guard let due else { break }
            due()
        }
        state.withLock { $0.now = target }
    }
}
