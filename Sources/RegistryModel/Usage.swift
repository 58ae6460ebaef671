import JSON

/// An account's usage over a day or a month.
public struct Usage: Sendable, Equatable {
    /// Answered calls' minutes, each call rounded up to a whole minute.
    public var minutes = 0
    /// Answered calls.
    public var calls = 0
    public var billableMilliseconds: Int64 = 0

    public init(minutes: Int = 0, calls: Int = 0, billableMilliseconds: Int64 = 0) {
        self.minutes = minutes
        self.calls = calls
        self.billableMilliseconds = billableMilliseconds
    }
}

/// What one ended call adds to its charged account's usage (written with its record).
public struct UsageCharge: Sendable, Equatable {
    public var accountID: String
    /// UTC day the call started, `YYYY-MM-DD`.
    public var day: String
    public var minutes: Int
    public var billableMilliseconds: Int64

    public init(accountID: String, day: String, minutes: Int, billableMilliseconds: Int64) {
        self.accountID = accountID
        self.day = day
        self.minutes = minutes
        self.billableMilliseconds = billableMilliseconds
    }
}

/// What an ended call charged, computed by the call path (`Billing.Charging`) and written with
/// its record.
public struct CallCharges: Sendable, Equatable {
    public var usage: UsageCharge?
    public var tickets: [ServiceTicket]

    public init(usage: UsageCharge? = nil, tickets: [ServiceTicket] = []) {
        self.usage = usage
        self.tickets = tickets
    }
}

/// One use of an app in a call: what its provider is settled from (docs/settlement.md).
public struct ServiceTicket: Sendable, Equatable {
    public var id = 0
    public var cdrID = 0
    public var callID: String
    public var appID: String
    public var providerID: String
    /// The provider's own ID for the subscriber.
    public var subscriberID: String
    public var number: String
    public var userID: String?
    public var accountID: String?
    public var startTime: Int64
    public var durationMilliseconds: Int64
    /// Whole minutes, rounded up.
    public var units: Int

    public init(callID: String, appID: String, providerID: String, subscriberID: String, number: String, userID: String?,
                accountID: String?, startTime: Int64, durationMilliseconds: Int64, units: Int) {
        self.callID = callID
        self.appID = appID
        self.providerID = providerID
        self.subscriberID = subscriberID
        self.number = number
        self.userID = userID
        self.accountID = accountID
        self.startTime = startTime
        self.durationMilliseconds = durationMilliseconds
        self.units = units
    }

    public var json: JSONValue {
        ["id": JSONValue(id), "cdr_id": JSONValue(cdrID), "call_id": JSONValue(callID), "app_id": JSONValue(appID),
         "provider_id": JSONValue(providerID), "subscriber_id": JSONValue(subscriberID), "number": JSONValue(number),
         "user_id": JSONValue(userID), "account_id": JSONValue(accountID),
         "start_time": JSONValue(Timestamp.rfc3339(milliseconds: startTime)), "duration_ms": JSONValue(Int(durationMilliseconds)),
         "units": JSONValue(units)]
    }
}

/// Which service tickets `ticket.list` returns.
public struct ServiceTicketFilter: Sendable, Equatable {
    public var providerID: String?
    public var number: String?
    public var accountID: String?
    public var from: Int64?
    public var until: Int64?
    public var cursor: Int?
    public var limit = 100

    public init(providerID: String? = nil, number: String? = nil, accountID: String? = nil, from: Int64? = nil, until: Int64? = nil,
                cursor: Int? = nil, limit: Int = 100) {
        self.providerID = providerID
        self.number = number
        self.accountID = accountID
        self.from = from
        self.until = until
        self.cursor = cursor
        self.limit = limit
    }
}

/// An account's plan, its usage in the plan's current period, and its calls in progress.
public struct Gauge: Sendable, Equatable {
    public var accountID: String
    public var plan: Plan?
    /// `YYYY-MM` or `YYYY-MM-DD` (UTC).
    public var period: String
    public var usage: Usage
    public var concurrent: Int?

    public init(accountID: String, plan: Plan?, period: String, usage: Usage, concurrent: Int?) {
        self.accountID = accountID
        self.plan = plan
        self.period = period
        self.usage = usage
        self.concurrent = concurrent
    }

    /// The UTC period a time falls in: its month, or its day for a daily plan.
    public static func period(_ plan: Plan?, at milliseconds: Int64) -> String {
        period(plan, day: Timestamp.day(milliseconds: milliseconds))
    }

    /// The period a UTC day (`YYYY-MM-DD`) falls in.
    public static func period(_ plan: Plan?, day: String) -> String {
        plan?.period == .day ? day : String(day.prefix(7))
    }

    public var json: JSONValue {
        var members: [String: JSONValue] = [
            "account_id": JSONValue(accountID), "plan": JSONValue(plan?.name), "period": JSONValue(period),
            "enforcement": JSONValue(plan?.enforcement.rawValue),
            "minutes": ["used": JSONValue(usage.minutes), "max": plan?.maxMinutes.map { JSONValue($0) } ?? .null],
            "calls": ["used": JSONValue(usage.calls), "max": plan?.maxCalls.map { JSONValue($0) } ?? .null],
            "billable_ms": JSONValue(Int(usage.billableMilliseconds)),
        ]
        if let concurrent {
            members["concurrent"] = ["used": JSONValue(concurrent), "max": plan?.maxConcurrent.map { JSONValue($0) } ?? .null]
        }
        return .object(members)
    }
}

extension Timestamp {
    /// `YYYY-MM-DD`, the UTC day of a time.
    public static func day(milliseconds: Int64) -> String {
        String(rfc3339(milliseconds: milliseconds).prefix(10))
    }
}
