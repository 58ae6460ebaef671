import Dispatch
import JSON
import Synchronization

/// A presence subscription as the file holds it: the dialog as JSON text (the presence server's to
/// read), the expiry, and the last NOTIFY sequence number when it was written.
public struct StoredSubscription: Sendable, Equatable {
    public var id: String
    public var presentity: String
    public var watcher: String
    public var event: String
    public var dialog: String
    public var localCSeq: Int64
    public var expiresAt: Int64

    public init(id: String, presentity: String, watcher: String, event: String, dialog: String, localCSeq: Int64, expiresAt: Int64) {
        self.id = id
        self.presentity = presentity
        self.watcher = watcher
        self.event = event
        self.dialog = dialog
        self.localCSeq = localCSeq
        self.expiresAt = expiresAt
    }
}

/// Writes presence subscriptions to the registry file so they survive a restart: each change (made,
/// refreshed, ended) is queued and every change of the next 20 ms committed in one transaction, as
/// the location does for bindings. A failing file keeps the batch and retries every second; a
/// `kill -9` loses at most the last 20 ms of changes, which the phones' next refresh repairs.
public final class SubscriptionStore: Sendable {
    public static let writerName = "presence"
    private let registry: Registry
    private let queue = DispatchQueue(label: "tandem.presence.store")
    /// Per id, the row to write, or nil to delete it; `order` keeps first-change order.
    private struct Pending {
        var rows: [String: StoredSubscription?] = [:]
        var scheduled = false
        var failures = 0
    }
    private let pending = Mutex(Pending())

    public init(registry: Registry) {
        self.registry = registry
    }

    /// Every stored subscription not expired at `now`; expired ones are deleted.
    public func load(now: Int64) throws(RegistryError) -> [StoredSubscription] {
        try registry.withStore { store throws(RegistryError) -> [StoredSubscription] in
            try store.sql("DELETE FROM presence_subscriptions WHERE expires_at <= ?", [.integer(now)])
            return try store.rows("SELECT id, presentity, watcher, event, dialog, local_cseq, expires_at FROM presence_subscriptions ORDER BY id", []) { row in
                StoredSubscription(id: row.text(0), presentity: row.text(1), watcher: row.text(2), event: row.text(3), dialog: row.text(4),
                                   localCSeq: Int64(row.int(5)), expiresAt: Int64(row.int(6)))
            }
        }
    }

    public func save(_ row: StoredSubscription) { enqueue(row.id, row) }
    public func delete(_ id: String) { enqueue(id, nil) }

    /// Changes waiting, and commits that failed.
    public var status: (pending: Int, failures: Int) { pending.withLock { ($0.rows.count, $0.failures) } }

    /// Returns once every change queued before the call is committed (or has failed to be).
    public func flush() {
        queue.sync { drain() }
    }

    private func enqueue(_ id: String, _ row: StoredSubscription?) {
        let schedule = pending.withLock { pending -> Bool in
            pending.rows[id] = .some(row)
            guard !pending.scheduled else { return false }
            pending.scheduled = true
            return true
        }
        if schedule { queue.asyncAfter(deadline: .now() + .milliseconds(Location.gatherMilliseconds)) { self.drain() } }
    }

    private func drain() {
        let batch = pending.withLock { pending -> [String: StoredSubscription?] in
            pending.scheduled = false
            defer { pending.rows.removeAll(keepingCapacity: true) }
            return pending.rows
        }
        guard !batch.isEmpty else { return }
        let now = registry.storageHealth.clock()
        let outage = registry.storageHealth.outage(of: Self.writerName)
        do {
            try registry.withStore { store throws(RegistryError) in
                try store.database.transaction { () throws(RegistryError) in
                    for (id, row) in batch.sorted(by: { $0.key < $1.key }) {
                        guard let row else {
                            try store.sql("DELETE FROM presence_subscriptions WHERE id = ?", [.text(id)])
                            continue
                        }
                        try store.sql("""
                            INSERT INTO presence_subscriptions (id, presentity, watcher, event, dialog, local_cseq, expires_at, created_at, updated_at)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT (id) DO UPDATE SET dialog = excluded.dialog, local_cseq = excluded.local_cseq,
                                expires_at = excluded.expires_at, updated_at = excluded.updated_at
                            """, [.text(row.id), .text(row.presentity), .text(row.watcher), .text(row.event), .text(row.dialog),
                                  .integer(row.localCSeq), .integer(row.expiresAt), .text(store.timestamp()), .text(store.timestamp())])
                    }
                }
            }
            if outage != nil { registry.storageHealth.recovered(Self.writerName, at: now) }
        } catch {
            registry.storageHealth.failed(Self.writerName, reason: error.description)
            // Back in front of what came since, tried again in a second.
            let retry = pending.withLock { pending -> Bool in
                for (id, row) in batch where pending.rows[id] == nil { pending.rows[id] = .some(row) }
                pending.failures += 1
                guard !pending.scheduled else { return false }
                pending.scheduled = true
                return true
            }
            if retry { queue.asyncAfter(deadline: .now() + 1) { self.drain() } }
        }
    }
}
