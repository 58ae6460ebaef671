import Dispatch
import JSON
import Synchronization

/// Writes what the call path learns about calls — calls opened, records of ended calls, call
/// events — to the registry file, off the call path.
///
/// Entries queue in memory and a writer commits everything queued in one transaction (group commit)
/// 20 ms after the first of them arrived, so a busy gateway writes in batches. An opened call
/// that ends before its batch is written is written only as its record. The queue is bounded: when
/// it is full the call path refuses new calls (`hasRoom`) rather than lose a record of one. A failed
/// commit keeps its entries and is retried.
public final class CallLog: Sendable {
    /// What the call path hands over: values only. Event payloads are built here, on the writer's
    /// queue, not on the call path.
    public enum Entry: Sendable {
        /// A new call: its state and `call.incoming`.
        case started(OpenCall)
        /// A call in progress changed: what a restart needs to close it.
        case updated(OpenCall)
        /// A call was answered: its state and `call.answered`.
        case answered(OpenCall)
        /// The record of an ended call, `call.missed` when the callee missed it, and `call.ended`;
        /// with what it charged: its service tickets and its account's usage (`gauge.updated`).
        case closed(CallRecord, CallCharges = CallCharges())
        case event(type: String, subject: String?, payload: JSONValue)
    }

    struct State {
        var pending: [Entry] = []
        var scheduled = false
        var retrying = false
        var failures = 0
        var lastError: String?
    }

    private let registry: Registry
    private let queue = DispatchQueue(label: "tandem.call-log")
    private let state = Mutex(State())
    /// Most entries waiting to be written.
    public let capacity: Int

    public init(registry: Registry, capacity: Int = 65_536) {
        self.registry = registry
        self.capacity = capacity
    }

    /// Queues an entry. Never refuses: what a call
    /// already in progress produces is bounded by the calls admitted, and admission asks `hasRoom`.
    public func record(_ entry: Entry) {
        let schedule = state.withLock { state -> Bool in
            state.pending.append(entry)
            guard !state.scheduled, !state.retrying else { return false }
            state.scheduled = true
            return true
        }
        // Waiting a moment lets a busy gateway gather many entries into one commit: each commit
        // rewrites every page it touches (the record, its indexes, the events), so small commits
        // cost far more per call than the rows themselves.
        if schedule { queue.asyncAfter(deadline: .now() + .milliseconds(Self.gatherMilliseconds)) { self.drain() } }
    }

    /// The call log's name in `StorageHealth` and in `storage.recovered` events.
    static let writerName = "call_log"

    /// How long the writer lets entries gather before a commit: the most a `kill -9` can lose.
    public static let gatherMilliseconds = 20

    /// Whether a new call may start: `count` more entries fit under the capacity.
    public func hasRoom(for count: Int = 3) -> Bool {
        state.withLock { $0.pending.count + count <= capacity }
    }

    /// Returns once everything queued before the call is committed (or has failed to be).
    public func flush() {
        queue.sync { drain() }
    }

    /// Entries waiting, commits that failed, and the last failure.
    public var status: (pending: Int, failures: Int, lastError: String?) {
        state.withLock { ($0.pending.count, $0.failures, $0.lastError) }
    }

    /// Closes the calls a previous run left open as `interrupted` (at start, before any call), with a
    /// `call.ended` event each.
    public func closeInterruptedCalls() throws(RegistryError) -> [CallRecord] {
        try registry.write { store throws(RegistryError) in
            let closed = try store.closeInterruptedCalls()
            for record in closed { try Self.recordEnd(of: record, store) }
            try store.markAlive()
            return closed
        }
    }

    /// Writes the "alive at" mark an interrupted call's end is taken from; run every few seconds.
    public func heartbeat() {
        queue.async { try? self.registry.write { store throws(RegistryError) in try store.markAlive() } }
    }

    /// The events of an ended call: `call.missed` when the callee missed it, and `call.ended`.
    private static func recordEnd(of record: CallRecord, _ store: RegistryStore) throws(RegistryError) {
        let payload = record.endedEvent
        if [.busy, .noAnswer, .cancelled].contains(record.disposition) {
            try store.recordEvent("call.missed", subject: record.destination, payload: payload, source: "gateway")
        }
        try store.recordEvent("call.ended", subject: record.destination, payload: payload, source: "gateway")
    }

    /// Writes what a stored record charged, and `gauge.updated` for an account on a plan.
    private func charge(_ charges: CallCharges, of recordID: Int, _ store: RegistryStore) throws(RegistryError) {
        for var ticket in charges.tickets {
            ticket.cdrID = recordID
            try store.storeServiceTicket(ticket)
        }
        guard let usage = charges.usage else { return }
        try store.addUsage(usage)
        guard let plan = registry.snapshot.plan(ofAccount: usage.accountID)?.value else { return }
        let period = Gauge.period(plan, day: usage.day)
        let gauge = Gauge(accountID: usage.accountID, plan: plan, period: period,
                          usage: try store.usage(accountID: usage.accountID, period: period), concurrent: nil)
        try store.recordEvent("gauge.updated", subject: usage.accountID, payload: gauge.json, source: "gateway")
    }

    private func drain() {
        let batch = state.withLock { state -> [Entry] in
            state.scheduled = false
            let batch = state.pending
            state.pending.removeAll(keepingCapacity: true)
            return batch
        }
        guard !batch.isEmpty else { return }
        // Only a call's newest state in the batch is written, and none for a call whose record is in
        // the batch; a call that also opened in it was never stored, so there is nothing to forget.
        var newestState = [CallKey: Int]()
        var closedInBatch = Set<CallKey>()
        var openedInBatch = Set<CallKey>()
        for (index, entry) in batch.enumerated() {
            switch entry {
            case .started(let call):
                newestState[call.key] = index
                openedInBatch.insert(call.key)
            case .updated(let call), .answered(let call): newestState[call.key] = index
            case .closed(let record, _): closedInBatch.insert(record.key)
            case .event: break
            }
        }
        let outage = registry.storageHealth.outage(of: Self.writerName)
        let now = registry.storageHealth.clock()
        do {
            try registry.write { store throws(RegistryError) in
                if let outage { try StorageHealth.recordRecovery(outage, held: batch.count, at: now, store) }
                func keep(_ call: OpenCall, at index: Int) throws(RegistryError) {
                    let key = call.key
                    if newestState[key] == index, !closedInBatch.contains(key) { try store.storeOpenCall(call) }
                }
                for (index, entry) in batch.enumerated() {
                    switch entry {
                    case .started(let call):
                        try keep(call, at: index)
                        try store.recordEvent("call.incoming", subject: call.destination, payload: call.incomingEvent, source: "gateway")
                    case .updated(let call):
                        try keep(call, at: index)
                    case .answered(let call):
                        try keep(call, at: index)
                        try store.recordEvent("call.answered", subject: call.destination, payload: call.answeredEvent, source: "gateway")
                    case .closed(let record, let charges):
                        // A record written before (a retried batch, a restart) ends its call and charges only once.
                        var record = record
                        guard let id = try store.storeCallRecord(record, wasStored: !openedInBatch.contains(record.key)) else { continue }
                        record.id = id
                        try Self.recordEnd(of: record, store)
                        try charge(charges, of: id, store)
                    case .event(let type, let subject, let payload):
                        try store.recordEvent(type, subject: subject, payload: payload, source: "gateway")
                    }
                }
                try store.markAlive()
            }
            if outage != nil { registry.storageHealth.recovered(Self.writerName, at: now) }
        } catch {
            registry.storageHealth.failed(Self.writerName, reason: error.description)
            // Nothing is dropped: the batch goes back in front and is tried again in a second — by one
            // retry at a time, however many `flush`es fail meanwhile.
            let schedule = state.withLock { state -> Bool in
                state.pending = batch + state.pending
                state.failures += 1
                state.lastError = error.description
                defer { state.retrying = true }
                return !state.retrying
            }
            guard schedule else { return }
            queue.asyncAfter(deadline: .now() + 1) {
                self.state.withLock { $0.retrying = false }
                self.drain()
            }
        }
    }
}
