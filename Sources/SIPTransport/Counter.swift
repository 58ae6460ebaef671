import Synchronization

/// A shared event counter; a reference so that counters can be listed and passed around.
public final class Counter: Sendable {
    private let storage = Atomic<Int>(0)

    public init() {}

    @inline(__always)
    public func increment() { storage.wrappingAdd(1, ordering: .relaxed) }

    public func add(_ amount: Int) { storage.wrappingAdd(amount, ordering: .relaxed) }

    public var value: Int { storage.load(ordering: .relaxed) }
}
