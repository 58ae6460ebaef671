import JSON

/// One page of a listing, and how many rows match in all.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var total: Int
}

/// Converts `text` to one of an enumeration's cases, naming the field and the choices when it is not one.
public func parseChoice<T: RawRepresentable & CaseIterable>(_ field: String, _ text: String, as type: T.Type) throws(RegistryError) -> T
where T.RawValue == String {
    guard let value = T(rawValue: text) else {
        throw .invalid(field, "'\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return value
}

extension RegistryStore {
    // MARK: Who may act

    /// The user named by `acting_user`, active and in an active account; nil for the operator.
    func actor(_ acting: String?) throws(RegistryError) -> User? {
        guard let acting else { return nil }
        guard let user = try fetchUser(acting) else {
            throw .invalid("acting_user", "no user '\(acting)'")
        }
        guard user.status == .active else { throw .forbidden("user '\(acting)' is disabled") }
        if let account = try fetchAccount(user.accountID), account.status == .suspended {
            throw .forbidden("account '\(account.id)' is suspended")
        }
        return user
    }

    func requireOperator(_ acting: String?, _ action: String) throws(RegistryError) {
        guard acting == nil else { throw .forbidden("only the operator may \(action)") }
    }

    /// The primary user of `account` (or the operator) may act; so may `orSelf` on their own record.
    func requirePrimary(_ acting: String?, account: String, _ action: String, orSelf: String? = nil) throws(RegistryError) {
        guard let user = try actor(acting) else { return }
        if let orSelf, user.id == orSelf { return }
        guard user.accountID == account, user.role == .primary else {
            throw .forbidden("only the primary user of account '\(account)' may \(action)")
        }
    }

    /// Any user of `account` (or the operator) may read it.
    func requireMember(_ acting: String?, account: String) throws(RegistryError) {
        guard let user = try actor(acting) else { return }
        guard user.accountID == account else { throw .forbidden("user '\(user.id)' belongs to another account") }
    }

    /// The WHERE clause of a listing, built from the filters given.
    struct Filter {
        var conditions: [String] = []
        var values: [SQLValue] = []

        mutating func add(_ condition: String, _ value: String?) {
            guard let value else { return }
            conditions.append(condition)
            values.append(.text(value))
        }

        var clause: String { conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ") }
    }

    /// A listing's account condition: a user acting sees only their own account (asking for another
    /// is refused); the operator sees `accountID`, or every account.
    func accountFilter(_ acting: String?, accountID: String?, condition: String = "account_id = ?") throws(RegistryError) -> Filter {
        var filter = Filter()
        if let actor = try actor(acting) {
            if let accountID, accountID != actor.accountID { throw .forbidden("user '\(actor.id)' belongs to another account") }
            filter.add(condition, actor.accountID)
        } else {
            filter.add(condition, accountID)
        }
        return filter
    }

    static func paging(_ limit: Int, _ offset: Int) throws(RegistryError) -> [SQLValue] {
        guard (1...10_000).contains(limit) else { throw .invalid("limit", "must be from 1 to 10000") }
        guard offset >= 0 else { throw .invalid("offset", "must not be negative") }
        return [.int(limit), .int(offset)]
    }

    // MARK: Accounts

    public func createAccount(id: String?, name: String, status: Account.Status = .active, timeZone: String = "UTC",
                              plan: String? = nil, acting: String?) throws(RegistryError) -> Account {
        try requireOperator(acting, "create accounts")
        let id = try id.map { v throws(RegistryError) in try Validate.identifier("id", v) } ?? MintedID.make("acc")
        let name = try Validate.text("name", name)
        let timeZone = try Validate.timeZone("time_zone", timeZone)
        let plan = try plan.flatMap { v throws(RegistryError) in v.isEmpty ? nil : try existingPlan("plan", v) }
        guard try count("SELECT count(*) FROM accounts WHERE id = ?", [.text(id)]) == 0 else {
            throw .conflict("id", "account '\(id)' already exists")
        }
        let now = timestamp()
        try sql("INSERT INTO accounts (id, name, status, time_zone, plan, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(id), .text(name), .text(status.rawValue), .text(timeZone), .optional(plan), .text(now), .text(now)])
        touched.accounts.insert(id)
        return Account(id: id, name: name, status: status, timeZone: timeZone, plan: plan, createdAt: now, updatedAt: now)
    }

    public func account(_ id: String, acting: String?) throws(RegistryError) -> Account {
        try requireMember(acting, account: id)
        guard let account = try fetchAccount(id) else {
            throw .notFound("id", "no account '\(id)'")
        }
        return account
    }

    public func accounts(status: Account.Status?, limit: Int, offset: Int, acting: String?) throws(RegistryError) -> Page<Account> {
        var filter = try accountFilter(acting, accountID: nil, condition: "id = ?")
        filter.add("status = ?", status?.rawValue)
        let total = try count("SELECT count(*) FROM accounts" + filter.clause, filter.values)
        let items = try rows("SELECT \(Self.accountColumns) FROM accounts\(filter.clause) ORDER BY id LIMIT ? OFFSET ?",
                             filter.values + Self.paging(limit, offset), Self.account)
        return Page(items: items, total: total)
    }

    /// Name and time zone may be changed by the account's primary user; status and plan only by
    /// the operator. A status change records `account.status_changed`.
    public func updateAccount(_ id: String, name: String?, status: Account.Status?, timeZone: String?, plan: String?,
                              acting: String?) throws(RegistryError) -> Account {
        var account = try self.account(id, acting: nil)
        if status != nil { try requireOperator(acting, "change an account's status") }
        if plan != nil { try requireOperator(acting, "change an account's plan") }
        try requirePrimary(acting, account: id, "change the account")
        if let name { account.name = try Validate.text("name", name) }
        if let timeZone { account.timeZone = try Validate.timeZone("time_zone", timeZone) }
        if let plan { account.plan = plan.isEmpty ? nil : try existingPlan("plan", plan) }
        let previousStatus = account.status
        if let status { account.status = status }
        account.updatedAt = timestamp()
        try sql("UPDATE accounts SET name = ?, status = ?, time_zone = ?, plan = ?, updated_at = ? WHERE id = ?",
                [.text(account.name), .text(account.status.rawValue), .text(account.timeZone), .optional(account.plan),
                 .text(account.updatedAt), .text(id)])
        if previousStatus != account.status {
            try recordEvent("account.status_changed", subject: id,
                            payload: ["account": .string(id), "from": .string(previousStatus.rawValue), "to": .string(account.status.rawValue)])
        }
        touched.accounts.insert(id)
        return account
    }

    public func deleteAccount(_ id: String, acting: String?) throws(RegistryError) {
        try requireOperator(acting, "delete accounts")
        _ = try account(id, acting: nil)
        let users = try count("SELECT count(*) FROM users WHERE account_id = ?", [.text(id)])
        let numbers = try count("SELECT count(*) FROM numbers WHERE account_id = ?", [.text(id)])
        guard users == 0, numbers == 0 else {
            throw .conflict("id", "account '\(id)' still has \(users) user(s) and \(numbers) number(s); delete them first")
        }
        try sql("DELETE FROM accounts WHERE id = ?", [.text(id)])
        touched.accounts.insert(id)
    }
}
