import Foundation
@testable import Registry

/// A registry on a fresh SQLite file in the temporary folder, removed when the fixture goes.
final class RegistryFixture {
    let path: String
    let registry: Registry
    /// By default 2026-11-18T09:46:40Z, fixed: every write of the fixture happens at that moment.
    let clock: @Sendable () -> Int64

    init(realm: String = "tandem.test", clock: @escaping @Sendable () -> Int64 = { 1_795_000_000_000 }) throws {
        self.clock = clock
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-\(UUID().uuidString).db").path
        registry = try Registry(database: try Database(path: path), realm: realm, clock: clock)
    }

    deinit {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// The Smith household: account, primary Alice, member Bob, child Tom; carrier telco; app
    /// provider vm (generated IDs) with a voicemail app; +33612345678 household on telco.
    @discardableResult
    func household() throws -> Registry {
        try registry.write { s throws(RegistryError) in
            _ = try s.createAccount(id: "smith", name: "The Smiths", timeZone: "Europe/Paris", acting: nil)
            _ = try s.createUser(accountID: "smith", id: "alice", displayName: "Alice", role: .primary, sipUsername: "alice",
                                 password: "alice-secret", grants: nil, acting: nil)
            _ = try s.createUser(accountID: "smith", id: "bob", displayName: "Bob", role: .member, sipUsername: "bob",
                                 password: "bob-secret1", grants: nil, acting: "alice")
            _ = try s.createUser(accountID: "smith", id: "tom", displayName: "Tom", role: .child, sipUsername: "tom",
                                 password: nil, grants: nil, acting: "alice")
            var carrier = ProviderFields()
            carrier.name = "Telco"
            carrier.kind = .carrier
            _ = try s.createProvider(id: "telco", fields: carrier, acting: nil)
            carrier.name = "Other Telco"
            _ = try s.createProvider(id: "othertelco", fields: carrier, acting: nil)
            var vm = ProviderFields()
            vm.name = "VM Corp"
            vm.hops = ["sip:10.0.0.9:5070;transport=tcp"]
            vm.idScheme = "generated"
            vm.domain = "vm.example.net"
            _ = try s.createProvider(id: "vm", fields: vm, acting: nil)
            var app = AppFields()
            app.name = "Voicemail"
            app.kind = "voicemail"
            app.position = 900
            _ = try s.createApp(id: "voicemail", providerID: "vm", fields: app, acting: nil)
            _ = try s.createNumber("+33612345678", accountID: "smith", kind: .household, ownerUserID: nil, providerID: "telco", acting: nil)
        }
        return registry
    }
}

extension RegistryError {
    /// For `#expect(throws:)`: a matcher on kind and field.
    func matches(_ kind: Kind, field: String?) -> Bool { self.kind == kind && self.field == field }
}
