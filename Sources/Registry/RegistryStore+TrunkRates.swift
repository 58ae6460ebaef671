import JSON

/// What `rate.set` gives; a field left out keeps its value (or its default for a new prefix).
public struct TrunkRateFields: Sendable {
    public var ratePerMinute: Int?
    public var connectFee: Int?
    public var minimum: Int?
    public var increment: Int?
    public var description: String?

    public init(ratePerMinute: Int? = nil, connectFee: Int? = nil, minimum: Int? = nil, increment: Int? = nil, description: String? = nil) {
        self.ratePerMinute = ratePerMinute
        self.connectFee = connectFee
        self.minimum = minimum
        self.increment = increment
        self.description = description
    }
}

extension Validate {
    /// A destination prefix as routing writes numbers after the dialplan: `+` and up to 15 digits,
    /// digits alone (a short code), or empty (every destination).
    static func ratePrefix(_ field: String, _ value: String) throws(RegistryError) -> String {
        let digits = value.utf8.first == UInt8(ascii: "+") ? value.utf8.dropFirst() : value.utf8.dropFirst(0)
        guard digits.count <= 15, digits.allSatisfy({ (48...57).contains($0) }), !(value == "+") else {
            throw .invalid(field, "'\(value)' is not a destination prefix (+ and up to 15 digits, digits, or empty for every destination)")
        }
        return value
    }

    /// Seconds in a billing increment or minimum: up to an hour.
    static func seconds(_ field: String, _ value: Int, minimum: Int) throws(RegistryError) -> Int {
        guard (minimum...3600).contains(value) else { throw .invalid(field, "must be from \(minimum) to 3600 seconds") }
        return value
    }
}

extension RegistryStore {
    static let trunkRateColumns = "provider_id, prefix, rate_per_minute, connect_fee, minimum, increment, description, updated_at"

    static func trunkRate(_ row: Row) -> TrunkRate {
        TrunkRate(providerID: row.text(0), prefix: row.text(1), ratePerMinute: row.int(2), connectFee: row.int(3), minimum: row.int(4),
                  increment: row.int(5), description: row.text(6), updatedAt: row.text(7))
    }

    /// A trunk is a provider that carries calls: `carrier` or `both`.
    func requireTrunk(_ providerID: String) throws(RegistryError) {
        guard let provider = try fetchProvider(providerID) else { throw .notFound("provider_id", "no provider '\(providerID)'") }
        guard provider.kind != .app else {
            throw .invalid("provider_id", "provider '\(providerID)' is app-only; rates per trunk are for carrier providers")
        }
    }

    /// Sets one prefix of a carrier's deck (operator only), creating it with the defaults (60/60, no
    /// connection fee) for what `fields` leaves out.
    public func setTrunkRate(providerID: String, prefix: String, fields: TrunkRateFields, acting: String?) throws(RegistryError) -> TrunkRate {
        try requireOperator(acting, "set trunk rates")
        try requireTrunk(providerID)
        let prefix = try Validate.ratePrefix("prefix", prefix)
        let existing = try firstRow("SELECT \(Self.trunkRateColumns) FROM trunk_rates WHERE provider_id = ? AND prefix = ?",
                                    [.text(providerID), .text(prefix)], Self.trunkRate)
        guard existing != nil || fields.ratePerMinute != nil else {
            throw .invalid("rate_per_minute", "required for a new prefix")
        }
        var rate = existing ?? TrunkRate(providerID: providerID, prefix: prefix, ratePerMinute: 0)
        try apply(fields, to: &rate)
        rate.updatedAt = timestamp()
        try storeTrunkRate(rate)
        return rate
    }

    func apply(_ fields: TrunkRateFields, to rate: inout TrunkRate) throws(RegistryError) {
        if let value = fields.ratePerMinute { rate.ratePerMinute = try Validate.amount("rate_per_minute", value) }
        if let value = fields.connectFee { rate.connectFee = try Validate.amount("connect_fee", value) }
        if let value = fields.minimum { rate.minimum = try Validate.seconds("minimum", value, minimum: 0) }
        if let value = fields.increment { rate.increment = try Validate.seconds("increment", value, minimum: 1) }
        if let value = fields.description {
            rate.description = value.isEmpty ? "" : try Validate.text("description", value)
        }
    }

    func storeTrunkRate(_ rate: TrunkRate) throws(RegistryError) {
        try sql("""
            INSERT INTO trunk_rates (\(Self.trunkRateColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (provider_id, prefix) DO UPDATE SET rate_per_minute = excluded.rate_per_minute, connect_fee = excluded.connect_fee,
                minimum = excluded.minimum, increment = excluded.increment, description = excluded.description, updated_at = excluded.updated_at
            """, [.text(rate.providerID), .text(rate.prefix), .int(rate.ratePerMinute), .int(rate.connectFee), .int(rate.minimum),
                  .int(rate.increment), .text(rate.description), .text(rate.updatedAt)])
    }

    /// A carrier's deck by prefix, or the rate that prices `destination` (its longest matching prefix).
    public func trunkRates(providerID: String, destination: String? = nil, limit: Int = 100, offset: Int = 0) throws(RegistryError) -> Page<TrunkRate> {
        try requireTrunk(providerID)
        if let destination {
            // The same lookup settlement prices calls with.
            let deck = try rows("SELECT \(Self.trunkRateColumns) FROM trunk_rates WHERE provider_id = ?", [.text(providerID)], Self.trunkRate)
            let rate = RateDeck(deck).rate(for: destination)
            return Page(items: rate.map { [$0] } ?? [], total: rate == nil ? 0 : 1)
        }
        let total = try count("SELECT count(*) FROM trunk_rates WHERE provider_id = ?", [.text(providerID)])
        let items = try rows("SELECT \(Self.trunkRateColumns) FROM trunk_rates WHERE provider_id = ? ORDER BY prefix LIMIT ? OFFSET ?",
                             [.text(providerID)] + Self.paging(limit, offset), Self.trunkRate)
        return Page(items: items, total: total)
    }

    public func deleteTrunkRate(providerID: String, prefix: String, acting: String?) throws(RegistryError) {
        try requireOperator(acting, "delete trunk rates")
        try requireTrunk(providerID)
        try sql("DELETE FROM trunk_rates WHERE provider_id = ? AND prefix = ?", [.text(providerID), .text(prefix)])
        guard database.changes == 1 else { throw .notFound("prefix", "provider '\(providerID)' has no rate for prefix '\(prefix)'") }
    }

    /// Loads a rate deck from CSV (columns `TrunkRate.csvColumns`; `prefix` and `rate_per_minute`
    /// required) in the caller's transaction: the first bad row fails the whole import, naming its
    /// line and column, so a deck is never half loaded. With `replace`, prefixes the file does not
    /// list are removed. Returns (rows loaded, prefixes removed).
    public func importTrunkRates(providerID: String, _ reader: inout CSVReader, replace: Bool,
                                 acting: String?) throws(RegistryError) -> (rows: Int, removed: Int) {
        try requireOperator(acting, "import trunk rates")
        try requireTrunk(providerID)
        guard let header = try reader.next() else { throw .invalid("csv", "the file is empty; the first line names the columns") }
        let columns = header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        for (index, name) in columns.enumerated() where !TrunkRate.csvColumns.contains(name) {
            throw CSVReader.unknownColumn(name, index, known: TrunkRate.csvColumns)
        }
        guard Set(columns).count == columns.count else { throw .invalid("csv", "line 1: a column is named twice") }
        for required in ["prefix", "rate_per_minute"] where !columns.contains(required) {
            throw .invalid("csv", "line 1: the '\(required)' column is required")
        }
        if replace {
            try sql("CREATE TEMP TABLE IF NOT EXISTS imported_prefixes (prefix TEXT PRIMARY KEY NOT NULL) STRICT")
            try sql("DELETE FROM imported_prefixes")
        }
        let now = timestamp()
        var loaded = 0
        while let record = try reader.next() {
            let line = reader.recordLine
            if record.count == 1, record[0].trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard record.count == columns.count else {
                throw .invalid("csv", "line \(line): \(record.count) fields, but the header names \(columns.count)")
            }
            var values: [String: String] = [:]
            for (name, value) in zip(columns, record) { values[name] = value.trimmingCharacters(in: .whitespaces) }
            do throws(RegistryError) {
                func integer(_ name: String) throws(RegistryError) -> Int? {
                    guard let text = values[name], !text.isEmpty else { return nil }
                    guard let value = Int(text) else { throw .invalid(name, "'\(text)' is not a whole number of minor units or seconds") }
                    return value
                }
                let prefix = try Validate.ratePrefix("prefix", values["prefix"] ?? "")
                guard let perMinute = try integer("rate_per_minute") else { throw .invalid("rate_per_minute", "required") }
                var rate = TrunkRate(providerID: providerID, prefix: prefix, ratePerMinute: 0, updatedAt: now)
                try apply(TrunkRateFields(ratePerMinute: perMinute, connectFee: try integer("connect_fee"), minimum: try integer("minimum"),
                                          increment: try integer("increment"), description: values["description"]), to: &rate)
                if replace {
                    try sql("INSERT INTO imported_prefixes (prefix) VALUES (?) ON CONFLICT DO NOTHING", [.text(prefix)])
                    guard database.changes == 1 else { throw .invalid("prefix", "'\(prefix)' is listed twice") }
                }
                try storeTrunkRate(rate)
            } catch {
                throw .init(error.kind, field: error.field, "line \(line): \(error.reason)")
            }
            loaded += 1
        }
        var removed = 0
        if replace {
            try sql("DELETE FROM trunk_rates WHERE provider_id = ? AND prefix NOT IN (SELECT prefix FROM imported_prefixes)", [.text(providerID)])
            removed = database.changes
            try sql("DELETE FROM imported_prefixes")
        }
        return (loaded, removed)
    }

    /// Every deck, by provider: what settlement prices trunk calls with.
    func allTrunkRates() throws(RegistryError) -> [String: [TrunkRate]] {
        var decks: [String: [TrunkRate]] = [:]
        for rate in try rows("SELECT \(Self.trunkRateColumns) FROM trunk_rates ORDER BY provider_id, prefix", [], Self.trunkRate) {
            decks[rate.providerID, default: []].append(rate)
        }
        return decks
    }
}
