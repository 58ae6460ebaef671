import JSON
import Synchronization

/// Whether the registry file takes the writes of the parts that hold data for it — the call log
/// (records, call events) and the location (bindings, registration events) — as they find it.
///
/// Both keep what they could not write and retry; this tells someone. The first failure of a writer
/// starts an outage and is announced at once (the observer: a log line and an `events.alert` to push
/// subscribers, since the event log itself is what cannot be written); the writer's first commit
/// after it carries a `storage.recovered` event in the same transaction, so the outage is in the
/// durable log exactly once, with when it began and ended and how many attempts failed.
public final class StorageHealth: Sendable {
    public struct Outage: Sendable, Equatable {
        /// `call_log` or `location`.
        public var writer: String
        /// When the first write failed (milliseconds since the Unix epoch).
        public var since: Int64
        public var failures: Int
        /// The last failure's reason.
        public var reason: String
    }

    public enum Change: Sendable {
        case failing(Outage)
        case recovered(Outage, at: Int64)
    }

    private let outages = Mutex<[String: Outage]>([:])
    private let observers = Mutex<[@Sendable (Change) -> Void]>([])
    let clock: @Sendable () -> Int64

    init(clock: @escaping @Sendable () -> Int64) {
        self.clock = clock
    }

    /// Calls `observer` when a writer's outage begins and when it ends (on that writer's thread).
    public func observe(_ observer: @escaping @Sendable (Change) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// The outages in progress, by writer.
    public var current: [Outage] {
        outages.withLock { Array($0.values).sorted { $0.writer < $1.writer } }
    }

    /// A write of `writer` failed.
    func failed(_ writer: String, reason: String) {
        let started = outages.withLock { outages -> Outage? in
            if outages[writer] != nil {
                outages[writer]!.failures += 1
                outages[writer]!.reason = reason
                return nil
            }
            let outage = Outage(writer: writer, since: clock(), failures: 1, reason: reason)
            outages[writer] = outage
            return outage
        }
        if let started { announce(.failing(started)) }
    }

    /// The outage a writer's next commit must report, if any.
    func outage(of writer: String) -> Outage? {
        outages.withLock { $0[writer] }
    }

    /// Records `storage.recovered` for `outage` in the transaction of the commit that ends it.
    static func recordRecovery(_ outage: Outage, held: Int, at now: Int64, _ store: RegistryStore) throws(RegistryError) {
        try store.recordEvent("storage.recovered", subject: outage.writer, payload: [
            "writer": .string(outage.writer), "failed_at": .integer(outage.since), "recovered_at": .integer(now),
            "failed_attempts": JSONValue(outage.failures), "reason": .string(outage.reason), "held": JSONValue(held),
        ], source: "registry")
    }

    /// `writer`'s commit that carried the recovery event succeeded.
    func recovered(_ writer: String, at now: Int64) {
        guard let ended = outages.withLock({ $0.removeValue(forKey: writer) }) else { return }
        announce(.recovered(ended, at: now))
    }

    private func announce(_ change: Change) {
        for observer in observers.withLock({ $0 }) { observer(change) }
    }
}
