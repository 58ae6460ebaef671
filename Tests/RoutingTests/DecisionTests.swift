import Testing
@testable import Registry
@testable import Routing

/// The decision, table by table. Each case names the world it changes, the call, and the outcome.
let standardPolicy = RoutingPolicy(userDialplan: "users", providerDialplan: "inbound", peerDialplan: nil, hasDefaultRoute: true)

@Suite struct DecisionTests {
    static let policy = standardPolicy

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var origin: Origin = .provider("telco")
        var caller: String? = "+33677777777"
        var dialled: String
        var priority: String? = nil
        var at: Int64 = Moment.mondayMorning
        var policy: RoutingPolicy = standardPolicy
        var change: @Sendable (inout World) -> Void = { _ in }
        var expect: Outcome
        var description: String { name }
    }

    static func ring(_ users: [String], number: String? = World.household, fork: Delivery.Fork = .parallel, timeout: Int = 30,
                     voicemail: AppHop? = nil) -> Outcome {
        .accept(Delivering(number: number, users: users, fork: fork, ringTimeout: timeout, voicemail: voicemail))
    }

    static func hop(_ app: String, provider: String, kind: String, number: String, step: Int, onFailure: App.OnFailure = .skip,
                    uri: String) -> AppHop {
        AppHop(appID: app, kind: kind, providerID: provider, subscriberID: "\(app)-\(number)", uri: uri, onFailure: onFailure, step: step)
    }

    static let meeting = Availability.Mode(name: "meeting", state: .notAvailable)
    static func inMode(_ mode: Availability.Mode, urgent: [String] = [], blocked: [String] = []) -> @Sendable (inout Availability) -> Void {
        { availability in
            availability.modes = [mode]
            availability.override = Availability.Override(mode: mode.name, until: nil)
            availability.urgent = urgent
            availability.blocked = blocked
        }
    }

    static let inboundCases: [Case] = [
        Case(name: "household rings every registered member", dialled: World.household, expect: ring(["alice", "bob", "tom"])),
        Case(name: "personal number rings its owner", dialled: World.alicePersonal, expect: ring(["alice"], number: World.alicePersonal)),
        Case(name: "unknown number from a carrier", dialled: "+33699999990", expect: .reject(status: 404, reason: "Unknown number")),
        Case(name: "suspended callee account", dialled: World.household,
             change: { $0.addAccount("smith", zone: "Europe/Paris", status: .suspended) },
             expect: .reject(status: 403, reason: "Account suspended")),
        Case(name: "unregistered members are left out", dialled: World.household, change: { $0.registered = ["bob"] }, expect: ring(["bob"])),
        Case(name: "nobody registered", dialled: World.household, change: { $0.registered = [] },
             expect: .reject(status: 480, reason: "Temporarily Unavailable")),
        Case(name: "disabled member is left out", dialled: World.household, change: { $0.setStatus("tom", .disabled) },
             expect: ring(["alice", "bob"])),
        Case(name: "personal number of a disabled user", dialled: World.bobPersonal, change: { $0.setStatus("bob", .disabled) },
             expect: .reject(status: 480, reason: "No user for this number")),
        Case(name: "member in a meeting is not rung", dialled: World.household,
             change: { $0.setAvailability("bob", inMode(meeting)) }, expect: ring(["alice", "tom"])),
        Case(name: "meeting that excludes the caller rings them", dialled: World.household,
             change: { w in w.setAvailability("bob", inMode(Availability.Mode(name: "meeting", state: .notAvailable, deny: ["+33677777777"]))) },
             expect: ring(["alice", "bob", "tom"])),
        Case(name: "meeting for the listed callers only", dialled: World.bobPersonal,
             change: { w in w.setAvailability("bob", inMode(Availability.Mode(name: "meeting", state: .notAvailable, allow: ["+33600000000"]))) },
             expect: ring(["bob"], number: World.bobPersonal)),
        Case(name: "every member unavailable", dialled: World.household,
             change: { w in for u in ["alice", "bob", "tom"] { w.setAvailability(u, inMode(meeting)) } },
             expect: .reject(status: 480, reason: "Temporarily Unavailable")),
        Case(name: "blocked caller on a personal number", dialled: World.alicePersonal,
             change: { $0.setAvailability("alice") { $0.blocked = ["+33677777777"] } }, expect: .reject(status: 603, reason: "Declined")),
        Case(name: "a caller blocked by one member still reaches the others", dialled: World.household,
             change: { $0.setAvailability("alice") { $0.blocked = ["+33677777777"] } }, expect: ring(["bob", "tom"])),
        Case(name: "a caller blocked by every member", dialled: World.household,
             change: { w in for u in ["alice", "bob", "tom"] { w.setAvailability(u) { $0.blocked = ["+33677777777"] } } },
             expect: .reject(status: 603, reason: "Declined")),
        Case(name: "hidden still rings", dialled: World.alicePersonal,
             change: { $0.setAvailability("alice", inMode(Availability.Mode(name: "ghost", state: .hidden))) },
             expect: ring(["alice"], number: World.alicePersonal)),
        Case(name: "transfer by redirect", dialled: World.alicePersonal,
             change: { $0.setAvailability("alice", inMode(Availability.Mode(name: "travel", state: .transfer, target: "+33655555555"))) },
             expect: .redirect(to: "+33655555555")),
        Case(name: "transfer by proxy to a number outside", dialled: World.alicePersonal,
             change: { w in
                 w.addNumber(World.alicePersonal, account: "smith", kind: .personal, owner: "alice", delivery: Delivery(transfer: .proxy))
                 w.setAvailability("alice", inMode(Availability.Mode(name: "travel", state: .transfer, target: "+33655555555")))
             },
             expect: .transfer(to: "+33655555555", then: .outbound(number: "+33655555555", via: .defaultRoute))),
        Case(name: "transfer by proxy to another of our numbers", dialled: World.alicePersonal,
             change: { w in
                 w.addNumber(World.alicePersonal, account: "smith", kind: .personal, owner: "alice", delivery: Delivery(transfer: .proxy))
                 w.setAvailability("alice", inMode(Availability.Mode(name: "travel", state: .transfer, target: World.bobPersonal)))
             },
             expect: .transfer(to: World.bobPersonal, then: ring(["bob"], number: World.bobPersonal))),
        Case(name: "transfer loop is stopped", dialled: World.alicePersonal,
             change: { w in
                 w.addNumber(World.alicePersonal, account: "smith", kind: .personal, owner: "alice", delivery: Delivery(transfer: .proxy))
                 w.addNumber(World.bobPersonal, account: "smith", kind: .personal, owner: "bob", delivery: Delivery(transfer: .proxy))
                 w.setAvailability("alice", inMode(Availability.Mode(name: "travel", state: .transfer, target: World.bobPersonal)))
                 w.setAvailability("bob", inMode(Availability.Mode(name: "travel", state: .transfer, target: World.alicePersonal)))
             },
             expect: .transfer(to: World.bobPersonal, then: .reject(status: 482, reason: "Transfer loop"))),
        Case(name: "transfer target unreachable without a default route", dialled: World.alicePersonal,
             policy: RoutingPolicy(userDialplan: "users", providerDialplan: "inbound"),
             change: { w in
                 w.addNumber(World.alicePersonal, account: "smith", kind: .personal, owner: "alice", delivery: Delivery(transfer: .proxy))
                 w.setAvailability("alice", inMode(Availability.Mode(name: "travel", state: .transfer, target: "+33655555555")))
             },
             expect: .transfer(to: "+33655555555", then: .reject(status: 480, reason: "Transfer target unreachable"))),
        Case(name: "one member rings while another transfers: ring wins", dialled: World.household,
             change: { $0.setAvailability("alice", inMode(Availability.Mode(name: "travel", state: .transfer, target: "+33655555555"))) },
             expect: ring(["bob", "tom"])),
        Case(name: "urgent caller with Priority: urgent bypasses the meeting", dialled: World.alicePersonal, priority: "urgent",
             change: { $0.setAvailability("alice", inMode(meeting, urgent: ["+33677777777"])) },
             expect: ring(["alice"], number: World.alicePersonal)),
        Case(name: "urgent caller with Priority: emergency bypasses a transfer", dialled: World.alicePersonal, priority: "emergency",
             change: { $0.setAvailability("alice", inMode(Availability.Mode(name: "t", state: .transfer, target: "+33655555555"), urgent: ["+33677777777"])) },
             expect: ring(["alice"], number: World.alicePersonal)),
        Case(name: "urgent caller without the header waits like everyone", dialled: World.alicePersonal,
             change: { $0.setAvailability("alice", inMode(meeting, urgent: ["+33677777777"])) },
             expect: .reject(status: 480, reason: "Temporarily Unavailable")),
        Case(name: "Priority: urgent from a caller not on the list", dialled: World.alicePersonal, priority: "urgent",
             change: { $0.setAvailability("alice", inMode(meeting, urgent: ["+33600000000"])) },
             expect: .reject(status: 480, reason: "Temporarily Unavailable")),
        Case(name: "urgent but unregistered", dialled: World.alicePersonal, priority: "urgent",
             change: { w in w.setAvailability("alice", inMode(meeting, urgent: ["+33677777777"])); w.registered = [] },
             expect: .reject(status: 480, reason: "Temporarily Unavailable")),
        Case(name: "serial fork and ring timeout from the number", dialled: World.household,
             change: { $0.addNumber(World.household, account: "smith", kind: .household, delivery: Delivery(ringTimeout: 12, fork: .serial)) },
             expect: ring(["alice", "bob", "tom"], fork: .serial, timeout: 12)),
        Case(name: "SIP username instead of a number", origin: .peer, caller: nil, dialled: "bob", expect: ring(["bob"], number: nil)),
        Case(name: "SIP username of a suspended account", origin: .peer, caller: nil, dialled: "carol",
             change: { $0.addAccount("jones", zone: "America/New_York", status: .suspended) },
             expect: .reject(status: 403, reason: "Account suspended")),
    ]

    static let vmHop = hop("vm", provider: "vmco", kind: "voicemail", number: World.alicePersonal, step: 0, uri: "sip:vm.example")

    static let appCases: [Case] = [
        Case(name: "two-app chain in position order", dialled: World.alicePersonal,
             change: { w in
                 w.activate(World.alicePersonal, app: "rec", provider: "recco", kind: "recording", position: 20, onFailure: .fail)
                 w.activate(World.alicePersonal, app: "screen", provider: "screenco", kind: "screening", position: 10)
             },
             expect: .chain(hops: [hop("screen", provider: "screenco", kind: "screening", number: World.alicePersonal, step: 0, uri: "sip:screen.example"),
                                   hop("rec", provider: "recco", kind: "recording", number: World.alicePersonal, step: 1, onFailure: .fail, uri: "sip:rec.example")],
                            then: ring(["alice"], number: World.alicePersonal))),
        Case(name: "returning from the first app continues with the second", origin: .chainReturn(provider: "screenco", step: 0),
             dialled: World.alicePersonal,
             change: { w in
                 w.activate(World.alicePersonal, app: "screen", provider: "screenco", kind: "screening", position: 10)
                 w.activate(World.alicePersonal, app: "rec", provider: "recco", kind: "recording", position: 20)
             },
             expect: .chain(hops: [hop("rec", provider: "recco", kind: "recording", number: World.alicePersonal, step: 1, uri: "sip:rec.example")],
                            then: ring(["alice"], number: World.alicePersonal))),
        Case(name: "returning from the last app reaches the callee", origin: .chainReturn(provider: "recco", step: 1),
             dialled: World.alicePersonal,
             change: { w in
                 w.activate(World.alicePersonal, app: "screen", provider: "screenco", kind: "screening", position: 10)
                 w.activate(World.alicePersonal, app: "rec", provider: "recco", kind: "recording", position: 20)
             },
             expect: ring(["alice"], number: World.alicePersonal)),
        Case(name: "inactive activations are not in the chain", dialled: World.alicePersonal,
             change: { $0.activate(World.alicePersonal, app: "screen", provider: "screenco", kind: "screening", position: 10, status: .inactive) },
             expect: ring(["alice"], number: World.alicePersonal)),
        Case(name: "no chain when the callee account is suspended", dialled: World.alicePersonal,
             change: { w in
                 w.activate(World.alicePersonal, app: "screen", provider: "screenco", kind: "screening", position: 10)
                 w.addAccount("smith", zone: "Europe/Paris", status: .suspended)
             },
             expect: .reject(status: 403, reason: "Account suspended")),
        Case(name: "no chain when nobody can take the call", dialled: World.alicePersonal,
             change: { w in
                 w.activate(World.alicePersonal, app: "screen", provider: "screenco", kind: "screening", position: 10)
                 w.registered = []
             },
             expect: .reject(status: 480, reason: "Temporarily Unavailable")),
        Case(name: "voicemail is the fallback, not a chain step", dialled: World.alicePersonal,
             change: { $0.activate(World.alicePersonal, app: "vm", provider: "vmco", kind: "voicemail", position: 5) },
             expect: ring(["alice"], number: World.alicePersonal, voicemail: vmHop)),
        Case(name: "voicemail when nobody is connectable", dialled: World.alicePersonal,
             change: { w in
                 w.activate(World.alicePersonal, app: "vm", provider: "vmco", kind: "voicemail", position: 5)
                 w.registered = []
             },
             expect: ring([], number: World.alicePersonal, voicemail: vmHop)),
        Case(name: "voicemail when the user is in a meeting", dialled: World.alicePersonal,
             change: { w in
                 w.activate(World.alicePersonal, app: "vm", provider: "vmco", kind: "voicemail", position: 5)
                 w.setAvailability("alice", inMode(meeting))
             },
             expect: ring([], number: World.alicePersonal, voicemail: vmHop)),
        Case(name: "blocked callers get 603 even with voicemail", dialled: World.alicePersonal,
             change: { w in
                 w.activate(World.alicePersonal, app: "vm", provider: "vmco", kind: "voicemail", position: 5)
                 w.setAvailability("alice") { $0.blocked = ["+33677777777"] }
             },
             expect: .reject(status: 603, reason: "Declined")),
    ]

    static let outboundCases: [Case] = [
        Case(name: "national number from a user", origin: .user("alice"), caller: World.alicePersonal, dialled: "0612345678",
             expect: .outbound(number: "+33612345678", via: .defaultRoute)),
        Case(name: "internal short number reaches the household", origin: .user("carol"), caller: "+12125550100", dialled: "0140000000",
             expect: ring(["alice", "bob", "tom"])),
        Case(name: "international for a member", origin: .user("bob"), caller: World.bobPersonal, dialled: "0044207123456",
             expect: .reject(status: 403, reason: "International calls not allowed for this user")),
        Case(name: "international for the primary", origin: .user("alice"), caller: World.alicePersonal, dialled: "0044207123456",
             expect: .outbound(number: "+44207123456", via: .defaultRoute)),
        Case(name: "premium for a member", origin: .user("bob"), caller: World.bobPersonal, dialled: "0899123456",
             expect: .reject(status: 403, reason: "Premium calls not allowed for this user")),
        Case(name: "child without outbound", origin: .user("tom"), caller: World.household, dialled: "0612345678",
             expect: .reject(status: 403, reason: "Outbound calls not allowed for this user")),
        Case(name: "child calls the household internally", origin: .user("tom"), caller: World.household, dialled: "0622222222",
             expect: ring(["bob"], number: World.bobPersonal)),
        Case(name: "child may call emergency", origin: .user("tom"), caller: World.household, dialled: "112",
             expect: .outbound(number: "112", via: .defaultRoute)),
        Case(name: "suspended account may call emergency", origin: .user("alice"), caller: World.alicePersonal, dialled: "15",
             change: { $0.addAccount("smith", zone: "Europe/Paris", status: .suspended) },
             expect: .outbound(number: "+33115", via: .defaultRoute)),
        Case(name: "suspended account may not call out", origin: .user("alice"), caller: World.alicePersonal, dialled: "0612345678",
             change: { $0.addAccount("smith", zone: "Europe/Paris", status: .suspended) },
             expect: .reject(status: 403, reason: "Account suspended")),
        Case(name: "denied destination", origin: .user("alice"), caller: World.alicePersonal, dialled: "36151234",
             expect: .reject(status: 403, reason: "Minitel is closed")),
        Case(name: "no default route", origin: .user("alice"), caller: World.alicePersonal, dialled: "0612345678",
             policy: RoutingPolicy(userDialplan: "users"), expect: .reject(status: 404, reason: "No Route To Destination")),
        Case(name: "peer without dialplan to a foreign number", origin: .peer, caller: nil, dialled: "+4420", expect: .outbound(number: "+4420", via: .defaultRoute)),
        Case(name: "trunk from the dialplan", origin: .peer, caller: nil, dialled: "+12125550199",
             policy: RoutingPolicy(peerDialplan: "inbound", hasDefaultRoute: true),
             expect: .outbound(number: "+12125550199", via: .trunk("telco", hops: ["sip:trunk.telco.example"]))),
        Case(name: "trunk that is not provisioned", origin: .peer, caller: nil, dialled: "+12125550199",
             policy: RoutingPolicy(peerDialplan: "inbound", hasDefaultRoute: true), change: { $0.providers["telco"] = nil },
             expect: .reject(status: 503, reason: "Trunk telco unavailable")),
        Case(name: "a dialplan that is not loaded keeps the number", origin: .user("alice"), caller: World.alicePersonal,
             dialled: "+33622222222", policy: RoutingPolicy(userDialplan: "missing"), expect: ring(["bob"], number: World.bobPersonal)),
        Case(name: "an app provider places a call out", origin: .provider("screenco"), caller: World.alicePersonal, dialled: "+4420",
             expect: .outbound(number: "+4420", via: .defaultRoute)),
        Case(name: "an app hands back a number that is not ours", origin: .chainReturn(provider: "screenco", step: 0), caller: nil,
             dialled: "+4420", expect: .reject(status: 404, reason: "Unknown number")),
        Case(name: "unknown caller user", origin: .user("ghost"), caller: nil, dialled: "0612345678",
             expect: .reject(status: 403, reason: "Unknown caller")),
    ]

    static func check(_ test: Case) {
        var world = World.smiths()
        test.change(&world)
        let facts = CallFacts(origin: test.origin, callerNumber: test.caller, dialled: test.dialled, priority: test.priority)
        let decision = Router.decide(facts, dialplans: standardDialplans, directory: world, policy: test.policy, now: test.at)
        #expect(decision.outcome == test.expect, "\(decision.steps.map { "\($0.stage): \($0.detail)" }.joined(separator: "\n"))")
        #expect(!decision.steps.isEmpty)
    }

    @Test(arguments: inboundCases) func inbound(_ test: Case) { Self.check(test) }

    /// The call path decides without words: the outcome is the same, no step is written.
    @Test(arguments: inboundCases + appCases + outboundCases)
    func silentDecisionMatches(_ test: Case) {
        var world = World.smiths()
        test.change(&world)
        let facts = CallFacts(origin: test.origin, callerNumber: test.caller, dialled: test.dialled, priority: test.priority)
        let silent = Router.decide(facts, dialplans: standardDialplans, directory: world, policy: test.policy, now: test.at, explain: false)
        #expect(silent.outcome == test.expect)
        #expect(silent.steps.isEmpty)
    }
    @Test(arguments: appCases) func apps(_ test: Case) { Self.check(test) }
    @Test(arguments: outboundCases) func outbound(_ test: Case) { Self.check(test) }

    /// Every combination of a personal number's mode, presence, urgency and Priority header.
    struct Matrix: Sendable, CustomStringConvertible {
        var state: Availability.State
        var registered: Bool
        var urgentListed: Bool
        var priority: String?
        var description: String { "\(state) registered=\(registered) urgent=\(urgentListed) priority=\(priority ?? "-")" }
    }

    static let matrix: [Matrix] = Availability.State.allCases.flatMap { state in
        [true, false].flatMap { registered in
            [true, false].flatMap { urgent in
                [nil, "normal", "non-urgent", "urgent", "emergency"].map { Matrix(state: state, registered: registered, urgentListed: urgent, priority: $0) }
            }
        }
    }

    @Test(arguments: matrix)
    func availabilityMatrix(_ row: Matrix) {
        var world = World.smiths()
        world.registered = row.registered ? ["alice"] : []
        world.setAvailability("alice", Self.inMode(Availability.Mode(name: "m", state: row.state, target: row.state == .transfer ? "+33655555555" : nil),
                                                    urgent: row.urgentListed ? ["+33677777777"] : []))
        let facts = CallFacts(origin: .provider("telco"), callerNumber: "+33677777777", dialled: World.alicePersonal, priority: row.priority)
        let outcome = Router.decide(facts, dialplans: standardDialplans, directory: world, policy: Self.policy, now: Moment.mondayMorning).outcome
        // The rule, stated once: an urgent call from a listed caller is treated as available; an
        // available or hidden user rings when registered; transfer redirects; the rest is 480.
        let urgent = row.urgentListed && (row.priority == "urgent" || row.priority == "emergency")
        let effective: Availability.State = urgent && (row.state == .notAvailable || row.state == .transfer) ? .available : row.state
        switch effective {
        case .available, .hidden:
            #expect(outcome == (row.registered ? Self.ring(["alice"], number: World.alicePersonal)
                                               : .reject(status: 480, reason: "Temporarily Unavailable")))
        case .transfer:
            #expect(outcome == .redirect(to: "+33655555555"))
        case .notAvailable:
            #expect(outcome == .reject(status: 480, reason: "Temporarily Unavailable"))
        }
    }

    /// A working-hours schedule across the week and both DST changes in the account's time zone.
    struct Schedule: Sendable, CustomStringConvertible {
        var utc: String
        var rings: Bool
        var description: String { utc }
    }

    static let schedule: [Schedule] = [
        // Paris, winter (UTC+1): office 09:00–17:30 local on weekdays → not available outside.
        Schedule(utc: "2026-11-23T07:59Z", rings: false), Schedule(utc: "2026-11-23T08:00Z", rings: true),
        Schedule(utc: "2026-11-23T16:29Z", rings: true), Schedule(utc: "2026-11-23T16:30Z", rings: false),
        Schedule(utc: "2026-11-28T10:00Z", rings: false), Schedule(utc: "2026-11-27T16:29Z", rings: true),
        // Summer (UTC+2): the same local window is two hours before UTC.
        Schedule(utc: "2026-06-15T06:59Z", rings: false), Schedule(utc: "2026-06-15T07:00Z", rings: true),
        Schedule(utc: "2026-06-15T15:29Z", rings: true), Schedule(utc: "2026-06-15T15:30Z", rings: false),
        // The Monday after each change: the window follows the wall clock.
        Schedule(utc: "2026-03-30T06:59Z", rings: false), Schedule(utc: "2026-03-30T07:00Z", rings: true),
        Schedule(utc: "2026-10-26T07:59Z", rings: false), Schedule(utc: "2026-10-26T08:00Z", rings: true),
        // The Friday before each change still has the old offset.
        Schedule(utc: "2026-03-27T08:00Z", rings: true), Schedule(utc: "2026-03-27T07:59Z", rings: false),
        Schedule(utc: "2026-10-23T07:00Z", rings: true), Schedule(utc: "2026-10-23T06:59Z", rings: false),
    ]

    @Test(arguments: schedule)
    func workingHours(_ row: Schedule) {
        var world = World.smiths()
        world.setAvailability("bob") { availability in
            availability.modes = [Availability.Mode(name: "office", state: .available), Availability.Mode(name: "off", state: .notAvailable)]
            availability.profiles = [Availability.Profile(name: "work", defaultMode: "off", rules: [
                Availability.Rule(days: [1, 2, 3, 4, 5], start: 540, end: 1050, mode: "office"),
            ])]
            availability.activeProfile = "work"
        }
        let facts = CallFacts(origin: .provider("telco"), callerNumber: "+33677777777", dialled: World.bobPersonal)
        let outcome = Router.decide(facts, dialplans: standardDialplans, directory: world, policy: Self.policy, now: Moment.utc(row.utc)).outcome
        #expect(outcome == (row.rings ? Self.ring(["bob"], number: World.bobPersonal) : .reject(status: 480, reason: "Temporarily Unavailable")))
    }

    @Test func explanationNamesEveryStage() {
        var world = World.smiths()
        world.activate(World.alicePersonal, app: "screen", provider: "screenco", kind: "screening", position: 10)
        let facts = CallFacts(origin: .user("carol"), callerNumber: "+12125550100", dialled: "0611111111")
        let decision = Router.decide(facts, dialplans: standardDialplans, directory: world, policy: Self.policy, now: Moment.mondayMorning)
        #expect(decision.normalized == World.alicePersonal)
        #expect(decision.numberClass == .national)
        #expect(decision.outcome.kind == "chain")
        #expect(decision.steps.map(\.stage) == ["dialplan", "number", "availability", "callee", "decision", "chain"])
        #expect(decision.steps[0].detail.contains("users.dialplan:7"))
    }
}
