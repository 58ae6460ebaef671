/// The key of a provider-specific subscriber identifier.
public struct SubscriberKey: Hashable, Sendable {
    public var providerID: String
    public var subscriberID: String
    public init(providerID: String, subscriberID: String) {
        self.providerID = providerID
        self.subscriberID = subscriberID
    }
}

/// The whole registry, frozen: what routing reads on every call without touching SQLite. A new
/// snapshot is published after every committed write; a reader keeps the one it took for as long
/// as it needs it (STYLE.md §7).
public struct RegistrySnapshot: Sendable {
    /// Bumped by every committed write.
    public internal(set) var version: UInt64 = 0
    var accounts = PersistentMap<String, Account>()
    var users = PersistentMap<String, User>()
    var userIDBySIPUsername = PersistentMap<String, String>()
    var userIDsByAccount = PersistentMap<String, [String]>()
    var numbers = PersistentMap<String, TelephoneNumber>()
    var providers = PersistentMap<String, Provider>()
    var apps = PersistentMap<String, App>()
    /// Every activation of a number, active or not, in chain order.
    var activationsByNumber = PersistentMap<String, [Activation]>()
    var numberBySubscriber = PersistentMap<SubscriberKey, String>()

    public init() {}

    public func account(_ id: String) -> Account? { accounts[id] }
    public func user(_ id: String) -> User? { users[id] }
    public func user(sipUsername: String) -> User? { userIDBySIPUsername[sipUsername].flatMap { users[$0] } }
    public func users(inAccount accountID: String) -> [User] {
        (userIDsByAccount[accountID] ?? []).compactMap { users[$0] }
    }
    public func number(_ e164: String) -> TelephoneNumber? { numbers[e164] }
    public func provider(_ id: String) -> Provider? { providers[id] }
    public func app(_ id: String) -> App? { apps[id] }

    /// The apps a call to `number` passes through, in chain order.
    public func activeActivations(of number: String) -> [Activation] {
        (activationsByNumber[number] ?? []).filter { $0.status == .active }
    }

    /// The number a provider knows by `subscriberID`.
    public func number(providerID: String, subscriberID: String) -> String? {
        numberBySubscriber[SubscriberKey(providerID: providerID, subscriberID: subscriberID)]
    }

    public var counts: [(String, Int)] {
        [("accounts", accounts.count), ("users", users.count), ("numbers", numbers.count),
         ("providers", providers.count), ("apps", apps.count), ("activations", activationsByNumber.values.reduce(0) { $0 + $1.count })]
    }
}
