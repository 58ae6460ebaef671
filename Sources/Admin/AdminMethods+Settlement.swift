import Billing
import Foundation
import JSON
import Registry

extension AdminMethods {
    static func month(_ a: Arguments) throws(RPCError) -> Month {
        let text = a.text("period")
        guard let month = Month(text) else { throw RPCError.invalidParams("period", "'\(text)' is not a month (YYYY-MM)") }
        return month
    }

    /// Totals by currency, for a statement.
    static func totals(_ lines: [SettlementLine]) -> JSONValue {
        var totals: [String: Int] = [:]
        for line in lines { totals[line.currency, default: 0] += line.amount }
        return .array(totals.sorted { $0.key < $1.key }.map { ["currency": JSONValue($0.key), "amount": JSONValue($0.value)] })
    }

    static let settlement: [AdminMethod] = [
        AdminMethod(name: "settlement.run", summary: "Rates a month (docs/settlement.md): what each number's carrier owes each app provider — activation fees prorated by day and minutes of use — and each trunk's carrier for calls out through it, priced by its rate deck; replaces the month's lines. Running it again gives the same lines; a closed month is refused.",
                    parameters: [.required("period", .string, "The month, `YYYY-MM` (UTC).")],
                    result: "`{period, status, lines, providers: [{payer_id, payee_id, currency, amount, lines}], late_tickets, trunk_calls, late_calls}`",
                    example: ["period": "2026-11"]) { a, call throws(RPCError) in
            let month = try month(a)
            guard month.start < call.clock() else { throw RPCError.invalidParams("period", "\(month) has not started") }
            call.flushWrites()
            let (lines, history) = try call.write { s throws(RegistryError) -> ([SettlementLine], SettlementHistory) in
                let history = try s.settlementHistory(start: month.start, end: month.end)
                let lines = Settlement.lines(month, history)
                try s.storeSettlement(period: month.description, lines: lines, tickets: history.tickets.map(\.id),
                                      calls: history.trunkCalls.map(\.cdrID))
                return (lines, history)
            }
            return ["period": JSONValue(month.description), "status": "open", "lines": JSONValue(lines.count),
                    "providers": providerSummaries(lines), "late_tickets": JSONValue(history.tickets.filter { $0.startTime < month.start }.count),
                    "trunk_calls": JSONValue(history.trunkCalls.count),
                    "late_calls": JSONValue(history.trunkCalls.filter { $0.startTime < month.start }.count)]
        },
        AdminMethod(name: "settlement.close", summary: "Closes a month that has been run: its lines never change again, and records of its calls that arrive later are settled in the next month run.",
                    parameters: [.required("period", .string, "The month, `YYYY-MM`.")],
                    result: "`{period, status, run_at, closed_at}`", example: ["period": "2026-10"]) { a, call throws(RPCError) in
            let month = try month(a)
            return try call.write { s throws(RegistryError) in try s.closeSettlement(period: month.description) }.json
        },
        AdminMethod(name: "settlement.list", summary: "Settled months, or one month's per-provider settlements (what each carrier owes each app provider).",
                    parameters: [.optional("period", .string, "A month, `YYYY-MM`; absent: every settled month."),
                                 .optional("provider_id", .string, "Only settlements this provider pays or is paid.")],
                    result: "`{periods: [{period, status, run_at, closed_at}]}`, or with `period`: `{period, status, providers: [{payer_id, payee_id, currency, amount, lines}]}`",
                    example: ["period": "2026-11"]) { a, call throws(RPCError) in
            guard a.string("period") != nil else {
                return ["periods": .array(try call.read { s throws(RegistryError) in try s.settlementPeriods() }.map(\.json))]
            }
            let month = try month(a)
            let (period, lines) = try call.read { s throws(RegistryError) -> (SettlementPeriod?, [SettlementLine]) in
                (try s.settlementPeriod(month.description), try s.settlementLines(period: month.description))
            }
            guard let period else { throw RPCError(.notFound("period", "\(month) has not been run (settlement.run)")) }
            let provider = a.string("provider_id")
            let mine = lines.filter { provider == nil || $0.payerID == provider || $0.payeeID == provider }
            return ["period": JSONValue(period.period), "status": JSONValue(period.closed ? "closed" : "open"), "providers": providerSummaries(mine)]
        },
        AdminMethod(name: "settlement.export", summary: "A month's settlement lines as CSV (columns in docs/settlement.md), to a file on the gateway's host (through a temporary file renamed at the end) or inline.",
                    parameters: [.required("period", .string, "The month, `YYYY-MM`."),
                                 .optional("provider_id", .string, "Only lines this provider pays or is paid."),
                                 .optional("path", .string, "File to write; absent: the CSV is returned in the answer.")],
                    result: "`{rows, csv}` inline, or `{rows, path}`", example: ["period": "2026-11", "provider_id": "vmcorp"]) { a, call throws(RPCError) in
            let month = try month(a)
            let provider = a.string("provider_id")
            let lines = try call.read { s throws(RegistryError) in try s.settlementLines(period: month.description) }
                .filter { provider == nil || $0.payerID == provider || $0.payeeID == provider }
            let csv = ([SettlementLine.csvColumns.joined(separator: ",")] + lines.map(\.csvLine)).joined(separator: "\r\n") + "\r\n"
            guard let path = a.string("path") else { return ["rows": JSONValue(lines.count), "csv": JSONValue(csv)] }
            try writeWhole(to: path) { file throws(RPCError) in file.write(Data(csv.utf8)) }
            return ["rows": JSONValue(lines.count), "path": JSONValue(path)]
        },
        AdminMethod(name: "bill.get", summary: "A number's combined bill for a month: every app provider's charges and every trunk's calls for it in one statement, with totals by currency.",
                    parameters: [.required("number", .string, "The number (E.164)."), .required("period", .string, "The month, `YYYY-MM`."), .acting],
                    result: "`{number, account_id, period, status, lines: [{payee_id, app_id, kind, destination, quantity, unit_price, amount, currency, note, payer_id}], totals: [{currency, amount}]}`",
                    example: ["number": "+33612345678", "period": "2026-11"]) { a, call throws(RPCError) in
            let month = try month(a)
            let number = try call.read { s throws(RegistryError) in try s.number(a.text("number"), acting: a.acting) }
            let (period, lines) = try call.read { s throws(RegistryError) -> (SettlementPeriod?, [SettlementLine]) in
                (try s.settlementPeriod(month.description), try s.settlementLines(period: month.description, number: number.number))
            }
            guard let period else { throw RPCError(.notFound("period", "\(month) has not been run (settlement.run)")) }
            return ["number": JSONValue(number.number), "account_id": JSONValue(number.accountID), "period": JSONValue(period.period),
                    "status": JSONValue(period.closed ? "closed" : "open"), "lines": .array(lines.map(\.json)), "totals": totals(lines)]
        },
    ]

    static let rateParameters: [Parameter] = [
        .optional("rate_per_minute", .integer, "Minor units per minute (required for a new prefix)."),
        .optional("connect_fee", .integer, "Minor units per answered call (default 0)."),
        .optional("minimum", .integer, "Seconds charged at least per answered call, 0 to 3600 (default 60)."),
        .optional("increment", .integer, "Seconds a call is charged by, rounded up, 1 to 3600 (default 60)."),
        .optional("description", .string, "What the prefix is, e.g. `UK mobile`."),
    ]

    static let rates: [AdminMethod] = [
        AdminMethod(name: "rate.set", summary: "Sets what calls out through a carrier's trunk cost for destinations starting with a prefix (operator only; docs/settlement.md#trunks). The longest matching prefix prices a call.",
                    parameters: [.required("provider_id", .string, "A carrier provider (kind `carrier` or `both`)."),
                                 .required("prefix", .string, "`+` and digits, digits, or empty for every destination.")] + rateParameters + [.acting],
                    result: "the rate: `{provider_id, prefix, rate_per_minute, connect_fee, minimum, increment, description, updated_at}`",
                    example: ["provider_id": "telco", "prefix": "+447", "rate_per_minute": 12, "minimum": 30, "increment": 6,
                              "description": "UK mobile"]) { a, call throws(RPCError) in
            let fields = TrunkRateFields(ratePerMinute: try a.integer("rate_per_minute"), connectFee: try a.integer("connect_fee"),
                                         minimum: try a.integer("minimum"), increment: try a.integer("increment"),
                                         description: a.string("description"))
            return try call.write { s throws(RegistryError) in
                try s.setTrunkRate(providerID: a.text("provider_id"), prefix: a.text("prefix"), fields: fields, acting: a.acting)
            }.json
        },
        AdminMethod(name: "rate.list", summary: "A carrier's rate deck by prefix, or with `destination` the one rate that prices it.",
                    parameters: [.required("provider_id", .string, "A carrier provider."),
                                 .optional("destination", .string, "A number: answer only the rate of its longest matching prefix (none: an empty list)."),
                                 .limit, .offset],
                    result: "`{rates: [rate], total}`", example: ["provider_id": "telco", "destination": "+447700900123"]) { a, call throws(RPCError) in
            let (limit, offset) = try a.paging()
            let page = try call.read { s throws(RegistryError) in
                try s.trunkRates(providerID: a.text("provider_id"), destination: a.string("destination"), limit: limit, offset: offset)
            }
            return ["rates": .array(page.items.map(\.json)), "total": JSONValue(page.total)]
        },
        AdminMethod(name: "rate.delete", summary: "Removes one prefix from a carrier's rate deck (operator only); calls it priced fall to a shorter prefix.",
                    parameters: [.required("provider_id", .string, "A carrier provider."), .required("prefix", .string, "The prefix."), .acting],
                    result: "`{deleted: PREFIX}`", example: ["provider_id": "telco", "prefix": "+447"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deleteTrunkRate(providerID: a.text("provider_id"), prefix: a.text("prefix"), acting: a.acting) }
            return ["deleted": .string(a.text("prefix"))]
        },
        AdminMethod(name: "rate.import", summary: "Loads a carrier's rate deck from CSV (columns `prefix`, `rate_per_minute`, and optionally `connect_fee`, `minimum`, `increment`, `description`) in one transaction: the first bad row fails the import with its line and column, and nothing changes. With `replace`, prefixes the file does not list are removed.",
                    parameters: [.required("provider_id", .string, "A carrier provider."),
                                 .optional("path", .string, "CSV file on the gateway's host (read by the gateway)."),
                                 .optional("data", .string, "CSV text; give `path` or `data`."),
                                 .optional("replace", .boolean, "The file is the whole deck: remove prefixes it does not list (default false)."),
                                 .acting],
                    result: "`{provider_id, rows, removed, total}`",
                    example: ["provider_id": "telco", "path": "/srv/rates/telco-2026-12.csv", "replace": true]) { a, call throws(RPCError) in
            let path = a.string("path"), data = a.string("data")
            guard (path == nil) != (data == nil) else { throw RPCError.invalidParams("path", "give either path or data") }
            let provider = a.text("provider_id")
            let (loaded, total) = try call.write { s throws(RegistryError) -> ((rows: Int, removed: Int), Int) in
                var reader = try path.map { p throws(RegistryError) in try CSVReader(path: p) } ?? CSVReader(text: data ?? "")
                let loaded = try s.importTrunkRates(providerID: provider, &reader, replace: a.bool("replace") ?? false, acting: a.acting)
                return (loaded, try s.trunkRates(providerID: provider, limit: 1).total)
            }
            return ["provider_id": JSONValue(provider), "rows": JSONValue(loaded.rows), "removed": JSONValue(loaded.removed), "total": JSONValue(total)]
        },
    ]

    /// One entry per carrier and app provider: what the one owes the other.
    static func providerSummaries(_ lines: [SettlementLine]) -> JSONValue {
        struct Pair: Hashable, Comparable {
            var payer: String, payee: String, currency: String
            static func < (a: Pair, b: Pair) -> Bool { (a.payer, a.payee, a.currency) < (b.payer, b.payee, b.currency) }
        }
        var sums: [Pair: (amount: Int, lines: Int)] = [:]
        for line in lines {
            let pair = Pair(payer: line.payerID, payee: line.payeeID, currency: line.currency)
            sums[pair, default: (0, 0)].amount += line.amount
            sums[pair, default: (0, 0)].lines += 1
        }
        return .array(sums.keys.sorted().map { pair in
            ["payer_id": JSONValue(pair.payer), "payee_id": JSONValue(pair.payee), "currency": JSONValue(pair.currency),
             "amount": JSONValue(sums[pair]!.amount), "lines": JSONValue(sums[pair]!.lines)]
        })
    }
}

extension AdminMethods {
    /// Writes a file through `PATH.partial`, synced, then renamed: a reader never sees half a file,
    /// and a failure leaves nothing behind.
    static func writeWhole(to path: String, _ body: (FileHandle) throws(RPCError) -> Void) throws(RPCError) {
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let file = FileHandle(forWritingAtPath: temporary) else {
            throw RPCError.invalidParams("path", "cannot write \(temporary)")
        }
        do {
            try body(file)
            try file.synchronize()
            try file.close()
        } catch {
            try? file.close()
            try? FileManager.default.removeItem(atPath: temporary)
            if let failure = error as? RPCError { throw failure }
            throw RPCError.invalidParams("path", "cannot write \(temporary): \(error)")
        }
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw RPCError.invalidParams("path", "cannot rename \(temporary) to \(path)")
        }
    }
}
