import Foundation
import JSON

/// One call as it ends up on an operator's bill: written once, when the call ends, and never changed.
/// Field names follow FreeSWITCH's CDR and Kamailio's `acc` where they have one (docs/cdr.md).
/// Times are milliseconds since the Unix epoch, UTC.
public struct CallRecord: Sendable, Equatable {
    /// How the call ended for the caller.
    public enum Disposition: String, Sendable, CaseIterable {
        case answered, busy
        case noAnswer = "no_answer"
        case cancelled, failed, rejected
        /// Tandem stopped while the call was in progress; closed at the next start.
        case interrupted
    }

    /// What routing decided first (docs/routing.md).
    public enum Decision: String, Sendable, CaseIterable {
        case accept, transfer, reject, chain, voicemail, outbound
    }

    /// Who ended the call.
    public enum Party: String, Sendable, CaseIterable {
        case caller, callee
        /// Tandem itself: a routing refusal, a ring timeout, `cdr.max_call_duration`, a restart.
        case tandem
    }

    /// How it ended: a BYE, the caller's CANCEL, a final answer other than 2xx, the
    /// `cdr.max_call_duration` limit, or a restart of Tandem.
    public enum EndReason: String, Sendable, CaseIterable {
        case bye, cancel, final, timeout, interrupted
    }

    /// One app the call passed through (a chain step or voicemail).
    public struct AppLeg: Sendable, Equatable {
        public var appID: String
        public var providerID: String
        /// How that provider knows the subscriber (its P-Served-User).
        public var subscriberID: String
        /// What the app's branch answered, if it answered.
        public var sipCode: Int?

        public init(appID: String, providerID: String, subscriberID: String, sipCode: Int? = nil) {
            self.appID = appID
            self.providerID = providerID
            self.subscriberID = subscriberID
            self.sipCode = sipCode
        }

        public var json: JSONValue {
            ["app_id": JSONValue(appID), "provider_id": JSONValue(providerID), "subscriber_id": JSONValue(subscriberID),
             "sip_code": sipCode.map { JSONValue($0) } ?? .null]
        }

        package init?(json: JSONValue) {
            guard let app = json["app_id"]?.stringValue, let provider = json["provider_id"]?.stringValue,
                  let subscriber = json["subscriber_id"]?.stringValue else { return nil }
            self.init(appID: app, providerID: provider, subscriberID: subscriber, sipCode: json["sip_code"]?.integerValue.map { Int($0) })
        }
    }

    /// Set when stored.
    public var id: Int
    public var callID: String
    public var fromTag: String
    public var toTag: String?
    /// The INVITE's CSeq number: a caller retrying after a redirect keeps its Call-ID and From-tag.
    public var cseq: Int
    public var callerNumber: String?
    public var callerUserID: String?
    public var callerAccountID: String?
    /// The Request-URI's user part as dialled.
    public var dialled: String
    /// The number after the dialplan (FreeSWITCH `destination_number`).
    public var destination: String
    /// The number a transfer sent the call on to.
    public var forwardedTo: String?
    public var decision: Decision
    /// The account the call is served for: the callee's when the number is Tandem's, else the caller's.
    public var accountID: String?
    /// The users whose devices were offered the call.
    public var users: [String]
    public var answeredUserID: String?
    public var apps: [AppLeg]
    /// The carrier provider whose trunk the call left through (`route=trunk:ID`), rated by its deck.
    public var trunkID: String?
    public var startTime: Int64
    public var answerTime: Int64?
    public var endTime: Int64
    /// The final answer the caller received (Kamailio acc `sip_code`, `sip_reason`).
    public var sipCode: Int
    public var sipReason: String
    public var disposition: Disposition
    public var hangupBy: Party
    public var endReason: EndReason

    public init(id: Int = 0, callID: String, fromTag: String, toTag: String? = nil, cseq: Int, callerNumber: String? = nil,
                callerUserID: String? = nil, callerAccountID: String? = nil, dialled: String, destination: String,
                forwardedTo: String? = nil, decision: Decision, accountID: String? = nil, users: [String] = [],
                answeredUserID: String? = nil, apps: [AppLeg] = [], trunkID: String? = nil, startTime: Int64, answerTime: Int64? = nil, endTime: Int64,
                sipCode: Int, sipReason: String, disposition: Disposition, hangupBy: Party, endReason: EndReason) {
        self.id = id
        self.callID = callID
        self.fromTag = fromTag
        self.toTag = toTag
        self.cseq = cseq
        self.callerNumber = callerNumber
        self.callerUserID = callerUserID
        self.callerAccountID = callerAccountID
        self.dialled = dialled
        self.destination = destination
        self.forwardedTo = forwardedTo
        self.decision = decision
        self.accountID = accountID
        self.users = users
        self.answeredUserID = answeredUserID
        self.apps = apps
        self.trunkID = trunkID
        self.startTime = startTime
        self.answerTime = answerTime
        self.endTime = endTime
        self.sipCode = sipCode
        self.sipReason = sipReason
        self.disposition = disposition
        self.hangupBy = hangupBy
        self.endReason = endReason
    }

    /// From the INVITE to the answer, or to the end when never answered (FreeSWITCH `progress` side).
    public var setupMilliseconds: Int64 { (answerTime ?? endTime) - startTime }
    /// From the answer to the end (FreeSWITCH `billmsec`); 0 when never answered.
    public var billableMilliseconds: Int64 { answerTime.map { max(0, endTime - $0) } ?? 0 }
    /// From the INVITE to the end (FreeSWITCH `duration`, in milliseconds).
    public var durationMilliseconds: Int64 { endTime - startTime }

    /// What `call.ended` and `call.missed` carry: who, what became of it and how long, with the
    /// record's id for the rest (`cdr.list`). Half the record's fields: every call writes one.
    public var endedEvent: JSONValue {
        [
            "cdr_id": JSONValue(id), "call_id": JSONValue(callID), "caller_number": JSONValue(callerNumber),
            "destination": JSONValue(destination), "decision": JSONValue(decision.rawValue), "account_id": JSONValue(accountID),
            "answered_user_id": JSONValue(answeredUserID), "disposition": JSONValue(disposition.rawValue), "sip_code": JSONValue(sipCode),
            "start_time": JSONValue(Timestamp.rfc3339(milliseconds: startTime)), "end_time": JSONValue(Timestamp.rfc3339(milliseconds: endTime)),
            "billable_ms": JSONValue(Int(billableMilliseconds)),
            // Which providers' apps the call went through: their webhooks are told of its end.
            "apps": .array(apps.map { ["app_id": JSONValue($0.appID), "provider_id": JSONValue($0.providerID),
                                       "subscriber_id": JSONValue($0.subscriberID)] }),
        ]
    }

    /// The record as `cdr.list` returns it.
    public var json: JSONValue {
        func time(_ value: Int64?) -> JSONValue { value.map { JSONValue(Timestamp.rfc3339(milliseconds: $0)) } ?? .null }
        func optional(_ value: String?) -> JSONValue { value.map { JSONValue($0) } ?? .null }
        return [
            "id": JSONValue(id), "call_id": JSONValue(callID), "from_tag": JSONValue(fromTag), "to_tag": optional(toTag),
            "cseq": JSONValue(cseq), "caller_number": optional(callerNumber), "caller_user_id": optional(callerUserID),
            "caller_account_id": optional(callerAccountID), "dialled": JSONValue(dialled), "destination": JSONValue(destination),
            "forwarded_to": optional(forwardedTo), "decision": JSONValue(decision.rawValue), "account_id": optional(accountID),
            "users": .array(users.map { JSONValue($0) }), "answered_user_id": optional(answeredUserID),
            "apps": .array(apps.map(\.json)), "start_time": time(startTime), "answer_time": time(answerTime),
            "end_time": time(endTime), "setup_ms": JSONValue(Int(setupMilliseconds)),
            "billable_ms": JSONValue(Int(billableMilliseconds)), "duration_ms": JSONValue(Int(durationMilliseconds)),
            "sip_code": JSONValue(sipCode), "sip_reason": JSONValue(sipReason), "disposition": JSONValue(disposition.rawValue),
            "hangup_by": JSONValue(hangupBy.rawValue), "end_reason": JSONValue(endReason.rawValue), "trunk_id": optional(trunkID),
        ]
    }
}

/// One INVITE's call: the Call-ID and From-tag of the caller's dialog and the CSeq number, since a
/// caller retrying after a redirect keeps the first two (RFC 3261 §8.1.3.4).
public struct CallKey: Hashable, Sendable {
    public var callID: String
    public var fromTag: String
    public var cseq: Int

    public init(callID: String, fromTag: String, cseq: Int) {
        self.callID = callID
        self.fromTag = fromTag
        self.cseq = cseq
    }
}

extension CallRecord {
    public var key: CallKey { CallKey(callID: callID, fromTag: fromTag, cseq: cseq) }
}

/// A call Tandem is carrying now: what the record will say, as far as it is known. Kept in memory by
/// the call path and written to `open_calls`, so a restart can close it as `interrupted`.
public struct OpenCall: Sendable, Equatable {
    public var callID: String
    public var fromTag: String
    public var cseq: Int
    public var toTag: String?
    public var callerNumber: String?
    public var callerUserID: String?
    public var callerAccountID: String?
    public var dialled: String
    public var destination: String
    public var forwardedTo: String?
    public var decision: CallRecord.Decision
    public var accountID: String?
    public var users: [String]
    public var answeredUserID: String?
    public var apps: [CallRecord.AppLeg]
    public var trunkID: String?
    public var startTime: Int64
    public var answerTime: Int64?
    /// Whatever timer the call path keeps for it (`cdr.max_call_duration`); not stored.
    public var timer: UInt64?

    public init(callID: String, fromTag: String, cseq: Int, callerNumber: String? = nil, callerUserID: String? = nil,
                callerAccountID: String? = nil, dialled: String, destination: String, forwardedTo: String? = nil,
                decision: CallRecord.Decision, accountID: String? = nil, users: [String] = [], apps: [CallRecord.AppLeg] = [],
                startTime: Int64) {
        self.callID = callID
        self.fromTag = fromTag
        self.cseq = cseq
        self.callerNumber = callerNumber
        self.callerUserID = callerUserID
        self.callerAccountID = callerAccountID
        self.dialled = dialled
        self.destination = destination
        self.forwardedTo = forwardedTo
        self.decision = decision
        self.accountID = accountID
        self.users = users
        self.apps = apps
        self.startTime = startTime
    }

    public var key: CallKey { CallKey(callID: callID, fromTag: fromTag, cseq: cseq) }

    /// The record of this call ending now.
    public func record(endTime: Int64, sipCode: Int, sipReason: String, disposition: CallRecord.Disposition,
                       hangupBy: CallRecord.Party, endReason: CallRecord.EndReason) -> CallRecord {
        CallRecord(callID: callID, fromTag: fromTag, toTag: toTag, cseq: cseq, callerNumber: callerNumber, callerUserID: callerUserID,
                   callerAccountID: callerAccountID, dialled: dialled, destination: destination, forwardedTo: forwardedTo,
                   decision: decision, accountID: accountID, users: users, answeredUserID: answeredUserID, apps: apps,
                   trunkID: trunkID, startTime: startTime, answerTime: answerTime, endTime: max(endTime, answerTime ?? startTime),
                   sipCode: sipCode, sipReason: sipReason, disposition: disposition, hangupBy: hangupBy, endReason: endReason)
    }

    /// The payload of `call.incoming`.
    public var incomingEvent: JSONValue {
        ["call_id": JSONValue(callID), "caller_number": JSONValue(callerNumber), "caller_user_id": JSONValue(callerUserID),
         "dialled": JSONValue(dialled), "destination": JSONValue(destination), "decision": JSONValue(decision.rawValue),
         "account_id": JSONValue(accountID), "users": JSONValue(users),
         "start_time": JSONValue(Timestamp.rfc3339(milliseconds: startTime))]
    }

    /// The payload of `call.answered`.
    public var answeredEvent: JSONValue {
        ["call_id": JSONValue(callID), "destination": JSONValue(destination), "account_id": JSONValue(accountID),
         "answered_user_id": JSONValue(answeredUserID),
         "answer_time": answerTime.map { JSONValue(Timestamp.rfc3339(milliseconds: $0)) } ?? .null]
    }

    /// Stored as one JSON document: it is only read back whole, at a restart.
    package var json: JSONValue {
        func optional(_ value: String?) -> JSONValue { value.map { JSONValue($0) } ?? .null }
        return [
            "call_id": JSONValue(callID), "from_tag": JSONValue(fromTag), "cseq": JSONValue(cseq), "to_tag": optional(toTag),
            "caller_number": optional(callerNumber), "caller_user_id": optional(callerUserID),
            "caller_account_id": optional(callerAccountID), "dialled": JSONValue(dialled), "destination": JSONValue(destination),
            "forwarded_to": optional(forwardedTo), "decision": JSONValue(decision.rawValue), "account_id": optional(accountID),
            "users": .array(users.map { JSONValue($0) }), "answered_user_id": optional(answeredUserID),
            "apps": .array(apps.map(\.json)), "start_time": JSONValue(Int(startTime)),
            "answer_time": answerTime.map { JSONValue(Int($0)) } ?? .null, "trunk_id": optional(trunkID),
        ]
    }

    package init?(json: JSONValue) {
        guard let callID = json["call_id"]?.stringValue, let fromTag = json["from_tag"]?.stringValue,
              let cseq = json["cseq"]?.integerValue.map({ Int($0) }), let dialled = json["dialled"]?.stringValue,
              let destination = json["destination"]?.stringValue,
              let decision = json["decision"]?.stringValue.flatMap(CallRecord.Decision.init(rawValue:)),
              let start = json["start_time"]?.integerValue else { return nil }
        self.init(callID: callID, fromTag: fromTag, cseq: cseq, callerNumber: json["caller_number"]?.stringValue,
                  callerUserID: json["caller_user_id"]?.stringValue, callerAccountID: json["caller_account_id"]?.stringValue,
                  dialled: dialled, destination: destination, forwardedTo: json["forwarded_to"]?.stringValue, decision: decision,
                  accountID: json["account_id"]?.stringValue, users: json["users"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                  apps: json["apps"]?.arrayValue?.compactMap(CallRecord.AppLeg.init(json:)) ?? [], startTime: start)
        toTag = json["to_tag"]?.stringValue
        answeredUserID = json["answered_user_id"]?.stringValue
        answerTime = json["answer_time"]?.integerValue
        trunkID = json["trunk_id"]?.stringValue
    }
}

extension CallRecord {
    /// The columns of `cdr.export`, in order (docs/cdr.md).
    public static let csvColumns = [
        "id", "call_id", "from_tag", "to_tag", "cseq", "caller_number", "caller_user_id", "caller_account_id", "dialled",
        "destination", "forwarded_to", "decision", "account_id", "users", "answered_user_id", "apps", "start_time", "answer_time",
        "end_time", "setup_ms", "billable_ms", "duration_ms", "sip_code", "sip_reason", "disposition", "hangup_by", "end_reason",
        "trunk_id",
    ]

    /// One CSV line (RFC 4180, without the line end). Lists are `;`-separated; an app is
    /// `app_id:provider_id:subscriber_id:sip_code`.
    public var csvLine: String {
        let apps = apps.map { "\($0.appID):\($0.providerID):\($0.subscriberID):\($0.sipCode.map(String.init) ?? "")" }
        let fields: [String] = [
            String(id), callID, fromTag, toTag ?? "", String(cseq), callerNumber ?? "", callerUserID ?? "", callerAccountID ?? "",
            dialled, destination, forwardedTo ?? "", decision.rawValue, accountID ?? "", users.joined(separator: ";"),
            answeredUserID ?? "", apps.joined(separator: ";"), Timestamp.rfc3339(milliseconds: startTime),
            answerTime.map { Timestamp.rfc3339(milliseconds: $0) } ?? "", Timestamp.rfc3339(milliseconds: endTime),
            String(setupMilliseconds), String(billableMilliseconds), String(durationMilliseconds), String(sipCode), sipReason,
            disposition.rawValue, hangupBy.rawValue, endReason.rawValue, trunkID ?? "",
        ]
        return fields.map(CSV.field).joined(separator: ",")
    }
}

/// RFC 4180 fields for the CSV exports.
public enum CSV {
    /// Quoted when it holds a comma, a quote or a line break; quotes doubled.
    public static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
