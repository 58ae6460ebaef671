import JSON
import Registry

/// What waits to be sent to one push subscriber, bounded: the dispatcher never blocks on a
/// subscriber, it queues, and a subscriber that lets `capacity` events pile up is switched to pull.
///
/// Pure state: the dispatcher appends, the subscriber's sender takes; neither does I/O here.
public struct PushQueue: Sendable {
    public enum Item: Sendable, Equatable {
        case event(RegistryEvent)
        /// A notice (`events.available`, `events.unavailable`, `events.overflow`): method and params.
        case notice(String, JSONValue)
        /// Everything of the subscriber's types up to this id has been queued: once the sender
        /// reaches it, it is the subscriber's position.
        case mark(Int)
    }

    public enum Offer: Sendable, Equatable {
        case queued
        /// The queue was full: `cursor` is the last event id that will be sent, and pulling after it
        /// gets the rest. Nothing more is accepted.
        case overflowed(cursor: Int)
        case closed
    }

    public let capacity: Int
    private(set) var items: [Item] = []
    private var head = 0
    /// Events waiting (marks and notices are not counted against the capacity).
    public private(set) var eventCount = 0
    /// After an overflow nothing more is queued.
    public private(set) var isClosed = false

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { items.count - head }
    public var freeSpace: Int { isClosed ? 0 : max(0, capacity - eventCount) }

    /// Queues `event`, or closes the queue with an `events.overflow` notice when it is full.
    public mutating func offer(_ event: RegistryEvent, subscription: Int) -> Offer {
        guard !isClosed else { return .closed }
        guard eventCount < capacity else {
            let cursor = event.id - 1
            close(with: .notice("events.overflow", ["subscription": JSONValue(subscription), "cursor": JSONValue(cursor),
                                                    "reason": .string("more than \(capacity) events waited to be sent; continue with events.pull since=\(cursor)")]))
            return .overflowed(cursor: cursor)
        }
        items.append(.event(event))
        eventCount += 1
        return .queued
    }

    public mutating func notice(_ method: String, _ params: JSONValue) {
        guard !isClosed else { return }
        items.append(.notice(method, params))
    }

    /// Records that the subscriber's position is `cursor` once what is queued now has been sent;
    /// consecutive marks collapse into the newest.
    public mutating func mark(_ cursor: Int) {
        guard !isClosed else { return }
        if count > 0, case .mark = items[items.count - 1] { items[items.count - 1] = .mark(cursor) } else { items.append(.mark(cursor)) }
    }

    public mutating func close(with last: Item) {
        guard !isClosed else { return }
        items.append(last)
        isClosed = true
    }

    public mutating func take() -> Item? {
        guard head < items.count else { return nil }
        let item = items[head]
        head += 1
        if case .event = item { eventCount -= 1 }
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return item
    }
}
