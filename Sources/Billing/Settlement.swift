import RegistryModel

/// A calendar month in UTC: the period settlement runs over.
public struct Month: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int
    public var month: Int

    /// `YYYY-MM`, or nil.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 7, parts.count == 2, let year = Int(parts[0]), let month = Int(parts[1]), parts[0].count == 4,
              (1970...9999).contains(year), (1...12).contains(month) else { return nil }
        self.year = year
        self.month = month
    }

    public init(year: Int, month: Int) {
        self.year = year
        self.month = month
    }

    /// The month a time falls in.
    public init(milliseconds: Int64) {
        let date = CivilDate(days: milliseconds.floorDivided(by: 86_400_000))
        self.init(year: date.year, month: date.month)
    }

    public var description: String { "\(year)-\(month < 10 ? "0" : "")\(month)" }
    public var next: Month { month == 12 ? Month(year: year + 1, month: 1) : Month(year: year, month: month + 1) }
    public var previous: Month { month == 1 ? Month(year: year - 1, month: 12) : Month(year: year, month: month - 1) }
    public var start: Int64 { CivilDate(year: year, month: month, day: 1).days * 86_400_000 }
    public var end: Int64 { next.start }
    public var days: Int { Int((end - start) / 86_400_000) }

    public static func < (a: Month, b: Month) -> Bool { (a.year, a.month) < (b.year, b.month) }
}

/// Rating and settlement of a month (docs/settlement.md). Pure: the same input gives the same lines.
public enum Settlement {
    /// The lines of `month`, sorted by payer, payee, number, app and kind.
    public static func lines(_ month: Month, _ input: SettlementHistory) -> [SettlementLine] {
        let period = month.description
        struct Key: Hashable { var payer: String, payee: String, number: String, app: String }
        var feeDays: [Key: Int] = [:]
        var minutes: [Key: Int] = [:]
        var lateNotes: [Key: Set<String>] = [:]
        let switches = Dictionary(grouping: input.carriers, by: \.number)

        // Fees: each day an activation was active at any moment is a day of the app's monthly fee,
        // owed by the carrier holding the number at the end of that day.
        var byActivation: [String: [SettlementHistory.ActivationChange]] = [:]
        for change in input.activations { byActivation[change.number + "\u{0}" + change.appID, default: []].append(change) }
        for (_, changes) in byActivation.sorted(by: { $0.key < $1.key }) {
            let first = changes[0]
            for day in 0..<month.days {
                let dayStart = month.start + Int64(day) * 86_400_000
                let dayEnd = dayStart + 86_400_000
                guard isActive(changes, from: dayStart, until: dayEnd) else { continue }
                let provider = changes.last { $0.time < dayEnd }?.providerID ?? first.providerID
                let key = Key(payer: carrier(of: first.number, at: dayEnd - 1, switches, input) ?? "-", payee: provider, number: first.number, app: first.appID)
                feeDays[key, default: 0] += 1
            }
        }
        // Usage: each ticket's minutes, owed by the carrier holding the number when the call started.
        for ticket in input.tickets {
            let key = Key(payer: carrier(of: ticket.number, at: ticket.startTime, switches, input) ?? "-", payee: ticket.providerID,
                          number: ticket.number, app: ticket.appID)
            minutes[key, default: 0] += ticket.units
            if ticket.startTime < month.start {
                lateNotes[key, default: []].insert(Month(milliseconds: ticket.startTime).description)
            }
        }

        var lines: [SettlementLine] = []
        let account = { (number: String) in input.numbers[number]?.accountID ?? "" }
        // A provider deleted since still appears in the history: its lines say it, at no charge.
        let unrated = SettlementHistory.Rates(currency: "EUR", perMinute: 0, monthlyFee: 0)
        for (key, days) in feeDays {
            let rates = input.rates[key.payee] ?? unrated
            lines.append(SettlementLine(period: period, payerID: key.payer, payeeID: key.payee, number: key.number, accountID: account(key.number),
                                        appID: key.app, kind: .fee, quantity: days, unitPrice: rates.monthlyFee,
                                        amount: roundedShare(rates.monthlyFee, days, of: month.days), currency: rates.currency,
                                        note: days < month.days ? "\(days)/\(month.days) days" : ""))
        }
        for (key, count) in minutes {
            let rates = input.rates[key.payee] ?? unrated
            let late = lateNotes[key].map { "late calls of " + $0.sorted().joined(separator: ", ") } ?? ""
            lines.append(SettlementLine(period: period, payerID: key.payer, payeeID: key.payee, number: key.number, accountID: account(key.number),
                                        appID: key.app, kind: .usage, quantity: count, unitPrice: rates.perMinute,
                                        amount: count * rates.perMinute, currency: rates.currency, note: late))
        }
        lines += trunkLines(month, input, switches)
        return lines.sorted {
            ($0.payerID, $0.payeeID, $0.number, $0.appID, $0.kind.rawValue, $0.destination)
                < ($1.payerID, $1.payeeID, $1.number, $1.appID, $1.kind.rawValue, $1.destination)
        }
    }

    /// Calls out through a trunk: per carrier, trunk, number and matched prefix, the billed seconds
    /// (each call rounded up to the rate's increment, at least its minimum) at the rate per minute,
    /// rounded once per line, and the connection fee per answered call. A call no prefix prices is
    /// listed at no charge under destination `-`, so an operator sees what the deck misses.
    static func trunkLines(_ month: Month, _ input: SettlementHistory,
                           _ switches: [String: [SettlementHistory.CarrierChange]]) -> [SettlementLine] {
        struct Key: Hashable { var payer: String, trunk: String, number: String, prefix: String? }
        struct Tally { var seconds = 0, calls = 0, lateMonths: Set<String> = [] }
        var tallies: [Key: Tally] = [:]
        let decks = input.trunkRates.mapValues(RateDeck.init)
        for call in input.trunkCalls {
            let rate = decks[call.trunkID]?.rate(for: call.destination)
            let key = Key(payer: carrier(of: call.number, at: call.startTime, switches, input) ?? "-", trunk: call.trunkID, number: call.number,
                          prefix: rate?.prefix)
            tallies[key, default: Tally()].seconds += RateDeck.billedSeconds(call.billableMilliseconds, minimum: rate?.minimum ?? 0,
                                                                              increment: rate?.increment ?? 1)
            tallies[key, default: Tally()].calls += 1
            if call.startTime < month.start { tallies[key, default: Tally()].lateMonths.insert(Month(milliseconds: call.startTime).description) }
        }
        var lines: [SettlementLine] = []
        let period = month.description
        for (key, tally) in tallies {
            let (billed, count) = (tally.seconds, tally.calls)
            let currency = input.rates[key.trunk]?.currency ?? "EUR"
            let late = tally.lateMonths.isEmpty ? "" : "; late calls of " + tally.lateMonths.sorted().joined(separator: ", ")
            let plural = count == 1 ? "call" : "calls"
            let account = input.numbers[key.number]?.accountID ?? ""
            guard let prefix = key.prefix, let rate = decks[key.trunk]?.rates[prefix] else {
                lines.append(SettlementLine(period: period, payerID: key.payer, payeeID: key.trunk, number: key.number, accountID: account,
                                            appID: "", kind: .outbound, destination: "-", quantity: billed, unitPrice: 0, amount: 0,
                                            currency: currency, note: "\(count) \(plural), no rate matches" + late))
                continue
            }
            lines.append(SettlementLine(period: period, payerID: key.payer, payeeID: key.trunk, number: key.number, accountID: account,
                                        appID: "", kind: .outbound, destination: prefix, quantity: billed, unitPrice: rate.ratePerMinute,
                                        amount: roundedShare(rate.ratePerMinute, billed, of: 60), currency: currency,
                                        note: "\(count) \(plural) at \(rate.minimum)/\(rate.increment)" + late))
            if rate.connectFee > 0 {
                lines.append(SettlementLine(period: period, payerID: key.payer, payeeID: key.trunk, number: key.number, accountID: account,
                                            appID: "", kind: .connect, destination: prefix, quantity: count, unitPrice: rate.connectFee,
                                            amount: count * rate.connectFee, currency: currency, note: String(late.dropFirst(2))))
            }
        }
        return lines
    }

    /// `amount × part / whole` in integers, rounded half up: no floating-point money.
    public static func roundedShare(_ amount: Int, _ part: Int, of whole: Int) -> Int {
        (amount * part * 2 + whole) / (2 * whole)
    }

    static func isActive(_ changes: [SettlementHistory.ActivationChange], from start: Int64, until end: Int64) -> Bool {
        // Active at the start of the window, or activated within it.
        if changes.last(where: { $0.time <= start })?.active == true { return true }
        return changes.contains { $0.active && $0.time > start && $0.time < end }
    }

    /// The number's carrier at a time: the last switch before it, else the first switch's origin,
    /// else the carrier now.
    static func carrier(of number: String, at time: Int64, _ byNumber: [String: [SettlementHistory.CarrierChange]],
                        _ input: SettlementHistory) -> String? {
        let switches = byNumber[number] ?? []
        if let last = switches.last(where: { $0.time <= time }) { return last.to }
        if let first = switches.first { return first.from }
        return input.numbers[number]?.carrier
    }
}

