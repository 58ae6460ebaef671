import Dispatch
import Foundation
import JSON
import Registry
import Synchronization

/// Takes the durable event log out to whoever listens: push subscribers on admin connections,
/// provider webhooks, and services in the service directory.
///
/// The log is the only queue that must not lose anything, and it is SQLite's: the call path and
/// provisioning only append to it (in the transaction of the change an event reports) and never
/// wait for a listener. One dispatcher thread reads what is new and fans it out — into each push
/// subscriber's bounded queue, and as delivery rows owed to webhook recipients. Each subscriber
/// has its own sender and each webhook recipient its own worker, so a slow one delays only itself.
public final class EventDispatcher: Sendable {
    public struct Options: Sendable {
        /// Events a push subscriber may have waiting before it is switched to pull.
        public var subscriberQueue = 1_000
        /// Milliseconds a webhook attempt may take, per step (connect, write, answer).
        public var webhookTimeout = 5_000
        public var retry = RetrySchedule()
        /// Milliseconds between looks at the log when no change announced itself.
        public var pollInterval = 1_000
        public var userAgent = "Tandem"
        public init() {}
    }

    /// Sends a JSON-RPC notification to a subscriber or service (its admin connection).
    public typealias Send = @Sendable (_ method: String, _ params: JSONValue) -> Void
    public typealias Log = @Sendable (_ message: String, _ fields: [(String, String)]) -> Void

    /// A push subscriber: its filter, its queue, and where it is.
    final class Subscription: Sendable {
        struct Outbox {
            var queue: PushQueue
            var sending = false
        }

        let id: Int
        let connection: Int
        let name: String?
        let patterns: [EventPattern]
        let send: Send
        let outbox: Mutex<Outbox>
        /// The newest id whose event (of its types) the sender has handed to the connection.
        let sent: Atomic<Int>
        /// Reading its missed events from the log waits for room in its queue: the sender says when.
        let waitingForRoom = Atomic<Bool>(false)
        let sender: DispatchQueue

        init(id: Int, connection: Int, name: String?, patterns: [EventPattern], cursor: Int, capacity: Int, send: @escaping Send) {
            self.id = id
            self.connection = connection
            self.name = name
            self.patterns = patterns
            self.send = send
            self.outbox = Mutex(Outbox(queue: PushQueue(capacity: capacity)))
            self.sent = Atomic(cursor)
            self.sender = DispatchQueue(label: "tandem.events.subscriber-\(id)")
        }

        func matches(_ type: String) -> Bool { patterns.contains { $0.matches(type) } }
    }

    struct State {
        var subscriptions: [Int: Subscription] = [:]
        /// How far each subscription's types have been looked for in the log (queued or skipped).
        var positions: [Int: Int] = [:]
        var nextSubscription = 1
        var hubPosition = 0
        var lastCursorSave: Int64 = 0
        var lastSubscriberSave: Int64 = 0
        var savedCursors: [String: Int] = [:]
        var directory = ServiceDirectory()
        var serviceSends: [Int: Send] = [:]
        var workers: [String: WebhookWorker] = [:]
    }

    public let registry: Registry
    let options: Options
    let clock: @Sendable () -> Int64
    let log: Log
    private let state = Mutex(State())
    private let wakeSignal = WakeSignal()
    private let stopped = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    /// Notices to services go out in order, off the dispatcher's thread.
    private let serviceNotices = DispatchQueue(label: "tandem.events.services")
    let counters = Counters()

    final class Counters: Sendable {
        let fannedOut = Atomic<Int>(0)
        let pushed = Atomic<Int>(0)
        let overflows = Atomic<Int>(0)
        let webhookDelivered = Atomic<Int>(0)
        let webhookFailedAttempts = Atomic<Int>(0)
        let webhookGivenUp = Atomic<Int>(0)
    }

    public init(registry: Registry, options: Options = Options(), clock: @escaping @Sendable () -> Int64,
                log: @escaping Log = { _, _ in }) throws(RegistryError) {
        self.registry = registry
        self.options = options
        self.clock = clock
        self.log = log
        let cursor = try registry.read { store throws(RegistryError) in try store.dispatchCursor() }
        state.withLock {
            $0.hubPosition = cursor
            $0.lastCursorSave = clock()
        }
    }

    /// Starts the dispatcher thread and a worker for every recipient with deliveries still owed.
    public func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        registry.onEventsRecorded { [weak self] in self?.wake() }
        if let pending = try? registry.read({ store throws(RegistryError) in try store.pendingRecipients() }) {
            for recipient in pending { worker(for: recipient)?.wake() }
        }
        let thread = Thread { [self] in run() }
        thread.name = "events"
        thread.start()
    }

    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wakeSignal.signal()
        let (workers, named) = state.withLock { state in
            (Array(state.workers.values), state.subscriptions.values.filter { $0.name != nil })
        }
        for worker in workers { worker.stop() }
        for subscription in named { saveCursor(of: subscription) }
    }

    /// Something was appended to the log: look now rather than at the next poll.
    public func wake() { wakeSignal.signal() }

    /// Counters for `system.stats`.
    public func statistics() -> [(String, Int)] {
        let (open, pending) = state.withLock { state in
            (state.subscriptions.count, state.subscriptions.values.reduce(0) { $0 + $1.outbox.withLock { $0.queue.eventCount } })
        }
        return [("events.fanned_out", counters.fannedOut.load(ordering: .relaxed)),
                ("events.pushed", counters.pushed.load(ordering: .relaxed)),
                ("events.subscriptions", open), ("events.subscriber_queued", pending),
                ("events.subscriber_overflows", counters.overflows.load(ordering: .relaxed)),
                ("events.webhook_delivered", counters.webhookDelivered.load(ordering: .relaxed)),
                ("events.webhook_failed_attempts", counters.webhookFailedAttempts.load(ordering: .relaxed)),
                ("events.webhook_given_up", counters.webhookGivenUp.load(ordering: .relaxed))]
    }

    // MARK: The dispatcher thread

    private func run() {
        while !stopped.load(ordering: .acquiring) {
            var more = false
            do {
                more = try pump()
            } catch {
                log("event dispatch failed; retrying", [("reason", error.description)])
            }
            saveCursors()
            if !more { wakeSignal.wait(milliseconds: options.pollInterval) }
        }
    }

    static let page = 1_000

    /// Fans out one page of new events; true when there is more to do at once.
    func pump() throws(RegistryError) -> Bool {
        let from = state.withLock { $0.hubPosition }
        let hooked = Set(registry.snapshot.allProviders.filter { $0.webhookURL != nil }.map(\.id))
        // The subscribers are taken once, before the log is read: one that subscribes meanwhile is
        // served by the next pump. (Deciding "no one listens" first and taking the subscribers after
        // once skipped a resumed subscriber's backlog: it looked at the head of a page read empty.)
        let subscriptions = state.withLock { state in state.subscriptions.values.map { ($0, state.positions[$0.id] ?? 0) } }
        // With no one listening there is nothing to read: the position just follows the log.
        let listening = !hooked.isEmpty || !subscriptions.isEmpty
        let (events, through) = try registry.read { store throws(RegistryError) in
            listening ? try store.events(after: from, matching: [try EventPattern("*")], limit: Self.page) : ([], try store.eventHead())
        }
        var more = events.count == Self.page

        // Push subscribers: those at the head take from this page, the others read the log themselves.
        for (subscription, position) in subscriptions {
            if position >= from {
                guard through > position else { continue }
                offer(events.filter { $0.id > position && subscription.matches($0.type) }, to: subscription, through: through)
            } else {
                let free = subscription.outbox.withLock { $0.queue.freeSpace }
                guard free > 0 else {
                    subscription.waitingForRoom.store(true, ordering: .releasing)
                    continue
                }
                let (missed, reached) = try registry.read { store throws(RegistryError) in
                    try store.events(after: position, matching: subscription.patterns, limit: min(free, 500))
                }
                offer(missed, to: subscription, through: reached)
                if reached < through { more = true }
            }
        }

        // Webhooks: a delivery row per concerned provider with a webhook, and the cursor, together.
        guard through > from else { return more }
        var owed: [(recipient: String, eventID: Int)] = []
        if !hooked.isEmpty {
            for event in events where Self.routedTypes.contains(event.type) {
                guard let payload = try? JSONValue.parse(event.payload) else { continue }
                for provider in WebhookRouting.providers(of: event.type, payload: payload) where hooked.contains(provider) {
                    owed.append((recipient: Self.recipient(provider), eventID: event.id))
                }
            }
        }
        let now = clock()
        let saveDue = state.withLock { now - $0.lastCursorSave >= 5_000 }
        if !owed.isEmpty || saveDue {
            try registry.write { store throws(RegistryError) in try store.recordDispatch(through: through, deliveries: owed, now: now) }
            state.withLock { $0.lastCursorSave = now }
        }
        state.withLock { $0.hubPosition = through }
        counters.fannedOut.add(through - from, ordering: .relaxed)
        for recipient in Set(owed.map(\.recipient)) { worker(for: recipient)?.wake() }
        return more
    }

    static let routedTypes: Set<String> = ["app.activated", "app.deactivated", "number.provider_switched", "call.ended", "call.missed"]

    static func recipient(_ provider: String) -> String { "provider:\(provider)" }

    /// Queues `events` for `subscription` and moves its position to `through`; an overflow ends it.
    private func offer(_ events: [RegistryEvent], to subscription: Subscription, through: Int) {
        var overflowed = false
        subscription.outbox.withLock { outbox in
            for event in events {
                switch outbox.queue.offer(event, subscription: subscription.id) {
                case .queued: continue
                case .overflowed, .closed: overflowed = true
                }
                break
            }
            if !overflowed { outbox.queue.mark(through) }
        }
        // Sending starts before the end is recorded, so a named cursor is saved after the last send.
        if !overflowed {
            state.withLock { state in if state.subscriptions[subscription.id] != nil { state.positions[subscription.id] = through } }
        }
        startSending(subscription)
        if overflowed {
            counters.overflows.add(1, ordering: .relaxed)
            log("push subscriber too slow; switched to pull", [("subscription", String(subscription.id)), ("name", subscription.name ?? "")])
            end(subscription)
        }
    }

    private func startSending(_ subscription: Subscription) {
        let start = subscription.outbox.withLock { outbox -> Bool in
            guard !outbox.sending, outbox.queue.count > 0 else { return false }
            outbox.sending = true
            return true
        }
        guard start else { return }
        subscription.sender.async { [self] in
            while true {
                let item = subscription.outbox.withLock { outbox -> PushQueue.Item? in
                    if let item = outbox.queue.take() { return item }
                    outbox.sending = false
                    return nil
                }
                guard let item else {
                    // Room again: a subscriber catching up from the log gets its next page now.
                    if subscription.waitingForRoom.exchange(false, ordering: .acquiringAndReleasing) { wake() }
                    return
                }
                switch item {
                case .event(let event):
                    subscription.send("events.event", ["subscription": JSONValue(subscription.id), "event": event.json])
                    subscription.sent.store(event.id, ordering: .releasing)
                    counters.pushed.add(1, ordering: .relaxed)
                case .notice(let method, let params):
                    subscription.send(method, params)
                case .mark(let cursor):
                    subscription.sent.store(cursor, ordering: .releasing)
                }
            }
        }
    }

    // MARK: Subscribing

    public enum SubscribeError: Error, Equatable {
        case registry(RegistryError)
        /// A subscriber of that name is connected.
        case nameInUse(String)
    }

    /// Subscribes a connection to `patterns`, from `since`, else where the named subscriber left
    /// off, else from now. Returns the subscription's id and the cursor it starts after.
    public func subscribe(connection: Int, name: String?, patterns: [EventPattern], since: Int?,
                          send: @escaping Send) throws(SubscribeError) -> (id: Int, cursor: Int) {
        do {
            let cursor: Int = try registry.read { store throws(RegistryError) in
                let head = try store.eventHead()
                if let since {
                    guard since >= 0 else { throw .invalid("since", "must not be negative") }
                    return min(since, head)
                }
                if let name, let stored = try store.subscriber(name) { return stored.cursor }
                return head
            }
            let subscription = try state.withLock { state throws(SubscribeError) -> Subscription in
                if let name, state.subscriptions.values.contains(where: { $0.name == name }) { throw .nameInUse(name) }
                let subscription = Subscription(id: state.nextSubscription, connection: connection, name: name, patterns: patterns,
                                                cursor: cursor, capacity: options.subscriberQueue, send: send)
                state.nextSubscription += 1
                state.subscriptions[subscription.id] = subscription
                state.positions[subscription.id] = cursor
                return subscription
            }
            if let name {
                try registry.write { store throws(RegistryError) in try store.saveSubscriber(name: name, types: patterns, cursor: cursor) }
                state.withLock { $0.savedCursors[name] = cursor }
            }
            wake()
            return (subscription.id, cursor)
        } catch let error as SubscribeError {
            throw error
        } catch let error as RegistryError {
            throw .registry(error)
        } catch {
            throw .registry(.storage("\(error)"))
        }
    }

    /// Ends a subscription of `connection`; returns the cursor to pull after, nil when it has none by that id.
    public func unsubscribe(connection: Int, id: Int) -> Int? {
        guard let subscription = state.withLock({ $0.subscriptions[id] }), subscription.connection == connection else { return nil }
        end(subscription)
        return subscription.sent.load(ordering: .acquiring)
    }

    private func end(_ subscription: Subscription) {
        state.withLock { state in
            state.subscriptions[subscription.id] = nil
            state.positions[subscription.id] = nil
        }
        // The sender goes on with what is queued; the named cursor is saved once it has.
        subscription.sender.async { [self] in
            if subscription.name != nil { saveCursor(of: subscription) }
        }
    }

    /// Forgets what a closed admin connection had: its subscriptions and its services.
    public func connectionClosed(_ connection: Int) {
        let (ended, changes) = state.withLock { state -> ([Subscription], [ServiceDirectory.Change]) in
            let ended = state.subscriptions.values.filter { $0.connection == connection }
            for subscription in ended {
                state.subscriptions[subscription.id] = nil
                state.positions[subscription.id] = nil
            }
            state.serviceSends[connection] = nil
            return (ended, state.directory.connectionClosed(connection))
        }
        for subscription in ended where subscription.name != nil { saveCursor(of: subscription) }
        announce(changes)
    }

    /// Live subscriptions, for `events.subscriptions`.
    public func subscriptions() -> [JSONValue] {
        state.withLock { state in
            state.subscriptions.values.sorted { $0.id < $1.id }.map { subscription in
                ["id": JSONValue(subscription.id), "connection": JSONValue(subscription.connection), "name": JSONValue(subscription.name),
                 "types": JSONValue(subscription.patterns.map(\.text)), "cursor": JSONValue(subscription.sent.load(ordering: .relaxed)),
                 "queued": JSONValue(subscription.outbox.withLock { $0.queue.eventCount }),
                 "catching_up": .bool((state.positions[subscription.id] ?? 0) < state.hubPosition)]
            }
        }
    }

    private func saveCursor(of subscription: Subscription) {
        guard let name = subscription.name else { return }
        let cursor = subscription.sent.load(ordering: .acquiring)
        do {
            try registry.write { store throws(RegistryError) in try store.saveSubscriber(name: name, types: subscription.patterns, cursor: cursor) }
            state.withLock { $0.savedCursors[name] = max($0.savedCursors[name] ?? 0, cursor) }
        } catch {
            log("cannot save a subscriber's cursor", [("name", name), ("reason", error.description)])
        }
    }

    /// Saves the named subscribers that moved, at most once a second.
    private func saveCursors() {
        let now = clock()
        let moved = state.withLock { state -> [Subscription] in
            guard now - state.lastSubscriberSave >= 1_000 else { return [] }
            state.lastSubscriberSave = now
            return state.subscriptions.values.filter { subscription in
                guard let name = subscription.name else { return false }
                return subscription.sent.load(ordering: .relaxed) > state.savedCursors[name] ?? 0
            }
        }
        for subscription in moved { saveCursor(of: subscription) }
    }

    // MARK: Services

    public enum ServiceError: Error, Equatable {
        case nameTaken(String)
        case notRegistered(String)
        case builtIn(String)
        case notProvided(String)
        case registry(RegistryError)
    }

    /// Registers a service on `connection`; returns the consumed types no one emits now.
    public func register(_ service: ServiceRegistration, send: @escaping Send) throws(ServiceError) -> [String] {
        let (changes, unavailable) = try state.withLock { state throws(ServiceError) -> ([ServiceDirectory.Change], [String]) in
            let changes: [ServiceDirectory.Change]
            do { changes = try state.directory.register(service) } catch { throw .nameTaken(service.name) }
            state.serviceSends[service.connection] = send
            let unavailable = service.eventsConsumed.filter { !$0.text.contains("*") && !state.directory.isAvailable($0.text) }.map(\.text)
            return (changes, unavailable)
        }
        announce(changes)
        return unavailable
    }

    public func unregister(_ name: String, connection: Int) throws(ServiceError) {
        guard let changes = state.withLock({ $0.directory.unregister(name, connection: connection) }) else { throw .notRegistered(name) }
        announce(changes)
    }

    public func services() -> (services: [ServiceRegistration], emitters: [String: [String]]) {
        state.withLock { state in
            let services = state.directory.services.values.sorted { $0.name < $1.name }
            var types = EventCatalog.builtInTypes
            for service in services {
                types.formUnion(service.eventsProvided)
                types.formUnion(service.eventsConsumed.map(\.text).filter { !$0.contains("*") })
            }
            return (services, Dictionary(uniqueKeysWithValues: types.map { ($0, state.directory.emitters(of: $0)) }))
        }
    }

    /// Appends an event a service emits: it must be registered on `connection` and provide `type`.
    public func emit(_ type: String, subject: String?, payload: JSONValue, service name: String, connection: Int) throws(ServiceError) -> Int {
        guard !EventCatalog.builtInTypes.contains(type) else { throw .builtIn(type) }
        let service = state.withLock { $0.directory.services[name] }
        guard let service, service.connection == connection else { throw .notRegistered(name) }
        guard service.eventsProvided.contains(type) else { throw .notProvided(type) }
        do {
            return try registry.write { store throws(RegistryError) in try store.emitEvent(type, subject: subject, payload: payload, source: name) }
        } catch {
            throw .registry(error)
        }
    }

    /// Tells push subscribers and consuming services that a type lost its last emitter or has one again.
    private func announce(_ changes: [ServiceDirectory.Change]) {
        guard !changes.isEmpty else { return }
        let (subscriptions, consumers) = state.withLock { state in
            (Array(state.subscriptions.values),
             state.directory.services.values.compactMap { service in state.serviceSends[service.connection].map { (service, $0) } })
        }
        for change in changes {
            let method: String
            var params: [String: JSONValue] = ["type": .string(change.type)]
            switch change {
            case .available(_, let service):
                method = "events.available"
                params["service"] = .string(service)
            case .unavailable(_, let service):
                method = "events.unavailable"
                params["service"] = .string(service)
                params["reason"] = .string("the last service emitting \(change.type) left")
            }
            for subscription in subscriptions where subscription.matches(change.type) {
                var notice = params
                notice["subscription"] = JSONValue(subscription.id)
                subscription.outbox.withLock { $0.queue.notice(method, .object(notice)) }
                startSending(subscription)
            }
            for (service, send) in consumers where service.name != params["service"]?.stringValue
                && service.eventsConsumed.contains(where: { $0.matches(change.type) }) {
                let notice = JSONValue.object(params)
                serviceNotices.async { send(method, notice) }
            }
        }
    }

    // MARK: Alerts

    /// Pushes an alert the event log cannot carry — because what it reports is that the log's own
    /// file refuses writes — to every push subscriber whose types match `type`, as `events.alert`
    /// (no event id; not stored, not sent to webhooks). Subscribers that are not connected learn of it
    /// from the durable event that ends it (`storage.recovered`).
    public func alert(_ type: String, payload: JSONValue) {
        let subscriptions = state.withLock { Array($0.subscriptions.values) }
        let time = clock()
        for subscription in subscriptions where subscription.matches(type) {
            let params: JSONValue = ["subscription": JSONValue(subscription.id),
                                     "alert": ["type": .string(type), "time": .integer(time), "payload": payload]]
            subscription.outbox.withLock { $0.queue.notice("events.alert", params) }
            startSending(subscription)
        }
    }

    /// Wires `registry`'s storage outages to alerts: `storage.failing` when a writer's first write fails.
    public func alertOnStorageOutages() {
        registry.storageHealth.observe { [weak self] change in
            guard case .failing(let outage) = change else { return }
            self?.alert("storage.failing", payload: ["writer": .string(outage.writer), "failed_at": .integer(outage.since),
                                                     "reason": .string(outage.reason)])
        }
    }

    // MARK: Webhook workers

    /// Deliveries to `provider` were queued again (`events.redeliver`).
    public func wakeWebhook(provider: String) {
        worker(for: Self.recipient(provider))?.wake()
    }

    /// The worker delivering to `recipient`, started on first use.
    private func worker(for recipient: String) -> WebhookWorker? {
        guard !stopped.load(ordering: .relaxed) else { return nil }
        let (worker, isNew) = state.withLock { state -> (WebhookWorker, Bool) in
            if let worker = state.workers[recipient] { return (worker, false) }
            let worker = WebhookWorker(recipient: recipient, dispatcher: self)
            state.workers[recipient] = worker
            return (worker, true)
        }
        if isNew { worker.start() }
        return worker
    }
}
