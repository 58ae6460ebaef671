import Foundation
import JSON
import Registry

extension AdminMethods {
    static let callFilterParameters: [Parameter] = [
        .optional("call_id", .string, "One call, by its Call-ID."),
        .optional("account_id", .string, "Calls served for this account or placed by one of its users."),
        .optional("user_id", .string, "Calls this user placed, was offered or answered: the user's call history."),
        .optional("number", .string, "Calls from, to (as dialled or normalised) or transferred to this number."),
        .optional("from", .string, "Calls started at or after this RFC 3339 time."),
        .optional("until", .string, "Calls started before this RFC 3339 time."),
        .optional("disposition", .string, "answered, busy, no_answer, cancelled, failed, rejected or interrupted."),
        .acting,
    ]

    /// The filter of a `cdr.*` call; a user acting for themselves sees their own calls, a primary
    /// holder their account's.
    static func callFilter(_ a: Arguments, _ call: Invocation) throws(RPCError) -> CallRecordFilter {
        var filter = CallRecordFilter(callID: a.string("call_id"), accountID: a.string("account_id"), userID: a.string("user_id"), number: a.string("number"),
                                      from: try time(a, "from"), until: try time(a, "until"),
                                      disposition: try a.choice("disposition", as: CallRecord.Disposition.self))
        if let actor = a.acting {
            guard let user = call.registry.snapshot.user(actor) else { throw RPCError(.notFound("acting_user", "no user '\(actor)'")) }
            if user.role == .primary {
                if let wanted = filter.accountID, wanted != user.accountID {
                    throw RPCError(.forbidden("\(actor) may only list the calls of account \(user.accountID)"))
                }
                filter.accountID = user.accountID
            } else {
                if let wanted = filter.userID, wanted != actor {
                    throw RPCError(.forbidden("\(actor) may only list their own calls"))
                }
                filter.userID = actor
            }
        }
        return filter
    }

    static let calls: [AdminMethod] = [
        AdminMethod(name: "cdr.list", summary: "Call detail records (docs/cdr.md), oldest first or newest first, by cursor. Every call that ended before the call is included.",
                    parameters: callFilterParameters + [
                        .optional("newest_first", .boolean, "Newest first (a call history); default oldest first."),
                        .optional("cursor", .integer, "Continue after this record id (the previous answer's `next`)."),
                        .limit,
                    ],
                    result: "`{records: [{id, call_id, from_tag, to_tag, cseq, caller_number, caller_user_id, caller_account_id, dialled, destination, forwarded_to, decision, account_id, users, answered_user_id, apps: [{app_id, provider_id, subscriber_id, sip_code}], start_time, answer_time, end_time, setup_ms, billable_ms, duration_ms, sip_code, sip_reason, disposition, hangup_by, end_reason}], next}`; `next` is null after the last page",
                    example: ["user_id": "u-alice", "newest_first": true, "limit": 20]) { a, call throws(RPCError) in
            var filter = try callFilter(a, call)
            filter.newestFirst = a.bool("newest_first") ?? false
            filter.cursor = try a.integer("cursor")
            filter.limit = try a.integer("limit") ?? 100
            call.flushWrites()
            let records = try call.read { s throws(RegistryError) in try s.callRecords(filter) }
            let next: JSONValue = records.count == filter.limit ? JSONValue(records.last?.id ?? 0) : .null
            return ["records": .array(records.map(\.json)), "next": next]
        },
        AdminMethod(name: "cdr.export", summary: "Call detail records as CSV (columns in docs/cdr.md), oldest first: written whole to a file on the gateway's host (through a temporary file renamed at the end), or returned inline up to 10000 records.",
                    parameters: callFilterParameters + [
                        .optional("path", .string, "File to write on the gateway's host; absent: the CSV is returned in the answer."),
                    ],
                    result: "`{rows, path}` when written to a file, `{rows, csv}` inline",
                    example: ["from": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z", "path": "/srv/cdr/2026-11.csv"]) { a, call throws(RPCError) in
            var filter = try callFilter(a, call)
            call.flushWrites()
            let header = CallRecord.csvColumns.joined(separator: ",") + "\r\n"
            guard let path = a.string("path") else {
                filter.limit = 10_000
                let records = try call.read { s throws(RegistryError) in try s.callRecords(filter) }
                let csv = header + records.map { $0.csvLine + "\r\n" }.joined()
                return ["rows": JSONValue(records.count), "csv": .string(csv)]
            }
            var rows = 0
            try writeWhole(to: path) { file throws(RPCError) in
                file.write(Data(header.utf8))
                filter.limit = 10_000
                while true {
                    let page = try call.read { s throws(RegistryError) in try s.callRecords(filter) }
                    guard !page.isEmpty else { break }
                    file.write(Data(page.map { $0.csvLine + "\r\n" }.joined().utf8))
                    rows += page.count
                    filter.cursor = page.last?.id
                    if page.count < filter.limit { break }
                }
            }
            return ["rows": JSONValue(rows), "path": .string(path)]
        },
    ]
}
