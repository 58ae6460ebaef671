import Registry
import Testing
@testable import Registrar

@Suite struct RegistrationTests {
    static let now: Int64 = 1_795_219_200_000
    let policy = RegistrarPolicy(minExpires: 60, maxExpires: 3_600, defaultExpires: 1_800, maxContacts: 3)

    func request(_ contacts: [ContactEntry]?, expires: String? = nil, callID: String = "c1", cseq: UInt32 = 1,
                 path: [String] = [], supported: Set<String> = []) -> RegisterRequest {
        RegisterRequest(aor: "alice", userID: "alice", contacts: contacts, expires: expires, callID: callID, cseq: cseq, path: path,
                        supported: supported, transport: "udp", source: "192.0.2.1:5060", local: "udp:127.0.0.1:5060")
    }

    func apply(_ request: RegisterRequest, _ current: [Binding] = [], at time: Int64 = now) throws(RegisterRefusal) -> [Binding] {
        try Registration.apply(request, to: current, now: time, policy: policy).bindings
    }

    @Test func expiryComesFromParameterThenHeaderThenDefault() throws {
        let bindings = try apply(request([ContactEntry(uri: "sip:a@192.0.2.1", expires: "120"), ContactEntry(uri: "sip:b@192.0.2.1")],
                                         expires: "900"))
        #expect(bindings.map { $0.expiresAt - Self.now } == [120_000, 900_000])
        #expect(try apply(request([ContactEntry(uri: "sip:a@192.0.2.1")]))[0].expiresAt == Self.now + 1_800_000)
        #expect(try apply(request([ContactEntry(uri: "sip:a@192.0.2.1")], expires: "99999"))[0].expiresAt == Self.now + 3_600_000)
    }

    @Test(arguments: [("30", 423), ("-1", 400), ("soon", 400)])
    func badExpiryIsRefused(_ value: String, _ status: Int) {
        #expect(throws: RegisterRefusal.self) { try apply(request([ContactEntry(uri: "sip:a@192.0.2.1", expires: value)])) }
        do { _ = try apply(request([ContactEntry(uri: "sip:a@192.0.2.1")], expires: value)) } catch {
            #expect(error.status == status)
            if status == 423 { #expect(error.headers == [.init(name: "Min-Expires", value: "60")]) }
        }
    }

    @Test(arguments: [("1", 1000), ("0.5", 500), ("0.001", 1), ("0", 0), ("1.000", 1000)])
    func qValues(_ text: String, _ thousandths: Int) {
        #expect(Registration.qValue(text) == thousandths)
        #expect(Registration.qValue(Registration.qText(thousandths)) == thousandths)
    }

    @Test(arguments: ["1.5", "2", "0.0001", "-0.1", "", "x", "0,5"])
    func badQValues(_ text: String) {
        #expect(Registration.qValue(text) == nil)
    }

    @Test func refreshKeepsRegistrationTimeAndOrderIsEnforced() throws {
        let first = try apply(request([ContactEntry(uri: "sip:a@192.0.2.1")], cseq: 1))
        let later = Self.now + 10_000
        let refreshed = try Registration.apply(request([ContactEntry(uri: "sip:a@192.0.2.1")], cseq: 2), to: first, now: later, policy: policy)
        #expect(refreshed.changes.map(\.kind) == [.refreshed])
        #expect(refreshed.bindings[0].registeredAt == Self.now && refreshed.bindings[0].updatedAt == later)
        for cseq: UInt32 in [1, 2] {
            do {
                _ = try apply(request([ContactEntry(uri: "sip:other@192.0.2.1")], cseq: cseq), refreshed.bindings)
                Issue.record("CSeq \(cseq) accepted")
            } catch {
                #expect(error.status == 500)
            }
        }
        // Another Call-ID (another device) is not ordered against this one.
        #expect(try apply(request([ContactEntry(uri: "sip:b@192.0.2.1")], callID: "c2", cseq: 1), refreshed.bindings).count == 2)
    }

    @Test func wildcardRemovesAllOnlyWithExpiresZero() throws {
        let current = try apply(request([ContactEntry(uri: "sip:a@192.0.2.1"), ContactEntry(uri: "sip:b@192.0.2.1")]))
        let removed = try Registration.apply(request(nil, expires: "0", cseq: 2), to: current, now: Self.now, policy: policy)
        #expect(removed.bindings.isEmpty && removed.changes.map(\.kind) == [.removed, .removed])
        #expect(throws: RegisterRefusal.self) { try apply(request(nil, expires: "60", cseq: 3), current) }
        #expect(throws: RegisterRefusal.self) { try apply(request(nil, cseq: 3), current) }
    }

    @Test func instanceReplacesItsOldContact() throws {
        let instance = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
        let current = try apply(request([ContactEntry(uri: "sip:a@192.0.2.1:5060", instance: instance, regID: "1"),
                                         ContactEntry(uri: "sip:desk@192.0.2.9")]))
        let result = try Registration.apply(request([ContactEntry(uri: "sip:a@198.51.100.4:6000", instance: instance, regID: "1")],
                                                    callID: "after-reboot"), to: current, now: Self.now, policy: policy)
        #expect(result.bindings.map(\.contact) == ["sip:a@198.51.100.4:6000", "sip:desk@192.0.2.9"])
        #expect(result.changes.map(\.kind) == [.replaced, .added])
        // Another reg-id of the same instance is another flow: kept beside it.
        let second = try apply(request([ContactEntry(uri: "sip:a@198.51.100.4:6001", instance: instance, regID: "2")], callID: "c3"),
                               result.bindings)
        #expect(second.count == 3)
    }

    @Test func contactLimitAndPath() throws {
        let three = try apply(request((1...3).map { ContactEntry(uri: "sip:\($0)@192.0.2.1") }))
        do {
            _ = try apply(request([ContactEntry(uri: "sip:4@192.0.2.1")], callID: "c9"), three)
            Issue.record("a fourth contact was accepted")
        } catch {
            #expect(error.status == 403)
        }
        // Path without `Supported: path` is refused (RFC 3327 §5.3); with it, stored on the binding.
        #expect(throws: RegisterRefusal.self) { try apply(request([ContactEntry(uri: "sip:a@10.0.0.1")], path: ["<sip:edge.example;lr>"])) }
        let routed = try apply(request([ContactEntry(uri: "sip:a@10.0.0.1")], path: ["<sip:edge.example;lr>"], supported: ["path"]))
        #expect(routed[0].path == ["<sip:edge.example;lr>"])
    }

    @Test func expiresZeroRemovesOnlyThatContact() throws {
        let current = try apply(request([ContactEntry(uri: "sip:a@192.0.2.1"), ContactEntry(uri: "sip:b@192.0.2.1")]))
        let result = try Registration.apply(request([ContactEntry(uri: "sip:a@192.0.2.1", expires: "0")], cseq: 2), to: current,
                                            now: Self.now, policy: policy)
        #expect(result.bindings.map(\.contact) == ["sip:b@192.0.2.1"])
        #expect(result.changes.map(\.kind) == [.removed])
    }
}
