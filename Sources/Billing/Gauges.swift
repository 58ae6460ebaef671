import RegistryModel

/// What an ended call charges: its account's usage and a service ticket per app it used. Pure.
public enum Charging {
    /// The account a call counts against: the one whose user placed it, or for a call from outside,
    /// the one called.
    public static func chargedAccount(callerAccountID: String?, accountID: String?) -> String? {
        callerAccountID ?? accountID
    }

    /// Billable time in whole minutes, rounded up (60/60 billing).
    public static func minutes(_ milliseconds: Int64) -> Int {
        Int((max(0, milliseconds) + 59_999) / 60_000)
    }

    public static func charges(of record: CallRecord) -> CallCharges {
        let answered = record.answerTime != nil
        let billable = record.billableMilliseconds
        var charges = CallCharges()
        if answered, let account = chargedAccount(callerAccountID: record.callerAccountID, accountID: record.accountID) {
            charges.usage = UsageCharge(accountID: account, day: Timestamp.day(milliseconds: record.startTime),
                                        minutes: minutes(billable), billableMilliseconds: billable)
        }
        // An app in the path of an answered call (a chain hop, voicemail answering) is used for the
        // whole call; one that refused it or was never answered through, for none of it.
        let user = record.answeredUserID ?? (record.users.count == 1 ? record.users[0] : nil)
        charges.tickets = record.apps.map { app in
            let used = answered && (app.sipCode ?? 200) < 300 ? billable : 0
            return ServiceTicket(callID: record.callID, appID: app.appID, providerID: app.providerID, subscriberID: app.subscriberID,
                                 number: record.destination, userID: user, accountID: record.accountID, startTime: record.startTime,
                                 durationMilliseconds: used, units: minutes(used))
        }
        return charges
    }
}

/// Each account's usage in the current month and its calls in progress, checked against its plan
/// before a call is let through (docs/cdr.md "Plans and gauges"). A value: no clock, no I/O.
public struct Gauges: Sendable {
    public enum Limit: String, Sendable { case minutes, calls, concurrent }

    public enum Admission: Sendable, Equatable {
        case admitted
        /// Over a soft limit: let through, and recorded.
        case overSoftLimit(Limit)
        /// Over a hard limit: refused, not counted.
        case refused(Limit)
    }

    /// Usage by account, then UTC day.
    private var days: [String: [String: Usage]] = [:]
    private var concurrent: [String: Int] = [:]

    public init(usage: [(accountID: String, day: String, usage: Usage)] = []) {
        for row in usage { days[row.accountID, default: [:]][row.day] = row.usage }
    }

    /// Admits a new call of `accountID` now, counting it in progress unless refused. An exempt call
    /// (emergency) is always admitted and counted.
    public mutating func admit(accountID: String, plan: Plan?, at now: Int64, exempt: Bool = false) -> Admission {
        var admission = Admission.admitted
        if !exempt, let plan, let limit = exceeded(accountID: accountID, plan: plan, at: now) {
            admission = plan.enforcement == .hard ? .refused(limit) : .overSoftLimit(limit)
        }
        if case .refused = admission { return admission }
        concurrent[accountID, default: 0] += 1
        return admission
    }

    private func exceeded(accountID: String, plan: Plan, at now: Int64) -> Limit? {
        if let max = plan.maxConcurrent, concurrent[accountID, default: 0] >= max { return .concurrent }
        guard plan.maxMinutes != nil || plan.maxCalls != nil else { return nil }
        let used = usage(accountID: accountID, period: Gauge.period(plan, at: now))
        if let max = plan.maxMinutes, used.minutes >= max { return .minutes }
        if let max = plan.maxCalls, used.calls >= max { return .calls }
        return nil
    }

    /// A call admitted for `accountID` ended.
    public mutating func release(accountID: String) {
        guard let count = concurrent[accountID] else { return }
        concurrent[accountID] = count > 1 ? count - 1 : nil
    }

    /// An ended call's usage; days of months before its own are forgotten.
    public mutating func add(_ charge: UsageCharge) {
        var account = days[charge.accountID] ?? [:]
        let month = charge.day.prefix(7)
        if account.keys.contains(where: { $0.prefix(7) < month }) { account = account.filter { $0.key.prefix(7) >= month } }
        var usage = account[charge.day] ?? Usage()
        usage.minutes += charge.minutes
        usage.calls += 1
        usage.billableMilliseconds += charge.billableMilliseconds
        account[charge.day] = usage
        days[charge.accountID] = account
    }

    /// Usage over a day (`YYYY-MM-DD`) or a month (`YYYY-MM`).
    public func usage(accountID: String, period: String) -> Usage {
        var total = Usage()
        for (day, usage) in days[accountID] ?? [:] where day.hasPrefix(period) {
            total.minutes += usage.minutes
            total.calls += usage.calls
            total.billableMilliseconds += usage.billableMilliseconds
        }
        return total
    }

    public func inProgress(accountID: String) -> Int { concurrent[accountID, default: 0] }
}
