import Synchronization

/// The unified number registry: SQLite is the source of truth, and an immutable in-memory
/// `RegistrySnapshot` is what the call path reads.
///
/// Writes are serialized: each runs in one SQLite transaction, and only after it commits are the
/// rows it touched re-read into a new snapshot, published atomically. A failed write publishes
/// nothing, so the snapshot never shows a change the file does not hold.
public final class Registry: Sendable {
    /// Serializes every use of `store`.
    private let lock = Mutex(())
    /// Touched only while holding `lock`; that is what makes sharing the class safe.
    private nonisolated(unsafe) let store: RegistryStore
    private let published: Mutex<RegistrySnapshot>
    /// Told after a change that recorded events commits (the event dispatcher's wake-up).
    private let eventObservers = Mutex<[@Sendable () -> Void]>([])
    /// Told which users, availabilities and accounts a published write changed (the presence server).
    private let changeObservers = Mutex<[@Sendable (RegistryChange) -> Void]>([])
    /// Whether the writers that hold data for the file (call log, location) can write it.
    public let storageHealth: StorageHealth

    /// Opens the registry on `database` and loads the snapshot.
    /// - Parameters:
    ///   - realm: the digest realm credentials are computed for.
    ///   - clock: milliseconds since the Unix epoch; the executables pass `Registry.systemClock`, tests
    ///     their own, so nothing a test stores depends on the day it runs.
    public init(database: consuming sending Database, realm: String,
                clock: @escaping @Sendable () -> Int64) throws(RegistryError) {
        let store = RegistryStore(database: database, realm: realm, clock: clock)
        try store.loadSnapshot()
        published = Mutex(store.snapshot)
        self.store = store
        storageHealth = StorageHealth(clock: clock)
    }

    /// The snapshot now in force; cheap to take, safe to keep.
    public var snapshot: RegistrySnapshot {
        published.withLock { $0 }
    }

    /// Runs `body` as one transaction and publishes the rows it touched. Throwing rolls back.
    public func write<R: Sendable>(_ body: (RegistryStore) throws(RegistryError) -> R) throws(RegistryError) -> R {
        let (result, recorded, touched) = try lock.withLock { _ throws(RegistryError) -> (R, Bool, Touched) in
            store.touched = Touched()
            store.recordedEvents = false
            let result = try store.database.transaction { () throws(RegistryError) -> R in try body(store) }
            let touched = store.touched
            try publish(store)
            return (result, store.recordedEvents, touched)
        }
        if recorded { announceEvents() }
        let change = RegistryChange(users: touched.users, availabilities: touched.availabilities, accounts: touched.accounts,
                                    messages: touched.messages)
        if !change.isEmpty {
            for observer in changeObservers.withLock({ $0 }) { observer(change) }
        }
        return result
    }

    /// Calls `observer` (on the writer's thread, after the new snapshot is published) with what each
    /// write changed of users, availabilities and accounts. It must return at once.
    public func onChange(_ observer: @escaping @Sendable (RegistryChange) -> Void) {
        changeObservers.withLock { $0.append(observer) }
    }

    /// Reads through the store, outside any write transaction.
    public func read<R: Sendable>(_ body: (RegistryStore) throws(RegistryError) -> R) throws(RegistryError) -> R {
        try lock.withLock { _ throws(RegistryError) -> R in try body(store) }
    }

    /// Runs `body` with the store for work that opens its own transactions and publishes itself (each
    /// chunk of the CSV import).
    func withStore<R: Sendable>(_ body: (RegistryStore) throws(RegistryError) -> R) throws(RegistryError) -> R {
        let (result, recorded) = try lock.withLock { _ throws(RegistryError) -> (R, Bool) in
            store.recordedEvents = false
            return (try body(store), store.recordedEvents)
        }
        if recorded { announceEvents() }
        return result
    }

    /// Calls `observer` (on the writer's thread, outside the registry's lock) after each change that
    /// recorded events has committed. It must return at once: it runs on the call log's writer.
    public func onEventsRecorded(_ observer: @escaping @Sendable () -> Void) {
        eventObservers.withLock { $0.append(observer) }
    }

    private func announceEvents() {
        for observer in eventObservers.withLock({ $0 }) { observer() }
    }

    func publish(_ store: RegistryStore) throws(RegistryError) {
        guard !store.touched.isEmpty else { return }
        try store.refreshSnapshot()
        let next = store.snapshot
        published.withLock { $0 = next }
    }

    /// The wall clock, in milliseconds since the Unix epoch: what the executables run on.
    public static let systemClock: @Sendable () -> Int64 = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// A wall clock that reads `start` now and runs at real speed from there: for tests (and replays)
    /// that need time to pass, for retries and timeouts, but must not depend on today's date.
    public static func clock(startingAt start: Int64) -> @Sendable () -> Int64 {
        let origin = monotonicMilliseconds()
        return { start + (monotonicMilliseconds() - origin) }
    }

    private static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// What one write changed that decides whether and how users can be reached.
public struct RegistryChange: Sendable {
    public var users: Set<String>
    public var availabilities: Set<String>
    public var accounts: Set<String>
    /// Users whose message counts changed (`messages.set`).
    public var messages: Set<String> = []

    public var isEmpty: Bool { users.isEmpty && availabilities.isEmpty && accounts.isEmpty && messages.isEmpty }
}

/// Keys a write changed, re-read into the snapshot after it commits.
struct Touched {
    var accounts: Set<String> = []
    var users: Set<String> = []
    var numbers: Set<String> = []
    var providers: Set<String> = []
    var apps: Set<String> = []
    var activations: Set<String> = []
    var availabilities: Set<String> = []
    var plans: Set<String> = []
    /// Message counts are not in the snapshot: they change only what observers are told.
    var messages: Set<String> = []

    var isEmpty: Bool {
        accounts.isEmpty && users.isEmpty && numbers.isEmpty && providers.isEmpty && apps.isEmpty && activations.isEmpty
            && availabilities.isEmpty && plans.isEmpty
    }
}
