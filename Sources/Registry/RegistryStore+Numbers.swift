import JSON

extension RegistryStore {
    /// Adds a number to an account. Personal numbers name their owner, a user of the same account.
    public func createNumber(_ number: String, accountID: String, kind: TelephoneNumber.Kind, ownerUserID: String?,
                             providerID: String?, delivery: Delivery = Delivery(), acting: String?) throws(RegistryError) -> TelephoneNumber {
        try requireOperator(acting, "assign numbers")
        let number = try Validate.e164("number", number)
        try Validate.delivery(delivery)
        guard try fetchAccount(accountID) != nil else {
            throw .notFound("account", "no account '\(accountID)'")
        }
        try checkOwner(kind: kind, owner: ownerUserID, account: accountID)
        if let providerID { try checkCarrier(providerID) }
        guard try count("SELECT count(*) FROM numbers WHERE number = ?", [.text(number)]) == 0 else {
            throw .conflict("number", "\(number) already exists")
        }
        let now = timestamp()
        try sql("INSERT INTO numbers (number, account_id, kind, owner_user_id, provider_id, ring_timeout, fork, transfer, created_at, updated_at) "
                + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(number), .text(accountID), .text(kind.rawValue), .optional(ownerUserID), .optional(providerID),
                 .int(delivery.ringTimeout), .text(delivery.fork.rawValue), .text(delivery.transfer.rawValue), .text(now), .text(now)])
        touched.numbers.insert(number)
        return TelephoneNumber(number: number, accountID: accountID, kind: kind, ownerUserID: ownerUserID, providerID: providerID,
                               delivery: delivery, createdAt: now, updatedAt: now)
    }

    func checkOwner(kind: TelephoneNumber.Kind, owner: String?, account: String) throws(RegistryError) {
        switch (kind, owner) {
        case (.household, .some): throw .invalid("owner", "a household number has no owner; use kind=personal")
        case (.personal, .none): throw .invalid("owner", "a personal number needs its owner (a user id)")
        case (.personal, .some(let owner)):
            guard let user = try fetchUser(owner) else { throw .notFound("owner", "no user '\(owner)'") }
            guard user.accountID == account else { throw .invalid("owner", "user '\(owner)' belongs to account '\(user.accountID)', not '\(account)'") }
        case (.household, .none): break
        }
    }

    func checkCarrier(_ providerID: String) throws(RegistryError) {
        guard let provider = try fetchProvider(providerID) else {
            throw .notFound("provider", "no provider '\(providerID)'")
        }
        guard provider.kind != .app else { throw .invalid("provider", "provider '\(providerID)' is an app provider, not a carrier") }
    }

    public func number(_ number: String, acting: String?) throws(RegistryError) -> TelephoneNumber {
        let number = try Validate.e164("number", number)
        guard let record = try fetchNumber(number) else {
            throw .notFound("number", "no number \(number)")
        }
        try requireMember(acting, account: record.accountID)
        return record
    }

    public func numbers(accountID: String?, ownerUserID: String?, providerID: String?, kind: TelephoneNumber.Kind?,
                        limit: Int, offset: Int, acting: String?) throws(RegistryError) -> Page<TelephoneNumber> {
        var filter = try accountFilter(acting, accountID: accountID)
        filter.add("owner_user_id = ?", ownerUserID)
        filter.add("provider_id = ?", providerID)
        filter.add("kind = ?", kind?.rawValue)
        let total = try count("SELECT count(*) FROM numbers" + filter.clause, filter.values)
        let items = try rows("SELECT \(Self.numberColumns) FROM numbers\(filter.clause) ORDER BY number LIMIT ? OFFSET ?",
                             filter.values + Self.paging(limit, offset), Self.number)
        return Page(items: items, total: total)
    }

    /// The account's primary user may make a number household or personal (owned by one of its users)
    /// and change how it rings. The carrier changes only through `switchProvider`, which keeps every
    /// activation.
    public func updateNumber(_ number: String, kind: TelephoneNumber.Kind?, ownerUserID: String?,
                             ringTimeout: Int? = nil, fork: Delivery.Fork? = nil, transfer: Delivery.Transfer? = nil,
                             acting: String?) throws(RegistryError) -> TelephoneNumber {
        var record = try self.number(number, acting: nil)
        try requirePrimary(acting, account: record.accountID, "change numbers")
        let kind = kind ?? record.kind
        let owner: String? = kind == .household ? nil : (ownerUserID ?? record.ownerUserID)
        if kind == .household, let ownerUserID, !ownerUserID.isEmpty {
            throw .invalid("owner", "a household number has no owner; use kind=personal")
        }
        try checkOwner(kind: kind, owner: owner, account: record.accountID)
        record.kind = kind
        record.ownerUserID = owner
        if let ringTimeout { record.delivery.ringTimeout = ringTimeout }
        if let fork { record.delivery.fork = fork }
        if let transfer { record.delivery.transfer = transfer }
        try Validate.delivery(record.delivery)
        record.updatedAt = timestamp()
        try sql("UPDATE numbers SET kind = ?, owner_user_id = ?, ring_timeout = ?, fork = ?, transfer = ?, updated_at = ? WHERE number = ?",
                [.text(kind.rawValue), .optional(owner), .int(record.delivery.ringTimeout), .text(record.delivery.fork.rawValue),
                 .text(record.delivery.transfer.rawValue), .text(record.updatedAt), .text(record.number)])
        touched.numbers.insert(record.number)
        return record
    }

    public func deleteNumber(_ number: String, acting: String?) throws(RegistryError) {
        try requireOperator(acting, "delete numbers")
        let record = try self.number(number, acting: nil)
        let active = try rows("SELECT app_id FROM activations WHERE number = ? AND status = 'active' ORDER BY app_id",
                              [.text(record.number)], { $0.text(0) })
        guard active.isEmpty else {
            throw .conflict("number", "\(record.number) has active app(s) \(active.joined(separator: ", ")); deactivate them first")
        }
        // Inactive activations and subscriber IDs are the number's own history and go with it.
        try sql("DELETE FROM activations WHERE number = ?", [.text(record.number)])
        try sql("DELETE FROM subscriber_ids WHERE number = ?", [.text(record.number)])
        try sql("DELETE FROM numbers WHERE number = ?", [.text(record.number)])
        touched.numbers.insert(record.number)
        touched.activations.insert(record.number)
    }

    /// Moves a number to another carrier. Every activation and subscriber ID stays; routing info is
    /// regenerated for the new carrier; `number.provider_switched` is recorded.
    public func switchProvider(_ number: String, to providerID: String, acting: String?) throws(RegistryError) -> TelephoneNumber {
        try requireOperator(acting, "switch a number's provider")
        var record = try self.number(number, acting: nil)
        try checkCarrier(providerID)
        guard record.providerID != providerID else { throw .conflict("provider", "\(record.number) is already with '\(providerID)'") }
        let previous = record.providerID
        record.providerID = providerID
        record.updatedAt = timestamp()
        try sql("UPDATE numbers SET provider_id = ?, updated_at = ? WHERE number = ?",
                [.text(providerID), .text(record.updatedAt), .text(record.number)])
        let regenerated = try regenerateRouting(where: "a.number = ?", [.text(record.number)])
        try recordEvent("number.provider_switched", subject: record.number, payload: [
            "number": .string(record.number), "account": .string(record.accountID),
            "from": JSONValue(previous), "to": .string(providerID), "activations": JSONValue(regenerated),
        ])
        touched.numbers.insert(record.number)
        return record
    }
}
