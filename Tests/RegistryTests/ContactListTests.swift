import JSON
import Testing
@testable import Registry

@Suite struct ContactListTests {
    func define(_ registry: Registry, _ user: String, _ name: String, _ entries: JSONValue, acting: String? = nil) throws -> ContactList {
        try registry.write { s throws(RegistryError) in try s.defineContactList(userID: user, name: name, entries: entries, acting: acting) }
    }

    @Test func listsAreStoredAndReplaced() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        let family = try define(registry, "alice", "family", [["user": "bob", "name": "Bob"], ["number": "+33612345678"]])
        #expect(family.entries == [ContactList.Entry(kind: .user, value: "bob", name: "Bob"), ContactList.Entry(kind: .number, value: "+33612345678")])
        _ = try define(registry, "alice", "favourites", [["list": "family"], ["uri": "sip:carol@example.org"]], acting: "alice")
        _ = try define(registry, "alice", "family", [["user": "tom"]])
        let lists = try registry.read { s throws(RegistryError) in try s.contactLists(userID: "alice", acting: nil) }
        #expect(lists.map(\.name) == ["family", "favourites"])
        #expect(lists[0].entries.map(\.value) == ["tom"])
        let all = ContactList.members(of: "favourites", in: Dictionary(uniqueKeysWithValues: lists.map { ($0.name, $0) }))
        #expect(all == ["tom", "sip:carol@example.org"])
        let pattern = try EventPattern("contacts.changed")
        let events = try registry.read { s throws(RegistryError) in try s.events(after: 0, matching: [pattern], limit: 100).events }
        #expect(events.count == 3)
    }

    @Test func badEntriesNameTheirField() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        let cases: [(JSONValue, String)] = [
            ([["number": "0612"]], "entries[0].number"),
            ([["user": "nobody"]], "entries[0].user"),
            ([["list": "missing"]], "entries[0].list"),
            ([["uri": "http://x"]], "entries[0].uri"),
            ([["number": "+33612345678", "user": "bob"]], "entries[0]"),
            ([["user": "bob"], ["user": "bob"]], "entries[1]"),
            ([["user": "bob", "colour": "red"]], "entries[0].colour"),
            ([["list": "family"]], "entries[0].list"),
        ]
        for (entries, field) in cases {
            #expect(throws: RegistryError.self, "\(entries)") { try define(registry, "alice", "family", entries) }
            do { _ = try define(registry, "alice", "family", entries) } catch let error as RegistryError {
                #expect(error.field == field, "\(entries): \(error)")
            }
        }
        // A member cannot change another user's lists.
        #expect(throws: RegistryError.self) { try define(registry, "alice", "family", [], acting: "bob") }
    }

    @Test func cyclesAreRefused() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        _ = try define(registry, "alice", "a", [])
        _ = try define(registry, "alice", "b", [["list": "a"]])
        do {
            _ = try define(registry, "alice", "a", [["list": "b"]])
            Issue.record("a cycle through b was accepted")
        } catch let error as RegistryError {
            #expect(error.field == "entries")
        }
    }

    /// Availability entries name lists; the snapshot carries their members, also after a reopen,
    /// and follows changes of the list; a named list cannot be deleted.
    @Test func availabilityNamesLists() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        let definition: JSONValue = ["modes": [["name": "quiet", "state": "not_available", "allow": ["list:family"]]],
                                     "sharing": "authorised", "authorised": ["list:family"]]
        #expect(throws: RegistryError.self) {
            try registry.write { s throws(RegistryError) in try s.defineAvailability(userID: "alice", definition: definition, activeProfile: nil, acting: nil) }
        }
        _ = try define(registry, "alice", "family", [["user": "bob"]])
        _ = try registry.write { s throws(RegistryError) in try s.defineAvailability(userID: "alice", definition: definition, activeProfile: nil, acting: nil) }
        #expect(registry.snapshot.availability(of: "alice")?.value.lists == ["family": ["bob"]])
        _ = try define(registry, "alice", "family", [["user": "bob"], ["number": "+33611111111"]])
        #expect(registry.snapshot.availability(of: "alice")?.value.lists == ["family": ["bob", "+33611111111"]])
        do {
            try registry.write { s throws(RegistryError) in try s.deleteContactList(userID: "alice", name: "family", acting: nil) }
            Issue.record("a list the availability names was deleted")
        } catch {
            #expect(error.kind == .conflict)
        }
        let reopened = try Registry(database: try Database(path: fixture.path), realm: "tandem.test", clock: fixture.clock)
        #expect(reopened.snapshot.availability(of: "alice")?.value.lists == ["family": ["bob", "+33611111111"]])
    }
}
