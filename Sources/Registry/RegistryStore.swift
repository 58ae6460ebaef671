#if canImport(Glibc)
import Glibc
#endif
import JSON

/// The registry's side of SQLite: every provisioning operation, confined to the `Registry` lock.
/// Operations run inside the transaction `Registry.write` opened and record what they touched.
public final class RegistryStore {
    let database: Database
    let realm: String
    let clock: @Sendable () -> Int64
    var snapshot = RegistrySnapshot()
    var touched = Touched()
    /// Whether the change in progress recorded an event (the dispatcher is told after it commits).
    var recordedEvents = false

    init(database: consuming Database, realm: String, clock: @escaping @Sendable () -> Int64) {
        self.database = database
        self.realm = realm
        self.clock = clock
    }

    /// Now, as RFC 3339 UTC with milliseconds.
    func timestamp() -> String { Timestamp.rfc3339(milliseconds: clock()) }

    // MARK: Reading rows

    static let accountColumns = "id, name, status, time_zone, plan, created_at, updated_at"
    static func account(_ row: Row) -> Account {
        Account(id: row.text(0), name: row.text(1), status: Account.Status(rawValue: row.text(2)) ?? .active,
                timeZone: row.text(3), plan: row.optionalText(4), createdAt: row.text(5), updatedAt: row.text(6))
    }

    static let userColumns = "id, account_id, display_name, role, sip_username, status, realm, ha1_md5, ha1_sha256, created_at, updated_at"
    static func user(_ row: Row, grants: Set<String>) -> User {
        var credentials: User.Credentials?
        if let realm = row.optionalText(6), let md5 = row.optionalText(7), let sha = row.optionalText(8) {
            credentials = User.Credentials(realm: realm, ha1MD5: md5, ha1SHA256: sha)
        }
        return User(id: row.text(0), accountID: row.text(1), displayName: row.text(2),
                    role: User.Role(rawValue: row.text(3)) ?? .member, sipUsername: row.text(4),
                    status: User.Status(rawValue: row.text(5)) ?? .active, credentials: credentials,
                    grants: grants, createdAt: row.text(9), updatedAt: row.text(10))
    }

    static let numberColumns = "number, account_id, kind, owner_user_id, provider_id, created_at, updated_at, ring_timeout, fork, transfer"
    static func number(_ row: Row) -> TelephoneNumber {
        TelephoneNumber(number: row.text(0), accountID: row.text(1), kind: TelephoneNumber.Kind(rawValue: row.text(2)) ?? .household,
                        ownerUserID: row.optionalText(3), providerID: row.optionalText(4),
                        delivery: Delivery(ringTimeout: row.int(7), fork: Delivery.Fork(rawValue: row.text(8)) ?? .parallel,
                                           transfer: Delivery.Transfer(rawValue: row.text(9)) ?? .redirect),
                        createdAt: row.text(5), updatedAt: row.text(6))
    }

    static let providerColumns = "id, name, kind, hops, trusted_sources, id_scheme, domain, webhook_url, currency, rate_per_minute, monthly_fee, created_at, updated_at, webhook_secret"
    static func provider(_ row: Row) -> Provider {
        func strings(_ text: String) -> [String] {
            (try? JSONValue.parse(text))?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        return Provider(id: row.text(0), name: row.text(1), kind: Provider.Kind(rawValue: row.text(2)) ?? .app,
                        hops: strings(row.text(3)), trustedSources: strings(row.text(4)),
                        idScheme: IDScheme(text: row.text(5)) ?? .tn, domain: row.optionalText(6),
                        webhookURL: row.optionalText(7), currency: row.text(8), ratePerMinute: row.int(9),
                        monthlyFee: row.int(10), createdAt: row.text(11), updatedAt: row.text(12),
                        webhookSecret: row.optionalText(13))
    }

    static let appColumns = "id, provider_id, name, kind, position, on_failure, hop, created_at, updated_at"
    static func app(_ row: Row) -> App {
        App(id: row.text(0), providerID: row.text(1), name: row.text(2), kind: row.text(3), position: row.int(4),
            onFailure: App.OnFailure(rawValue: row.text(5)) ?? .skip, hop: row.optionalText(6),
            createdAt: row.text(7), updatedAt: row.text(8))
    }

    /// Activations with their provider and subscriber ID, in chain order.
    static let activationQuery = """
        SELECT a.number, a.app_id, p.provider_id, a.status, s.subscriber_id, a.routing, a.activated_at, a.deactivated_at
        FROM activations a JOIN apps p ON p.id = a.app_id
        LEFT JOIN subscriber_ids s ON s.provider_id = p.provider_id AND s.number = a.number
        """
    static let activationOrder = " ORDER BY p.position, a.app_id"
    static func activation(_ row: Row) -> Activation {
        Activation(number: row.text(0), appID: row.text(1), providerID: row.text(2),
                   status: Activation.Status(rawValue: row.text(3)) ?? .inactive, subscriberID: row.text(4),
                   routing: row.text(5), activatedAt: row.text(6), deactivatedAt: row.optionalText(7))
    }

    func grants(of userID: String) throws(RegistryError) -> Set<String> {
        Set(try rows("SELECT service FROM grants WHERE user_id = ?", [.text(userID)]) { $0.text(0) })
    }

    func fetchAccount(_ id: String) throws(RegistryError) -> Account? {
        try firstRow("SELECT \(Self.accountColumns) FROM accounts WHERE id = ?", [.text(id)], Self.account)
    }

    func fetchUser(_ id: String) throws(RegistryError) -> User? {
        guard var user = try firstRow("SELECT \(Self.userColumns) FROM users WHERE id = ?", [.text(id)], { Self.user($0, grants: []) }) else {
            return nil
        }
        user.grants = try grants(of: id)
        return user
    }

    func fetchNumber(_ number: String) throws(RegistryError) -> TelephoneNumber? {
        try firstRow("SELECT \(Self.numberColumns) FROM numbers WHERE number = ?", [.text(number)], Self.number)
    }

    func fetchProvider(_ id: String) throws(RegistryError) -> Provider? {
        try firstRow("SELECT \(Self.providerColumns) FROM providers WHERE id = ?", [.text(id)], Self.provider)
    }

    func fetchApp(_ id: String) throws(RegistryError) -> App? {
        try firstRow("SELECT \(Self.appColumns) FROM apps WHERE id = ?", [.text(id)], Self.app)
    }

    func fetchActivations(number: String) throws(RegistryError) -> [Activation] {
        try rows(Self.activationQuery + " WHERE a.number = ?" + Self.activationOrder, [.text(number)], Self.activation)
    }

    // MARK: Snapshot

    /// Reads every row into a fresh snapshot (at start).
    func loadSnapshot() throws(RegistryError) {
        // Definitions naming contact lists, whose members are resolved once the rest is loaded.
        var listed: [String] = []
        do {
            var next = RegistrySnapshot()
            for account in try database.rows("SELECT \(Self.accountColumns) FROM accounts", [], Self.account) {
                next.accounts[account.id] = Record(account)
            }
            var grants: [String: Set<String>] = [:]
            for (user, service) in try database.rows("SELECT user_id, service FROM grants", [], { ($0.text(0), $0.text(1)) }) {
                grants[user, default: []].insert(service)
            }
            var byAccount: [String: [String]] = [:]
            for user in try database.rows("SELECT \(Self.userColumns) FROM users ORDER BY id", [], { Self.user($0, grants: []) }) {
                var user = user
                user.grants = grants[user.id] ?? []
                let record = Record(user)
                next.users[user.id] = record
                next.userBySIPUsername[user.sipUsername] = record
                byAccount[user.accountID, default: []].append(user.id)
            }
            for (account, ids) in byAccount { next.userIDsByAccount[account] = ids }
            var numbersByAccount: [String: [String]] = [:]
            for number in try database.rows("SELECT \(Self.numberColumns) FROM numbers ORDER BY number", [], Self.number) {
                next.numbers[number.number] = NumberEntry(number)
                numbersByAccount[number.accountID, default: []].append(number.number)
            }
            for (account, numbers) in numbersByAccount { next.numbersByAccount[account] = numbers }
            for provider in try database.rows("SELECT \(Self.providerColumns) FROM providers", [], Self.provider) {
                next.providers[provider.id] = Record(provider)
            }
            for app in try database.rows("SELECT \(Self.appColumns) FROM apps", [], Self.app) {
                next.apps[app.id] = Record(app)
            }
            var activations: [String: [Activation]] = [:]
            for activation in try database.rows(Self.activationQuery + Self.activationOrder, [], Self.activation) {
                activations[activation.number, default: []].append(activation)
            }
            for (number, list) in activations { next.activationsByNumber[number] = list }
            for availability in try database.rows("SELECT \(Self.availabilityColumns) FROM availability", [], Self.availability) {
                if !availability.listReferences.isEmpty { listed.append(availability.userID) }
                next.availabilities[availability.userID] = Record(availability)
            }
            for plan in try database.rows("SELECT \(Self.planColumns) FROM plans", [], Self.plan) {
                next.plans[plan.name] = Record(plan)
            }
            for (provider, subscriber, number) in try database.rows("SELECT provider_id, subscriber_id, number FROM subscriber_ids", [],
                                                                    { ($0.text(0), $0.text(1), $0.text(2)) }) {
                next.numberBySubscriber[SubscriberKey(providerID: provider, subscriberID: subscriber)] = number
            }
            snapshot = next
        } catch {
            throw RegistryError.storage("cannot load the registry: \(error.reason)")
        }
        for id in listed { snapshot.availabilities[id] = try fetchAvailability(id).map(Record.init) }
    }

    /// Re-reads what the last write touched into `snapshot`; copies only the changed paths.
    func refreshSnapshot() throws(RegistryError) {
        let touched = self.touched
        self.touched = Touched()
        for id in touched.accounts { snapshot.accounts[id] = try fetchAccount(id).map(Record.init) }
        for id in touched.users {
            let old = snapshot.users[id]
            let new = try fetchUser(id)
            if let old {
                snapshot.userBySIPUsername[old.sipUsername] = nil
                if old.accountID != new?.accountID, var members = snapshot.userIDsByAccount[old.accountID] {
                    let slot = members.insertionIndex(of: id)
                    if slot < members.count, members[slot] == id { members.remove(at: slot) }
                    snapshot.userIDsByAccount[old.accountID] = members.isEmpty ? nil : members
                }
            }
            let record = new.map(Record.init)
            if let new {
                snapshot.userBySIPUsername[new.sipUsername] = record
                // Kept sorted by binary insertion: a write costs O(members of that account), not a sort.
                var members = snapshot.userIDsByAccount[new.accountID] ?? []
                let slot = members.insertionIndex(of: id)
                if slot == members.count || members[slot] != id {
                    members.insert(id, at: slot)
                    snapshot.userIDsByAccount[new.accountID] = members
                }
            }
            snapshot.users[id] = record
        }
        for number in touched.numbers {
            let old = snapshot.numbers[number]
            let new = try fetchNumber(number).map(NumberEntry.init)
            if let old, old.accountID != new?.accountID, var owned = snapshot.numbersByAccount[old.accountID] {
                let slot = owned.insertionIndex(of: number)
                if slot < owned.count, owned[slot] == number { owned.remove(at: slot) }
                snapshot.numbersByAccount[old.accountID] = owned.isEmpty ? nil : owned
            }
            if let new, old?.accountID != new.accountID {
                var owned = snapshot.numbersByAccount[new.accountID] ?? []
                let slot = owned.insertionIndex(of: number)
                if slot == owned.count || owned[slot] != number { owned.insert(number, at: slot) }
                snapshot.numbersByAccount[new.accountID] = owned
            }
            snapshot.numbers[number] = new
        }
        for id in touched.providers { snapshot.providers[id] = try fetchProvider(id).map(Record.init) }
        for id in touched.apps { snapshot.apps[id] = try fetchApp(id).map(Record.init) }
        for number in touched.activations {
            for old in snapshot.activationsByNumber[number] ?? [] {
                snapshot.numberBySubscriber[SubscriberKey(providerID: old.providerID, subscriberID: old.subscriberID)] = nil
            }
            let fresh = try fetchActivations(number: number)
            snapshot.activationsByNumber[number] = fresh.isEmpty ? nil : fresh
            for (provider, subscriber) in try rows("SELECT provider_id, subscriber_id FROM subscriber_ids WHERE number = ?",
                                                   [.text(number)], { ($0.text(0), $0.text(1)) }) {
                snapshot.numberBySubscriber[SubscriberKey(providerID: provider, subscriberID: subscriber)] = number
            }
        }
        for id in touched.availabilities { snapshot.availabilities[id] = try fetchAvailability(id).map(Record.init) }
        for name in touched.plans { snapshot.plans[name] = try fetchPlan(name).map(Record.init) }
        snapshot.version += 1
    }

    // MARK: Events

    /// Appends to the event log inside the current transaction: the event exists exactly when the
    /// change it reports does.
    @discardableResult
    func recordEvent(_ type: String, subject: String?, payload: JSONValue, source: String = "registry") throws(RegistryError) -> Int {
        try sql("INSERT INTO events (time, type, source, subject, payload) VALUES (?, ?, ?, ?, ?)",
                [.text(timestamp()), .text(type), .text(source), .optional(subject), .text(payload.description)])
        recordedEvents = true
        return database.lastInsertRowID
    }

    // MARK: SQL with registry errors

    func sql(_ text: String, _ values: [SQLValue] = []) throws(RegistryError) {
        do { try database.run(text, values) } catch { throw Self.mapped(error) }
    }

    func count(_ text: String, _ values: [SQLValue] = []) throws(RegistryError) -> Int {
        do { return try database.count(text, values) } catch { throw Self.mapped(error) }
    }

    func rows<R>(_ text: String, _ values: [SQLValue] = [], _ read: (Row) -> R) throws(RegistryError) -> [R] {
        do { return try database.rows(text, values) { row throws(StoreError) in read(row) } } catch { throw Self.mapped(error) }
    }

    func firstRow<R>(_ text: String, _ values: [SQLValue], _ read: (Row) -> R) throws(RegistryError) -> R? {
        do { return try database.firstRow(text, values) { row throws(StoreError) in read(row) } } catch { throw Self.mapped(error) }
    }

    static func mapped(_ error: StoreError) -> RegistryError {
        error.constraint ? .conflict(nil, error.reason) : .storage(error.reason)
    }
}

@available(*, unavailable, message: "A RegistryStore is confined to the Registry's lock")
extension RegistryStore: Sendable {}

extension RegistryStore {
    /// The schema version of the open file.
    public var schemaVersion: Int { database.schemaVersion }
}

extension Array where Element == String {
    /// Where `value` is or would go in this sorted array.
    func insertionIndex(of value: String) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if self[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
