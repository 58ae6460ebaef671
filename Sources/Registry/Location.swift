import Dispatch
import JSON
import Synchronization

/// The location service: every binding in memory for the call path, each change written to the
/// registry's SQLite file so bindings survive a restart.
///
/// Changes are serialized by one writer lock (two REGISTERs of one device racing on two threads
/// cannot both win); readers never wait for it. How a change reaches the file is the `Persistence`
/// (`registrar.persistence`): `immediate` writes it, in its own transaction, before the call path
/// sees it and before the REGISTER is answered; `batched` (the default) makes it visible at once
/// and commits it with every other change of the next 20 ms in one transaction (group commit, as
/// `CallLog` does for call records) on a writer queue of its own — the promise is Kamailio's
/// usrloc `db_mode 2` (write-back) with a 20 ms timer instead of 60 s (docs/configuration.md).
public final class Location: BindingLookup {
    /// When a binding change is written to the registry file.
    public enum Persistence: String, Sendable, CaseIterable {
        /// In the REGISTER's path, before it is answered: an acknowledged registration survives
        /// `kill -9` and, with SQLite's `synchronous=FULL`, power loss.
        case immediate
        /// Within `gatherMilliseconds` of the answer, batched: `kill -9` loses at most the changes of
        /// the last 20 ms (and the commit under way).
        case batched
    }

    private struct Table {
        var byAOR: [String: [Binding]] = [:]
        var aorsByUser: [String: Set<String>] = [:]
        var count = 0

        mutating func replace(_ aor: String, with bindings: [Binding]) {
            let old = byAOR[aor] ?? []
            count -= old.count
            for user in Set(old.map(\.userID)) {
                aorsByUser[user]?.remove(aor)
                if aorsByUser[user]?.isEmpty == true { aorsByUser[user] = nil }
            }
            if bindings.isEmpty {
                byAOR[aor] = nil
            } else {
                byAOR[aor] = bindings
                count += bindings.count
                for binding in bindings { aorsByUser[binding.userID, default: []].insert(aor) }
            }
        }
    }

    /// One address-of-record's changes not yet written: the bindings the file holds (`old`), those
    /// memory holds (`new`) and every change between, in order.
    struct PendingWrite {
        var old: [Binding]
        var new: [Binding]
        var changes: [BindingChange]
    }

    struct WriteQueue {
        var pending: [String: PendingWrite] = [:]
        /// Addresses in the order their first pending change came.
        var order: [String] = []
        var scheduled = false
        var retrying = false
        var failures = 0
        var dropped = 0
        var lastError: String?

        mutating func add(_ aor: String, old: [Binding], new: [Binding], changes: [BindingChange]) {
            if pending[aor] != nil {
                pending[aor]!.new = new
                pending[aor]!.changes += changes
            } else {
                pending[aor] = PendingWrite(old: old, new: new, changes: changes)
                order.append(aor)
            }
        }
    }

    private let registry: Registry
    private let table = Mutex(Table())
    private let observers = Mutex<[@Sendable (Set<String>) -> Void]>([])
    /// Held while an address-of-record is read, decided on and written; the only I/O under it is the
    /// registry's own SQLite write.
    private let writer = Mutex(())
    public let persistence: Persistence
    /// Most addresses-of-record with changes waiting (`batched`); past it a change is refused as a
    /// storage failure rather than held where a crash would lose it.
    public let capacity: Int
    private let writes = Mutex(WriteQueue())
    private let writeQueue = DispatchQueue(label: "tandem.location")

    /// How long the batched writer lets changes gather before a commit.
    public static let gatherMilliseconds = 20

    /// Loads every stored binding not yet expired at `now`; expired ones are deleted.
    public init(registry: Registry, now: Int64, persistence: Persistence = .batched, capacity: Int = 65_536) throws(RegistryError) {
        self.registry = registry
        self.persistence = persistence
        self.capacity = capacity
        let stored = try registry.withStore { store throws(RegistryError) -> [Binding] in
            try store.sql("DELETE FROM bindings WHERE expires_at <= ?", [.integer(now)])
            return try store.rows("SELECT \(Self.columns) FROM bindings ORDER BY aor, registered_at", [], Self.binding)
        }
        table.withLock { table in
            var grouped: [String: [Binding]] = [:]
            for binding in stored { grouped[binding.aor, default: []].append(binding) }
            for (aor, bindings) in grouped { table.replace(aor, with: bindings) }
        }
    }

    /// The bindings of an address-of-record, as stored (expired ones may linger until the next sweep).
    public func bindings(aor: String) -> [Binding] {
        table.withLock { $0.byAOR[aor] ?? [] }
    }

    /// Every binding of a user, under any of their addresses-of-record.
    public func bindings(userID: String) -> [Binding] {
        table.withLock { table in
            (table.aorsByUser[userID] ?? []).sorted().flatMap { table.byAOR[$0] ?? [] }
        }
    }

    /// Every binding, ordered by address-of-record.
    public func all() -> [Binding] {
        table.withLock { table in table.byAOR.keys.sorted().flatMap { table.byAOR[$0]! } }
    }

    public var count: Int { table.withLock { $0.count } }
    public var aorCount: Int { table.withLock { $0.byAOR.count } }

    /// Decides on and applies a change to one address-of-record: `decide` receives its bindings and
    /// returns the new list with what changed (or throws to change nothing). The new list is written
    /// to SQLite with a `registration.changed` event for each change but refreshes: `immediate`, in
    /// one transaction before the call path sees it; `batched`, queued for the next group commit
    /// once the call path sees it.
    public func update<Result: Sendable, Failure: Error>(
        aor: String, _ decide: ([Binding]) throws(Failure) -> (bindings: [Binding], changes: [BindingChange], result: Result)
    ) throws(LocationError<Failure>) -> Result {
        var changedUsers: Set<String> = []
        let (result, drainLater) = try writer.withLock { _ throws(LocationError<Failure>) -> (Result, Bool) in
            let current = bindings(aor: aor)
            let decision: (bindings: [Binding], changes: [BindingChange], result: Result)
            do throws(Failure) { decision = try decide(current) } catch { throw .refused(error) }
            if !decision.changes.isEmpty { changedUsers = Set(current.map(\.userID) + decision.bindings.map(\.userID)) }
            switch persistence {
            case .immediate:
                do throws(RegistryError) { try persist(aor: aor, old: current, new: decision.bindings, changes: decision.changes) } catch {
                    throw .storage(error)
                }
                table.withLock { $0.replace(aor, with: decision.bindings) }
                return (decision.result, false)
            case .batched:
                // Queued under the writer lock, so the queue holds each address's changes in the
                // order memory took them.
                let schedule = try writes.withLock { queue throws(LocationError<Failure>) -> Bool in
                    guard queue.pending[aor] != nil || queue.pending.count < capacity else {
                        throw .storage(RegistryError(.storage, "\(queue.pending.count) addresses wait to be written (registrar write queue full)"))
                    }
                    queue.add(aor, old: current, new: decision.bindings, changes: decision.changes)
                    guard !queue.scheduled, !queue.retrying else { return false }
                    queue.scheduled = true
                    return true
                }
                table.withLock { $0.replace(aor, with: decision.bindings) }
                return (decision.result, schedule)
            }
        }
        if drainLater {
            writeQueue.asyncAfter(deadline: .now() + .milliseconds(Self.gatherMilliseconds)) { self.drain() }
        }
        if !changedUsers.isEmpty {
            for observer in observers.withLock({ $0 }) { observer(changedUsers) }
        }
        return result
    }

    /// Calls `observer` with the users whose bindings a change added, removed or expired (not a
    /// refresh), once the call path sees the change. It runs on the changing thread (a REGISTER's
    /// worker, the sweep) and must return at once.
    public func onChange(_ observer: @escaping @Sendable (Set<String>) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Returns once every change queued before the call is committed (or has failed to be).
    public func flush() {
        writeQueue.sync { drain() }
    }

    /// Addresses with changes waiting, commits that failed, changes the file refused, and the last failure.
    public var writeStatus: (pending: Int, failures: Int, dropped: Int, lastError: String?) {
        writes.withLock { ($0.pending.count, $0.failures, $0.dropped, $0.lastError) }
    }

    /// Commits everything queued in one transaction. A failure of the file (I/O, a full disk) keeps
    /// the batch and retries it every second; a change the file refuses (a foreign key: the user was
    /// deleted meanwhile) cannot succeed later, so the batch is retried address by address and a
    /// refused address is set back to what the file holds, so memory never keeps what was not stored.
    private func drain() {
        let batch = writes.withLock { queue -> [(String, PendingWrite)] in
            queue.scheduled = false
            let batch = queue.order.map { ($0, queue.pending[$0]!) }
            queue.pending.removeAll(keepingCapacity: true)
            queue.order.removeAll(keepingCapacity: true)
            return batch
        }
        guard !batch.isEmpty else { return }
        let outage = registry.storageHealth.outage(of: Self.writerName)
        let now = registry.storageHealth.clock()
        func recovered() { if outage != nil { registry.storageHealth.recovered(Self.writerName, at: now) } }
        do {
            try registry.withStore { store throws(RegistryError) in
                try store.database.transaction { () throws(RegistryError) in
                    if let outage { try StorageHealth.recordRecovery(outage, held: batch.count, at: now, store) }
                    for (aor, write) in batch { try Self.write(aor, write, store) }
                }
            }
            recovered()
        } catch {
            guard error.kind == .conflict else { return requeue(batch, error) }
            var refused: [(String, RegistryError)] = []
            for (aor, write) in batch {
                do {
                    try registry.withStore { store throws(RegistryError) in
                        try store.database.transaction { () throws(RegistryError) in try Self.write(aor, write, store) }
                    }
                } catch where error.kind == .conflict {
                    refused.append((aor, error))
                } catch {
                    return requeue(batch, error)
                }
            }
            // The file took writes again (refusing some on their merits): the outage, if any, is over.
            if let outage {
                try? registry.withStore { store throws(RegistryError) in
                    try store.database.transaction { () throws(RegistryError) in
                        try StorageHealth.recordRecovery(outage, held: batch.count, at: now, store)
                    }
                }
                recovered()
            }
            for (aor, error) in refused { restore(aor, error) }
        }
    }

    /// Puts a batch back in front of what came since, to be tried again in a second.
    private func requeue(_ batch: [(String, PendingWrite)], _ error: RegistryError) {
        registry.storageHealth.failed(Self.writerName, reason: error.description)
        // One retry pending at a time: a `flush` that fails while one waits adds none.
        let schedule = writes.withLock { queue -> Bool in
            var merged = WriteQueue()
            for (aor, write) in batch { merged.add(aor, old: write.old, new: write.new, changes: write.changes) }
            for aor in queue.order {
                let later = queue.pending[aor]!
                merged.add(aor, old: later.old, new: later.new, changes: later.changes)
            }
            queue.pending = merged.pending
            queue.order = merged.order
            queue.failures += 1
            queue.lastError = error.description
            defer { queue.retrying = true }
            return !queue.retrying
        }
        guard schedule else { return }
        writeQueue.asyncAfter(deadline: .now() + 1) {
            self.writes.withLock { $0.retrying = false }
            self.drain()
        }
    }

    /// An address whose change the file refused: memory goes back to the file's bindings, unless a
    /// newer change is already queued for it (that one is tried on its own merits).
    private func restore(_ aor: String, _ error: RegistryError) {
        writer.withLock { _ in
            let stored = try? registry.withStore { store throws(RegistryError) -> [Binding] in
                try store.rows("SELECT \(Self.columns) FROM bindings WHERE aor = ? ORDER BY registered_at", [.text(aor)], Self.binding)
            }
            let queued = writes.withLock { queue -> Bool in
                queue.dropped += 1
                queue.lastError = "\(aor): \(error)"
                if queue.pending[aor] != nil, let stored { queue.pending[aor]!.old = stored }
                return queue.pending[aor] != nil
            }
            if !queued, let stored { table.withLock { $0.replace(aor, with: stored) } }
        }
    }

    /// Removes every binding expired at `now`; returns them (recorded as `expired` events, or queued
    /// to be with the next batch).
    @discardableResult
    public func sweep(now: Int64) throws(RegistryError) -> [Binding] {
        let due: [String] = table.withLock { table in
            table.byAOR.compactMap { aor, bindings in bindings.contains { $0.expiresAt <= now } ? aor : nil }
        }
        var expired: [Binding] = []
        for aor in due {
            do {
                try update(aor: aor) { (current: [Binding]) throws(RegistryError) in
                    let gone = current.filter { $0.expiresAt <= now }
                    expired += gone
                    return (current.filter { $0.expiresAt > now }, gone.map { BindingChange(.expired, $0) }, ())
                }
            } catch {
                switch error {
                case .refused(let error), .storage(let error): throw error
                }
            }
        }
        return expired
    }

    /// Remembers the TCP connection a binding's flow now uses (not written: it is only a hint).
    public func setConnection(aor: String, contact: String, _ connection: UInt64?) {
        table.withLock { table in
            guard var bindings = table.byAOR[aor], let index = bindings.firstIndex(where: { $0.contact == contact }) else { return }
            bindings[index].connection = connection
            table.byAOR[aor] = bindings
        }
    }

    // MARK: Storage

    /// The location's name in `StorageHealth` and in `storage.recovered` events.
    static let writerName = "location"

    static let columns = "aor, contact, user_id, instance, reg_id, q, expires_at, call_id, cseq, path, transport, source, local, user_agent, registered_at, updated_at, behind_nat"

    static func binding(_ row: Row) -> Binding {
        let path: [String]
        if case .array(let items)? = try? JSONValue.parse(row.text(9)) {
            path = items.compactMap { if case .string(let text) = $0 { text } else { nil } }
        } else {
            path = []
        }
        return Binding(aor: row.text(0), contact: row.text(1), userID: row.text(2), instance: row.optionalText(3),
                       regID: row.optionalInt(4), q: row.int(5), expiresAt: Int64(row.int(6)), callID: row.text(7),
                       cseq: UInt32(truncatingIfNeeded: row.int(8)), path: path, transport: row.text(10),
                       source: row.text(11), local: row.text(12), behindNAT: row.int(16) != 0, userAgent: row.optionalText(13),
                       registeredAt: Int64(row.int(14)), updatedAt: Int64(row.int(15)))
    }

    private func persist(aor: String, old: [Binding], new: [Binding], changes: [BindingChange]) throws(RegistryError) {
        try registry.withStore { store throws(RegistryError) in
            try store.database.transaction { () throws(RegistryError) in
                try Self.write(aor, PendingWrite(old: old, new: new, changes: changes), store)
            }
        }
    }

    /// One address's change as rows: bindings removed, added or changed, and its events.
    private static func write(_ aor: String, _ write: PendingWrite, _ store: RegistryStore) throws(RegistryError) {
        let (old, new, changes) = (write.old, write.new, write.changes)
        let kept = Set(new.map(\.contact))
        let before = Dictionary(old.map { ($0.contact, $0) }, uniquingKeysWith: { first, _ in first })
        for binding in old where !kept.contains(binding.contact) {
            try store.sql("DELETE FROM bindings WHERE aor = ? AND contact = ?", [.text(aor), .text(binding.contact)])
        }
        for binding in new {
            var stored = before[binding.contact]
            stored?.connection = binding.connection
            guard stored != binding else { continue }
            try store.sql("""
                INSERT OR REPLACE INTO bindings (\(Self.columns))
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(binding.aor), .text(binding.contact), .text(binding.userID), .optional(binding.instance),
                      binding.regID.map { .int($0) } ?? .null, .int(binding.q), .integer(binding.expiresAt),
                      .text(binding.callID), .integer(Int64(binding.cseq)),
                      .text(JSONValue.array(binding.path.map { .string($0) }).description), .text(binding.transport),
                      .text(binding.source), .text(binding.local), .optional(binding.userAgent),
                      .integer(binding.registeredAt), .integer(binding.updatedAt), .int(binding.behindNAT ? 1 : 0)])
        }
        for change in changes where change.kind != .refreshed {
            let binding = change.binding
            _ = try store.recordEvent("registration.changed", subject: aor, payload: [
                "aor": .string(aor), "user_id": .string(binding.userID), "change": .string(change.kind.rawValue),
                "contact": .string(binding.contact), "transport": .string(binding.transport),
                "source": .string(binding.source), "instance": binding.instance.map { .string($0) } ?? .null,
                "contacts": .integer(Int64(new.count)),
            ], source: "registrar")
        }
    }
}

/// Why `Location.update` changed nothing: the decision refused, or SQLite failed.
public enum LocationError<Refusal: Error>: Error {
    case refused(Refusal)
    case storage(RegistryError)
}

extension Registry {
    /// Writes one event outside any provisioning change (an authentication ban, say); nothing in the
    /// snapshot changes.
    public func recordEvent(_ type: String, subject: String?, payload: JSONValue, source: String) throws(RegistryError) {
        try withStore { store throws(RegistryError) in
            _ = try store.recordEvent(type, subject: subject, payload: payload, source: source)
        }
    }
}
