@testable import Registry
@testable import Routing

/// An in-memory directory for the routing tables: the Smith household in Paris (alice primary,
/// bob member, tom child), a personal number for alice, a household number, carriers and apps.
struct World: RoutingDirectory {
    var numbers: [String: NumberEntry] = [:]
    var accounts: [String: Record<Account>] = [:]
    var users: [String: Record<User>] = [:]
    var availabilities: [String: Record<Availability>] = [:]
    var activations: [String: [Activation]] = [:]
    var apps: [String: Record<App>] = [:]
    var providers: [String: Record<Provider>] = [:]
    var registered: Set<String> = []

    func number(_ e164: String) -> NumberEntry? { numbers[e164] }
    func account(_ id: String) -> Record<Account>? { accounts[id] }
    func user(_ id: String) -> Record<User>? { users[id] }
    func user(sipUsername: String) -> Record<User>? { users.values.first { $0.sipUsername == sipUsername } }
    func users(inAccount accountID: String) -> [Record<User>] { users.values.filter { $0.accountID == accountID }.sorted { $0.id < $1.id } }
    func availability(of userID: String) -> Record<Availability>? { availabilities[userID] }
    func activeActivations(of number: String) -> [Activation] { (activations[number] ?? []).filter { $0.status == .active } }
    func app(_ id: String) -> Record<App>? { apps[id] }
    func provider(_ id: String) -> Record<Provider>? { providers[id] }
    func isRegistered(_ userID: String) -> Bool { registered.contains(userID) }

    static let household = "+33140000000"
    static let alicePersonal = "+33611111111"
    static let bobPersonal = "+33622222222"

    static func smiths() -> World {
        var world = World()
        world.addAccount("smith", zone: "Europe/Paris")
        world.addUser("alice", account: "smith", role: .primary)
        world.addUser("bob", account: "smith", role: .member)
        world.addUser("tom", account: "smith", role: .child)
        world.addNumber(household, account: "smith", kind: .household)
        world.addNumber(alicePersonal, account: "smith", kind: .personal, owner: "alice")
        world.addNumber(bobPersonal, account: "smith", kind: .personal, owner: "bob")
        world.addAccount("jones", zone: "America/New_York")
        world.addUser("carol", account: "jones", role: .primary)
        world.addNumber("+12125550100", account: "jones", kind: .personal, owner: "carol")
        world.addProvider("telco", kind: .carrier, hops: ["sip:trunk.telco.example"])
        world.addProvider("screenco", kind: .app, hops: ["sip:screen.example"])
        world.addProvider("recco", kind: .app, hops: ["sip:rec.example"])
        world.addProvider("vmco", kind: .app, hops: ["sip:vm.example"])
        world.registered = ["alice", "bob", "tom", "carol"]
        return world
    }

    mutating func addAccount(_ id: String, zone: String, status: Account.Status = .active) {
        accounts[id] = Record(Account(id: id, name: id, status: status, timeZone: zone, plan: nil, createdAt: "", updatedAt: ""))
    }

    mutating func addUser(_ id: String, account: String, role: User.Role, status: User.Status = .active) {
        users[id] = Record(User(id: id, accountID: account, displayName: id, role: role, sipUsername: id, status: status,
                                credentials: nil, grants: Service.defaults(for: role), createdAt: "", updatedAt: ""))
    }

    mutating func setGrants(_ id: String, _ grants: Set<String>) {
        var user = users[id]!.value
        user.grants = grants
        users[id] = Record(user)
    }

    mutating func setStatus(_ id: String, _ status: User.Status) {
        var user = users[id]!.value
        user.status = status
        users[id] = Record(user)
    }

    mutating func addNumber(_ number: String, account: String, kind: TelephoneNumber.Kind, owner: String? = nil,
                            delivery: Delivery = Delivery()) {
        numbers[number] = NumberEntry(TelephoneNumber(number: number, accountID: account, kind: kind, ownerUserID: owner,
                                                      providerID: "telco", delivery: delivery, createdAt: "", updatedAt: ""))
    }

    mutating func addProvider(_ id: String, kind: Provider.Kind, hops: [String]) {
        providers[id] = Record(Provider(id: id, name: id, kind: kind, hops: hops, trustedSources: [], idScheme: .tn, domain: nil,
                                        webhookURL: nil, currency: "EUR", ratePerMinute: 0, monthlyFee: 0, createdAt: "", updatedAt: ""))
    }

    mutating func activate(_ number: String, app: String, provider: String, kind: String, position: Int,
                           onFailure: App.OnFailure = .skip, status: Activation.Status = .active) {
        apps[app] = Record(App(id: app, providerID: provider, name: app, kind: kind, position: position, onFailure: onFailure, hop: nil,
                               createdAt: "", updatedAt: ""))
        var list = activations[number] ?? []
        list.append(Activation(number: number, appID: app, providerID: provider, status: status, subscriberID: "\(app)-\(number)",
                               routing: providers[provider]!.hops[0], activatedAt: "", deactivatedAt: nil))
        list.sort { apps[$0.appID]!.position < apps[$1.appID]!.position }
        activations[number] = list
    }

    mutating func setAvailability(_ user: String, _ change: (inout Availability) -> Void) {
        var availability = availabilities[user]?.value ?? .standard(userID: user)
        change(&availability)
        availabilities[user] = Record(availability)
    }
}

/// Moments in Paris, as milliseconds since the epoch (UTC+1 in winter, UTC+2 in summer).
enum Moment {
    /// Monday 2026-11-23 10:00 in Paris (09:00Z).
    static let mondayMorning: Int64 = 1_795_424_400_000
    /// Monday 2026-11-23 20:00 in Paris.
    static let mondayEvening: Int64 = mondayMorning + 10 * 3_600_000
    /// Saturday 2026-11-28 10:00 in Paris.
    static let saturdayMorning: Int64 = mondayMorning + 5 * 86_400_000

    static func utc(_ text: String) -> Int64 {
        // "2026-03-29T00:59Z"
        let parts = text.dropLast().split(separator: "T")
        let date = parts[0].split(separator: "-").map { Int($0)! }
        let time = parts[1].split(separator: ":").map { Int($0)! }
        var days = 0
        for year in 1970..<date[0] { days += (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 366 : 365 }
        let leap = date[0] % 4 == 0 && (date[0] % 100 != 0 || date[0] % 400 == 0)
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        days += lengths.prefix(date[1] - 1).reduce(0, +) + date[2] - 1
        return Int64(((days * 24 + time[0]) * 60 + time[1]) * 60) * 1000
    }
}

let standardDialplans: DialplanSet = {
    let text = """
    # The national plan of a French operator.
    10  exact   112                 -              class=emergency
    10  exact   15                  +33115         class=emergency
    20  prefix  +                   -
    30  prefix  00                  +              class=international
    40  regex   ^0(89[0-9]{7})$     +33\\1          class=premium
    50  regex   ^0([1-9][0-9]{8})$  +33\\1          class=national
    60  regex   ^([1-9][0-9]{3})$   +3314000\\1     class=local
    70  prefix  3615                -              deny="Minitel is closed"
    """
    let trunks = """
    10  prefix  +1   -  class=international route=trunk:telco
    20  prefix  +    -
    """
    return try! DialplanSet.compile([("users.dialplan", text), ("inbound.dialplan", trunks)]).get()
}()
