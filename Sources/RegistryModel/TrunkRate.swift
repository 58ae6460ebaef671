import JSON

/// One line of a carrier's rate deck: what a call out through its trunk costs for destinations
/// starting with `prefix` (docs/settlement.md "Trunks"). The longest matching prefix prices a call;
/// an empty prefix matches every destination. Amounts in minor units of the provider's currency.
public struct TrunkRate: Sendable, Equatable {
    public var providerID: String
    /// `+` and digits, digits alone, or empty for every destination.
    public var prefix: String
    public var ratePerMinute: Int
    /// Charged once per answered call.
    public var connectFee: Int
    /// Seconds charged at least for an answered call (the `30` of 30/6).
    public var minimum: Int
    /// Seconds a call is charged by, rounded up (the `6` of 30/6).
    public var increment: Int
    public var description: String
    public var updatedAt: String

    public init(providerID: String, prefix: String, ratePerMinute: Int, connectFee: Int = 0, minimum: Int = 60, increment: Int = 60,
                description: String = "", updatedAt: String = "") {
        self.providerID = providerID
        self.prefix = prefix
        self.ratePerMinute = ratePerMinute
        self.connectFee = connectFee
        self.minimum = minimum
        self.increment = increment
        self.description = description
        self.updatedAt = updatedAt
    }

    public var json: JSONValue {
        ["provider_id": JSONValue(providerID), "prefix": JSONValue(prefix), "rate_per_minute": JSONValue(ratePerMinute),
         "connect_fee": JSONValue(connectFee), "minimum": JSONValue(minimum), "increment": JSONValue(increment),
         "description": JSONValue(description), "updated_at": JSONValue(updatedAt)]
    }

    /// The columns of `rate.import` files and `rate.list` exports.
    public static let csvColumns = ["prefix", "rate_per_minute", "connect_fee", "minimum", "increment", "description"]
}

/// A carrier's rate deck, looked up by the longest prefix of a destination: at most one dictionary
/// probe per digit, whatever the deck's size.
public struct RateDeck: Sendable {
    public let rates: [String: TrunkRate]
    private let longest: Int

    public init(_ rates: [TrunkRate]) {
        self.rates = Dictionary(rates.map { ($0.prefix, $0) }, uniquingKeysWith: { _, last in last })
        longest = rates.map(\.prefix.utf8.count).max() ?? 0
    }

    /// The rate of the longest prefix `destination` starts with; an empty prefix matches anything.
    public func rate(for destination: String) -> TrunkRate? {
        let bytes = Array(destination.utf8)
        for length in stride(from: min(longest, bytes.count), through: 0, by: -1) {
            if let rate = rates[String(decoding: bytes[0..<length], as: UTF8.self)] { return rate }
        }
        return nil
    }

    /// Seconds charged for a call of `milliseconds`: whole seconds rounded up, then up to a multiple of
    /// `increment`, at least `minimum` (a 30/6 deck charges 30 s for a 10 s call and 36 s for 31 s).
    public static func billedSeconds(_ milliseconds: Int64, minimum: Int, increment: Int) -> Int {
        let seconds = Int((max(0, milliseconds) + 999) / 1000)
        let step = max(1, increment)
        return max(minimum, (seconds + step - 1) / step * step)
    }
}
