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
        AdminMethod(name: "settlement.run", summary: "Rates a month (docs/settlement.md): what each number's carrier owes each app provider — activation fees prorated by day and minutes of use — replacing the month's lines. Running it again gives the same lines; a closed month is refused.",
                    parameters: [.required("period", .string, "The month, `YYYY-MM` (UTC).")],
                    result: "`{period, status, lines, providers: [{payer_id, payee_id, currency, amount, lines}], late_tickets}`",
                    example: ["period": "2026-11"]) { a, call throws(RPCError) in
            let month = try month(a)
            guard month.start < call.clock() else { throw RPCError.invalidParams("period", "\(month) has not started") }
            call.callLog?.flush()
            let (lines, late) = try call.write { s throws(RegistryError) -> ([SettlementLine], Int) in
                let history = try s.settlementHistory(start: month.start, end: month.end)
                let lines = Settlement.lines(month, history)
                try s.storeSettlement(period: month.description, lines: lines, tickets: history.tickets.map(\.id))
                return (lines, history.tickets.filter { $0.startTime < month.start }.count)
            }
            return ["period": JSONValue(month.description), "status": "open", "lines": JSONValue(lines.count),
                    "providers": providerSummaries(lines), "late_tickets": JSONValue(late)]
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
        AdminMethod(name: "bill.get", summary: "A number's combined bill for a month: every app provider's charges for it in one statement, with totals by currency.",
                    parameters: [.required("number", .string, "The number (E.164)."), .required("period", .string, "The month, `YYYY-MM`."), .acting],
                    result: "`{number, account_id, period, status, lines: [{payee_id, app_id, kind, quantity, unit_price, amount, currency, note, payer_id}], totals: [{currency, amount}]}`",
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
