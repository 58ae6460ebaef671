import JSON

/// One line of a settlement: what a number's carrier owes an app provider for one app in a month,
/// or a trunk's carrier for the number's calls out through it to one rated destination.
public struct SettlementLine: Sendable, Equatable {
    /// `fee` and `usage` for apps; `outbound` (billed seconds) and `connect` (answered calls) for trunks.
    public enum Kind: String, Sendable, CaseIterable { case fee, usage, outbound, connect }
    public var period: String
    /// The number's carrier (its primary provider), who pays; `-` when the number had none.
    public var payerID: String
    /// The app provider, or the trunk's carrier.
    public var payeeID: String
    public var number: String
    public var accountID: String
    /// The app; empty on trunk lines.
    public var appID: String
    public var kind: Kind
    /// The rate deck's prefix that priced the calls (`-` when none did); empty on app lines.
    public var destination: String
    /// Days active (fee), minutes (usage), billed seconds (outbound) or answered calls (connect).
    public var quantity: Int
    /// Monthly fee, price per minute or connection fee, in minor units.
    public var unitPrice: Int
    /// In minor units, rounded half up.
    public var amount: Int
    public var currency: String
    public var note: String

    public init(period: String, payerID: String, payeeID: String, number: String, accountID: String, appID: String, kind: Kind,
                destination: String = "", quantity: Int, unitPrice: Int, amount: Int, currency: String, note: String = "") {
        self.period = period
        self.payerID = payerID
        self.payeeID = payeeID
        self.number = number
        self.accountID = accountID
        self.appID = appID
        self.kind = kind
        self.destination = destination
        self.quantity = quantity
        self.unitPrice = unitPrice
        self.amount = amount
        self.currency = currency
        self.note = note
    }
}

extension SettlementLine {
    public var json: JSONValue {
        ["period": JSONValue(period), "payer_id": JSONValue(payerID), "payee_id": JSONValue(payeeID), "number": JSONValue(number),
         "account_id": JSONValue(accountID), "app_id": JSONValue(appID), "kind": JSONValue(kind.rawValue),
         "destination": JSONValue(destination), "quantity": JSONValue(quantity),
         "unit_price": JSONValue(unitPrice), "amount": JSONValue(amount), "currency": JSONValue(currency), "note": JSONValue(note)]
    }

    public static let csvColumns = ["period", "payer_id", "payee_id", "number", "account_id", "app_id", "kind", "destination", "quantity",
                                    "unit_price", "amount", "currency", "note"]

    public var csvLine: String {
        [period, payerID, payeeID, number, accountID, appID, kind.rawValue, destination, String(quantity), String(unitPrice), String(amount), currency, note]
            .map(CSV.field).joined(separator: ",")
    }
}

/// A settled month: `open` while it may be run again, `closed` once it may not.
public struct SettlementPeriod: Sendable, Equatable {
    package init(period: String, closed: Bool, runAt: String, closedAt: String? = nil) {
        self.period = period
        self.closed = closed
        self.runAt = runAt
        self.closedAt = closedAt
    }

    public var period: String
    public var closed: Bool
    public var runAt: String
    public var closedAt: String?

    public var json: JSONValue {
        ["period": JSONValue(period), "status": JSONValue(closed ? "closed" : "open"), "run_at": JSONValue(runAt), "closed_at": JSONValue(closedAt)]
    }
}

/// What settlement reads for a month (`Billing.Settlement` rates it): the history of activations
/// and carriers, the rates, and the tickets to settle. Times are milliseconds since the epoch.
public struct SettlementHistory: Sendable {
    public struct ActivationChange: Sendable, Equatable {
        public var number: String
        public var appID: String
        public var providerID: String
        public var active: Bool
        public var time: Int64
        public init(number: String, appID: String, providerID: String, active: Bool, time: Int64) {
            self.number = number
            self.appID = appID
            self.providerID = providerID
            self.active = active
            self.time = time
        }
    }

    public struct CarrierChange: Sendable, Equatable {
        public var number: String
        public var from: String?
        public var to: String
        public var time: Int64
        public init(number: String, from: String?, to: String, time: Int64) {
            self.number = number
            self.from = from
            self.to = to
            self.time = time
        }
    }

    /// A provider's rates (docs/settlement.md), in minor units of its currency.
    public struct Rates: Sendable, Equatable {
        public var currency: String
        public var perMinute: Int
        public var monthlyFee: Int
        public init(currency: String, perMinute: Int, monthlyFee: Int) {
            self.currency = currency
            self.perMinute = perMinute
            self.monthlyFee = monthlyFee
        }
    }

    /// `app.activated` / `app.deactivated` up to the month's end, oldest first.
    public var activations: [ActivationChange] = []
    /// Every `number.provider_switched`, oldest first, including those after the month: the carrier at a
    /// moment is the `to` of the last switch before it, else the `from` of the first switch after it.
    public var carriers: [CarrierChange] = []
    /// Each number's account and carrier now.
    public var numbers: [String: (accountID: String, carrier: String?)] = [:]
    /// By provider.
    public var rates: [String: Rates] = [:]
    /// The month's tickets, and earlier ones a closed month missed (late).
    public var tickets: [ServiceTicket] = []

    /// An answered call out through a trunk, as settlement rates it.
    public struct TrunkCall: Sendable, Equatable {
        public var cdrID: Int
        /// The caller's number (whose carrier pays), empty when the caller had none of Tandem's.
        public var number: String
        public var trunkID: String
        /// The number called, after the dialplan: what the deck's prefixes match.
        public var destination: String
        public var startTime: Int64
        public var billableMilliseconds: Int64
        public init(cdrID: Int, number: String, trunkID: String, destination: String, startTime: Int64, billableMilliseconds: Int64) {
            self.cdrID = cdrID
            self.number = number
            self.trunkID = trunkID
            self.destination = destination
            self.startTime = startTime
            self.billableMilliseconds = billableMilliseconds
        }
    }

    /// The month's answered trunk calls, and earlier ones a closed month missed (late).
    public var trunkCalls: [TrunkCall] = []
    /// Each carrier's rate deck.
    public var trunkRates: [String: [TrunkRate]] = [:]

    public init() {}
}
