import Foundation
import JSON
import Synchronization
import Testing
@testable import Events
@testable import Registry

/// A registry on a fresh SQLite file and a dispatcher on it, with fast retries.
final class EventsFixture {
    let path: String
    let registry: Registry
    let dispatcher: EventDispatcher

    init(queue: Int = 1_000, attempts: Int = 5) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-events-\(UUID().uuidString).db").path
        // 2026-11-20T00:00:00Z, running: retries and timeouts need time to pass, not today's date.
        let clock = Registry.clock(startingAt: 1_795_132_800_000)
        registry = try Registry(database: try Database(path: path), realm: "tandem.test", clock: clock)
        var options = EventDispatcher.Options()
        options.subscriberQueue = queue
        options.webhookTimeout = 2_000
        options.retry = RetrySchedule(initial: 50, maximum: 200, attempts: attempts)
        options.pollInterval = 100
        dispatcher = try EventDispatcher(registry: registry, options: options, clock: clock)
    }

    deinit {
        dispatcher.stop()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// The Smiths on telco with +33612345678, and VM Corp (generated IDs) whose webhook is `url`.
    func household(webhook url: String?) throws {
        try registry.write { s throws(RegistryError) in
            _ = try s.createAccount(id: "smith", name: "The Smiths", timeZone: "Europe/Paris", acting: nil)
            var carrier = ProviderFields()
            carrier.name = "Telco"
            carrier.kind = .carrier
            _ = try s.createProvider(id: "telco", fields: carrier, acting: nil)
            var vm = ProviderFields()
            vm.name = "VM Corp"
            vm.hops = ["sip:10.0.0.9:5070"]
            vm.idScheme = "generated"
            vm.domain = "vm.example.net"
            vm.webhookURL = url
            vm.webhookSecret = "vm-webhook-secret-0001"
            _ = try s.createProvider(id: "vm", fields: vm, acting: nil)
            var app = AppFields()
            app.name = "Voicemail"
            app.kind = "voicemail"
            app.position = 900
            _ = try s.createApp(id: "voicemail", providerID: "vm", fields: app, acting: nil)
            _ = try s.createNumber("+33612345678", accountID: "smith", kind: .household, ownerUserID: nil, providerID: "telco", acting: nil)
        }
    }

    @discardableResult
    func record(_ type: String, _ n: Int = 0) throws -> Int {
        try registry.write { s throws(RegistryError) in try s.emitEvent(type, subject: "s", payload: ["n": JSONValue(n)], source: "test") }
    }
}

/// Notifications a connection received.
final class Inbox: Sendable {
    let items = Mutex<[(String, JSONValue)]>([])
    var send: EventDispatcher.Send { { method, params in self.items.withLock { $0.append((method, params)) } } }
    var eventIDs: [Int] { items.withLock { $0.filter { $0.0 == "events.event" }.compactMap { $0.1["event"]?["id"]?.integerValue.map(Int.init) } } }
    func notices(_ method: String) -> [JSONValue] { items.withLock { $0.filter { $0.0 == method }.map(\.1) } }
}

@Suite(.serialized) struct EventDispatcherTests {
    @Test func aWebhookIsRetriedAfterAFailureAndDeliveredInOrder() throws {
        let receiver = try HTTPReceiver(answering: [503, 200])
        defer { receiver.stop() }
        let fixture = try EventsFixture()
        try fixture.household(webhook: receiver.url)
        fixture.dispatcher.start()

        let activation = try fixture.registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: nil) }
        _ = try fixture.registry.write { s throws(RegistryError) in try s.deactivate(number: "+33612345678", appID: "voicemail", acting: nil) }
        #expect(eventually { receiver.requests.count == 3 })
        let requests = receiver.requests
        try #require(requests.count == 3)

        // The first attempt was refused 503 and made again; the next event waited behind it.
        #expect(requests.map { $0.headers["x-tandem-event"] } == ["app.activated", "app.activated", "app.deactivated"])
        #expect(requests.map { $0.headers["x-tandem-attempt"] } == ["1", "2", "1"])
        #expect(requests[0].headers["x-tandem-delivery"] == requests[1].headers["x-tandem-delivery"])
        #expect(requests[0].line == "POST /hooks/tandem?v=1 HTTP/1.1")
        #expect(requests[0].headers["content-type"] == "application/json")
        for request in requests {
            #expect(WebhookSignature.verify(request.headers["x-tandem-signature"] ?? "", secret: "vm-webhook-secret-0001", body: request.body))
        }
        let body = try JSONValue.parse(requests[2].body)
        #expect(body["type"] == "app.deactivated" && body["provider"] == "vm")
        #expect(body["data"]?["subscriber_id"] == .string(activation.subscriberID))
        #expect(body["data"]?["number"] == nil)

        #expect(eventually {
            let page = try? fixture.registry.read { s throws(RegistryError) in try s.deliveries(recipient: "provider:vm", eventID: nil, status: .delivered, limit: 10, offset: 0) }
            return page?.total == 2
        })
        let deliveries = try fixture.registry.read { s throws(RegistryError) in try s.deliveries(recipient: nil, eventID: nil, status: nil, limit: 10, offset: 0) }
        #expect(deliveries.items.map(\.attempts) == [2, 1])
        #expect(deliveries.items.map(\.lastStatus) == [200, 200])
        #expect(deliveries.items.allSatisfy { $0.deliveredAt != nil && $0.lastError == nil })
        // The carrier has no webhook: nothing is owed to it.
        #expect(deliveries.items.allSatisfy { $0.recipient == "provider:vm" })
    }

    @Test func aDeliveryIsGivenUpAfterItsAttemptsAndCanBeQueuedAgain() throws {
        let receiver = try HTTPReceiver(answering: [500])
        defer { receiver.stop() }
        let fixture = try EventsFixture(attempts: 3)
        try fixture.household(webhook: receiver.url)
        fixture.dispatcher.start()
        _ = try fixture.registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: nil) }
        func delivery() -> EventDelivery? {
            try? fixture.registry.read { s throws(RegistryError) in try s.deliveries(recipient: "provider:vm", eventID: nil, status: nil, limit: 1, offset: 0) }.items.first
        }
        #expect(eventually { delivery()?.status == .failed })
        #expect(delivery()?.attempts == 3 && delivery()?.lastStatus == 500 && delivery()?.lastError == "HTTP 500")
        #expect(receiver.requests.count == 3)

        receiver.answer([204])
        #expect(try fixture.registry.write { s throws(RegistryError) in try s.retryFailedDeliveries(recipient: "provider:vm") } == 1)
        fixture.dispatcher.wakeWebhook(provider: "vm")
        #expect(eventually { delivery()?.status == .delivered })
        #expect(delivery()?.lastStatus == 204)
    }

    @Test func aSubscriberGetsEverythingItMissedInOrder() throws {
        let fixture = try EventsFixture()
        fixture.dispatcher.start()
        let first = Inbox()
        let call = try EventPattern("call.*")
        let subscription = try fixture.dispatcher.subscribe(connection: 1, name: "crm", patterns: [call], since: nil, send: first.send)
        var calls: [Int] = []
        for n in 0..<3 {
            calls.append(try fixture.record("call.ended", n))
            try fixture.record("registration.changed", n)
        }
        #expect(eventually { first.eventIDs.count == 3 })
        #expect(first.eventIDs == calls)
        #expect(first.notices("events.event").allSatisfy { $0["subscription"] == JSONValue(subscription.id) })

        // The connection goes; calls go on.
        fixture.dispatcher.connectionClosed(1)
        let saved = try #require(try fixture.registry.read { s throws(RegistryError) in try s.subscriber("crm") })
        #expect(saved.cursor >= calls[2] && saved.types == ["call.*"])
        var missed: [Int] = []
        for n in 3..<8 {
            missed.append(try fixture.record(n % 2 == 0 ? "call.incoming" : "call.ended", n))
            try fixture.record("gauge.updated", n)
        }
        // Pulling after the cursor returns every missed event, in order, and nothing else.
        let pulled = try fixture.registry.read { s throws(RegistryError) in try s.events(after: saved.cursor, matching: [call], limit: 100) }
        #expect(pulled.events.map(\.id) == missed)
        #expect(pulled.through == (try fixture.registry.read { s throws(RegistryError) in try s.eventHead() }))
        // A small page stops at its last event, so the next one goes on from there.
        let page = try fixture.registry.read { s throws(RegistryError) in try s.events(after: saved.cursor, matching: [call], limit: 2) }
        #expect(page.events.map(\.id) == Array(missed.prefix(2)) && page.through == missed[1])

        // Subscribing again under the name resumes there: the missed events, then new ones.
        let second = Inbox()
        let resumed = try fixture.dispatcher.subscribe(connection: 2, name: "crm", patterns: [call], since: nil, send: second.send)
        #expect(resumed.cursor == saved.cursor)
        #expect(eventually { second.eventIDs.count == missed.count })
        let live = try fixture.record("call.answered", 99)
        #expect(eventually { second.eventIDs.count == missed.count + 1 })
        #expect(second.eventIDs == missed + [live])
        #expect(throws: EventDispatcher.SubscribeError.nameInUse("crm")) {
            try fixture.dispatcher.subscribe(connection: 3, name: "crm", patterns: [call], since: nil, send: Inbox().send)
        }
    }

    /// The file refuses writes (read-only): the call log holds its entries, subscribers of
    /// `storage.*` are alerted at once and once, and the first commit after it records the outage.
    @Test func aStorageOutageIsAlertedAtOnceAndRecordedWhenItEnds() throws {
        let fixture = try EventsFixture()
        fixture.dispatcher.start()
        fixture.dispatcher.alertOnStorageOutages()
        let operations = Inbox(), calls = Inbox()
        _ = try fixture.dispatcher.subscribe(connection: 1, name: nil, patterns: [try EventPattern("storage.*")], since: nil, send: operations.send)
        _ = try fixture.dispatcher.subscribe(connection: 2, name: nil, patterns: [try EventPattern("call.*")], since: nil, send: calls.send)
        let log = CallLog(registry: fixture.registry, capacity: 8)
        try fixture.registry.read { s throws(RegistryError) in try s.sql("PRAGMA query_only = ON") }
        for n in 0..<5 { log.record(.event(type: "call.test", subject: String(n), payload: [:])) }
        log.flush()
        log.flush()
        #expect(log.status.pending == 5 && log.status.failures >= 2)
        // Bounded: three more fit, the call path is told there is no room for a fourth.
        #expect(log.hasRoom(for: 3) && !log.hasRoom(for: 4))
        #expect(eventually { operations.notices("events.alert").count == 1 })
        let alert = try #require(operations.notices("events.alert").first)
        #expect(alert["alert"]?["type"] == "storage.failing" && alert["alert"]?["payload"]?["writer"] == "call_log")
        #expect(alert["alert"]?["payload"]?["reason"]?.stringValue?.isEmpty == false)
        #expect(calls.notices("events.alert").isEmpty)

        try fixture.registry.read { s throws(RegistryError) in try s.sql("PRAGMA query_only = OFF") }
        log.flush()
        #expect(log.status.pending == 0 && fixture.registry.storageHealth.current.isEmpty)
        let held = try fixture.registry.read { s throws(RegistryError) in try s.events(since: 0, type: "call.test", limit: 10) }
        #expect(held.compactMap(\.subject) == ["0", "1", "2", "3", "4"])
        #expect(eventually { operations.eventIDs.count == 1 })
        let recovered = try fixture.registry.read { s throws(RegistryError) in try s.events(since: 0, type: "storage.recovered", limit: 10) }
        #expect(recovered.map(\.id) == operations.eventIDs)
        let payload = try JSONValue.parse(recovered[0].payload)
        #expect(payload["writer"] == "call_log" && payload["held"] == 5)
        #expect((payload["failed_attempts"]?.integerValue ?? 0) >= 2)
        #expect((payload["recovered_at"]?.integerValue ?? 0) >= (payload["failed_at"]?.integerValue ?? .max))
        // Only one alert for the whole outage, however many attempts failed.
        #expect(operations.notices("events.alert").count == 1)
    }

    @Test func aSlowSubscriberIsSwitchedToPullWithoutLosingAnything() throws {
        let fixture = try EventsFixture(queue: 3)
        fixture.dispatcher.start()
        let inbox = Inbox()
        let gate = DispatchSemaphore(value: 0)
        // The connection stops reading: the first write blocks until the gate opens.
        let stuck: EventDispatcher.Send = { method, params in
            if inbox.items.withLock({ $0.isEmpty }) { gate.wait() }
            inbox.send(method, params)
        }
        let subscription = try fixture.dispatcher.subscribe(connection: 1, name: nil, patterns: [try EventPattern("*")], since: nil, send: stuck)
        var recorded: [Int] = []
        for n in 0..<10 { recorded.append(try fixture.record("call.incoming", n)) }
        #expect(eventually { fixture.dispatcher.statistics().contains { $0 == ("events.subscriber_overflows", 1) } })
        #expect(fixture.dispatcher.subscriptions().isEmpty)
        gate.signal()
        #expect(eventually { !inbox.notices("events.overflow").isEmpty })
        let notice = try #require(inbox.notices("events.overflow").first)
        #expect(notice["subscription"] == JSONValue(subscription.id))
        let cursor = try #require(notice["cursor"]?.integerValue.map(Int.init))
        // What was pushed runs up to the cursor; pulling after it gives the rest.
        #expect(inbox.eventIDs == recorded.filter { $0 <= cursor })
        let pulled = try fixture.registry.read { s throws(RegistryError) in try s.events(after: cursor, matching: [try EventPattern("*")], limit: 100) }
        #expect(inbox.eventIDs + pulled.events.map(\.id) == recorded)
        #expect(inbox.eventIDs.count <= 4)
    }

    @Test func subscribersLearnWhenAnEventTypeLosesItsLastEmitter() throws {
        let fixture = try EventsFixture()
        fixture.dispatcher.start()
        let watcher = Inbox()
        _ = try fixture.dispatcher.subscribe(connection: 1, name: nil, patterns: [try EventPattern("transcript.*")], since: nil, send: watcher.send)
        let crm = Inbox()
        let unavailable = try fixture.dispatcher.register(
            ServiceRegistration(name: "crm", connection: 2, eventsConsumed: [try EventPattern("transcript.ready")]), send: crm.send)
        #expect(unavailable == ["transcript.ready"])

        let scribe = Inbox()
        #expect(try fixture.dispatcher.register(ServiceRegistration(name: "scribe", connection: 3, eventsProvided: ["transcript.ready"]),
                                                send: scribe.send) == [])
        #expect(eventually { crm.notices("events.available").count == 1 && watcher.notices("events.available").count == 1 })
        #expect(crm.notices("events.available").first?["service"] == "scribe")
        #expect(fixture.dispatcher.services().emitters["transcript.ready"] == ["scribe"])

        let id = try fixture.dispatcher.emit("transcript.ready", subject: "+33612345678", payload: ["cdr_id": 7], service: "scribe", connection: 3)
        #expect(eventually { watcher.eventIDs == [id] })
        #expect(throws: EventDispatcher.ServiceError.builtIn("call.ended")) {
            try fixture.dispatcher.emit("call.ended", subject: nil, payload: [:], service: "scribe", connection: 3)
        }
        #expect(throws: EventDispatcher.ServiceError.notProvided("transcript.failed")) {
            try fixture.dispatcher.emit("transcript.failed", subject: nil, payload: [:], service: "scribe", connection: 3)
        }
        #expect(throws: EventDispatcher.ServiceError.notRegistered("scribe")) {
            try fixture.dispatcher.emit("transcript.ready", subject: nil, payload: [:], service: "scribe", connection: 4)
        }

        fixture.dispatcher.connectionClosed(3)
        #expect(eventually { crm.notices("events.unavailable").count == 1 && watcher.notices("events.unavailable").count == 1 })
        #expect(watcher.notices("events.unavailable").first?["type"] == "transcript.ready")
        #expect(fixture.dispatcher.services().emitters["transcript.ready"] == [])
        #expect(scribe.items.withLock { $0.isEmpty })
    }
}
