import JSON

/// What a plan's limits are changed to; nil fields are left as they are (`clear` empties a limit).
public struct PlanFields: Sendable {
    public var period: Plan.Period?
    public var maxMinutes: Int?
    public var maxCalls: Int?
    public var maxConcurrent: Int?
    public var enforcement: Plan.Enforcement?
    /// Limits to remove: `max_minutes`, `max_calls`, `max_concurrent`.
    public var clear: Set<String> = []

    public init() {}
}

extension RegistryStore {
    static let planColumns = "name, period, max_minutes, max_calls, max_concurrent, enforcement, created_at, updated_at"

    static func plan(_ row: Row) -> Plan {
        Plan(name: row.text(0), period: Plan.Period(rawValue: row.text(1)) ?? .month, maxMinutes: row.optionalInt(2),
             maxCalls: row.optionalInt(3), maxConcurrent: row.optionalInt(4),
             enforcement: Plan.Enforcement(rawValue: row.text(5)) ?? .hard, createdAt: row.text(6), updatedAt: row.text(7))
    }

    func fetchPlan(_ name: String) throws(RegistryError) -> Plan? {
        try firstRow("SELECT \(Self.planColumns) FROM plans WHERE name = ?", [.text(name)], Self.plan)
    }

    /// A plan name an account may be put on: one that exists.
    func existingPlan(_ field: String, _ name: String) throws(RegistryError) -> String {
        let name = try Validate.identifier(field, name)
        guard try fetchPlan(name) != nil else { throw .notFound(field, "no plan '\(name)'") }
        return name
    }

    static func limit(_ field: String, _ value: Int?) throws(RegistryError) -> Int? {
        guard let value else { return nil }
        guard (0...1_000_000_000).contains(value) else { throw .invalid(field, "must be from 0 to 1000000000") }
        return value
    }

    public func createPlan(name: String, fields: PlanFields, acting: String?) throws(RegistryError) -> Plan {
        try requireOperator(acting, "create plans")
        let name = try Validate.identifier("name", name)
        guard try fetchPlan(name) == nil else { throw .conflict("name", "plan '\(name)' already exists") }
        let now = timestamp()
        let plan = Plan(name: name, period: fields.period ?? .month, maxMinutes: try Self.limit("max_minutes", fields.maxMinutes),
                        maxCalls: try Self.limit("max_calls", fields.maxCalls),
                        maxConcurrent: try Self.limit("max_concurrent", fields.maxConcurrent),
                        enforcement: fields.enforcement ?? .hard, createdAt: now, updatedAt: now)
        try storePlan(plan, insert: true)
        return plan
    }

    public func updatePlan(name: String, fields: PlanFields, acting: String?) throws(RegistryError) -> Plan {
        try requireOperator(acting, "change plans")
        guard var plan = try fetchPlan(name) else { throw .notFound("name", "no plan '\(name)'") }
        for field in fields.clear {
            switch field {
            case "max_minutes": plan.maxMinutes = nil
            case "max_calls": plan.maxCalls = nil
            case "max_concurrent": plan.maxConcurrent = nil
            default: throw .invalid("clear", "'\(field)' is not a limit (max_minutes, max_calls, max_concurrent)")
            }
        }
        if let period = fields.period { plan.period = period }
        if let value = try Self.limit("max_minutes", fields.maxMinutes) { plan.maxMinutes = value }
        if let value = try Self.limit("max_calls", fields.maxCalls) { plan.maxCalls = value }
        if let value = try Self.limit("max_concurrent", fields.maxConcurrent) { plan.maxConcurrent = value }
        if let enforcement = fields.enforcement { plan.enforcement = enforcement }
        plan.updatedAt = timestamp()
        try storePlan(plan, insert: false)
        return plan
    }

    private func storePlan(_ plan: Plan, insert: Bool) throws(RegistryError) {
        let values: [SQLValue] = [.text(plan.period.rawValue), plan.maxMinutes.map(SQLValue.int) ?? .null, plan.maxCalls.map(SQLValue.int) ?? .null,
                                  plan.maxConcurrent.map(SQLValue.int) ?? .null, .text(plan.enforcement.rawValue), .text(plan.updatedAt)]
        if insert {
            try sql("""
                INSERT INTO plans (period, max_minutes, max_calls, max_concurrent, enforcement, updated_at, name, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, values + [.text(plan.name), .text(plan.createdAt)])
        } else {
            try sql("UPDATE plans SET period = ?, max_minutes = ?, max_calls = ?, max_concurrent = ?, enforcement = ?, updated_at = ? WHERE name = ?",
                    values + [.text(plan.name)])
        }
        touched.plans.insert(plan.name)
    }

    public func deletePlan(name: String, acting: String?) throws(RegistryError) {
        try requireOperator(acting, "delete plans")
        guard try fetchPlan(name) != nil else { throw .notFound("name", "no plan '\(name)'") }
        let users = try count("SELECT count(*) FROM accounts WHERE plan = ?", [.text(name)])
        guard users == 0 else { throw .conflict("name", "plan '\(name)' is the plan of \(users) account(s)") }
        try sql("DELETE FROM plans WHERE name = ?", [.text(name)])
        touched.plans.insert(name)
    }

    public func plans() throws(RegistryError) -> [Plan] {
        try rows("SELECT \(Self.planColumns) FROM plans ORDER BY name", [], Self.plan)
    }

    // MARK: Usage

    /// Adds an answered call to its account's day, in the caller's transaction.
    public func addUsage(_ charge: UsageCharge) throws(RegistryError) {
        try sql("""
            INSERT INTO usage (account_id, day, minutes, calls, billable_ms) VALUES (?, ?, ?, 1, ?)
            ON CONFLICT (account_id, day) DO UPDATE SET minutes = minutes + excluded.minutes, calls = calls + 1,
                billable_ms = billable_ms + excluded.billable_ms
            """, [.text(charge.accountID), .text(charge.day), .int(charge.minutes), .integer(charge.billableMilliseconds)])
    }

    /// An account's usage over a period: a day (`YYYY-MM-DD`) or a month (`YYYY-MM`).
    public func usage(accountID: String, period: String) throws(RegistryError) -> Usage {
        let condition = period.utf8.count == 7 ? "day >= ? AND day < ?" : "day = ? AND day = ?"
        let bounds: [SQLValue] = period.utf8.count == 7 ? [.text(period + "-01"), .text(period + "-99")] : [.text(period), .text(period)]
        return try firstRow("""
            SELECT coalesce(sum(minutes), 0), coalesce(sum(calls), 0), coalesce(sum(billable_ms), 0) FROM usage
            WHERE account_id = ? AND \(condition)
            """, [.text(accountID)] + bounds, Self.usage) ?? Usage()
    }

    /// Every account's usage on each day from `day` on: what the gateway's gauges start from.
    public func usage(since day: String) throws(RegistryError) -> [(accountID: String, day: String, usage: Usage)] {
        try rows("SELECT minutes, calls, billable_ms, account_id, day FROM usage WHERE day >= ?", [.text(day)]) {
            (accountID: $0.text(3), day: $0.text(4), usage: Self.usage($0))
        }
    }

    /// Minutes, calls and billable time from the first three columns.
    static func usage(_ row: Row) -> Usage {
        Usage(minutes: row.int(0), calls: row.int(1), billableMilliseconds: Int64(row.int(2)))
    }

    // MARK: Service tickets

    static let ticketColumns = """
        id, cdr_id, call_id, app_id, provider_id, subscriber_id, number, user_id, account_id, start_time, duration_ms, units
        """

    static func ticket(_ row: Row) -> ServiceTicket {
        var ticket = ServiceTicket(callID: row.text(2), appID: row.text(3), providerID: row.text(4), subscriberID: row.text(5),
                                   number: row.text(6), userID: row.optionalText(7), accountID: row.optionalText(8),
                                   startTime: Int64(row.int(9)), durationMilliseconds: Int64(row.int(10)), units: row.int(11))
        ticket.id = row.int(0)
        ticket.cdrID = row.int(1)
        return ticket
    }

    /// Writes an app use of a stored record, in the caller's transaction; a second write of the same
    /// record's app is ignored.
    public func storeServiceTicket(_ ticket: ServiceTicket) throws(RegistryError) {
        try sql("""
            INSERT INTO service_tickets (cdr_id, call_id, app_id, provider_id, subscriber_id, number, user_id, account_id, start_time,
                duration_ms, units) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (cdr_id, app_id) DO NOTHING
            """, [.int(ticket.cdrID), .text(ticket.callID), .text(ticket.appID), .text(ticket.providerID), .text(ticket.subscriberID),
                  .text(ticket.number), .optional(ticket.userID), .optional(ticket.accountID), .integer(ticket.startTime),
                  .integer(ticket.durationMilliseconds), .int(ticket.units)])
    }

    public func serviceTickets(_ filter: ServiceTicketFilter) throws(RegistryError) -> [ServiceTicket] {
        guard (1...10_000).contains(filter.limit) else { throw .invalid("limit", "must be from 1 to 10000") }
        var conditions = ["id > ?"]
        var values: [SQLValue] = [.int(filter.cursor ?? 0)]
        if let provider = filter.providerID { conditions.append("provider_id = ?"); values.append(.text(provider)) }
        if let number = filter.number { conditions.append("number = ?"); values.append(.text(number)) }
        if let account = filter.accountID { conditions.append("account_id = ?"); values.append(.text(account)) }
        if let from = filter.from { conditions.append("start_time >= ?"); values.append(.integer(from)) }
        if let until = filter.until { conditions.append("start_time < ?"); values.append(.integer(until)) }
        return try rows("SELECT \(Self.ticketColumns) FROM service_tickets WHERE \(conditions.joined(separator: " AND ")) ORDER BY id LIMIT ?",
                        values + [.int(filter.limit)], Self.ticket)
    }
}
