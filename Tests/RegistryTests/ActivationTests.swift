import Foundation
import Testing
@testable import Registry

@Suite struct ActivationTests {
    func provider(_ s: RegistryStore, _ id: String, scheme: String, domain: String? = nil) throws(RegistryError) {
        var fields = ProviderFields()
        fields.name = id
        fields.hops = ["sip:\(id).example.net"]
        fields.idScheme = scheme
        fields.domain = domain
        _ = try s.createProvider(id: id, fields: fields, acting: nil)
        var app = AppFields()
        app.name = id
        app.kind = "screening"
        app.position = 10
        _ = try s.createApp(id: "\(id)-app", providerID: id, fields: app, acting: nil)
    }

    @Test func subscriberIDsFollowEachScheme() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        let activations = try registry.write { s throws(RegistryError) -> [Activation] in
            try provider(s, "bytn", scheme: "tn")
            try provider(s, "bymail", scheme: "email")
            try provider(s, "bytemplate", scheme: "template:smith-{digits}")
            return [
                try s.activate(number: "+33612345678", appID: "bytn-app", email: nil, acting: nil),
                try s.activate(number: "+33612345678", appID: "bymail-app", email: "Alice@Example.com", acting: "alice"),
                try s.activate(number: "+33612345678", appID: "bytemplate-app", email: nil, acting: nil),
                try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: nil),
            ]
        }
        #expect(activations[0].subscriberID == "+33612345678")
        #expect(activations[1].subscriberID == "alice@example.com")
        #expect(activations[2].subscriberID == "smith-33612345678")
        #expect(activations[3].subscriberID.wholeMatch(of: /u[0-9a-z]{8}@vm\.example\.net/) != nil)
        #expect(activations[0].routing == "sip:+33612345678@bytn.example.net;carrier=telco")
        #expect(activations[1].routing == "sip:alice%40example.com@bymail.example.net;carrier=telco")
        #expect(activations[3].routing.hasSuffix("@10.0.0.9:5070;transport=tcp;carrier=telco"))
        // Chain order by app position, and every provider-specific ID resolves back to the number.
        let snapshot = registry.snapshot
        #expect(snapshot.activeActivations(of: "+33612345678").map(\.appID) == ["bymail-app", "bytemplate-app", "bytn-app", "voicemail"])
        for activation in activations {
            #expect(snapshot.number(providerID: activation.providerID, subscriberID: activation.subscriberID) == "+33612345678")
        }
        // The email scheme needs the address.
        _ = try registry.write { s throws(RegistryError) in
            _ = try s.createNumber("+33612345679", accountID: "smith", kind: .household, ownerUserID: nil, providerID: nil, acting: nil)
        }
        #expect(throws: RegistryError.invalid("email", "provider 'bymail' knows subscribers by e-mail; give email")) {
            _ = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345679", appID: "bymail-app", email: nil, acting: nil) }
        }
        // One address is one subscriber per provider.
        #expect(throws: RegistryError.self) {
            _ = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345679", appID: "bymail-app", email: "alice@example.com", acting: nil) }
        }
        // No carrier: no carrier parameter.
        let bare = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345679", appID: "bytn-app", email: nil, acting: nil) }
        #expect(bare.routing == "sip:+33612345679@bytn.example.net")
    }

    @Test func generatedIDsAreUniquePerProvider() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        let ids = try registry.write { s throws(RegistryError) -> [String] in
            var ids: [String] = []
            for index in 0..<300 {
                let number = "+3361000\(String(format: "%04d", index))"
                _ = try s.createNumber(number, accountID: "smith", kind: .household, ownerUserID: nil, providerID: "telco", acting: nil)
                ids.append(try s.activate(number: number, appID: "voicemail", email: nil, acting: nil).subscriberID)
            }
            return ids
        }
        #expect(Set(ids).count == ids.count)
    }

    @Test func idsStayAcrossDeactivationAndProviderSwitch() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        let first = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: "alice") }
        let switched = try registry.write { s throws(RegistryError) -> Activation in
            _ = try s.switchProvider("+33612345678", to: "othertelco", acting: nil)
            return try s.activations(number: "+33612345678", appID: nil, providerID: nil, status: nil, limit: 10, offset: 0, acting: nil).items[0]
        }
        #expect(switched.subscriberID == first.subscriberID)
        #expect(switched.status == .active)
        #expect(switched.routing == first.routing.replacingOccurrences(of: "carrier=telco", with: "carrier=othertelco"))
        #expect(registry.snapshot.activeActivations(of: "+33612345678").first?.routing == switched.routing)

        let off = try registry.write { s throws(RegistryError) in try s.deactivate(number: "+33612345678", appID: "voicemail", acting: "alice") }
        #expect(off.status == .inactive)
        #expect(registry.snapshot.activeActivations(of: "+33612345678").isEmpty)
        let again = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: nil) }
        #expect(again.subscriberID == first.subscriberID)

        let events = try registry.read { s throws(RegistryError) in try s.events(since: 0, type: nil, limit: 100) }
        #expect(events.map(\.type) == ["app.activated", "number.provider_switched", "app.deactivated", "app.activated"])
        // A generated-scheme provider never learns the number itself.
        #expect(!events[0].payload.contains("+33612345678"))
        #expect(events[0].payload.contains(first.subscriberID))
        #expect(events[1].payload.contains("\"from\":\"telco\"") && events[1].payload.contains("\"to\":\"othertelco\""))
    }

    @Test func activatingTwiceOrDeactivatingWhatIsOffIsRefused() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        _ = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: nil) }
        #expect(throws: RegistryError.self) {
            _ = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: nil) }
        }
        _ = try registry.write { s throws(RegistryError) in try s.deactivate(number: "+33612345678", appID: "voicemail", acting: nil) }
        #expect(throws: RegistryError.self) {
            _ = try registry.write { s throws(RegistryError) in try s.deactivate(number: "+33612345678", appID: "voicemail", acting: nil) }
        }
    }

    @Test func newHopsRegenerateRouting() throws {
        let fixture = try RegistryFixture()
        let registry = try fixture.household()
        _ = try registry.write { s throws(RegistryError) in try s.activate(number: "+33612345678", appID: "voicemail", email: nil, acting: nil) }
        var fields = ProviderFields()
        fields.hops = ["sip:[2001:db8::9]:5080"]
        _ = try registry.write { s throws(RegistryError) in try s.updateProvider("vm", fields: fields, acting: nil) }
        let routing = try #require(registry.snapshot.activeActivations(of: "+33612345678").first?.routing)
        #expect(routing.hasSuffix("@[2001:db8::9]:5080;carrier=telco"))
    }
}
