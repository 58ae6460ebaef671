#if canImport(Glibc)
import Glibc
#endif
import Admin
import Foundation
import JSON
import Registry
import Routing

/// `tandem-bench routing HOUSEHOLDS [DECISIONS]`: `Router.decide` against a real registry.
///
/// Each household is an account (Europe/Paris) with a primary and a member user, a household number
/// and the primary's personal number — 2 numbers per household, so 500,000 households give
/// 1,000,000 numbers. 100,000 activations (voicemail, screening, screening + recording) go on the
/// first 80,000 household numbers; the first 150,000 primaries have an availability definition
/// (a working-hours profile switching to a meeting mode that lets one caller through, a weekend
/// transfer mode, urgent and blocked lists); three users in four are registered. The decisions mix
/// carrier calls to household, personal and unknown numbers with users' calls to other households,
/// to national numbers outside and to international ones, at random moments of a week.
///
/// The directory is the registry snapshot the gateway reads (`RegistryDirectory`); presence comes
/// from a fixed rule instead of the location service (whose lookup is one locked dictionary read).
enum RoutingBench {
    static func clock() -> Double { RegistryBench.clock() }

    static func householdNumber(_ index: Int) -> String { "+3310" + padded(index) }
    static func personalNumber(_ index: Int) -> String { "+3320" + padded(index) }
    static func padded(_ index: Int) -> String {
        let digits = String(index)
        return String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }

    /// The users' dialplan an operator in France would write (docs/dialplans.md), with short codes.
    static let usersDialplan = """
        10  exact   112                  -             class=emergency
        10  exact   15                   +33112        class=emergency
        10  exact   17                   +33117        class=emergency
        10  exact   18                   +33118        class=emergency
        20  prefix  +                    -
        30  prefix  00                   +             class=international
        40  regex   ^0(89[0-9]{7})$      +33\\1         class=premium
        45  prefix  3615                 -             deny="Minitel is closed"
        50  regex   ^0([1-9][0-9]{8})$   +33\\1         class=national
        60  regex   ^([1-9][0-9]{3})$    +3314000\\1    class=local
        """ + "\n" + (0..<40).map { "70  exact   3\($0 + 100)  +33800000\($0 + 100)  class=national" }.joined(separator: "\n") + "\n"

    static let inboundDialplan = """
        10  prefix  +      -
        20  prefix  00     +
        30  regex   ^0([1-9][0-9]{8})$   +33\\1
        """

    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    static func run(households: Int, decisions: Int) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let registry = try build(households: households, folder: folder)
        let snapshot = registry.snapshot
        let counts = Dictionary(uniqueKeysWithValues: snapshot.counts)
        print("registry: \(counts["numbers"] ?? 0) numbers, \(counts["users"] ?? 0) users, \(counts["activations"] ?? 0) activations, "
              + "\(min(households, 150_000)) availability definitions")

        let plans: DialplanSet
        switch DialplanSet.compile([("users.dialplan", usersDialplan), ("inbound.dialplan", inboundDialplan)]) {
        case .success(let compiled): plans = compiled
        case .failure(let problems): throw RegistryError.invalid("dialplan", problems.description)
        }
        let policy = RoutingPolicy(userDialplan: "users", providerDialplan: "inbound", hasDefaultRoute: true, maxTransfers: 3)
        let directory = BenchDirectory(base: RegistryDirectory(snapshot: snapshot, location: nil, now: 0))

        // The calls, made up front so only the decision is timed.
        var random = Generator(state: 0x5eed)
        let monday: Int64 = 1_795_392_000_000 // 2026-11-23T00:00:00Z
        var calls: [(CallFacts, Int64)] = []
        calls.reserveCapacity(decisions)
        for _ in 0..<decisions {
            let household = random.next(households)
            let caller = "+336" + padded(random.next(10_000_000)) + String(random.next(10))
            let roll = random.next(100)
            let facts: CallFacts
            switch roll {
            case 0..<55:
                facts = CallFacts(origin: .provider("telco"), callerNumber: random.next(20) == 0 ? "+33699999999" : caller,
                                  dialled: householdNumber(household), priority: random.next(50) == 0 ? "urgent" : nil)
            case 55..<65:
                facts = CallFacts(origin: .provider("telco"), callerNumber: caller, dialled: personalNumber(household))
            case 65..<70:
                facts = CallFacts(origin: .provider("telco"), callerNumber: caller, dialled: "+3399" + padded(household))
            case 70..<85:
                facts = CallFacts(origin: .user("u\(household)a"), callerNumber: personalNumber(household),
                                  dialled: "04" + padded(random.next(10_000_000)) + "1")
            case 85..<95:
                let other = random.next(households)
                facts = CallFacts(origin: .user("u\(household)b"), callerNumber: householdNumber(household), dialled: "0" + householdNumber(other).dropFirst(3))
            default:
                facts = CallFacts(origin: .user("u\(household)a"), callerNumber: personalNumber(household), dialled: "0044207946" + padded(random.next(10_000)).suffix(4))
            }
            calls.append((facts, monday + Int64(random.next(7 * 24 * 3600)) * 1000))
        }

        // Warm up, then time each decision.
        var outcomes: [String: Int] = [:]
        for (facts, now) in calls.prefix(10_000) {
            _ = Router.decide(facts, dialplans: plans, directory: directory, policy: policy, now: now, explain: false)
        }
        var latencies = [Double](repeating: 0, count: calls.count)
        for (index, (facts, now)) in calls.enumerated() {
            let start = clock()
            let decision = Router.decide(facts, dialplans: plans, directory: directory, policy: policy, now: now, explain: false)
            latencies[index] = clock() - start
            outcomes[decision.outcome.kind, default: 0] += 1
        }
        // Throughput without the per-decision clock reads.
        var start = clock()
        var sink = decideAll(calls, plans, directory, policy)
        let seconds = clock() - start
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1e6 }
        print(String(format: "decide (call path, no explanation): %d decisions in %.2f s = %.0f decisions/s; latency median %.2f µs, p90 %.2f µs, p99 %.2f µs, max %.1f µs",
                     calls.count, seconds, Double(calls.count) / seconds, percentile(0.5), percentile(0.9), percentile(0.99),
                     latencies.last! * 1e6))
        print("outcomes: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))

        // route.explain: the same decisions with every step worded.
        let sample = calls.prefix(min(calls.count, 200_000))
        start = clock()
        for (facts, now) in sample {
            sink &+= Router.decide(facts, dialplans: plans, directory: directory, policy: policy, now: now, explain: true).steps.count
        }
        let explained = clock() - start
        print(String(format: "decide with explanation (route.explain): %.2f µs per decision over %d (%d steps)",
                     explained / Double(sample.count) * 1e6, sample.count, sink))
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print("peak memory: \(usage.ru_maxrss / 1024) MB")
    }

    /// Every call decided as on the call path (a function of its own, for `callgrind --toggle-collect`).
    @inline(never)
    static func decideAll(_ calls: [(CallFacts, Int64)], _ plans: DialplanSet, _ directory: BenchDirectory, _ policy: RoutingPolicy) -> Int {
        var sink = 0
        for (facts, now) in calls {
            sink &+= Router.decide(facts, dialplans: plans, directory: directory, policy: policy, now: now, explain: false).steps.count
        }
        return sink
    }

    /// A registry file with the households, providers, apps, activations and availability.
    static func build(households: Int, folder: String) throws -> Registry {
        let csv = folder + "/import.csv"
        var text = "record,account_id,name,time_zone,user_id,display_name,role,sip_username,grants,number,kind,owner\n"
        text.reserveCapacity(households * 300)
        for index in 0..<households {
            let grants = index % 10 == 0 ? "outbound|international" : "outbound"
            text += "account,h\(index),Household \(index),Europe/Paris,,,,,,,,\n"
            text += "user,h\(index),,,u\(index)a,Primary \(index),primary,user\(index)a,\(grants),,,\n"
            text += "user,h\(index),,,u\(index)b,Member \(index),member,user\(index)b,outbound,,,\n"
            text += "number,h\(index),,,,,,,,\(householdNumber(index)),household,\n"
            text += "number,h\(index),,,,,,,,\(personalNumber(index)),personal,u\(index)a\n"
        }
        try text.write(toFile: csv, atomically: false, encoding: .utf8)
        text = ""
        let registry = try Registry(database: try Database(path: folder + "/tandem.db"), realm: "bench", clock: Registry.systemClock)
        var reader = try CSVReader(path: csv)
        var start = clock()
        let report = try registry.importCSV(&reader, options: ImportOptions(chunkSize: 10_000))
        guard report.progress.failed == 0 else { throw RegistryError.storage("import failed: \(report.errors.prefix(3))") }
        print(String(format: "setup: import of %d rows in %.0f s", report.progress.rows, clock() - start))

        let admin = AdminDispatcher(registry: registry, version: "bench", clock: Registry.systemClock)
        for (method, params) in [
            ("provider.create", #"{"id": "telco", "name": "Telco", "kind": "carrier", "trusted_sources": ["192.0.2.1"]}"#),
            ("provider.create", #"{"id": "vmcorp", "name": "VM Corp", "kind": "app", "hops": ["sip:vm.example.net"], "id_scheme": "generated", "domain": "vm.example.net"}"#),
            ("provider.create", #"{"id": "screenco", "name": "ScreenCo", "kind": "app", "hops": ["sip:screen.example.net"]}"#),
            ("provider.create", #"{"id": "recco", "name": "RecCo", "kind": "app", "hops": ["sip:rec.example.net"], "id_scheme": "template:rec-{digits}"}"#),
            ("app.create", #"{"id": "voicemail", "provider": "vmcorp", "name": "Voicemail", "kind": "voicemail", "position": 900}"#),
            ("app.create", #"{"id": "screen", "provider": "screenco", "name": "Screening", "kind": "screening", "position": 10}"#),
            ("app.create", #"{"id": "record", "provider": "recco", "name": "Recording", "kind": "recording", "position": 20}"#),
        ] {
            let answer = admin.handle(request: ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": try JSONValue.parse(params)])
            if case .object(let fields)? = answer, let error = fields["error"] { throw RegistryError.invalid(method, "\(error)") }
        }

        // Activations: voicemail on the first 50,000 household numbers, screening on the next
        // 30,000, recording too on the last 20,000 of those — 100,000 in all.
        start = clock()
        let activated = min(households, 80_000)
        for chunk in stride(from: 0, to: activated, by: 10_000) {
            _ = try registry.write { store throws(RegistryError) in
                for index in chunk..<min(chunk + 10_000, activated) {
                    let number = householdNumber(index)
                    if index < 50_000 {
                        _ = try store.activate(number: number, appID: "voicemail", email: nil, acting: nil)
                    } else {
                        _ = try store.activate(number: number, appID: "screen", email: nil, acting: nil)
                        if index >= 60_000 { _ = try store.activate(number: number, appID: "record", email: nil, acting: nil) }
                    }
                }
            }
        }
        let definition = try JSONValue.parse("""
            {"modes": [{"name": "meeting", "state": "not_available", "deny": ["+33699999999"]},
                       {"name": "weekend", "state": "transfer", "target": "+33611111111"},
                       {"name": "dnd", "state": "not_available"}],
             "profiles": [{"name": "work", "default_mode": "available",
                           "rules": [{"days": ["mon-fri"], "from": "09:00", "to": "12:00", "mode": "meeting"},
                                     {"days": ["mon-thu"], "from": "22:00", "to": "07:00", "mode": "dnd"},
                                     {"days": ["sat", "sun"], "from": "00:00", "to": "23:59", "mode": "weekend"}]},
                          {"name": "holiday", "default_mode": "weekend", "rules": []}],
             "urgent": ["+33699999999"], "blocked": ["+33655555555", "+33655555556"]}
            """)
        let defined = min(households, 150_000)
        for chunk in stride(from: 0, to: defined, by: 10_000) {
            _ = try registry.write { store throws(RegistryError) in
                for index in chunk..<min(chunk + 10_000, defined) {
                    _ = try store.defineAvailability(userID: "u\(index)a", definition: definition, activeProfile: "work", acting: nil)
                }
            }
        }
        print(String(format: "setup: activations and availability in %.0f s", clock() - start))
        return registry
    }
}

/// The registry snapshot, with presence from a fixed rule: about three users in four have a live binding.
final class BenchDirectory: RoutingDirectory {
    let base: RegistryDirectory
    init(base: RegistryDirectory) { self.base = base }

    func number(_ e164: String) -> NumberEntry? { base.number(e164) }
    func account(_ id: String) -> Record<Account>? { base.account(id) }
    func user(_ id: String) -> Record<User>? { base.user(id) }
    func user(sipUsername: String) -> Record<User>? { base.user(sipUsername: sipUsername) }
    func users(inAccount accountID: String) -> [Record<User>] { base.users(inAccount: accountID) }
    func availability(of userID: String) -> Record<Availability>? { base.availability(of: userID) }
    func activeActivations(of number: String) -> [Activation] { base.activeActivations(of: number) }
    func app(_ id: String) -> Record<App>? { base.app(id) }
    func provider(_ id: String) -> Record<Provider>? { base.provider(id) }
    func isRegistered(_ userID: String) -> Bool { userID.utf8.reduce(0) { $0 &+ Int($1) } % 4 != 0 }
}
