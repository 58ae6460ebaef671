import JSON
import Synchronization

/// The location service: every binding in memory for the call path, each change written to the
/// registry's SQLite file before it takes effect, so bindings survive a restart.
///
/// Changes are serialized by one writer lock (two REGISTERs of one device racing on two threads
/// cannot both win; SQLite has one writer anyway); readers never wait for it, and the in-memory
/// table changes only after the write committed.
public final class Location: BindingLookup {
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

    private let registry: Registry
    private let table = Mutex(Table())
    /// Held while an address-of-record is read, decided on and written; the only I/O under it is the
    /// registry's own SQLite write.
    private let writer = Mutex(())

    /// Loads every stored binding not yet expired at `now`; expired ones are deleted.
    public init(registry: Registry, now: Int64) throws(RegistryError) {
        self.registry = registry
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
    /// to SQLite, with a `registration.changed` event for each change but refreshes, in one
    /// transaction; only then does the call path see it.
    public func update<Result: Sendable, Failure: Error>(
        aor: String, _ decide: ([Binding]) throws(Failure) -> (bindings: [Binding], changes: [BindingChange], result: Result)
    ) throws(LocationError<Failure>) -> Result {
        try writer.withLock { _ throws(LocationError<Failure>) -> Result in
            let current = bindings(aor: aor)
            let decision: (bindings: [Binding], changes: [BindingChange], result: Result)
            do throws(Failure) { decision = try decide(current) } catch { throw .refused(error) }
            do throws(RegistryError) { try persist(aor: aor, old: current, new: decision.bindings, changes: decision.changes) } catch {
                throw .storage(error)
            }
            table.withLock { $0.replace(aor, with: decision.bindings) }
            return decision.result
        }
    }

    /// Removes every binding expired at `now`; returns them (already recorded as `expired` events).
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
        let kept = Set(new.map(\.contact))
        let before = Dictionary(old.map { ($0.contact, $0) }, uniquingKeysWith: { first, _ in first })
        try registry.withStore { store throws(RegistryError) in
            try store.database.transaction { () throws(RegistryError) in
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
