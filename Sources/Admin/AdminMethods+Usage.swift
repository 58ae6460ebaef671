import JSON
import Registry

extension Plan {
    var json: JSONValue {
        ["name": JSONValue(name), "period": JSONValue(period.rawValue), "max_minutes": maxMinutes.map { JSONValue($0) } ?? .null,
         "max_calls": maxCalls.map { JSONValue($0) } ?? .null, "max_concurrent": maxConcurrent.map { JSONValue($0) } ?? .null,
         "enforcement": JSONValue(enforcement.rawValue), "created_at": JSONValue(createdAt), "updated_at": JSONValue(updatedAt)]
    }
}

extension AdminMethods {
    static let planParameters: [Parameter] = [
        .optional("period", .string, "What the minute and call limits count over: `month` (default) or `day`, UTC."),
        .optional("max_minutes", .integer, "Answered minutes per period (each call rounded up to a minute)."),
        .optional("max_calls", .integer, "Answered calls per period."),
        .optional("max_concurrent", .integer, "Calls in progress at once: the toll-fraud guard."),
        .optional("enforcement", .string, "`hard` (default): a call over a limit is refused 403 Plan limit reached; `soft`: it goes through and `gauge.exceeded` is recorded."),
    ]

    static func planFields(_ a: Arguments) throws(RPCError) -> PlanFields {
        var fields = PlanFields()
        fields.period = try a.choice("period", as: Plan.Period.self)
        fields.maxMinutes = try a.integer("max_minutes")
        fields.maxCalls = try a.integer("max_calls")
        fields.maxConcurrent = try a.integer("max_concurrent")
        fields.enforcement = try a.choice("enforcement", as: Plan.Enforcement.self)
        return fields
    }

    static let usage: [AdminMethod] = [
        AdminMethod(name: "plan.create", summary: "Defines a usage plan accounts can be put on (`account.update plan=…`; operator only). A limit left out is not limited.",
                    parameters: [.required("name", .string, "Plan name.")] + planParameters + [.acting],
                    result: "the plan", example: ["name": "family", "max_minutes": 3000, "max_concurrent": 4]) { a, call throws(RPCError) in
            let fields = try planFields(a)
            return try call.write { s throws(RegistryError) in try s.createPlan(name: a.text("name"), fields: fields, acting: a.acting) }.json
        },
        AdminMethod(name: "plan.update", summary: "Changes a plan's limits (operator only); accounts on it are checked against the new limits from the next call.",
                    parameters: [.required("name", .string, "Plan name.")] + planParameters
                        + [.optional("clear", .strings, "Limits to remove: `max_minutes`, `max_calls`, `max_concurrent`."), .acting],
                    result: "the plan", example: ["name": "family", "enforcement": "soft", "clear": ["max_minutes"]]) { a, call throws(RPCError) in
            var fields = try planFields(a)
            fields.clear = Set(a.strings("clear") ?? [])
            return try call.write { s throws(RegistryError) in try s.updatePlan(name: a.text("name"), fields: fields, acting: a.acting) }.json
        },
        AdminMethod(name: "plan.delete", summary: "Deletes a plan no account is on (operator only).",
                    parameters: [.required("name", .string, "Plan name."), .acting],
                    result: "`{deleted: NAME}`", example: ["name": "family"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deletePlan(name: a.text("name"), acting: a.acting) }
            return ["deleted": .string(a.text("name"))]
        },
        AdminMethod(name: "plan.list", summary: "Every plan, by name.", parameters: [],
                    result: "`{plans: [plan]}`", example: [:]) { _, call throws(RPCError) in
            ["plans": .array(try call.read { s throws(RegistryError) in try s.plans() }.map(\.json))]
        },
        AdminMethod(name: "gauge.get", summary: "An account's gauge: its plan's limits against what it used in the period (every call ended so far) and its calls in progress.",
                    parameters: [.required("account_id", .string, "Account."),
                                 .optional("period", .string, "`YYYY-MM` or `YYYY-MM-DD` (UTC); default the plan's current period (this month without a plan)."),
                                 .acting],
                    result: "`{account_id, plan, enforcement, period, minutes: {used, max}, calls: {used, max}, billable_ms, concurrent: {used, max}}`; `max` null where the plan sets no limit",
                    example: ["account_id": "smith"]) { a, call throws(RPCError) in
            let accountID = a.text("account_id")
            _ = try call.read { s throws(RegistryError) in try s.account(accountID, acting: a.acting) }
            let plan = call.registry.snapshot.plan(ofAccount: accountID)?.value
            let period = a.string("period") ?? Gauge.period(plan, at: call.clock())
            guard isPeriod(period, lengths: [7, 10]) else {
                throw RPCError.invalidParams("period", "'\(period)' is not a month (YYYY-MM) or a day (YYYY-MM-DD)")
            }
            call.flushWrites()
            let usage = try call.read { s throws(RegistryError) in try s.usage(accountID: accountID, period: period) }
            return Gauge(accountID: accountID, plan: plan, period: period, usage: usage, concurrent: call.callsInProgress?(accountID)).json
        },
        AdminMethod(name: "ticket.list", summary: "Service tickets: one per app used in a call (app, provider, the provider's subscriber ID, number, user, duration, units), oldest first, by cursor.",
                    parameters: [.optional("provider_id", .string, "One provider's tickets."), .optional("number", .string, "One number's."),
                                 .optional("account_id", .string, "One account's."),
                                 .optional("from", .string, "Calls started at or after this RFC 3339 time."),
                                 .optional("until", .string, "Calls started before this RFC 3339 time."),
                                 .optional("cursor", .integer, "Continue after this ticket id (the previous answer's `next`)."), .limit],
                    result: "`{tickets: [{id, cdr_id, call_id, app_id, provider_id, subscriber_id, number, user_id, account_id, start_time, duration_ms, units}], next}`",
                    example: ["provider_id": "vmcorp", "from": "2026-11-01T00:00:00Z"]) { a, call throws(RPCError) in
            let filter = ServiceTicketFilter(providerID: a.string("provider_id"), number: a.string("number"), accountID: a.string("account_id"),
                                             from: try time(a, "from"), until: try time(a, "until"), cursor: try a.integer("cursor"),
                                             limit: try a.integer("limit") ?? 100)
            call.flushWrites()
            let tickets = try call.read { s throws(RegistryError) in try s.serviceTickets(filter) }
            return ["tickets": .array(tickets.map(\.json)), "next": tickets.count == filter.limit ? JSONValue(tickets.last?.id ?? 0) : .null]
        },
    ]

    /// `YYYY-MM` or `YYYY-MM-DD` with digits where digits belong.
    static func isPeriod(_ text: String, lengths: Set<Int>) -> Bool {
        let bytes = Array(text.utf8)
        guard lengths.contains(bytes.count) else { return false }
        for (index, byte) in bytes.enumerated() {
            let dash = index == 4 || index == 7
            guard dash ? byte == UInt8(ascii: "-") : (48...57).contains(byte) else { return false }
        }
        return true
    }
}
