/// A hashed timing wheel (Varghese and Lauck; Kamailio's timer and the Linux kernel's work the same
/// way): a timer lives in the bucket of its deadline's tick, linked both ways, so scheduling and
/// cancelling cost one dictionary operation and a few array writes, and each tick looks only at its
/// own bucket. The heap it replaces moved entries on every insert and removal and updated an index per
/// move: at 2,000 calls/s, with about fifteen timers per call, that was hashing on every step.
///
/// Timers further away than one turn of the wheel (Timer C, call limits) wait in their bucket and are
/// passed over on each turn until their tick comes. Timers due in the same tick fire in the order they
/// were scheduled.
public struct TimerWheel: Sendable {
    private struct Entry: Sendable {
        var id: TimerID
        var due: Int64
        var body: (@Sendable () -> Void)?
        var previous: Int32
        var next: Int32
    }

    private static let none: Int32 = -1

    private var entries: [Entry] = []
    /// Entries not in use, linked through `next`.
    private var freeHead: Int32 = none
    private var heads: [Int32]
    private var tails: [Int32]
    private var index: [TimerID: Int32] = [:]
    private let mask: Int64
    /// Seconds per tick.
    public let tick: Double
    /// The last tick whose timers have fired.
    private var current: Int64
    public private(set) var count = 0

    /// `buckets` is rounded up to a power of two; `start` is the clock's time now.
    public init(tick: Double, buckets: Int = 4096, start: Double) {
        var size = 1
        while size < buckets { size <<= 1 }
        self.tick = tick
        mask = Int64(size - 1)
        heads = Array(repeating: Self.none, count: size)
        tails = Array(repeating: Self.none, count: size)
        current = Int64((start / tick).rounded(.down))
    }

    /// Schedules `body` for `deadline` (clock seconds); a timer already pending under `id` is replaced.
    /// `id` 0 schedules a timer that cannot be cancelled.
    public mutating func insert(_ id: TimerID, deadline: Double, _ body: @escaping @Sendable () -> Void) {
        if id.rawValue != 0, index[id] != nil { remove(id) }
        // A timer is never early: it fires at the first tick at or after its deadline, and never in
        // the tick being processed.
        let due = max(Int64((deadline / tick).rounded(.up)), current + 1)
        let entry = Entry(id: id, due: due, body: body, previous: Self.none, next: Self.none)
        let slot: Int32
        if freeHead != Self.none {
            slot = freeHead
            freeHead = entries[Int(slot)].next
            entries[Int(slot)] = entry
        } else {
            slot = Int32(entries.count)
            entries.append(entry)
        }
        link(slot, bucket: Int(due & mask))
        if id.rawValue != 0 { index[id] = slot }
        count += 1
    }

    /// Forgets a pending timer and releases its closure now; an unknown id does nothing.
    public mutating func remove(_ id: TimerID) {
        guard let slot = index.removeValue(forKey: id) else { return }
        release(slot)
    }

    /// Moves the wheel to `time`, appending the body of every timer due by then to `due`.
    public mutating func advance(to time: Double, into due: inout [@Sendable () -> Void]) {
        let target = Int64((time / tick).rounded(.down))
        guard target > current else { return }
        let size = mask + 1
        // After a long stall every bucket is visited once, for everything due by the target.
        let steps = min(target - current, size)
        let stalled = target - current >= size
        for step in 1...steps {
            let tick = current + step
            let limit = stalled ? target : tick
            var slot = heads[Int(tick & mask)]
            while slot != Self.none {
                let next = entries[Int(slot)].next
                if entries[Int(slot)].due <= limit {
                    if let body = entries[Int(slot)].body { due.append(body) }
                    let id = entries[Int(slot)].id
                    if id.rawValue != 0 { index.removeValue(forKey: id) }
                    release(slot)
                }
                slot = next
            }
        }
        current = target
    }

    /// The earliest tick something is due at, for tests; walks every entry.
    var earliestDue: Int64? {
        index.values.map { entries[Int($0)].due }.min()
    }

    private mutating func link(_ slot: Int32, bucket: Int) {
        let tail = tails[bucket]
        entries[Int(slot)].previous = tail
        entries[Int(slot)].next = Self.none
        if tail == Self.none { heads[bucket] = slot } else { entries[Int(tail)].next = slot }
        tails[bucket] = slot
    }

    private mutating func release(_ slot: Int32) {
        let entry = entries[Int(slot)]
        let bucket = Int(entry.due & mask)
        if entry.previous == Self.none { heads[bucket] = entry.next } else { entries[Int(entry.previous)].next = entry.next }
        if entry.next == Self.none { tails[bucket] = entry.previous } else { entries[Int(entry.next)].previous = entry.previous }
        entries[Int(slot)] = Entry(id: TimerID(0), due: 0, body: nil, previous: Self.none, next: freeHead)
        freeHead = slot
        count -= 1
    }
}
