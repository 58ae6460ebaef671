#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation
import Synchronization

/// Names one scheduled timer, so it can be cancelled; chosen by the caller (unique per service).
public struct TimerID: Sendable, Hashable {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}

/// Schedules callbacks on a monotonic clock. The proxy receives one from the executable: the real
/// `TimerThread` in production, a manual clock in tests, so timer behaviour is tested without sleeping.
public protocol TimerService: Sendable {
    /// Monotonic seconds.
    func now() -> Double
    /// Runs `body` once, `after` seconds from now, on the service's thread.
    func schedule(_ id: TimerID, after: Double, _ body: @escaping @Sendable () -> Void)
    /// Forgets a timer that has not fired: its memory is freed now, not at its deadline. Cancelling
    /// an unknown or fired timer does nothing.
    func cancel(_ id: TimerID)
}

/// A binary min-heap of deadlines with removal by id: the manual timer service's exact virtual time.
public struct TimerHeap: Sendable {
    struct Entry: Sendable {
        var deadline: Double
        var sequence: UInt64
        var id: TimerID
        var body: @Sendable () -> Void
    }

    private var entries: [Entry] = []
    /// Where each pending timer sits in `entries`, kept up to date on every move.
    private var positions: [TimerID: Int] = [:]
    private var sequence: UInt64 = 0

    public init() {}

    public var count: Int { entries.count }
    public var nextDeadline: Double? { entries.first?.deadline }

    public mutating func insert(_ id: TimerID = TimerID(0), deadline: Double, _ body: @escaping @Sendable () -> Void) {
        sequence += 1
        if id.rawValue != 0, positions[id] != nil { remove(id) }
        entries.append(Entry(deadline: deadline, sequence: sequence, id: id, body: body))
        place(entries.count - 1)
        siftUp(entries.count - 1)
    }

    /// Removes and returns the earliest entry due at or before `time`.
    public mutating func popDue(_ time: Double) -> (@Sendable () -> Void)? {
        guard let first = entries.first, first.deadline <= time else { return nil }
        removeAt(0)
        return first.body
    }

    public mutating func remove(_ id: TimerID) {
        guard let index = positions[id] else { return }
        removeAt(index)
    }

    private mutating func removeAt(_ index: Int) {
        let removed = entries[index]
        if removed.id.rawValue != 0 { positions[removed.id] = nil }
        let last = entries.removeLast()
        guard index < entries.count else { return }
        entries[index] = last
        place(index)
        siftDown(siftUp(index))
    }

    private mutating func place(_ index: Int) {
        let id = entries[index].id
        if id.rawValue != 0 { positions[id] = index }
    }

    private mutating func swap(_ a: Int, _ b: Int) {
        entries.swapAt(a, b)
        place(a)
        place(b)
    }

    @discardableResult
    private mutating func siftUp(_ start: Int) -> Int {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            swap(child, parent)
            child = parent
        }
        return child
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count, less(left, smallest) { smallest = left }
            if right < entries.count, less(right, smallest) { smallest = right }
            if smallest == parent { return }
            swap(parent, smallest)
            parent = smallest
        }
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        entries[a].deadline < entries[b].deadline
            || (entries[a].deadline == entries[b].deadline && entries[a].sequence < entries[b].sequence)
    }
}

/// The production timer service: one thread waking on a fixed tick (10 ms by default) and running
/// every timer due. SIP timers are at least T1 (500 ms) apart, so a tick costs no accuracy that
/// matters, and scheduling never wakes the thread: no context switch per message (Kamailio's timer
/// works on ticks the same way). Timers sit in timing wheels, several of them chosen by timer id,
/// each behind its own lock, so workers scheduling at the same moment rarely wait for each other or
/// for the timer thread.
public final class TimerThread: TimerService {
    private final class Shard: Sendable {
        let wheel: Mutex<TimerWheel>
        init(_ wheel: TimerWheel) { self.wheel = Mutex(wheel) }
    }
    private let shards: [Shard]
    private let stopping = Atomic<Bool>(false)
    private let tick: Double

    public init(tick: Double = 0.01, shards: Int = 8) {
        self.tick = tick
        let start = Self.monotonic()
        self.shards = (0..<max(shards, 1)).map { _ in Shard(TimerWheel(tick: tick, start: start)) }
        let thread = Thread { [self] in
            tandem_pthread_setname_np(pthread_self(), "timers")
            self.run()
        }
        thread.name = "timers"
        thread.start()
    }

    public func now() -> Double { Self.monotonic() }

    private static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func shard(_ id: TimerID) -> Shard {
        shards[Int(id.rawValue % UInt64(shards.count))]
    }

    public func schedule(_ id: TimerID, after: Double, _ body: @escaping @Sendable () -> Void) {
        let deadline = now() + max(after, 0)
        shard(id).wheel.withLock { $0.insert(id, deadline: deadline, body) }
    }

    public func cancel(_ id: TimerID) {
        shard(id).wheel.withLock { $0.remove(id) }
    }

    public var pending: Int { shards.reduce(0) { total, shard in total + shard.wheel.withLock { $0.count } } }

    private func run() {
        var due: [@Sendable () -> Void] = []
        while !stopping.load(ordering: .relaxed) {
            let time = now()
            for shard in shards {
                shard.wheel.withLock { $0.advance(to: time, into: &due) }
                // Outside the lock: a timer's work may schedule or cancel timers of the same wheel.
                for body in due { body() }
                due.removeAll(keepingCapacity: true)
            }
            // A relative sleep on the monotonic clock: a wait until a wall-clock date (NSCondition,
            // pthread_cond_timedwait) would stall every SIP timer for an hour when NTP or DST steps
            // the wall clock back, and never ends under a faked date.
            var interval = timespec(tv_sec: Int(tick), tv_nsec: Int((tick - tick.rounded(.down)) * 1e9))
            var left = timespec()
            while clock_nanosleep(CLOCK_MONOTONIC, 0, &interval, &left) == EINTR { interval = left }
        }
    }

    /// Stops the thread within one tick; timers still pending never fire.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
    }
}

// Each wheel is behind a Mutex, the stop flag atomic, the tick immutable.
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

    public func schedule(_ id: TimerID, after: Double, _ body: @escaping @Sendable () -> Void) {
        state.withLock { $0.heap.insert(id, deadline: $0.now + max(after, 0), body) }
    }

    public func cancel(_ id: TimerID) {
        state.withLock { $0.heap.remove(id) }
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
