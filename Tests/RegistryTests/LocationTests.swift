import Foundation
import JSON
import Testing
@testable import Registry

@Suite struct LocationTests {
    static let now: Int64 = 1_795_000_000_000

    static func binding(_ contact: String, user: String = "alice", aor: String = "alice", expiresIn seconds: Int64 = 600,
                        path: [String] = []) -> Binding {
        Binding(aor: aor, contact: contact, userID: user, instance: "<urn:uuid:1>", regID: 1, q: 500, expiresAt: now + seconds * 1000,
                callID: "c-\(contact)", cseq: 7, path: path, transport: "tcp", source: "192.0.2.1:40000", local: "tcp:127.0.0.1:5060",
                userAgent: "phone/1.0", registeredAt: now, updatedAt: now, connection: 42)
    }

    func put(_ location: Location, _ aor: String, _ bindings: [Binding]) throws {
        try location.update(aor: aor) { (current: [Binding]) throws(RegistryError) in
            (bindings, bindings.map { BindingChange(.added, $0) } + current.map { BindingChange(.removed, $0) }, ())
        }
    }

    @Test(arguments: Location.Persistence.allCases)
    func bindingsSurviveARestartWithoutTheirConnection(_ persistence: Location.Persistence) throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        let location = try Location(registry: fixture.registry, now: Self.now, persistence: persistence)
        try put(location, "alice", [Self.binding("sip:alice@192.0.2.1:5060", path: ["<sip:edge.example;lr>"]),
                                    Self.binding("sip:alice@192.0.2.2:5060", expiresIn: 5)])
        try put(location, "+33612345678", [Self.binding("sip:bob@192.0.2.3", user: "bob", aor: "+33612345678")])
        #expect(location.count == 3 && location.aorCount == 2)
        location.flush()
        #expect(location.bindings(userID: "alice").count == 2)
        #expect(location.bindings(userID: "bob").map(\.aor) == ["+33612345678"])

        // Reopened 10 s later: the 5 s binding is gone, the others are back as written, minus the
        // TCP connection (connection numbers mean nothing in a new process).
        let reopened = try Registry(database: try Database(path: fixture.path), realm: "tandem.test", clock: fixture.clock)
        let restarted = try Location(registry: reopened, now: Self.now + 10_000)
        var expected = Self.binding("sip:alice@192.0.2.1:5060", path: ["<sip:edge.example;lr>"])
        expected.connection = nil
        #expect(restarted.bindings(aor: "alice") == [expected])
        #expect(restarted.count == 2)
        let events = try reopened.read { s throws(RegistryError) in try s.events(since: 0, type: "registration.changed", limit: 100) }
        #expect(events.count == 3 && events.allSatisfy { $0.source == "registrar" })
    }

    @Test(arguments: Location.Persistence.allCases)
    func sweepRemovesExpiredAndRecordsIt(_ persistence: Location.Persistence) throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        let location = try Location(registry: fixture.registry, now: Self.now, persistence: persistence)
        try put(location, "alice", [Self.binding("sip:a@192.0.2.1", expiresIn: 60), Self.binding("sip:b@192.0.2.1", expiresIn: 120)])
        #expect(try location.sweep(now: Self.now + 59_999).isEmpty)
        #expect(try location.sweep(now: Self.now + 60_000).map(\.contact) == ["sip:a@192.0.2.1"])
        #expect(location.bindings(aor: "alice").map(\.contact) == ["sip:b@192.0.2.1"])
        location.flush()
        let events = try fixture.registry.read { s throws(RegistryError) in try s.events(since: 0, type: "registration.changed", limit: 100) }
        #expect(events.last?.payload.contains("\"change\":\"expired\"") == true)
        let stored = try fixture.registry.read { s throws(RegistryError) in try s.count("SELECT count(*) FROM bindings") }
        #expect(stored == 1)
    }

    @Test func aRefusedDecisionChangesNothing() throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        let location = try Location(registry: fixture.registry, now: Self.now, persistence: .immediate)
        try put(location, "alice", [Self.binding("sip:a@192.0.2.1")])
        struct Refusal: Error {}
        #expect(throws: LocationError<Refusal>.self) {
            try location.update(aor: "alice") { (_: [Binding]) throws(Refusal) -> ([Binding], [BindingChange], Void) in throw Refusal() }
        }
        // A binding of a user who does not exist fails the foreign key: nothing changes in memory.
        #expect(throws: LocationError<RegistryError>.self) { try put(location, "alice", [Self.binding("sip:z@192.0.2.1", user: "nobody")]) }
        #expect(location.bindings(aor: "alice").map(\.contact) == ["sip:a@192.0.2.1"])
    }

    // MARK: Batched writes

    func storedContacts(_ fixture: RegistryFixture) throws -> [String] {
        try fixture.registry.read { s throws(RegistryError) in
            try s.rows("SELECT contact FROM bindings ORDER BY contact", []) { $0.text(0) }
        }
    }

    func events(_ fixture: RegistryFixture) throws -> [String] {
        try fixture.registry.read { s throws(RegistryError) in
            try s.events(since: 0, type: "registration.changed", limit: 100).map(\.payload)
        }
    }

    @Test func batchedChangesAreSeenAtOnceAndWrittenTogetherInOrder() throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        let location = try Location(registry: fixture.registry, now: Self.now, persistence: .batched)
        try put(location, "alice", [Self.binding("sip:a@192.0.2.1")])
        try put(location, "alice", [Self.binding("sip:b@192.0.2.1")])
        try put(location, "+33612345678", [Self.binding("sip:bob@192.0.2.3", user: "bob", aor: "+33612345678")])
        // The call path sees every change before any is written.
        #expect(location.bindings(aor: "alice").map(\.contact) == ["sip:b@192.0.2.1"])
        #expect(location.writeStatus.pending <= 2)
        location.flush()
        #expect(location.writeStatus.pending == 0)
        #expect(try storedContacts(fixture) == ["sip:b@192.0.2.1", "sip:bob@192.0.2.3"])
        // Both of alice's changes are events, in the order they happened: a added, then a removed and b added.
        let changes = try events(fixture).map { payload in
            ["added", "removed"].first { payload.contains("\"change\":\"\($0)\"") }! + " " + (payload.contains("sip:a@") ? "a" : payload.contains("sip:bob@") ? "bob" : "b")
        }
        #expect(changes == ["added a", "added b", "removed a", "added bob"])
    }

    @Test func aFailingFileKeepsTheBatchAndRetriesIt() throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        let location = try Location(registry: fixture.registry, now: Self.now, persistence: .batched, capacity: 1)
        try fixture.registry.read { s throws(RegistryError) in try s.sql("PRAGMA query_only = ON") }
        try put(location, "alice", [Self.binding("sip:a@192.0.2.1")])
        location.flush()
        let status = location.writeStatus
        #expect(status.pending == 1 && status.failures >= 1 && status.lastError != nil)
        #expect(fixture.registry.storageHealth.current.map(\.writer) == ["location"])
        #expect(location.bindings(aor: "alice").map(\.contact) == ["sip:a@192.0.2.1"])
        // The queue is full: a change of another address is refused rather than held unwritten,
        // while the waiting address may still change.
        #expect(throws: LocationError<RegistryError>.self) {
            try put(location, "+33612345678", [Self.binding("sip:bob@192.0.2.3", user: "bob", aor: "+33612345678")])
        }
        try put(location, "alice", [Self.binding("sip:a@192.0.2.1"), Self.binding("sip:c@192.0.2.1")])
        try fixture.registry.read { s throws(RegistryError) in try s.sql("PRAGMA query_only = OFF") }
        location.flush()
        #expect(location.writeStatus.pending == 0)
        #expect(try storedContacts(fixture) == ["sip:a@192.0.2.1", "sip:c@192.0.2.1"])
        // The first change (a added) and the merged second (a and c added, the old a removed).
        #expect(try events(fixture).count == 4)
        // The outage is over and in the log once, with the address it held.
        #expect(fixture.registry.storageHealth.current.isEmpty)
        let recovered = try fixture.registry.read { s throws(RegistryError) in try s.events(since: 0, type: "storage.recovered", limit: 10) }
        #expect(recovered.count == 1)
        let payload = try JSONValue.parse(recovered[0].payload)
        #expect(payload["writer"] == "location" && payload["held"] == 1)
        #expect((payload["failed_attempts"]?.integerValue ?? 0) >= 1)
    }

    @Test func aChangeTheFileRefusesIsUndoneAndTheOthersAreWritten() throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        let location = try Location(registry: fixture.registry, now: Self.now, persistence: .batched)
        try put(location, "alice", [Self.binding("sip:a@192.0.2.1")])
        location.flush()
        // A binding of a user who does not exist fails the foreign key when written: the batch is
        // retried address by address, the good one is written, the refused one goes back to the file's.
        try put(location, "alice", [Self.binding("sip:z@192.0.2.1", user: "nobody")])
        try put(location, "+33612345678", [Self.binding("sip:bob@192.0.2.3", user: "bob", aor: "+33612345678")])
        location.flush()
        #expect(location.bindings(aor: "alice").map(\.contact) == ["sip:a@192.0.2.1"])
        #expect(location.bindings(aor: "+33612345678").map(\.contact) == ["sip:bob@192.0.2.3"])
        #expect(try storedContacts(fixture) == ["sip:a@192.0.2.1", "sip:bob@192.0.2.3"])
        #expect(location.writeStatus.dropped == 1 && location.writeStatus.pending == 0)
    }
}
