/// One immutable record in the snapshot, shared by reference: a lookup hands out one reference
/// instead of copying every field (each copy of a struct with heap strings costs an atomic
/// retain per string — most of a lookup's time). Fields read through it directly:
/// `snapshot.number(n)?.providerID`.
@dynamicMemberLookup
public final class Record<Value: Sendable & Equatable>: Sendable, Equatable {
    public let value: Value
    package init(_ value: Value) { self.value = value }
    public subscript<Field>(dynamicMember field: KeyPath<Value, Field>) -> Field { value[keyPath: field] }
    public static func == (a: Record, b: Record) -> Bool { a === b || a.value == b.value }
}

/// What routing needs of a number, held inline in the snapshot: no timestamps and no object, so a
/// lookup reads one leaf of the map and copies a few (usually inline) strings — no reference to
/// chase, no reference count to touch. At a million numbers that is the difference between one
/// cache miss more or less per lookup (docs/PERFORMANCE.md).
public struct NumberEntry: Sendable, Equatable {
    public let number: String
    public let accountID: String
    public let kind: TelephoneNumber.Kind
    public let ownerUserID: String?
    public let providerID: String?
    public let delivery: Delivery

    package init(_ record: TelephoneNumber) {
        delivery = record.delivery
        number = record.number
        accountID = record.accountID
        kind = record.kind
        ownerUserID = record.ownerUserID
        providerID = record.providerID
    }
}

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
    public package(set) var version: UInt64 = 0
    package var accounts = PersistentMap<String, Record<Account>>()
    package var users = PersistentMap<String, Record<User>>()
    package var userBySIPUsername = PersistentMap<String, Record<User>>()
    package var userIDsByAccount = PersistentMap<String, [String]>()
    package var numbers = PersistentMap<String, NumberEntry>()
    /// Each account's numbers, sorted.
    package var numbersByAccount = PersistentMap<String, [String]>()
    // Providers are few and listed whole on every event fan-out and trust rebuild: a plain dictionary,
    // whose values are its entries, where a PersistentMap would walk 4,096 buckets.
    package var providers: [String: Record<Provider>] = [:]
    package var apps = PersistentMap<String, Record<App>>()
    /// Every activation of a number, active or not, in chain order.
    package var activationsByNumber = PersistentMap<String, [Activation]>()
    package var numberBySubscriber = PersistentMap<SubscriberKey, String>()
    package var availabilities = PersistentMap<String, Record<Availability>>()
    package var plans = PersistentMap<String, Record<Plan>>()

    public init() {}

    public func account(_ id: String) -> Record<Account>? { accounts[id] }
    public func plan(_ name: String) -> Record<Plan>? { plans[name] }
    /// The plan an account is on, if it names one that exists.
    public func plan(ofAccount id: String) -> Record<Plan>? { accounts[id]?.plan.flatMap { plans[$0] } }
    public func user(_ id: String) -> Record<User>? { users[id] }
    public func user(sipUsername: String) -> Record<User>? { userBySIPUsername[sipUsername] }
    public func users(inAccount accountID: String) -> [Record<User>] {
        (userIDsByAccount[accountID] ?? []).compactMap { users[$0] }
    }
    public func number(_ e164: String) -> NumberEntry? { numbers[e164] }
    public func hasNumber(_ e164: String) -> Bool { numbers.contains(e164) }
    /// An account's numbers, household and personal, sorted.
    public func numbers(ofAccount accountID: String) -> [NumberEntry] {
        (numbersByAccount[accountID] ?? []).compactMap { numbers[$0] }
    }

    /// The numbers a user may present as caller ID (RFC 3325 identity): their personal numbers and
    /// their account's household numbers — personal ones first, each group sorted.
    public func presentableNumbers(of user: User) -> [String] {
        let owned = numbers(ofAccount: user.accountID)
        let personal = owned.filter { $0.kind == .personal && $0.ownerUserID == user.id }.map(\.number)
        let household = owned.filter { $0.kind == .household }.map(\.number)
        return personal + household
    }

    /// Whether `user` may present `number` as their identity.
    public func mayPresent(_ number: String, as user: User) -> Bool {
        guard let entry = numbers[number], entry.accountID == user.accountID else { return false }
        return entry.kind == .household || entry.ownerUserID == user.id
    }
    public func provider(_ id: String) -> Record<Provider>? { providers[id] }
    /// The user's stored availability; nil for users who never defined one (always available).
    public func availability(of userID: String) -> Record<Availability>? { availabilities[userID] }
    public func app(_ id: String) -> Record<App>? { apps[id] }
    /// Every provider (for the trusted source table, rebuilt once per snapshot version).
    public var allProviders: [Provider] { providers.values.map(\.value) }

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
