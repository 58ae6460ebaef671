import Crypto
import Foundation
import Testing
@testable import Registry

@Suite struct RegistryTests {
    func expectError(_ kind: RegistryError.Kind, field: String?, _ body: () throws -> Void,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected \(kind) on \(field ?? "-"), got success", sourceLocation: sourceLocation)
        } catch let error as RegistryError {
            #expect(error.kind == kind && error.field == field, "got \(error.kind) \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func passwordsAreStoredAsHA1sOnly() throws {
        let fixture = try RegistryFixture(realm: "tandem.test")
        let registry = try fixture.household()
        let alice = try #require(registry.snapshot.user(sipUsername: "alice"))
        let credentials = try #require(alice.credentials)
        #expect(credentials.realm == "tandem.test")
        #expect(credentials.ha1MD5 == DigestAlgorithm.md5.hex("alice:tandem.test:alice-secret"))
        #expect(credentials.ha1SHA256 == DigestAlgorithm.sha256.hex("alice:tandem.test:alice-secret"))
        let database = try Database(path: fixture.path)
        #expect(try database.integer("SELECT count(*) FROM users WHERE ha1_md5 LIKE '%secret%' OR ha1_sha256 LIKE '%secret%'") == 0)
        #expect(try database.text("SELECT group_concat(sql) FROM sqlite_master").contains("password") == false)
    }

    @Test func snapshotFollowsEveryCommittedWriteAndNothingElse() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        let before = registry.snapshot
        #expect(before.number("+33612345678")?.providerID == "telco")
        #expect(before.users(inAccount: "smith").map(\.id) == ["alice", "bob", "tom"])

        // A write that fails half-way publishes nothing and leaves no row behind.
        expectError(.conflict, field: "sip_username") {
            try registry.write { s throws(RegistryError) in
                _ = try s.createAccount(id: "jones", name: "Jones", acting: nil)
                _ = try s.createUser(accountID: "jones", id: "j1", displayName: "J", role: .primary, sipUsername: "alice",
                                     password: nil, grants: nil, acting: nil)
            }
        }
        #expect(registry.snapshot.account("jones") == nil)
        #expect(registry.snapshot.version == before.version)
        #expect(throws: RegistryError.self) { try registry.read { s throws(RegistryError) in try s.account("jones", acting: nil) } }

        _ = try registry.write { s throws(RegistryError) in try s.switchProvider("+33612345678", to: "othertelco", acting: nil) }
        #expect(registry.snapshot.number("+33612345678")?.providerID == "othertelco")
        // The old snapshot a reader kept is unchanged.
        #expect(before.number("+33612345678")?.providerID == "telco")
        #expect(registry.snapshot.version == before.version + 1)
    }

    @Test func snapshotSurvivesRestart() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        _ = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: "alice") }
        let reopened = try Registry(database: try Database(path: fixture.path), realm: "tandem.test", clock: fixture.clock)
        let a = registry.snapshot, b = reopened.snapshot
        #expect(a.counts.map(\.1) == b.counts.map(\.1))
        #expect(a.user("alice") == b.user("alice"))
        #expect(a.activeActivations(of: "+33612345678") == b.activeActivations(of: "+33612345678"))
        let subscriber = try #require(b.activeActivations(of: "+33612345678").first?.subscriberID)
        #expect(b.number(providerID: "vm", subscriberID: subscriber) == "+33612345678")
    }

    @Test func onlyThePrimaryUserOrTheOperatorProvisionsTheAccount() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        // Members and children may not create, change, grant or delete.
        for acting in ["bob", "tom"] {
            expectError(.forbidden, field: "acting_user") {
                _ = try registry.write { s throws(RegistryError) in
                    try s.createUser(accountID: "smith", id: "eve", displayName: "Eve", role: .member, sipUsername: "eve",
                                     password: nil, grants: nil, acting: acting)
                }
            }
            expectError(.forbidden, field: "acting_user") {
                _ = try registry.write { s throws(RegistryError) in try s.grant("tom", services: ["outbound"], acting: acting) }
            }
            expectError(.forbidden, field: "acting_user") {
                _ = try registry.write { s throws(RegistryError) in try s.updateUser("tom", displayName: "T", role: nil, status: nil, sipUsername: nil, password: nil, acting: acting) }
            }
            expectError(.forbidden, field: "acting_user") {
                try registry.write { s throws(RegistryError) in try s.deleteUser("tom", acting: acting) }
            }
            expectError(.forbidden, field: "acting_user") {
                _ = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: acting) }
            }
        }
        // A user may set their own password, not another's; the primary may set anyone's in the account.
        _ = try registry.write { s throws(RegistryError) in try s.setPassword("bob", password: "new-secret", acting: "bob") }
        expectError(.forbidden, field: "acting_user") {
            _ = try registry.write { s throws(RegistryError) in try s.setPassword("alice", password: "new-secret", acting: "bob") }
        }
        _ = try registry.write { s throws(RegistryError) in try s.setPassword("tom", password: "tom-secret", acting: "alice") }
        // Operator-only actions refuse even the primary user.
        expectError(.forbidden, field: "acting_user") {
            _ = try registry.write { s throws(RegistryError) in try s.createAccount(id: "x", name: "X", acting: "alice") }
        }
        expectError(.forbidden, field: "acting_user") {
            _ = try registry.write { s throws(RegistryError) in try s.switchProvider("+33612345678", to: "othertelco", acting: "alice") }
        }
        expectError(.forbidden, field: "acting_user") {
            _ = try registry.write { s throws(RegistryError) in try s.updateAccount("smith", name: nil, status: .suspended, timeZone: nil, plan: nil, acting: "alice") }
        }
        // A primary user of another account has no say here.
        _ = try registry.write { s throws(RegistryError) in
            _ = try s.createAccount(id: "jones", name: "Jones", acting: nil)
            _ = try s.createUser(accountID: "jones", id: "jack", displayName: "Jack", role: .primary, sipUsername: "jack", password: nil, grants: nil, acting: nil)
        }
        expectError(.forbidden, field: "acting_user") {
            _ = try registry.write { s throws(RegistryError) in try s.grant("tom", services: ["outbound"], acting: "jack") }
        }
        expectError(.forbidden, field: "acting_user") {
            _ = try registry.read { s throws(RegistryError) in try s.user("tom", acting: "jack") }
        }
        // Listing as a user shows only their own account.
        let seen = try registry.read { s throws(RegistryError) in try s.accounts(status: nil, limit: 100, offset: 0, acting: "jack") }
        #expect(seen.items.map(\.id) == ["jones"])
        // The primary restricts a child through grants.
        let tom = try registry.write { s throws(RegistryError) in try s.grant("tom", services: ["outbound"], acting: "alice") }
        #expect(tom.grants == ["outbound"])
        #expect(registry.snapshot.user("tom")?.grants == ["outbound"])
        expectError(.invalid, field: "services") {
            _ = try registry.write { s throws(RegistryError) in try s.grant("tom", services: ["app:voicemail"], acting: "alice") }
        }
        expectError(.invalid, field: "acting_user") {
            _ = try registry.write { s throws(RegistryError) in try s.grant("tom", services: ["outbound"], acting: "nobody") }
        }
    }

    @Test func suspendedAccountsStopActingUsersAndRecordAnEvent() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        _ = try registry.write { s throws(RegistryError) in try s.updateAccount("smith", name: nil, status: .suspended, timeZone: nil, plan: nil, acting: nil) }
        #expect(registry.snapshot.account("smith")?.status == .suspended)
        expectError(.forbidden, field: "acting_user") {
            _ = try registry.write { s throws(RegistryError) in try s.grant("tom", services: ["outbound"], acting: "alice") }
        }
        let events = try registry.read { s throws(RegistryError) in try s.events(since: 0, type: "account.status_changed", limit: 10) }
        #expect(events.count == 1)
        #expect(events.first?.payload.contains("\"to\":\"suspended\"") == true)
        _ = try registry.write { s throws(RegistryError) in try s.updateAccount("smith", name: nil, status: .active, timeZone: nil, plan: nil, acting: nil) }
        _ = try registry.write { s throws(RegistryError) in try s.grant("tom", services: ["outbound"], acting: "alice") }
    }

    @Test func onePrimaryPerAccountAndHandingItOver() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        expectError(.conflict, field: "role") {
            _ = try registry.write { s throws(RegistryError) in
                try s.createUser(accountID: "smith", id: "p2", displayName: "P2", role: .primary, sipUsername: "p2", password: nil, grants: nil, acting: nil)
            }
        }
        _ = try registry.write { s throws(RegistryError) in try s.updateUser("bob", displayName: nil, role: .primary, status: nil, sipUsername: nil, password: nil, acting: "alice") }
        #expect(registry.snapshot.user("bob")?.role == .primary)
        #expect(registry.snapshot.user("alice")?.role == .member)
        expectError(.invalid, field: "password") {
            _ = try registry.write { s throws(RegistryError) in try s.updateUser("bob", displayName: nil, role: nil, status: nil, sipUsername: "robert", password: nil, acting: nil) }
        }
        _ = try registry.write { s throws(RegistryError) in try s.updateUser("bob", displayName: nil, role: nil, status: nil, sipUsername: "robert", password: "robert-pw", acting: nil) }
        #expect(registry.snapshot.user(sipUsername: "robert")?.id == "bob")
        #expect(registry.snapshot.user(sipUsername: "bob") == nil)
        #expect(registry.snapshot.user("bob")?.credentials?.ha1MD5 == DigestAlgorithm.md5.hex("robert:tandem.test:robert-pw"))
    }

    @Test func deletingWhatIsStillReferencedIsRefused() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        _ = try registry.write { s throws(RegistryError) in
            _ = try s.createNumber("+33700000001", accountID: "smith", kind: .personal, ownerUserID: "tom", providerID: nil, acting: nil)
            _ = try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: nil)
        }
        expectError(.conflict, field: "id") { try registry.write { s throws(RegistryError) in try s.deleteAccount("smith", acting: nil) } }
        expectError(.conflict, field: "id") { try registry.write { s throws(RegistryError) in try s.deleteUser("tom", acting: nil) } }
        expectError(.conflict, field: "id") { try registry.write { s throws(RegistryError) in try s.deleteUser("alice", acting: nil) } }
        expectError(.conflict, field: "id") { try registry.write { s throws(RegistryError) in try s.deleteProvider("vm", acting: nil) } }
        expectError(.conflict, field: "id") { try registry.write { s throws(RegistryError) in try s.deleteProvider("telco", acting: nil) } }
        expectError(.conflict, field: "id") { try registry.write { s throws(RegistryError) in try s.deleteApp("voicemail", acting: nil) } }
        expectError(.conflict, field: "number") { try registry.write { s throws(RegistryError) in try s.deleteNumber("+33612345678", acting: nil) } }
        expectError(.notFound, field: "id") { try registry.write { s throws(RegistryError) in try s.deleteAccount("nobody", acting: nil) } }

        // Taken apart in order, everything goes, leaving no orphan row.
        try registry.write { s throws(RegistryError) in
            _ = try s.deactivate(number: "+33612345678", appID: "voicemail", acting: nil)
            try s.deleteNumber("+33612345678", acting: nil)
            try s.deleteNumber("+33700000001", acting: nil)
            try s.deleteApp("voicemail", acting: nil)
            try s.deleteProvider("vm", acting: nil)
            try s.deleteUser("tom", acting: nil)
            try s.deleteUser("bob", acting: nil)
            try s.deleteUser("alice", acting: nil)
            try s.deleteAccount("smith", acting: nil)
        }
        let database = try Database(path: fixture.path)
        for table in ["accounts", "users", "grants", "numbers", "apps", "activations", "subscriber_ids"] {
            #expect(try database.integer("SELECT count(*) FROM \(table)") == 0, "\(table) keeps rows")
        }
        #expect(try database.integer("PRAGMA foreign_key_check") == 0)
        #expect(registry.snapshot.counts.filter { $0.0 != "providers" }.allSatisfy { $0.1 == 0 })
    }

    @Test func validationNamesTheField() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        let cases: [(String?, (RegistryStore) throws(RegistryError) -> Void)] = [
            ("number", { s throws(RegistryError) in _ = try s.createNumber("0612345678", accountID: "smith", kind: .household, ownerUserID: nil, providerID: nil, acting: nil) }),
            ("number", { s throws(RegistryError) in _ = try s.createNumber("+0612345678", accountID: "smith", kind: .household, ownerUserID: nil, providerID: nil, acting: nil) }),
            ("number", { s throws(RegistryError) in _ = try s.createNumber("+1234567890123456", accountID: "smith", kind: .household, ownerUserID: nil, providerID: nil, acting: nil) }),
            ("owner", { s throws(RegistryError) in _ = try s.createNumber("+33700000002", accountID: "smith", kind: .personal, ownerUserID: nil, providerID: nil, acting: nil) }),
            ("owner", { s throws(RegistryError) in _ = try s.createNumber("+33700000002", accountID: "smith", kind: .household, ownerUserID: "alice", providerID: nil, acting: nil) }),
            ("provider", { s throws(RegistryError) in _ = try s.createNumber("+33700000002", accountID: "smith", kind: .household, ownerUserID: nil, providerID: "vm", acting: nil) }),
            ("id", { s throws(RegistryError) in _ = try s.createAccount(id: "bad id", name: "X", acting: nil) }),
            ("name", { s throws(RegistryError) in _ = try s.createAccount(id: "x", name: "  ", acting: nil) }),
            ("time_zone", { s throws(RegistryError) in _ = try s.createAccount(id: "x", name: "X", timeZone: "Mars/Olympus", acting: nil) }),
            ("sip_username", { s throws(RegistryError) in _ = try s.createUser(accountID: "smith", id: "u", displayName: "U", role: .member, sipUsername: "a b", password: nil, grants: nil, acting: nil) }),
            ("password", { s throws(RegistryError) in _ = try s.createUser(accountID: "smith", id: "u", displayName: "U", role: .member, sipUsername: "u", password: "short", grants: nil, acting: nil) }),
            ("services", { s throws(RegistryError) in _ = try s.createUser(accountID: "smith", id: "u", displayName: "U", role: .member, sipUsername: "u", password: nil, grants: ["flying"], acting: nil) }),
            ("hops", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.hops = ["http://x"]; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("hops", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("hops", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.hops = ["sip:1.2.3.4;transport=sctp"]; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("trusted_sources", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.kind = .carrier; f.trustedSources = ["10.0.0.0/33"]; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("id_scheme", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.kind = .carrier; f.idScheme = "uuid"; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("id_scheme", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.kind = .carrier; f.idScheme = "template:{account}"; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("domain", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.kind = .carrier; f.idScheme = "generated"; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("webhook_url", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.kind = .carrier; f.webhookURL = "ftp://x"; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("currency", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.kind = .carrier; f.currency = "euro"; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("rate_per_minute", { s throws(RegistryError) in var f = ProviderFields(); f.name = "P"; f.kind = .carrier; f.ratePerMinute = -1; _ = try s.createProvider(id: "p", fields: f, acting: nil) }),
            ("kind", { s throws(RegistryError) in var f = AppFields(); f.name = "A"; f.kind = "teleport"; _ = try s.createApp(id: "a", providerID: "vm", fields: f, acting: nil) }),
            ("position", { s throws(RegistryError) in var f = AppFields(); f.name = "A"; f.kind = "ivr"; f.position = 5000; _ = try s.createApp(id: "a", providerID: "vm", fields: f, acting: nil) }),
            ("provider", { s throws(RegistryError) in var f = AppFields(); f.name = "A"; f.kind = "ivr"; _ = try s.createApp(id: "a", providerID: "telco", fields: f, acting: nil) }),
            ("limit", { s throws(RegistryError) in _ = try s.accounts(status: nil, limit: 0, offset: 0, acting: nil) }),
            ("offset", { s throws(RegistryError) in _ = try s.numbers(accountID: nil, ownerUserID: nil, providerID: nil, kind: nil, limit: 10, offset: -1, acting: nil) }),
        ]
        for (index, (field, body)) in cases.enumerated() {
            do {
                try registry.write { s throws(RegistryError) in try body(s) }
                Issue.record("case \(index) (\(field ?? "-")) was accepted")
            } catch {
                #expect(error.field == field, "case \(index): \(error)")
                #expect(error.kind == .invalid || error.kind == .notFound, "case \(index): \(error)")
            }
        }
    }
}
